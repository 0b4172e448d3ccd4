"""The router at the top of the stack: :class:`RoutingStore`.

Paths of the ephemeral tier (``_temporary/``, ``.spark-staging-*``, configured
prefixes: :func:`emrfs.cache.matching.is_ephemeral`) go to the tier store
(:class:`~emrfs.cache.tierstore.TierStore`); every other path goes down the
persistent stack (cache, consistent view, encryption, transport).  The router
knows only the two stores below it and the predicate.

What needs both sides:

* ``list`` of a prefix inside the tier asks the tier alone; of any other, it merges
  the tier's entries into the persistent listing, in key order,
  a common prefix present on both sides given once (``b/job/`` holds S3 files
  and the tier's ``_temporary/``);
* ``copy`` between the sides streams the object across (a part at a time:
  memory stays at one part), keeping its user metadata and content type unless
  ``metadata`` replaces them;
* ``delete`` sends each side its own paths.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from ..store.protocol import (
    DeleteResult,
    ListPage,
    ObjectMeta,
    ObjectStore,
    ObjectWriter,
    StagedUpload,
    cut_listing,
    split,
)

__all__ = ["RoutingStore"]

_Entry = tuple[str, ObjectMeta | None]  # an object, or a common prefix (None)

#: part size of a copy between the sides (S3's smallest part is 5 MiB)
COPY_PART_SIZE = 8 * 1024 * 1024


class RoutingStore(ObjectStore):
    """Tier paths to ``tier``, the rest to ``persistent`` (see the module doc)."""

    def __init__(
        self,
        persistent: ObjectStore,
        tier: ObjectStore,
        in_tier: Callable[[str], bool],
        *,
        copy_part_size: int = COPY_PART_SIZE,
    ):
        if copy_part_size < 1:
            raise ValueError(f"copy_part_size must be at least 1, not {copy_part_size}")
        self.persistent = persistent
        self.tier = tier
        self.in_tier = in_tier
        self.copy_part_size = copy_part_size

    def route(self, path: str) -> ObjectStore:
        """The store that holds ``path``."""
        return self.tier if self.in_tier(path) else self.persistent

    # --- one path: one store -------------------------------------------------------------------

    async def head(self, path: str) -> ObjectMeta:
        return await self.route(path).head(path)

    async def get(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> tuple[ObjectMeta, bytes]:
        return await self.route(path).get(path, start, end, if_match=if_match)

    async def get_range(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> bytes:
        return await self.route(path).get_range(path, start, end, if_match=if_match)

    def get_stream(
        self,
        path: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 8 * 1024 * 1024,
    ) -> AsyncIterator[bytes]:
        return self.route(path).get_stream(
            path, start, end, if_match=if_match, chunk_size=chunk_size
        )

    async def put(
        self,
        path: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectMeta:
        return await self.route(path).put(
            path, data, if_none_match=if_none_match, metadata=metadata, content_type=content_type
        )

    async def writer(
        self,
        path: str,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectWriter:
        return await self.route(path).writer(
            path, if_none_match=if_none_match, metadata=metadata, content_type=content_type
        )

    async def complete_staged(self, staged: StagedUpload) -> ObjectMeta:
        return await self.route(staged.path).complete_staged(staged)

    async def abort_staged(self, staged: StagedUpload) -> None:
        await self.route(staged.path).abort_staged(staged)

    # --- what needs both sides -----------------------------------------------------------------

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
    ) -> ObjectMeta:
        source, target = self.route(src), self.route(dst)
        if source is target:
            return await source.copy(src, dst, metadata=metadata, source_size=source_size)
        meta = await source.head(src)
        new_metadata = meta.metadata if metadata is None else metadata
        stream = source.get_stream(src, if_match=meta.etag, chunk_size=self.copy_part_size)
        if meta.size <= self.copy_part_size:
            data = b"".join([chunk async for chunk in stream])
            return await target.put(
                dst, data, metadata=new_metadata, content_type=meta.content_type
            )
        writer = await target.writer(dst, metadata=new_metadata, content_type=meta.content_type)
        try:
            number, pending = 1, bytearray()
            async for chunk in stream:
                pending += chunk
                while len(pending) >= self.copy_part_size:
                    await writer.write_part(number, bytes(pending[: self.copy_part_size]))
                    del pending[: self.copy_part_size]
                    number += 1
            if pending or number == 1:
                await writer.write_part(number, bytes(pending))
            return await writer.complete()
        except BaseException:
            await writer.abort()
            raise

    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        tier = [p for p in paths if self.in_tier(p)]
        persistent = [p for p in paths if not self.in_tier(p)]
        done = await asyncio.gather(
            self.tier.delete(tier) if tier else _nothing(),
            self.persistent.delete(persistent) if persistent else _nothing(),
        )
        return DeleteResult.combine(*done)

    async def _tier_entries(
        self, prefix: str, delimiter: str | None, limit: int | None = None
    ) -> builtins.list[_Entry]:
        entries: builtins.list[_Entry] = []
        try:
            async for page in self.tier.list(prefix, delimiter=delimiter, limit=limit):
                entries += [(m.path, m) for m in page.objects if self.in_tier(m.path)]
                entries += [(p, None) for p in page.prefixes]
        except FileNotFoundError:
            return []  # the tier holds nothing in this bucket
        return sorted(entries, key=lambda e: e[0])

    def _within_tier(self, prefix: str) -> bool:
        """True when everything a listing of ``prefix`` can name lies in the tier: the
        prefix's whole segments (``b/job/_temporary/``, not ``b/job/_temp``) are a tier path."""
        bucket, key = split(prefix)
        whole = key.rpartition("/")[0]
        return self.in_tier(f"{bucket}/{whole}" if whole else bucket)

    def list(
        self, prefix: str, *, delimiter: str | None = None, limit: int | None = None
    ) -> AsyncIterator[ListPage]:
        if self._within_tier(prefix):
            return self.tier.list(prefix, delimiter=delimiter, limit=limit)
        # each side asked for the first `limit`: the first `limit` of the merge are theirs
        return cut_listing(self._merged(prefix, delimiter, limit), limit)

    async def _merged(
        self, prefix: str, delimiter: str | None, limit: int | None
    ) -> AsyncIterator[ListPage]:
        pending = await self._tier_entries(prefix, delimiter, limit)
        prefixes_given: set[str] = set()
        pages = 0

        def page_of(entries: builtins.list[_Entry]) -> ListPage:
            objects, prefixes = [], []
            for name, meta in sorted(entries, key=lambda e: e[0]):
                if meta is not None:
                    objects.append(meta)
                elif name not in prefixes_given:
                    prefixes_given.add(name)
                    prefixes.append(name)
            return ListPage(objects=objects, prefixes=prefixes)

        async for page in self._persistent_pages(prefix, delimiter, limit):
            below: builtins.list[_Entry] = [
                (m.path, m) for m in page.objects if not self.in_tier(m.path)
            ]
            below += [(p, None) for p in page.prefixes]
            if not below:
                continue
            last = max(name for name, _ in below)
            take = 0
            while take < len(pending) and pending[take][0] <= last:
                take += 1
            yield page_of(below + pending[:take])
            pages += 1
            del pending[:take]
        if pending or not pages:  # the tier's entries after the last key below (or alone)
            yield page_of(pending)

    async def _persistent_pages(
        self, prefix: str, delimiter: str | None, limit: int | None
    ) -> AsyncIterator[ListPage]:
        """The persistent side's pages, asked for the first ``limit``.  Objects at tier
        paths are not the persistent side's to show (an S3 key under a tier pattern,
        written while the tier was off); where they took some of those first ``limit``,
        the side is asked again without it, so what it does show is still found (a
        directory probe must not miss ``d/kept`` behind ``d/_temporary/old``)."""
        if limit is None:  # streamed: a whole directory's listing is not held
            async for page in self.persistent.list(prefix, delimiter=delimiter):
                yield page
            return
        first = [p async for p in self.persistent.list(prefix, delimiter=delimiter, limit=limit)]
        if not any(self.in_tier(m.path) for p in first for m in p.objects):
            for page in first:
                yield page
            return
        # the merge stops reading once it has `limit` entries (cut_listing)
        async for page in self.persistent.list(prefix, delimiter=delimiter):
            yield page

    async def close(self) -> None:
        await asyncio.gather(self.tier.close(), self.persistent.close())


async def _nothing() -> DeleteResult:
    return DeleteResult()

"""The block cache as a layer of the stack: :class:`CachingStore`.

A :class:`~emrfs.store.protocol.WrapperStore` over any store: ``get_range`` and
``get_stream`` read through local blocks (:mod:`emrfs.cache.reader`); ``put``,
a writer's ``complete``, ``copy``, ``complete_staged`` and ``delete`` drop the
blocks of the paths they change; ``head`` and ``list`` pass through and teach
the layer the version each object has now.

Blocks belong to one object version (:class:`~emrfs.cache.store.ObjectIdentity`:
path, size, ETag, version id and the layer's ``stamp``), so a new version never
serves old blocks.  The version a read uses is the one the layer saw last (a
``head``, a listing, or a write through it); a read of a path it has not seen
learns it from its own GET (of the blocks it touches, cached), and every later
fill below is pinned (``if_match``) to that version, so a change below in the
middle of a read fails rather than mixes versions.  A change made past the layer
is seen at its next ``head`` or listing of the path: until then, reads of the
version it knows keep being served from blocks with no request below (as the
filesystem's reads always were).

The layer stores what the layer below hands it: over the encryption layer that
is plaintext, so ``seal`` (True, or a predicate of the path) seals those blocks
at rest with the cache's key whatever ``cache.encrypt`` says.
"""

from __future__ import annotations

import builtins
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from ..errors import ChangedError
from ..store.protocol import (
    DeleteResult,
    ListPage,
    ObjectMeta,
    ObjectStore,
    ObjectWriter,
    StagedUpload,
    WrapperStore,
    check_chunk_size,
    check_range,
)
from .reader import CachedReader
from .store import BlockStore, ObjectIdentity, path_owner

__all__ = ["CachingStore"]

logger = logging.getLogger("emrfs.cache")

#: Versions remembered per layer (most recently seen kept).
MAX_KNOWN = 100_000


def _bare(etag: str | None) -> str:
    return (etag or "").strip('"')


class CachingStore(WrapperStore):
    """Read-through block cache over ``inner``.

    Parameters
    ----------
    inner
        The store below.
    blocks
        The local :class:`BlockStore` (shared by every layer of a process; the
        layer does not close it).
    block_size, prefetch_blocks
        ``cache.block_size`` and ``cache.prefetch_blocks``.
    seal
        Seal blocks at rest (True, or per path): the layer below hands over
        plaintext of client-side encrypted objects.
    stamp
        Part of every identity this layer keys blocks by (or a function of the
        object's meta), so two stacks sharing one :class:`BlockStore` but reading
        different bytes of one object (a CSE layer's plaintext, a transport's
        ciphertext) never share blocks.
    """

    def __init__(
        self,
        inner: ObjectStore,
        blocks: BlockStore,
        *,
        block_size: int,
        prefetch_blocks: int = 2,
        seal: bool | Callable[[str], bool] = False,
        stamp: str | Callable[[ObjectMeta], str | None] | None = None,
        max_known: int = MAX_KNOWN,
    ):
        super().__init__(inner)
        if block_size <= 0:
            raise ValueError(f"cache.block_size must be positive, got {block_size}")
        self.blocks = blocks
        self.block_size = block_size
        self.prefetch_blocks = prefetch_blocks
        self._seal = seal
        self.stamp = stamp
        self.max_known = max_known
        self._known: OrderedDict[str, ObjectIdentity] = OrderedDict()

    # --- versions the layer has seen --------------------------------------------------------

    def sealed(self, path: str) -> bool:
        return self._seal(path) if callable(self._seal) else bool(self._seal)

    def known(self, path: str) -> ObjectIdentity | None:
        """The version reads of ``path`` use now (None: the next read asks ``head``)."""
        return self._known.get(path)

    def remember(self, meta: ObjectMeta) -> ObjectIdentity | None:
        """Record the version ``meta`` describes; the blocks of any other version of the
        path are dropped (they can never be served again).  An object with no ETag is
        not cached (nothing would tell its versions apart)."""
        if not meta.etag:
            self.forget(meta.path)
            return None
        stamp = self.stamp(meta) if callable(self.stamp) else self.stamp
        ident = ObjectIdentity(
            meta.path, meta.size, etag=meta.etag, version_id=meta.version_id, stamp=stamp
        )
        old = self._known.get(meta.path)
        if old is not None and old != ident:
            self.blocks.drop_owner("c", ident.owner, keep_tag=ident.tag)
        self._known[meta.path] = ident
        self._known.move_to_end(meta.path)
        if len(self._known) > self.max_known:
            self._known.popitem(last=False)
        return ident

    def known_paths(self) -> builtins.list[str]:
        """The paths whose version the layer knows (least recently seen first)."""
        return [*self._known]

    def forget(self, path: str) -> None:
        """``path`` changed: forget its version and drop every block of it."""
        self._known.pop(path, None)
        self.blocks.drop_owner("c", path_owner(path))

    async def _identity(self, path: str, if_match: str | None) -> ObjectIdentity | None:
        """The version a read serves: the one known, or what ``head`` says now.  A read
        pinned to another version than the known one looks again; ``ChangedError`` if
        the object is not that version."""
        ident = self._known.get(path)
        if ident is not None and (if_match is None or _bare(if_match) == _bare(ident.etag)):
            return ident
        meta = await self.inner.head(path)
        ident = self.remember(meta)
        if if_match is not None and _bare(if_match) != _bare(meta.etag):
            raise ChangedError(path, if_match, meta.etag)
        return ident

    def _reader(self, ident: ObjectIdentity) -> CachedReader:
        path, etag = ident.path, ident.etag

        async def fetch(start: int, end: int) -> bytes:
            return await self.inner.get_range(path, start, end, if_match=etag)

        return CachedReader(
            self.blocks,
            ident,
            fetch,
            block_size=self.block_size,
            prefetch_blocks=self.prefetch_blocks,
            sealed=self.sealed(path),
        )

    # --- reading ------------------------------------------------------------------------------

    async def get_range(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> bytes:
        check_range(path, start, end)
        if path not in self._known:
            try:
                return await self._first_read(path, start, end, if_match)
            except ChangedError:
                # changed below during the read (or found sealed by the layer below): a
                # pinned caller hears it; an unpinned one is served as below
                self.forget(path)
                if if_match is not None:
                    raise
        for attempt in (1, 2):
            ident = await self._identity(path, if_match)
            if ident is None:  # no ETag: nothing to key blocks by
                return await self.inner.get_range(path, start, end, if_match=if_match)
            stop = ident.size if end is None else min(end, ident.size)
            if stop <= start:
                return b""
            reader = self._reader(ident)
            data = reader.read_cached(start, stop - start)
            if data is not None:
                return data
            try:
                return await reader.read(start, stop - start)
            except FileNotFoundError:
                self.forget(path)  # deleted past the layer
                raise
            except ChangedError:
                # changed below since the layer looked: a pinned caller hears it; an
                # unpinned one is served the version there now (looked up once more)
                self.forget(path)
                if if_match is not None or attempt == 2:
                    raise
            finally:
                await reader.close()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _first_read(
        self, path: str, start: int, end: int | None, if_match: str | None
    ) -> bytes:
        """A read of a path the layer has not seen: one GET of the blocks it touches
        brings the version with the bytes (no ``head`` first); those blocks are cached."""
        lo = start - start % self.block_size
        hi = None if end is None else -(-end // self.block_size) * self.block_size
        meta, data = await self.inner.get(path, lo, hi, if_match=if_match)
        ident = self.remember(meta)
        if ident is not None and data:
            reader = self._reader(ident)
            try:
                await reader.adopt(lo, data)
            finally:
                await reader.close()
        stop = meta.size if end is None else min(end, meta.size)
        if start == lo and stop - lo == len(data):
            return data
        return data[start - lo : max(start, stop) - lo]

    async def get_stream(
        self,
        path: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 8 * 1024 * 1024,
    ) -> AsyncIterator[bytes]:
        check_range(path, start, end)
        check_chunk_size(path, chunk_size)
        ident = await self._identity(path, if_match)
        if ident is None:
            async for chunk in self.inner.get_stream(
                path, start, end, if_match=if_match, chunk_size=chunk_size
            ):
                yield chunk
            return
        stop = ident.size if end is None else min(end, ident.size)
        reader = self._reader(ident)  # one reader: sequential chunks prefetch ahead
        try:
            for offset in range(start, stop, chunk_size):
                length = min(chunk_size, stop - offset)
                data = reader.read_cached(offset, length)
                if data is None:
                    try:
                        data = await reader.read(offset, length)
                    except (ChangedError, FileNotFoundError):
                        self.forget(path)  # bytes of the old version may be out already
                        raise
                yield data
        finally:
            await reader.close()

    async def head(self, path: str) -> ObjectMeta:
        try:
            meta = await self.inner.head(path)
        except FileNotFoundError:
            if path in self._known:
                self.forget(path)
            raise
        self.remember(meta)
        return meta

    async def list(
        self, prefix: str, *, delimiter: str | None = None, limit: int | None = None
    ) -> AsyncIterator[ListPage]:
        async for page in self.inner.list(prefix, delimiter=delimiter, limit=limit):
            for meta in page.objects:
                old = self._known.get(meta.path)
                # a listing tells a new version apart (not a version's metadata)
                if old is not None and (
                    _bare(old.etag) != _bare(meta.etag) or old.size != meta.size
                ):
                    self.remember(meta)
            yield page

    # --- writing: every change drops the blocks of what was there ------------------------------

    async def put(
        self,
        path: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectMeta:
        self.forget(path)
        try:
            meta = await self.inner.put(
                path,
                data,
                if_none_match=if_none_match,
                metadata=metadata,
                content_type=content_type,
            )
        finally:
            self.forget(path)  # a put that failed half-way may still have changed it
        self.remember(meta)
        return meta

    async def writer(
        self,
        path: str,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectWriter:
        inner = await self.inner.writer(
            path, if_none_match=if_none_match, metadata=metadata, content_type=content_type
        )
        return _InvalidatingWriter(self, inner)

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
    ) -> ObjectMeta:
        self.forget(dst)
        try:
            meta = await self.inner.copy(src, dst, metadata=metadata, source_size=source_size)
        finally:
            self.forget(dst)
        if source_size is None:  # else its user metadata is not known: learnt at the next head
            self.remember(meta)
        return meta

    async def complete_staged(self, staged: StagedUpload) -> ObjectMeta:
        self.forget(staged.path)
        try:
            meta = await self.inner.complete_staged(staged)
        finally:
            self.forget(staged.path)
        self.remember(meta)
        return meta

    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        try:
            return await self.inner.delete(paths)
        finally:
            for path in paths:  # a batch cut short may have deleted some: forget them all
                self.forget(path)


class _InvalidatingWriter(ObjectWriter):
    """A writer below whose ``complete`` drops the path's blocks (and records the version)."""

    def __init__(self, layer: CachingStore, inner: ObjectWriter):
        self.layer = layer
        self.inner = inner
        self.path = inner.path

    async def write_part(self, number: int, data: bytes) -> None:
        await self.inner.write_part(number, data)

    async def copy_part(self, number: int, src: str, start: int, end: int) -> None:
        await self.inner.copy_part(number, src, start, end)

    async def complete(self) -> ObjectMeta:
        self.layer.forget(self.path)
        try:
            meta = await self.inner.complete()
        finally:
            self.layer.forget(self.path)
        self.layer.remember(meta)
        return meta

    async def abort(self) -> None:
        await self.inner.abort()

    async def stage(self) -> StagedUpload:
        return await self.inner.stage()

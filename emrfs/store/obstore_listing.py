"""The obstore transport's listing: pages of a directory prefix through obstore (the
markers' trailing ``/`` put back), the rest through the botocore fallback."""

from __future__ import annotations

import asyncio
import builtins
import datetime as _dt
from collections.abc import AsyncIterator, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any

from .obstore_base import ObstoreBase
from .obstore_native import _unparseable, blocking, each, obstore_key
from .protocol import ListedRow, ListPage, split

#: a GET's body longer than this is collected in chunks (memory and Python objects both)
_LIST_CHUNK = 1000


class ObstoreListing(ObstoreBase):
    """The listing verb of :class:`~emrfs.store.obstore.ObstoreStore`."""

    # --- listing --------------------------------------------------------------------------

    async def list(
        self, prefix: str, *, delimiter: str | None = None, limit: int | None = None
    ) -> AsyncIterator[ListPage]:
        bucket, key_prefix = split(prefix)
        # obstore lists by path segment: only a directory prefix ("a/b/" or the bucket)
        # means the same to it as to S3; and it has no MaxKeys (a probe is botocore's)
        directory = key_prefix == "" or (key_prefix.endswith("/") and obstore_key(key_prefix[:-1]))
        if not self._native() or not directory or delimiter not in (None, "/") or limit is not None:
            async for page in self.fallback.list(prefix, delimiter=delimiter, limit=limit):
                yield page
            return
        pages = self._one_level if delimiter == "/" else self._tree
        async for page in pages(prefix, bucket, key_prefix[:-1] or None):
            yield page

    async def _one_level(
        self, prefix: str, bucket: str, base: str | None
    ) -> AsyncIterator[ListPage]:
        """The objects and common prefixes directly below ``base`` (one request)."""
        import obstore

        try:
            with self._errors(prefix):
                result = await blocking(
                    obstore.list_with_delimiter, self._store(bucket), base, return_arrow=True
                )
        except Exception as exc:
            if not _unparseable(exc):
                raise
            # a key obstore cannot parse: botocore lists it as it is
            async for page in self.fallback.list(prefix, delimiter="/"):
                yield page
            return
        in_bucket = bucket + "/"
        paths, sizes, etags, modified, versions = _columns(result["objects"])
        names = builtins.list(map(in_bucket.__add__, paths))
        if base in paths:  # the directory's own marker "base/" comes back as "base"
            names[paths.index(base)] += "/"
        rows = builtins.list(
            zip(names, sizes, etags, modified, versions, repeat(None), strict=False)
        )
        rows.sort(key=itemgetter(0))  # by path
        prefixes = [f"{bucket}/{p}/" for p in result["common_prefixes"]]
        for i in range(0, max(len(rows), len(prefixes), 1), _LIST_CHUNK):
            yield ListPage.of_rows(rows[i : i + _LIST_CHUNK], prefixes[i : i + _LIST_CHUNK])

    async def _tree(self, prefix: str, bucket: str, base: str | None) -> AsyncIterator[ListPage]:
        """Every object below ``base``, in pages as obstore's batches come.

        obstore strips the "/" of a directory marker "d/", so a zero-byte "d" is a file
        "d" or the marker "d/"; the second sighting of a path is the marker (the file
        sorts first), a first zero-byte sighting is settled by one HEAD.  The batches are
        Arrow: obstore makes no dict (nor datetime) per key."""
        import obstore

        seen: set[str] = set()
        last: str | None = None
        batches = obstore.list(self._store(bucket), base, chunk_size=_LIST_CHUNK, return_arrow=True)
        try:
            with self._errors(prefix):
                async for batch in each(batches):
                    settled = await self._settle(bucket, _columns(batch), seen)
                    if settled:
                        last = settled[-1][0]
                        yield ListPage.of_rows(settled)
        except Exception as exc:
            if not _unparseable(exc):
                raise
            # a key obstore cannot parse: botocore goes on after the last one yielded
            async for page in self.fallback.list(prefix, delimiter=None):
                rest = [o for o in page.objects if last is None or o.path > last]
                if rest:
                    yield ListPage(rest)

    async def _settle(
        self, bucket: str, columns: _Columns, seen: set[str]
    ) -> builtins.list[ListedRow]:
        """A batch's objects (``columns``) as rows with the markers' slashes back, in the
        batch's (S3's) order.  Runs once per listed key, so a batch of paths all new and
        no zero-byte object (most of them) is made of C loops over its columns; else
        :meth:`_settle_each` looks at each key."""
        paths, sizes, etags, modified, versions = columns
        if 0 in sizes or not seen.isdisjoint(paths):
            return await self._settle_each(bucket, columns, seen)
        before = len(seen)
        seen.update(paths)
        if len(seen) - before != len(paths):  # a path twice in the batch: a marker
            seen.difference_update(paths)  # (each was new)
            return await self._settle_each(bucket, columns, seen)
        in_bucket = map((bucket + "/").__add__, paths)
        return builtins.list(
            zip(in_bucket, sizes, etags, modified, versions, repeat(None), strict=False)
        )

    async def _settle_each(
        self, bucket: str, columns: _Columns, seen: set[str]
    ) -> builtins.list[ListedRow]:
        """:meth:`_settle` a key at a time: the second sighting of a path is a marker, a
        first zero-byte one is asked of the store (tasks only for those, none in most
        listings)."""
        prefix = bucket + "/"
        out: builtins.list[ListedRow] = []
        remember = seen.add
        undecided: builtins.list[int] = []
        for path, size, etag, modified, version in zip(*columns, strict=False):
            if path in seen:
                path += "/"  # the second sighting: obstore's path type dropped its slash
            else:
                remember(path)
                if size == 0:
                    undecided.append(len(out))
            out.append((prefix + path, size, etag, modified, version, None))
        if undecided:
            flags = await asyncio.gather(*(self._is_marker(out[i][0]) for i in undecided))
            for index, flag in zip(undecided, flags, strict=True):
                if flag:
                    out[index] = (out[index][0] + "/", *out[index][1:])
        return out

    async def _is_marker(self, path: str) -> bool:
        """A zero-byte ``d`` seen once is a file ``d`` or the marker ``d/``: a HEAD of ``d``
        tells (a marker has no object without the slash)."""
        import obstore

        bucket, key = split(path)
        try:
            with self._errors(path):
                await blocking(obstore.head, self._store(bucket), key)
        except FileNotFoundError:
            return True
        return False


#: a batch's columns as Python lists: path, size, ETag, modification time, version
_Columns = tuple[
    builtins.list[str],
    builtins.list[int],
    "builtins.list[str | None]",
    "builtins.list[_dt.datetime | None]",
    "Sequence[str | None]",
]
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _columns(batch: Any) -> _Columns:
    """An obstore listing's Arrow batch (or table) as Python lists, each made by one C loop (arro3);
    its timestamps, as integers, made datetimes once per distinct value (a listing's keys
    were mostly written in a few seconds; a datetime per key was as dear as the rest)."""
    stamps = batch.column("last_modified")
    if stamps.type.time_unit == "us":
        micros = stamps.cast(_int64()).to_pylist()
        made = {m: _EPOCH + _dt.timedelta(microseconds=m) for m in set(micros) if m is not None}
        modified = builtins.list(map(made.get, micros))
    else:  # (another unit: arro3 makes the datetimes)
        modified = stamps.to_pylist()
    versions = batch.column("version")
    count = batch.num_rows
    return (
        batch.column("path").to_pylist(),
        batch.column("size").to_pylist(),
        batch.column("e_tag").to_pylist(),
        modified,
        [None] * count if versions.null_count == count else versions.to_pylist(),
    )


def _int64() -> Any:
    from arro3.core import DataType

    return DataType.int64()

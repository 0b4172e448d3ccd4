"""The obstore transport's listing: pages of a directory prefix through obstore (the
markers' trailing ``/`` put back), the rest through the botocore fallback."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

from .obstore_base import ObstoreBase
from .obstore_native import _unparseable, blocking, each, obstore_key
from .protocol import ListedRow, ListPage, split

#: a GET's body longer than this is collected in chunks (memory and Python objects both)
_LIST_CHUNK = 1000
#: an obstore listing entry's fields, in a :data:`ListedRow`'s order
_META_FIELDS = itemgetter("path", "size", "e_tag", "last_modified", "version")


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
        import obstore

        store = self._store(bucket)
        base = key_prefix[:-1] or None
        if delimiter == "/":
            try:
                with self._errors(prefix):
                    result = await blocking(obstore.list_with_delimiter, store, base)
            except Exception as exc:
                if not _unparseable(exc):
                    raise
                # a key obstore cannot parse: botocore lists it as it is
                async for page in self.fallback.list(prefix, delimiter=delimiter):
                    yield page
                return
            in_bucket = bucket + "/"
            rows = [  # the directory's own marker "base/" comes back as "base"
                (
                    in_bucket + (path + "/" if path == base else path),
                    size,
                    etag,
                    modified,
                    version,
                    None,
                )
                for path, size, etag, modified, version in _fields(result["objects"])
            ]
            rows.sort(key=itemgetter(0))  # by path
            prefixes = [f"{bucket}/{p}/" for p in result["common_prefixes"]]
            for i in range(0, max(len(rows), len(prefixes), 1), _LIST_CHUNK):
                yield ListPage.of_rows(rows[i : i + _LIST_CHUNK], prefixes[i : i + _LIST_CHUNK])
            return
        # recursive: obstore strips the "/" of a directory marker "d/", so a zero-byte
        # "d" is a file "d" or the marker "d/"; the second sighting of a path is the marker
        # (the file sorts first), a first zero-byte sighting is settled by one HEAD
        seen: set[str] = set()
        last: str | None = None
        try:
            with self._errors(prefix):
                async for chunk in each(obstore.list(store, base, chunk_size=_LIST_CHUNK)):
                    settled = await self._settle(bucket, chunk, seen)
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
        self, bucket: str, chunk: Sequence[Mapping[str, Any]], seen: set[str]
    ) -> builtins.list[ListedRow]:
        """``chunk``'s objects as rows with the markers' slashes back, in the chunk's (S3's)
        order.  Runs once per listed key: one pass in Python building a tuple per key (an
        :class:`ObjectMeta` is built only if a layer reads the page's objects; a key's
        fields read by one C call, not five lookups), and tasks only for the zero-byte
        first sightings that need a HEAD (none in most listings)."""
        prefix = bucket + "/"
        out: builtins.list[ListedRow] = []
        append = out.append
        remember = seen.add
        undecided: builtins.list[tuple[int, Mapping[str, Any]]] = []
        for item, (path, size, etag, last_modified, version) in zip(
            chunk, _fields(chunk), strict=True
        ):
            if path in seen:
                path += "/"  # the second sighting: obstore's path type dropped its slash
            else:
                remember(path)
                if size == 0:
                    undecided.append((len(out), item))
            append((prefix + path, size, etag, last_modified, version, None))
        if undecided:
            flags = await asyncio.gather(*(self._is_marker(bucket, item) for _, item in undecided))
            for (index, item), flag in zip(undecided, flags, strict=True):
                if flag:
                    out[index] = self._listed(bucket, item, marker=True)
        return out

    async def _is_marker(self, bucket: str, item: Mapping[str, Any]) -> bool:
        """A zero-byte ``d`` seen once is a file ``d`` or the marker ``d/``: a HEAD of ``d``
        tells (a marker has no object without the slash)."""
        import obstore

        try:
            with self._errors(f"{bucket}/{item['path']}"):
                await blocking(obstore.head, self._store(bucket), item["path"])
        except FileNotFoundError:
            return True
        return False

    def _listed(
        self,
        bucket: str,
        item: Mapping[str, Any],
        *,
        marker: bool = False,
        marker_of: str | None = None,
    ) -> ListedRow:
        key = item["path"]
        if marker or (marker_of is not None and key == marker_of):
            key += "/"  # obstore's path type dropped the marker's slash
        return (
            f"{bucket}/{key}",
            item["size"],
            item.get("e_tag"),
            item.get("last_modified"),
            item.get("version"),
            None,
        )


def _fields(
    objects: Sequence[Mapping[str, Any]],
) -> builtins.list[tuple[str, int, str | None, Any, str | None]]:
    """Each listed object's path, size, ETag, modification time and version: one C call
    per object, not five lookups."""
    try:
        return builtins.list(map(_META_FIELDS, objects))
    except KeyError:  # an obstore that leaves out a missing ETag or version
        return [
            (o["path"], o["size"], o.get("e_tag"), o.get("last_modified"), o.get("version"))
            for o in objects
        ]

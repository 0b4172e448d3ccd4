"""The consistent view's listings: :class:`ConsistentListing`, the ``list`` half of
:class:`~emrfs.consistency.layer.ConsistentStore`.

``list`` is ``ConsistentView.ls`` (with a delimiter) or ``find`` (without), the
store's listing checked against the rows; a ``limit`` (a probe: "is anything under
d/") merges a short LIST with the table's rows and waits for nothing.  Also the
conversions both halves use between the store's :class:`ObjectMeta` and the
fsspec-shaped infos the view compares.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .. import paths as P
from ..blocking import run_blocking
from ..store.protocol import ListPage, ObjectMeta, WrapperStore, cut_listing, split
from .view import ConsistentView

__all__ = ["ConsistentListing", "tracked"]

#: an info dict's key for the store's own description of the object
_META = "_object_meta"

# (spelled here: inside ConsistentStore, ``list`` is the verb)
_Infos = list[dict[str, Any]]
_Metas = list[ObjectMeta]
_Prefixes = list[str]


def tracked(path: str) -> bool:
    """Whether the view records ``path``: an object the table can name exactly (no
    bucket alone, no ``//`` runs or trailing ``/``), and not a folder marker."""
    _, key = split(path)
    return bool(key) and P.strip_protocol(path) == path and P.marker_dir(key) is None


def _row_path(path: str) -> str:
    """The row that speaks for a listed object: a folder marker's directory, else itself."""
    bucket, key = split(path)
    as_dir = P.marker_dir(key)
    return path if as_dir is None else f"{bucket}/{as_dir}".rstrip("/")


def _info(meta: ObjectMeta) -> dict[str, Any]:
    """The store's object as the fsspec-shaped info the view's checks compare."""
    info: dict[str, Any] = {"name": meta.path, "size": meta.size, "type": "file", _META: meta}
    if meta.etag is not None:
        info["ETag"] = meta.etag
    if meta.version_id is not None:
        info["VersionId"] = meta.version_id
    if meta.last_modified is not None:
        info["mtime"] = meta.last_modified.timestamp()
    return info


def _meta(info: dict[str, Any]) -> ObjectMeta:
    """An info the view answered with, as object meta (the store's own when it listed
    the object; else built from the metadata row)."""
    found = info.get(_META)
    if found is not None:
        return found
    mtime = info.get("mtime")
    return ObjectMeta(
        P.strip_protocol(info["name"]),
        int(info.get("size") or 0),
        info.get("ETag"),
        _dt.datetime.fromtimestamp(mtime, _dt.timezone.utc) if mtime else None,
        info.get("VersionId"),
    )


class ConsistentListing(WrapperStore):
    """``list`` over ``inner``, checked against ``view``'s rows (a base of
    :class:`~emrfs.consistency.layer.ConsistentStore`, which sets ``view``)."""

    view: ConsistentView

    def list(
        self, prefix: str, *, delimiter: str | None = None, limit: int | None = None
    ) -> AsyncIterator[ListPage]:
        if limit is not None:
            # a probe ("is anything under d/"): asked short, merged, nothing waited for
            return cut_listing(self._first(prefix, delimiter, limit), limit)
        return self._list(prefix, delimiter)

    async def _first(
        self, prefix: str, delimiter: str | None, limit: int
    ) -> AsyncIterator[ListPage]:
        """The first ``limit`` entries of the merged listing, asked short: what the store
        below lists first, less what the table tombstoned (deletions it still lists), plus
        the table's live rows of the directory it does not list yet (a live directory row
        as its prefix: without a delimiter, as one the listing's objects do not imply).
        One short LIST (more only while tombstones fill it), two table reads."""
        if limit < 1:
            raise ValueError(f"a listing's limit must be at least 1, not {limit}")
        bucket, key = split(prefix)
        if key and P.strip_protocol(prefix) != prefix.rstrip("/"):
            async for page in self.inner.list(prefix, delimiter=delimiter, limit=limit):
                yield page
            return
        directory = f"{bucket}/{key}".rstrip("/")
        if key and not key.endswith("/"):
            directory = directory.rpartition("/")[0]
        # the table's rows of the directory, read while the store lists
        rows = asyncio.ensure_future(run_blocking(self.view.store.list_children, directory))
        try:
            objects, prefixes = await self._first_listed(prefix, delimiter, limit)
            children = await rows
        finally:
            rows.cancel()
        listed = {o.path for o in objects} | set(prefixes)
        for entry in children.live:
            if not entry.path.startswith(prefix):
                continue
            if not entry.is_dir:
                if entry.path not in listed:
                    objects.append(_meta(entry.info()))
                continue
            below = entry.path + "/"
            if below in listed or (
                delimiter is None and any(o.path.startswith(below) for o in objects)
            ):
                continue
            prefixes.append(below)
        yield ListPage(sorted(objects, key=lambda m: m.path), sorted(prefixes))

    async def _first_listed(
        self, prefix: str, delimiter: str | None, limit: int
    ) -> tuple[_Metas, _Prefixes]:
        """The store's first ``limit`` entries that the table has not tombstoned."""
        ask = limit
        while True:
            objects: _Metas = []
            prefixes: _Prefixes = []
            async for page in self.inner.list(prefix, delimiter=delimiter, limit=ask):
                objects.extend(page.objects)
                prefixes.extend(page.prefixes)
            exhausted = len(objects) + len(prefixes) < ask
            row_of = {o.path: _row_path(o.path) for o in objects}
            row_of.update((p, p.rstrip("/")) for p in prefixes)
            known = (
                await run_blocking(self.view.store.get_many, set(row_of.values())) if row_of else {}
            )

            gone = {n for n, row in row_of.items() if (e := known.get(row)) and e.deleted}
            objects = [o for o in objects if o.path not in gone]
            prefixes = [p for p in prefixes if p not in gone]
            if exhausted or len(objects) + len(prefixes) >= limit:
                return objects, prefixes
            ask *= 10  # tombstones filled the page: look further

    async def _list(self, prefix: str, delimiter: str | None) -> AsyncIterator[ListPage]:
        bucket, key = split(prefix)
        if key and P.strip_protocol(prefix) != prefix.rstrip("/"):
            # a prefix the table cannot name (a ``//`` run): the store's listing as it is
            async for page in self.inner.list(prefix, delimiter=delimiter):
                yield page
            return
        directory = f"{bucket}/{key}".rstrip("/")
        in_scope: Callable[[str], bool] | None = None
        if key and not key.endswith("/"):  # a name prefix: its parent's rows that match it
            directory = directory.rpartition("/")[0]
            in_scope = lambda name: name.startswith(prefix)  # noqa: E731
        found = _Found(directory)
        if delimiter is None:
            infos = await self._find(prefix, directory, in_scope, found)
        else:
            infos = await self._ls(prefix, delimiter, directory, in_scope, found)
        objects, prefixes = found.shown(infos, recursive=delimiter is None)
        yield ListPage(objects, prefixes)

    async def _probe(self, prefix: str, delimiter: str | None, found: _Found) -> _Infos:
        """The store's listing as infos (what the view checks): files, and directories
        from common prefixes and folder markers (the markers kept aside in ``found``)."""
        infos: _Infos = []
        found.clear()
        async for page in self.inner.list(prefix, delimiter=delimiter):
            for meta in page.objects:
                if tracked(meta.path):
                    infos.append(_info(meta))
                    continue
                as_dir = found.marker(meta)
                if as_dir is not None:
                    infos.append({"name": as_dir, "size": 0, "type": "directory"})
            for common in page.prefixes:
                name = common.rstrip("/")
                found.common.add(name)
                infos.append({"name": name, "size": 0, "type": "directory"})
        return infos

    async def _ls(
        self,
        prefix: str,
        delimiter: str,
        directory: str,
        in_scope: Callable[[str], bool] | None,
        found: _Found,
    ) -> _Infos:
        if delimiter != "/":
            raise ValueError(f"listing {prefix!r}: the consistent view lists by '/' or by nothing")

        def probe() -> Awaitable[_Infos]:
            return self._probe(prefix, delimiter, found)

        # markers read as the directories they stand for, so the view may remember a
        # whole directory's listing (fast_list: the next one from the table alone)
        found.clear()
        return await self.view.ls(directory, probe, in_scope=in_scope)

    async def _find(
        self,
        prefix: str,
        directory: str,
        in_scope: Callable[[str], bool] | None,
        found: _Found,
    ) -> _Infos:
        async def probe() -> dict[str, dict[str, Any]]:
            return {i["name"]: i for i in await self._probe(prefix, None, found)}

        found.clear()
        shown = await self.view.find(directory, probe, in_scope or (lambda name: True), True)
        return list(shown.values())


class _Found:
    """What a listing met besides the files the view checks: folder markers, by the
    directory each stands for, handed on only while the view keeps that directory (a
    marker of a directory deleted in the table is a deletion the store lingers on); the
    listed directory's own marker and paths the table cannot name, handed on as they are."""

    def __init__(self, directory: str):
        self.directory = directory
        self.clear()

    def clear(self) -> None:
        self.markers: dict[str, _Metas] = {}
        self.passed: _Metas = []
        self.common: set[str] = set()

    def marker(self, meta: ObjectMeta) -> str | None:
        """Keep the untracked ``meta``; the directory it stands for (None: not one to check)."""
        as_dir = _row_path(meta.path)
        if as_dir == meta.path or as_dir == self.directory:
            self.passed.append(meta)
            return None
        self.markers.setdefault(as_dir, []).append(meta)
        return as_dir

    def shown(self, infos: _Infos, *, recursive: bool) -> tuple[_Metas, _Prefixes]:
        """The page of what the view answered: its files; a directory as its markers,
        else as a prefix: from the store's common prefixes, or the table alone (without a
        delimiter, only one no listed file lies below)."""
        objects = [_meta(i) for i in infos if i["type"] == "file"]
        dirs = sorted(P.strip_protocol(i["name"]) for i in infos if i["type"] != "file")
        implied: set[str] = set()
        if recursive:
            for meta in objects:
                parent = meta.path.rpartition("/")[0]
                while parent and parent not in implied:
                    implied.add(parent)
                    parent = parent.rpartition("/")[0]
        prefixes: _Prefixes = []
        for name in dirs:
            markers = self.markers.get(name)
            if markers:
                objects.extend(markers)
            if name in self.common or not (markers or name in implied):
                prefixes.append(name + "/")
        objects.extend(self.passed)
        objects.sort(key=lambda m: m.path)
        return objects, prefixes

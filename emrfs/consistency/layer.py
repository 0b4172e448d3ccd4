"""The consistent view as a layer of the stack: :class:`ConsistentStore`.

A :class:`~emrfs.store.protocol.WrapperStore` over the store below it (the
transport, or the CSE layer); it knows nothing above.  The checks and the
bookkeeping are :class:`~emrfs.consistency.view.ConsistentView`'s; this module
only speaks the object-store protocol to it:

- ``put``, a writer's ``complete``, ``copy``, ``complete_staged``: once the store
  below confirms, the file is recorded (its ETag, size and version as that store
  reports them);
- ``delete``: once the store below confirms, tombstones for the paths;
- ``head``: ``ConsistentView.info``; a file the view records and the store does not
  show yet (or shows at another ETag, or shows though deleted) is retried by the
  policy, then :class:`~emrfs.errors.ConsistencyError`;
- ``list``: ``ConsistentView.ls`` (with a delimiter) or ``find`` (without), the
  store's listing checked against the rows;
- ``get``, ``get_range``, ``get_stream``: pinned to the ETag the view recorded, a
  stale copy (or one not visible yet) retried by the policy; a path the view
  tombstoned is not found.

Folder markers (``dir/``, ``dir_$folder$``) pass through unrecorded and unchecked:
they stand for directories, whose rows the namespace above records.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from .. import paths as P
from ..blocking import run_blocking
from ..errors import not_found
from ..store.protocol import (
    DeleteResult,
    ListPage,
    ObjectMeta,
    ObjectStore,
    ObjectWriter,
    StagedUpload,
    WrapperStore,
    cut_listing,
    split,
)
from .store import Entry
from .view import ConsistentView

__all__ = ["ConsistentStore"]

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


def _mtime_ms(meta: ObjectMeta) -> int:
    moment = meta.last_modified
    return int((moment.timestamp() if moment else time.time()) * 1000)


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


class _RecordingWriter(ObjectWriter):
    """A write in parts whose completion is recorded once the store below confirms it."""

    def __init__(self, inner: ObjectWriter, record: Callable[[ObjectMeta], Awaitable[None]]):
        self.inner = inner
        self.path = inner.path
        self._record = record

    async def write_part(self, number: int, data: bytes) -> None:
        await self.inner.write_part(number, data)

    async def copy_part(self, number: int, src: str, start: int, end: int) -> None:
        await self.inner.copy_part(number, src, start, end)

    async def complete(self) -> ObjectMeta:
        meta = await self.inner.complete()
        await self._record(meta)
        return meta

    async def abort(self) -> None:
        await self.inner.abort()

    async def stage(self) -> StagedUpload:
        # not published yet: recorded when complete_staged publishes it
        return await self.inner.stage()


class ConsistentStore(WrapperStore):
    """The consistent view over ``inner``: writes recorded after ``inner`` confirms them,
    heads, listings and reads checked against ``view``'s rows (see the module doc)."""

    def __init__(self, inner: ObjectStore, view: ConsistentView):
        super().__init__(inner)
        self.view = view

    @classmethod
    def from_options(cls, inner: ObjectStore, options: Any, **kwargs: Any) -> ConsistentStore:
        """The layer ``options.consistency`` describes (its DynamoDB table unless
        ``store=`` names a metadata store; other ``kwargs`` go to the view)."""
        return cls(inner, ConsistentView.from_options(options, **kwargs))

    # --- writes: recorded after the store below confirms ---------------------------------

    async def _record(self, meta: ObjectMeta) -> None:
        if tracked(meta.path):
            await self.view.record_file(
                meta.path, meta.size, meta.etag, meta.version_id, _mtime_ms(meta)
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
        meta = await self.inner.put(
            path, data, if_none_match=if_none_match, metadata=metadata, content_type=content_type
        )
        await self._record(meta)
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
        return _RecordingWriter(inner, self._record)

    async def complete_staged(self, staged: StagedUpload) -> ObjectMeta:
        meta = await self.inner.complete_staged(staged)
        await self._record(meta)
        return meta

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
    ) -> ObjectMeta:
        meta = await self.inner.copy(src, dst, metadata=metadata, source_size=source_size)
        await self._record(meta)
        return meta

    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        done = await self.inner.delete(paths)
        doomed = [p for p in done.deleted if tracked(p)]  # exactly what S3 confirmed
        if doomed:
            await self.view.record_delete(doomed)
        return done

    # --- checked reads -------------------------------------------------------------------

    async def head(self, path: str) -> ObjectMeta:
        return await self.checked_head(path, lambda: self.inner.head(path))

    async def checked_head(
        self, path: str, below: Callable[[], Awaitable[ObjectMeta]]
    ) -> ObjectMeta:
        """:meth:`head`, with ``below()`` asked (again at each retry) what the store below
        holds at ``path``: for a caller whose one request there brings more than a HEAD
        (a plaintext file's tail with its status)."""
        if not tracked(path):
            return await below()

        async def probe() -> dict[str, Any] | None:
            try:
                return _info(await below())
            except FileNotFoundError:
                return None

        found = await self.view.info(path, probe)
        if found is None or found.get("type") != "file":
            # nothing, or a directory the view records (no object): the protocol's not found
            raise not_found(path)
        return _meta(found)

    async def _pin(self, path: str, if_match: str | None) -> str | None:
        """The version a read of ``path`` is pinned to: the caller's (a version it took from
        a checked status: no table lookup; a stale copy is still retried, by ``read``),
        else the one the view recorded (None: no file recorded; a tombstone: not found)."""
        if if_match is not None or not tracked(path):
            return if_match
        entry: Entry | None = await run_blocking(self.view.store.get, path)
        if entry is not None and entry.deleted:
            raise not_found(path)
        if entry is None or entry.is_dir or not entry.etag:
            return None
        return f'"{entry.etag}"'

    async def get_range(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> bytes:
        pin = await self._pin(path, if_match)
        if pin is None:
            return await self.inner.get_range(path, start, end)

        def fetch(version: str | None) -> Callable[[], Awaitable[bytes]]:
            return lambda: self.inner.get_range(path, start, end, if_match=version)

        # past the policy (lenient) only a whole read may take what S3 serves: a range of
        # another version could be stitched to ranges of the recorded one
        whole = start == 0 and end is None
        return await self.view.read(path, pin, fetch(pin), fetch(None) if whole else None)

    async def get(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> tuple[ObjectMeta, bytes]:
        # one GET pinned as get_range is (no checked HEAD first: the pin is the check)
        pin = await self._pin(path, if_match)
        if pin is None:
            return await self.inner.get(path, start, end)

        def fetch(version: str | None) -> Callable[[], Awaitable[tuple[ObjectMeta, bytes]]]:
            return lambda: self.inner.get(path, start, end, if_match=version)

        whole = start == 0 and end is None  # (as get_range: a range keeps its pin)
        return await self.view.read(path, pin, fetch(pin), fetch(None) if whole else None)

    async def get_stream(
        self,
        path: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 8 * 1024 * 1024,
    ) -> AsyncIterator[bytes]:
        pin = await self._pin(path, if_match)
        if pin is None:
            async for chunk in self.inner.get_stream(path, start, end, chunk_size=chunk_size):
                yield chunk
            return

        def opener(version: str | None) -> Callable[[], Awaitable[_Opened]]:
            async def open_stream() -> _Opened:
                # the GET's answer (a stale copy, nothing yet) comes with its first chunk
                stream = self.inner.get_stream(
                    path, start, end, if_match=version, chunk_size=chunk_size
                )
                try:
                    return _Opened(stream, await anext(stream))
                except StopAsyncIteration:
                    return _Opened(stream, None)

            return open_stream

        opened = await self.view.read(path, pin, opener(pin), opener(None))
        if opened.first is None:
            return
        yield opened.first
        async for chunk in opened.stream:
            yield chunk

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


class _Opened:
    """A stream whose GET was answered, and its first chunk (None: it was empty)."""

    def __init__(self, stream: AsyncIterator[bytes], first: bytes | None):
        self.stream = stream
        self.first = first

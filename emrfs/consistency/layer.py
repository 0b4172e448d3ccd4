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

The listing half (``list``) is :class:`~emrfs.consistency.layer_list.ConsistentListing`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from ..blocking import run_blocking
from ..errors import not_found
from ..store.protocol import (
    DeleteResult,
    ObjectMeta,
    ObjectStore,
    ObjectWriter,
    StagedUpload,
)
from .batching import Ticket
from .layer_list import ConsistentListing, _info, _meta, tracked
from .store import Entry
from .view import ConsistentView

__all__ = ["ConsistentStore", "tracked"]


def _mtime_ms(meta: ObjectMeta) -> int:
    moment = meta.last_modified
    return int((moment.timestamp() if moment else time.time()) * 1000)


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


class ConsistentStore(ConsistentListing):
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

    async def _record(self, meta: ObjectMeta, ticket: Ticket | None = None) -> None:
        if tracked(meta.path):
            await self.view.record_file(
                meta.path, meta.size, meta.etag, meta.version_id, _mtime_ms(meta), ticket=ticket
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
        put = self.inner.put(
            path, data, if_none_match=if_none_match, metadata=metadata, content_type=content_type
        )
        if not tracked(path):
            return await put
        # the ticket: rows of PUTs under way share a metadata request (batching.py)
        with self.view.expect_row() as ticket:
            meta = await put
            await self._record(meta, ticket)
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


class _Opened:
    """A stream whose GET was answered, and its first chunk (None: it was empty)."""

    def __init__(self, stream: AsyncIterator[bytes], first: bytes | None):
        self.stream = stream
        self.first = first

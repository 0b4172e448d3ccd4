"""One way to call any fsspec filesystem from the gateway's event loop.

An :class:`~fsspec.asyn.AsyncFileSystem` is driven through its ``_verb``
coroutines on the loop it belongs to; a blocking filesystem (local, memory,
``DirFileSystem``...) runs in worker threads.  File objects are always
blocking, so writers run in threads whatever the filesystem.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator
from typing import Any

from fsspec.asyn import AsyncFileSystem
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

logger = logging.getLogger("emrfs.gateway")

__all__ = ["Backend", "Writer"]

_END = object()


class Backend:
    """The filesystem the gateway serves, with awaitable verbs.

    ``await backend.call("info", path)`` runs ``fs._info(path)`` on the
    filesystem's own loop when the filesystem is async and implements it, and
    ``fs.info(path)`` in a worker thread otherwise.
    """

    def __init__(self, fs: AbstractFileSystem):
        self.fs = fs
        self.is_async = isinstance(fs, AsyncFileSystem) and fs.async_impl
        if isinstance(fs, DirFileSystem):  # async class, but only as async as what it wraps
            self.is_async = fs.fs.async_impl
        # the filesystem's streaming ranged read (emrfs's ``_cat_stream``), if it has one
        self._streamer = getattr(fs, "_cat_stream", None) if self.is_async else None

    async def call(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            method = getattr(self.fs, "_" + verb, None)
            if method is not None and inspect.iscoroutinefunction(method):
                try:
                    return await self._on_fs_loop(method(*args, **kwargs))
                except NotImplementedError:
                    pass  # the base class stub: fall back to the blocking verb
        return await asyncio.to_thread(getattr(self.fs, verb), *args, **kwargs)

    async def _on_fs_loop(self, coro):
        loop = getattr(self.fs, "_loop", None)
        if loop is None or loop is asyncio.get_running_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    async def thread(self, func, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(func, *args, **kwargs)

    # --- verbs with the shapes the ops need -------------------------------------

    async def info(self, path: str) -> dict:
        return await self.call("info", path)

    async def exists(self, path: str) -> bool:
        try:
            await self.info(path)
        except FileNotFoundError:
            return False
        return True

    async def ls(self, path: str) -> list[dict]:
        return await self.call("ls", path, detail=True)

    async def read(self, path: str, start: int, end: int) -> bytes:
        return await self.call("cat_file", path, start=start, end=end)

    def stream(
        self, path: str, start: int, end: int, *, etag: str | None = None, piece_size: int
    ) -> AsyncIterator[bytes] | None:
        """``[start, end)`` of ``path`` from one streaming read, in pieces of about
        ``piece_size``, or ``None`` when the filesystem has no such read for this path
        (then :meth:`read` ranges).  The next piece is fetched while the caller
        handles this one; closing the iterator (or cancelling its consumer) stops it."""
        if self._streamer is None:
            return None
        source = self._streamer(path, start, end, etag=etag, piece_size=piece_size)
        return None if source is None else self._relay(source)

    async def _relay(self, source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Iterate ``source`` (which lives on the filesystem's loop) from this loop,
        one piece ahead; on exit, it is closed on its own loop."""

        async def pull():
            async def step():  # made here, so a pull cancelled before it runs leaves no coroutine
                return await anext(source, _END)

            return await self._on_fs_loop(step())

        async def close():
            while getattr(source, "ag_running", False):  # a cancelled pull still unwinding
                await asyncio.sleep(0)
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

        ahead = asyncio.ensure_future(pull())
        try:
            while (piece := await ahead) is not _END:
                ahead = asyncio.ensure_future(pull())
                yield piece
        finally:
            ahead.cancel()
            await asyncio.shield(self._on_fs_loop(close()))

    async def open_writer(self, path: str) -> Writer:
        return await asyncio.to_thread(Writer, self.fs, path)


class Writer:
    """A file being written that either commits whole or leaves nothing behind.

    Opened with ``autocommit=False`` where the filesystem supports it (S3-style
    multipart uploads complete, local temp files move, only on :meth:`commit`);
    :meth:`abort` discards what was written.  Missing parent directories are
    created, as HDFS creates them.  Blocking: call from a worker thread.
    """

    def __init__(self, fs: AbstractFileSystem, path: str):
        self.fs = fs
        self.path = path
        self.bytes_written = 0
        try:
            self._file, self._staged = self._open(autocommit=False), True
        except (TypeError, NotImplementedError, RuntimeError):
            self._file, self._staged = self._open(autocommit=True), False

    def _open(self, autocommit: bool):
        kwargs = {} if autocommit else {"autocommit": False}
        try:
            f = self.fs.open(self.path, "wb", **kwargs)
        except FileNotFoundError:
            self.fs.makedirs(self.fs._parent(self.path), exist_ok=True)
            f = self.fs.open(self.path, "wb", **kwargs)
        if not autocommit:
            _untrack(self.fs, f)
        return f

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self.bytes_written += len(data)

    def writelines(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.write(piece)

    def commit(self) -> None:
        self._file.close()
        if self._staged:
            try:
                self._file.commit()
            except FileNotFoundError:  # staged elsewhere; the parent is made on commit
                self.fs.makedirs(self.fs._parent(self.path), exist_ok=True)
                self._file.commit()

    def abort(self) -> None:
        f = self._file
        try:
            f.discard()
        except Exception as exc:  # noqa: BLE001 - best effort on a failure path
            logger.warning("could not discard partial write of %s: %r", self.path, exc)
        if isinstance(f, AbstractBufferedFile):
            f.closed = True  # close() would flush and complete the upload
        else:
            try:
                f.close()
            except Exception:  # noqa: BLE001
                pass
        if not self._staged:
            try:
                self.fs.rm(self.path)
            except Exception:  # noqa: BLE001 - nothing may have been created
                pass


def _untrack(fs: AbstractFileSystem, f: Any) -> None:
    """Take ``f`` out of the filesystem's transaction (and the one of the filesystem a
    ``DirFileSystem`` wraps).  fsspec files each ``autocommit=False`` file there for a
    transaction to commit; a Writer commits its own, and nothing would ever empty the
    list: every file written would keep its buffer (the gateway's memory grew with
    every byte written).  A transaction the caller started keeps its files."""
    while fs is not None:
        transaction = getattr(fs, "_transaction", None)
        files = getattr(transaction, "files", None)
        if files is not None and not getattr(fs, "_intrans", False):
            for index, tracked in enumerate(files):
                if tracked is f:  # by identity: fsspec files compare unequal in write mode
                    del files[index]
                    break
        fs = fs.fs if isinstance(fs, DirFileSystem) else None

"""APPEND as open upload sessions (multipart-based append).

fsspec's ``webhdfs`` client writes every file as CREATE (empty) then one
APPEND per buffered block, and Hadoop's ``appendToFile`` appends whole
streams.  Rewriting the object on every APPEND would be quadratic, so the
gateway keeps an *append session* per path: an open writer (an S3 multipart
upload for emrfs) that successive APPENDs stream into.

* The first APPEND of a session copies the file's existing bytes into the new
  writer (one rewrite), later ones only add their own bytes.
* Each APPEND body is spooled (memory up to ``spool_bytes``, then local disk,
  sealed under a key that lives only in this process: never plaintext on disk)
  before it reaches the writer, so a client that drops mid-body changes nothing.
* A session commits (the upload completes and the file shows the new bytes)
  when any other request through this gateway touches the path, an ancestor
  or a descendant; after ``idle_seconds`` without an APPEND; and at shutdown.
  Other gateways see the appended bytes once it has committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from .backend import Backend, Writer

if TYPE_CHECKING:  # imported when a body first spills to disk
    from emrfs.encrypted_io import SealedSpool

logger = logging.getLogger("emrfs.gateway")

__all__ = ["AppendSessions"]

COPY_CHUNK = 8 * 1024 * 1024


def _related(a: str, b: str) -> bool:
    """``a`` and ``b`` are the same path or one lies below the other."""
    a, b = a.strip("/"), b.strip("/")
    return not a or not b or a == b or a.startswith(b + "/") or b.startswith(a + "/")


class _Session:
    def __init__(self, writer: Writer):
        self.writer = writer
        self.lock = asyncio.Lock()
        self.last_used = time.monotonic()
        self.timer: asyncio.TimerHandle | None = None


class AppendSessions:
    """Open append sessions of one gateway, keyed by filesystem path."""

    def __init__(
        self, backend: Backend, *, idle_seconds: float = 5.0, spool_bytes: int = 8 * 1024 * 1024
    ):
        self.backend = backend
        self.idle_seconds = idle_seconds
        self.spool_bytes = spool_bytes
        self._sessions: dict[str, _Session] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    def __contains__(self, path: str) -> bool:
        return path in self._sessions

    async def append(self, path: str, body: AsyncIterator[bytes]) -> int:
        """Append the whole ``body`` to ``path``; returns the bytes appended."""
        spool = await self._spool(body)
        try:
            while True:
                session = await self._session(path)
                async with session.lock:
                    if self._sessions.get(path) is not session:
                        continue  # it committed while we waited: open a new one
                    try:
                        count = await self.backend.thread(_copy_spool, spool, session.writer)
                    except BaseException:
                        self._sessions.pop(path, None)
                        await self.backend.thread(session.writer.abort)
                        raise
                    session.last_used = time.monotonic()
                    self._arm(path, session)
                    return count
        finally:
            spool.close()

    async def _spool(self, body: AsyncIterator[bytes]) -> BodySpool:
        spool = BodySpool(self.spool_bytes)
        try:
            async for chunk in body:
                spool.write(chunk)
        except BaseException:
            spool.close()
            raise
        return spool

    async def _session(self, path: str) -> _Session:
        session = self._sessions.get(path)
        if session is not None:
            return session
        lock = self._opening.setdefault(path, asyncio.Lock())
        async with lock:
            session = self._sessions.get(path)
            if session is None:
                info = await self.backend.info(path)
                if info.get("type") == "directory":
                    raise IsADirectoryError(21, "cannot append to a directory", "/" + path)
                writer = await self.backend.open_writer(path)
                try:
                    await self._copy_existing(path, int(info.get("size") or 0), writer)
                except BaseException:
                    await self.backend.thread(writer.abort)
                    raise
                session = self._sessions[path] = _Session(writer)
        self._opening.pop(path, None)
        return session

    async def _copy_existing(self, path: str, size: int, writer: Writer) -> None:
        pos = 0
        while pos < size:
            data = await self.backend.read(path, pos, min(pos + COPY_CHUNK, size))
            if not data:
                raise OSError(
                    5, f"file shrank while appending (read {pos} of {size} bytes)", "/" + path
                )
            await self.backend.thread(writer.write, data)
            pos += len(data)

    def _arm(self, path: str, session: _Session) -> None:
        if session.timer is not None:
            session.timer.cancel()
        loop = asyncio.get_running_loop()
        session.timer = loop.call_later(
            self.idle_seconds, lambda: loop.create_task(self._commit_idle(path, session))
        )

    async def _commit_idle(self, path: str, session: _Session) -> None:
        if self._sessions.get(path) is session:
            await self._commit(path)

    async def _commit(self, path: str) -> None:
        session = self._sessions.get(path)
        if session is None:
            return
        async with session.lock:
            if self._sessions.get(path) is not session:
                return
            del self._sessions[path]
            if session.timer is not None:
                session.timer.cancel()
            try:
                await self.backend.thread(session.writer.commit)
            except Exception:
                logger.exception(
                    "committing appended data to /%s failed; the appended bytes are lost", path
                )
                await self.backend.thread(session.writer.abort)
                raise

    async def settle(self, *paths: str) -> None:
        """Commit every session that ``paths`` (fs paths) overlap, before they are used."""
        if not self._sessions:
            return
        for open_path in [p for p in self._sessions if any(_related(p, q) for q in paths)]:
            await self._commit(open_path)

    async def close(self) -> None:
        """Commit everything (server shutdown)."""
        for path in list(self._sessions):
            try:
                await self._commit(path)
            except Exception:  # noqa: BLE001 - logged in _commit; keep closing the rest
                pass


class BodySpool:
    """One APPEND body: in memory up to ``memory_bytes``, then on local disk sealed
    (:class:`~emrfs.encrypted_io.SealedSpool`: an unlinked file under a per-process
    key), whatever the filesystem's encryption: a body may be a CSE file's plaintext."""

    def __init__(self, memory_bytes: int):
        self.memory_bytes = memory_bytes
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._sealed: SealedSpool | None = None

    def write(self, chunk: bytes) -> None:
        if self._sealed is None and self._held_bytes + len(chunk) <= self.memory_bytes:
            self._held.append(bytes(chunk))
            self._held_bytes += len(chunk)
            return
        if self._sealed is None:
            from emrfs.encrypted_io import SealedSpool  # lazy: only large bodies need it

            self._sealed = SealedSpool("gateway-append")
            for held in self._held:
                self._sealed.write(held)
            self._held, self._held_bytes = [], 0
        self._sealed.write(chunk)

    def chunks(self, size: int) -> Iterator[bytes]:
        """The body again, from the start, in pieces of at most ``size`` bytes."""
        if self._sealed is None:
            yield from self._held
            return
        if self._sealed.size is None:
            self._sealed.seal()
        total = self._sealed.size or 0
        for start in range(0, total, size):
            yield self._sealed.read(start, min(total, start + size))

    def close(self) -> None:
        self._held = []
        if self._sealed is not None:
            self._sealed.close()


def _copy_spool(spool: BodySpool, writer: Writer) -> int:
    count = 0
    for chunk in spool.chunks(COPY_CHUNK):
        writer.write(chunk)
        count += len(chunk)
    return count

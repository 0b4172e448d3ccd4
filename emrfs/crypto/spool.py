"""Verified plaintext on local disk, sealed: :class:`SealedSpool` and its LRU, :class:`Spools`.

A CSE path's bytes never reach local disk unsealed.  An AWS-format object
(one GCM stream) cannot be read by range with its tag checked, so it is read
whole once, verified, and kept here for later ranges: an anonymous temp file
(unlinked at creation) holding the emrfs segmented format under a key that
lives only in this process's memory (fresh after ``fork``).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from ..errors import EmrfsError
from . import segmented

__all__ = ["SealedSpool", "Spools", "SPOOL_SEGMENT", "SPOOL_OBJECTS"]

#: Plaintext bytes per sealed segment of a spool file.
SPOOL_SEGMENT = 1024 * 1024
#: Objects whose verified plaintext is kept spooled (LRU), per owner.
SPOOL_OBJECTS = 8

_process_key: tuple[int, bytes] | None = None


def _spool_key() -> bytes:
    """A random key per process (fresh after fork): spool files never outlive it."""
    global _process_key
    if _process_key is None or _process_key[0] != os.getpid():
        _process_key = (os.getpid(), os.urandom(32))
    return _process_key[1]


class SealedSpool:
    """Verified plaintext of one object on local disk, sealed with the process key.

    Written in order (:meth:`write`, then :meth:`seal`), read at any offset
    (:meth:`read`); the file is anonymous (unlinked at creation), so nothing
    is left behind, and its content is the emrfs segmented format under a key
    that lives only in this process's memory.
    """

    def __init__(self, path: str, segment_size: int = SPOOL_SEGMENT):
        self.path = path
        self._key = segmented.SegmentedKey.new(_spool_key(), segment_size, path=path)
        self._encryptor = self._key.encryptor()
        # held for the spool's life; close() closes it
        self._file = tempfile.TemporaryFile(prefix="emrfs-spool-")  # noqa: SIM115
        self._stored: int | None = None

    @property
    def size(self) -> int | None:
        """Plaintext length once sealed."""
        if self._stored is None:
            return None
        return segmented.plaintext_length(self._stored, self._key.segment_size, self.path)

    def write(self, plain: bytes | bytearray | memoryview) -> None:
        self._file.write(self._encryptor.update(plain))

    def seal(self) -> None:
        self._file.write(self._encryptor.finalize())
        self._file.flush()
        self._stored = self._file.tell()

    def read(self, start: int, end: int) -> bytes:
        if self._stored is None:
            raise EmrfsError(f"the spool of {self.path!r} is not sealed", self.path)
        plan = segmented.plan(start, end, self._stored, self._key.segment_size, self.path)
        if plan.length <= 0:
            return b""
        data = os.pread(self._file.fileno(), plan.fetch_length, plan.fetch_start)
        return self._key.decrypt_plan(plan, data)

    def close(self) -> None:
        self._file.close()


class Spools:
    """The last :data:`SPOOL_OBJECTS` spools, by ``(path, etag)``; each filled once.

    ``fill`` writes the verified plaintext into a fresh spool (it is sealed here
    when ``fill`` returns; a fill that raises leaves nothing).  Fork-aware: a
    child starts empty (the parent's files and locks stay with the parent).
    """

    def __init__(self, capacity: int = SPOOL_OBJECTS):
        self.capacity = capacity
        self._spools: OrderedDict[tuple[str, str | None], SealedSpool] = OrderedDict()
        self._locks: dict[tuple[str, str | None], asyncio.Lock] = {}
        self._pid = os.getpid()

    async def get(
        self, path: str, etag: str | None, fill: Callable[[SealedSpool], Awaitable[None]]
    ) -> SealedSpool:
        if self._pid != os.getpid():
            self._spools, self._locks, self._pid = OrderedDict(), {}, os.getpid()
        ident = (path, etag)
        lock = self._locks.setdefault(ident, asyncio.Lock())
        async with lock:
            spool = self._spools.get(ident)
            if spool is not None:
                self._spools.move_to_end(ident)
                return spool
            spool = SealedSpool(path)
            try:
                await fill(spool)
                spool.seal()
            except BaseException:
                spool.close()
                raise
            self._spools[ident] = spool
            while len(self._spools) > self.capacity:
                old_ident, old = self._spools.popitem(last=False)
                old.close()
                self._locks.pop(old_ident, None)
            return spool

    def close(self) -> None:
        for spool in self._spools.values():
            spool.close()
        self._spools.clear()
        self._locks.clear()

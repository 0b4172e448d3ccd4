"""Writing blocks: room first, then a temp file per copy, then an atomic rename.

A mixin of :class:`~emrfs.cache.store.BlockStore`.  A block is written to
``tmp/`` under an exclusive ``flock`` (so a crashed writer's file is known
abandoned) and renamed into place: readers see a whole block or none.  Block
writes run on the store's writer threads (:meth:`BlockWriterMixin.submit`),
off the event loop.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import fcntl
import hashlib
import os
import threading
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..crypto.atrest import OVERHEAD as _OVERHEAD, BlockSealer, CacheKey
from .blockfile import (
    CHUNK_SIZE,
    WRITE_ALGO,
    BlockId,
    checksum,
    header_bytes,
    header_size,
    rechunk,
    writev_all,
)
from .diskutil import makedirs_private, unlink_path
from .stats import DirStats


class BlockWriterMixin:
    """``put`` and the writer threads of :class:`~emrfs.cache.store.BlockStore`."""

    directories: list[str]
    encrypt_all: bool
    stats: list[DirStats]
    pending_writes: int
    max_pending_writes: int
    _lock: threading.RLock
    _used: list[int | None]
    _sealer: BlockSealer | None
    _own_key: CacheKey | None
    _writer: concurrent.futures.ThreadPoolExecutor | None
    _writer_pid: int

    if TYPE_CHECKING:  # provided by BlockStore and CapacityMixin

        def placements(self, bid: BlockId, copies: int = 1) -> list[int]: ...
        def block_path(self, bid: BlockId, dir_index: int) -> str: ...
        def _forget(self, path: str) -> None: ...
        def _make_room(self, d: int, size: int, evictable: bool) -> bool: ...

    def put(
        self,
        bid: BlockId,
        data,
        *,
        length: int | None = None,
        sealed: bool = False,
        copies: int = 1,
        evictable: bool = True,
        where: str | None = None,
        sealer=None,
    ) -> bool:
        """Store block ``bid`` atomically in ``copies`` directories.

        ``data`` is bytes-like, or an iterable of bytes-like pieces with their
        total ``length`` given.  Returns False when a read-cache block was not
        stored (no room); raises ``OSError(ENOSPC)`` for an unevictable
        (ephemeral) block that does not fit.
        """
        where = where or bid.relpath
        if isinstance(data, (bytes, bytearray, memoryview)):
            length = len(data)
            pieces: Iterable = (data,)
        elif length is None:
            raise ValueError("put(): give length= with an iterable of pieces")
        else:
            pieces = data
        sealed = sealed or self.encrypt_all
        targets = self.placements(bid, copies)
        size = (
            header_size(bid, length)
            + length
            + (_OVERHEAD * (-(-length // CHUNK_SIZE)) if sealed else 0)
        )
        if not self._room_for(targets, size, evictable, where):
            return False
        tmps = self._write_tmp(bid, pieces, length, sealed, targets, where, sealer)
        try:
            for d, (_fd, tmp) in zip(targets, tmps, strict=True):
                self._install(bid, d, tmp, length, size)
        finally:
            for fd, tmp in tmps:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return True

    def _room_for(self, targets: list[int], size: int, evictable: bool, where: str) -> bool:
        """Room for ``size`` bytes made in every target directory; False when a read-cache
        block does not fit, ``OSError(ENOSPC)`` naming ``where`` for an unevictable one."""
        for d in targets:
            if not self._make_room(d, size, evictable):
                if not evictable:
                    raise OSError(
                        errno.ENOSPC,
                        f"no room in cache directory {self.directories[d]!r} for "
                        f"{where!r} (capacity or free-space floor reached); raise "
                        "cache.capacity_bytes or free disk space",
                        where,
                    )
                return False
        return True

    def _install(self, bid: BlockId, d: int, tmp: str, length: int, size: int) -> None:
        """The written temp file ``tmp`` renamed into place as ``bid``'s copy in directory
        ``d``, and counted."""
        final = self.block_path(bid, d)
        makedirs_private(os.path.dirname(final))
        self._forget(final)
        try:
            os.replace(tmp, final)
        except (IsADirectoryError, NotADirectoryError, FileExistsError):
            unlink_path(final)  # something else stands there (a directory): it goes
            os.replace(tmp, final)
        self.stats[d].blocks_written += 1
        self.stats[d].bytes_written += length
        used = self._used[d]
        if used is not None:
            self._used[d] = used + size

    def _write_tmp(self, bid, pieces, length, sealed, targets, where, sealer=None):
        tmps = []
        try:
            for d in targets:
                tmp_dir = os.path.join(self.directories[d], "tmp")
                tmp = os.path.join(tmp_dir, f"{os.getpid()}-{uuid.uuid4().hex}.part")
                try:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                except FileNotFoundError:  # the directory was lost: recreate it
                    makedirs_private(tmp_dir)
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                tmps.append((fd, tmp))
                fcntl.flock(fd, fcntl.LOCK_EX)  # marks the temp file as being written
            hsize = header_size(bid, length)
            for fd, _ in tmps:
                os.lseek(fd, hsize, os.SEEK_SET)
            sums: list[int] = []
            sealer = (sealer or self._get_sealer()) if sealed else None
            written = 0
            batch: list = []
            # One writev per input piece: few GIL hand-overs, so a busy writer thread
            # does not stall the event loop's own I/O (the GIL convoy effect).
            for chunk in rechunk(pieces, CHUNK_SIZE):
                if chunk is None:
                    for fd, _ in tmps:
                        writev_all(fd, batch)
                    batch = []
                    continue
                if sealed:
                    c = len(sums)
                    batch.append(sealer.seal(chunk, bid.key + b"#%d" % c))
                    sums.append(0)
                else:
                    batch.append(chunk)
                    sums.append(checksum(WRITE_ALGO, chunk))
                written += len(chunk)
            for fd, _ in tmps:
                writev_all(fd, batch)
            if written != length:
                raise ValueError(f"block for {where!r}: got {written} bytes, expected {length}")
            header = header_bytes(bid, sealed, WRITE_ALGO, length, sums)
            for fd, _ in tmps:
                os.pwrite(fd, header, 0)
            return tmps
        except BaseException:
            for fd, tmp in tmps:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise

    def submit(self, fn, *args) -> concurrent.futures.Future:
        """Run ``fn(*args)`` on the store's writer threads (block writes off the event loop)."""
        with self._lock:
            if self._writer is None or self._writer_pid != os.getpid():
                self._writer = concurrent.futures.ThreadPoolExecutor(
                    max_workers=2, thread_name_prefix="emrfs-cache-writer"
                )
                self._writer_pid = os.getpid()
                self.pending_writes = 0
            self.pending_writes += 1
            future = self._writer.submit(fn, *args)
        future.add_done_callback(self._write_done)
        return future

    def _write_done(self, _future) -> None:
        with self._lock:
            self.pending_writes -= 1

    def write_backlog_full(self) -> bool:
        """True when queued block writes hold ``max_pending_writes`` or more jobs (a slow disk):
        readers then serve what they fetched without caching it, so memory stays bounded."""
        return self.pending_writes >= self.max_pending_writes

    def _get_sealer(self):
        if self._sealer is None:
            from ..crypto.atrest import BlockSealer, CacheKey

            name = "cache-" + hashlib.sha256("\0".join(self.directories).encode()).hexdigest()[:16]
            self._own_key = CacheKey.shared_memory(name)
            self._sealer = BlockSealer(self._own_key)
        return self._sealer

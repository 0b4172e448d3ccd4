"""On-disk block files: placement, atomic writes, checksums, pins and LRU eviction.

Layout of one cache directory::

    <dir>/c/<h2>/<owner>/<tag>.<index>   read-cache blocks (owner = hash of the path,
                                         tag = hash of the object version)
    <dir>/e/<h2>/<owner>/<tag>.<index>   ephemeral-tier blocks (never evicted)
    <dir>/tmp/                           blocks being written (flock-held by the writer)
    <dir>/stats.json                     hit/miss/eviction counters of all processes

A block file is a header and checksummed (or sealed) chunks (:mod:`.blockfile`).
Every read verifies the chunks it touches (:mod:`.handles`), so a random read
checks only what it returns.  Writing lives in :mod:`.blockwrite`, capacity
and eviction in :mod:`.eviction`; this module places blocks, opens and pins
them, and drops them.

Guarantees, across any number of processes on one machine:

* a block is written to ``tmp/`` and renamed into place: a reader sees a whole
  block or none; a writer killed half-way leaves only a ``tmp/`` file, which
  is never served and is removed once no process holds its lock;
* a block that fails its checksum (or its GCM tag) is deleted and reported as
  a miss, so the caller fetches it again;
* a block a process has open holds a shared ``flock``; eviction takes an
  exclusive non-blocking lock first and skips blocks it cannot lock (pins);
* two processes filling the same block both write whole files; the last
  rename wins and both hold the same bytes.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import fcntl
import hashlib
import logging
import mmap
import os
import shutil
import stat
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from ..errors import IntegrityError
from .blockfile import (  # noqa: F401 - re-exported: emrfs.cache.store is their public path
    CHUNK_SIZE,
    MAGIC,
    SPACES,
    BlockId,
    ObjectIdentity,
    parse_header,
    path_owner,
)
from .blockwrite import BlockWriterMixin
from .diskutil import clean_tmp, makedirs_private, scandir, unlink_path
from .eviction import CapacityMixin
from .handles import BlockHandle, read_range, stored_len
from .stats import DirStats, read_stats_file  # noqa: F401 - read_stats_file: re-exported

log = logging.getLogger("emrfs.cache")

TOUCH_EVERY = 1.0  # seconds between LRU touches of one block by one process


class BlockStore(BlockWriterMixin, CapacityMixin):
    """Blocks on local disk over one or more cache directories.

    Parameters
    ----------
    directories
        Cache directories (created if missing).  Blocks spread over them by a
        hash of the block id; each directory gets ``capacity_bytes / n``.
    capacity_bytes
        Most bytes of read-cache blocks kept; writes past it evict the least
        recently used unpinned blocks down to ``low_water`` of it.
    free_space_floor
        Fraction of each disk kept free; eviction also runs to keep it.
    sealer
        A :class:`~emrfs.crypto.atrest.BlockSealer`; with ``encrypt_all`` every
        block is sealed, otherwise only blocks written with ``sealed=True``.
        Sealed writes without a sealer use a per-boot shared-memory key.
    max_open
        Block files kept open and mapped per process (they stay pinned).
    max_pending_writes
        Block-write jobs queued on the writer threads before readers stop
        caching what they fetch (bounds memory when the disk is slower than
        the network).
    verify
        ``"always"``: every read checks the checksums of the chunks it returns;
        ``"open"``: each process checks a chunk the first time it reads it
        through an open block (faster warm reads; a block corrupted on disk
        while this process keeps it open and mapped is not noticed).
    clock
        ``time.time`` replacement for tests (LRU order uses file mtimes).
    """

    def __init__(
        self,
        directories: Iterable[str],
        *,
        capacity_bytes: int = 10 << 30,
        free_space_floor: float = 0.1,
        sealer=None,
        encrypt_all: bool = False,
        max_open: int = 64,
        low_water: float = 0.9,
        verify: str = "always",
        max_pending_writes: int = 8,
        clock=time.time,
    ):
        dirs = [os.path.abspath(os.path.expanduser(d)) for d in directories]
        if not dirs:
            raise ValueError("BlockStore needs at least one cache directory (cache.directories)")
        if len(set(dirs)) != len(dirs):
            raise ValueError(f"cache.directories lists a directory twice: {dirs}")
        if capacity_bytes <= 0:
            raise ValueError(f"cache.capacity_bytes must be positive, got {capacity_bytes}")
        if not 0 <= free_space_floor < 1:
            raise ValueError(f"cache.free_space_floor must be in [0, 1), got {free_space_floor}")
        if verify not in ("always", "open"):
            raise ValueError(f"cache.verify is {verify!r}; use 'always' or 'open'")
        if encrypt_all and sealer is None:
            raise ValueError("encrypt_all needs a sealer (emrfs.crypto.atrest.BlockSealer)")
        self.directories = dirs
        self.capacity_bytes = capacity_bytes
        self.free_space_floor = free_space_floor
        self.encrypt_all = encrypt_all
        self.low_water = low_water
        self.max_open = max_open
        self.verify = verify
        self._sealer = sealer
        self._own_key = None  # the shared-memory key of CSE blocks, when this store made it
        self._clock = clock
        self._lock = threading.RLock()
        self._handles: OrderedDict[str, BlockHandle] = OrderedDict()
        self._used: list[int | None] = [None] * len(dirs)
        self._first: dict[bytes, int] = {}  # block key -> first directory (memo)
        self._puts = 0
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._writer_pid = -1
        self.pending_writes = 0
        self.max_pending_writes = max_pending_writes
        self.stats = [DirStats(d) for d in dirs]
        self._flushed = [DirStats(d) for d in dirs]
        for d in dirs:
            self._prepare(d)
        self._pid = os.getpid()
        ref = weakref.ref(self)
        atexit.register(_flush_at_exit, ref)
        os.register_at_fork(after_in_child=lambda: _reset_in_child(ref))

    def _after_fork(self) -> None:
        """In a forked child: fresh lock and handles (the parent's may be mid-use)."""
        self._lock = threading.RLock()
        handles, self._handles = self._handles, OrderedDict()
        for h in handles.values():
            with contextlib.suppress(Exception):
                h.close()  # the parent's flock stays: it holds its own descriptor
        self._writer, self.pending_writes = None, 0
        self._pid = os.getpid()
        self.stats = [DirStats(d) for d in self.directories]
        self._flushed = [DirStats(d) for d in self.directories]

    # --- placement --------------------------------------------------------------------

    def _prepare(self, d: str) -> None:
        makedirs_private(os.path.join(d, "tmp"))
        clean_tmp(d)

    def placements(self, bid: BlockId, copies: int = 1) -> list[int]:
        """Directory indices for the ``copies`` replicas of ``bid`` (distinct when possible)."""
        first = self._first.get(bid.key)
        n = len(self.directories)
        if first is None:
            if len(self._first) > 65536:
                self._first.clear()
            first = int.from_bytes(hashlib.blake2b(bid.key, digest_size=8).digest(), "little") % n
            self._first[bid.key] = first
        if copies <= 1:
            return [first]
        return [(first + k) % n for k in range(min(copies, n))]

    def block_path(self, bid: BlockId, dir_index: int) -> str:
        return self.directories[dir_index] + os.sep + bid.relpath

    # --- reading ----------------------------------------------------------------------

    def read(
        self,
        bid: BlockId,
        start: int = 0,
        end: int | None = None,
        *,
        copies: int = 1,
        where: str | None = None,
        count_miss: bool = True,
        sealer=None,
    ) -> bytes | None:
        """Bytes ``[start, end)`` of block ``bid``, or None when it is not cached.

        A block that fails verification is deleted and reported as a miss.
        """
        where = where or bid.relpath
        for d in self.placements(bid, copies):
            handle = self._acquire(bid, d, where)
            if handle is None:
                continue
            try:
                data = self._read_handle(handle, bid, start, end, where, sealer)
            except IntegrityError as exc:
                log.warning("%s; dropping it", exc)
                self.stats[d].corruptions += 1
                self._discard(bid, d, handle)
                continue
            finally:
                self._release(handle)
            self.stats[d].hits += 1
            return data
        if count_miss:
            self.stats[self.placements(bid)[0]].misses += 1
        return None

    def contains(self, bid: BlockId, copies: int = 1) -> bool:
        return any(os.path.isfile(self.block_path(bid, d)) for d in self.placements(bid, copies))

    def length(self, bid: BlockId, copies: int = 1) -> int | None:
        """Stored data length of a block, or None if absent."""
        for d in self.placements(bid, copies):
            handle = self._acquire(bid, d, bid.relpath)
            if handle is not None:
                self._release(handle)
                return handle.header.length
        return None

    def _read_handle(
        self,
        handle: BlockHandle,
        bid: BlockId,
        start: int,
        end: int | None,
        where: str,
        sealer=None,
    ) -> bytes:
        if handle.header.sealed:
            sealer = sealer or self._get_sealer()
        data = read_range(handle, bid, start, end, where, verify=self.verify, sealer=sealer)
        now = self._clock()
        if now - handle.touched >= TOUCH_EVERY:  # LRU: mtime is the last use, across processes
            handle.touched = now
            with contextlib.suppress(OSError):
                os.utime(handle.fd, (now, now))
        return data

    def _acquire(self, bid: BlockId, d: int, where: str) -> BlockHandle | None:
        path = self.block_path(bid, d)
        with self._lock:
            handle = self._handles.get(path)
            if handle is not None:
                self._handles.move_to_end(path)
                handle.refs += 1
                return handle
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            st = os.fstat(fd)
            if st.st_nlink == 0:  # evicted between open and lock
                os.close(fd)
                return None
            if not stat.S_ISREG(st.st_mode):
                raise IntegrityError(f"cache block for {where!r} is not a regular file", where)
            mapped = mmap.mmap(fd, st.st_size, access=mmap.ACCESS_READ) if st.st_size else None
            if mapped is None:
                raise IntegrityError(f"cache block for {where!r} is empty", where)
            try:
                header = parse_header(mapped, bid, where)
                if header.data_offset + stored_len(header) > st.st_size:
                    raise IntegrityError(f"cache block for {where!r} is truncated", where)
            except IntegrityError:
                mapped.close()
                raise
        except IntegrityError as exc:
            os.close(fd)
            log.warning("%s; dropping it", exc)
            self.stats[d].corruptions += 1
            unlink_path(path)
            return None
        except BaseException:
            os.close(fd)
            raise
        handle = BlockHandle(fd, mapped, header, path, d)
        handle.touched = st.st_mtime
        with self._lock:
            other = self._handles.get(path)
            if other is not None:  # another thread opened it meanwhile
                handle.close()
                other.refs += 1
                return other
            handle.refs = 1
            self._handles[path] = handle
            self._trim_handles()
        return handle

    def _release(self, handle: BlockHandle) -> None:
        with self._lock:
            handle.refs -= 1
            if handle.refs <= 0 and self._handles.get(handle.path) is not handle:
                handle.close()
            else:
                self._trim_handles()

    def _trim_handles(self) -> None:
        excess = len(self._handles) - self.max_open
        for path in list(self._handles):
            if excess <= 0:
                break
            h = self._handles[path]
            if h.refs <= 0 and not h.pinned:
                del self._handles[path]
                h.close()
                excess -= 1

    def _forget(self, path: str) -> None:
        with self._lock:
            h = self._handles.pop(path, None)
            if h is not None and h.refs <= 0:
                h.close()

    def _discard(self, bid: BlockId, d: int, handle: BlockHandle) -> None:
        self._forget(handle.path)
        unlink_path(handle.path)

    @contextlib.contextmanager
    def pin(self, bid: BlockId, copies: int = 1) -> Iterator[bool]:
        """Keep ``bid`` from eviction (by any process) inside the block.

        Yields whether it exists.
        """
        handles = [
            h
            for h in (self._acquire(bid, d, bid.relpath) for d in self.placements(bid, copies))
            if h is not None
        ]
        with self._lock:
            for h in handles:
                h.pinned += 1
        try:
            yield bool(handles)
        finally:
            with self._lock:
                for h in handles:
                    h.pinned -= 1
            for h in handles:
                self._release(h)

    # --- invalidation -----------------------------------------------------------------

    def owner_dirs(self, space: str, owner: str) -> list[str]:
        return [os.path.join(d, space, owner[:2], owner) for d in self.directories]

    def drop_owner(self, space: str, owner: str, keep_tag: str | None = None) -> int:
        """Delete blocks of ``owner`` in every directory (all tags but ``keep_tag``)."""
        removed = 0
        prefix = f"{space}/{owner[:2]}/{owner}/"
        with self._lock:
            for path in [p for p in self._handles if prefix in p]:
                if keep_tag is None or not os.path.basename(path).startswith(keep_tag + "."):
                    self._forget(path)
        for odir in self.owner_dirs(space, owner):
            for entry in scandir(odir):
                if keep_tag is not None and entry.name.startswith(keep_tag + "."):
                    continue
                if unlink_path(entry.path):
                    removed += 1
            if keep_tag is None:
                with contextlib.suppress(OSError):
                    os.rmdir(odir)
        if removed:
            self._used = [None] * len(self.directories)
        return removed

    def clear(self, spaces: tuple[str, ...] = SPACES) -> None:
        """Remove every block of ``spaces`` from every directory."""
        with self._lock:
            for path in list(self._handles):
                self._forget(path)
        for d in self.directories:
            for space in spaces:
                shutil.rmtree(os.path.join(d, space), ignore_errors=True)
        self._used = [None] * len(self.directories)
        if "c" in spaces and self._own_key is not None:
            self._own_key.destroy()  # no sealed cache block is left to need it
            self._own_key = self._sealer = None

    # --- housekeeping -----------------------------------------------------------------

    def metrics(self) -> dict[str, dict[str, int]]:
        """In-process counters per directory: hits, misses, evictions, corruptions, writes."""
        return {s.directory: s.counters() for s in self.stats}

    def flush_stats(self) -> None:
        """Add this process's counters since the last flush to each ``stats.json``."""
        if os.getpid() != self._pid:
            return
        for d, (now, before) in enumerate(zip(self.stats, self._flushed, strict=True)):
            delta = now.minus(before)
            if not any(delta.values()):
                continue
            with contextlib.suppress(OSError):
                DirStats.add_to_file(os.path.join(self.directories[d], "stats.json"), delta)
                self._flushed[d] = now.copy()

    def close(self) -> None:
        """Finish queued block writes, flush counters, close every open block (releasing pins)."""
        writer, self._writer = self._writer, None
        if writer is not None and self._writer_pid == os.getpid():
            writer.shutdown(wait=True)
        self.flush_stats()
        with self._lock:
            for path in list(self._handles):
                h = self._handles.pop(path)
                h.close()


def _reset_in_child(ref) -> None:
    store = ref()
    if store is not None:
        store._after_fork()


def _flush_at_exit(ref) -> None:
    store = ref()
    if store is not None:
        with contextlib.suppress(Exception):
            store.flush_stats()

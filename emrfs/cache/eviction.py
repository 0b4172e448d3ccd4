"""Capacity of the block store's directories: usage scans, free-space floor, LRU eviction.

A mixin of :class:`~emrfs.cache.store.BlockStore` (it works on the store's
directories, counters and open handles); eviction order is the block files'
mtimes, which readers of every process touch (the LRU across processes).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator

from .blockfile import SPACES
from .diskutil import makedirs_private, scandir, unlink_path
from .handles import BlockHandle
from .stats import DirStats

RESCAN_EVERY = 64  # puts between recounts of a directory's bytes


class CapacityMixin:
    """Usage, room-making and eviction for :class:`~emrfs.cache.store.BlockStore`."""

    directories: list[str]
    capacity_bytes: int
    free_space_floor: float
    low_water: float
    stats: list[DirStats]
    _lock: threading.RLock
    _handles: dict[str, BlockHandle]
    _used: list[int | None]
    _puts: int

    def usage(self, d: int) -> tuple[int, int]:
        """``(cache bytes, ephemeral bytes)`` in directory ``d`` (a scan)."""
        totals = {s: 0 for s in SPACES}
        for space, _path, size, _mtime in self._scan(d):
            totals[space] += size
        return totals["c"], totals["e"]

    def _scan(self, d: int) -> Iterator[tuple[str, str, int, float]]:
        for space in SPACES:
            root = os.path.join(self.directories[d], space)
            for top in scandir(root):
                for owner in scandir(top.path):
                    for entry in scandir(owner.path):
                        try:
                            st = entry.stat()
                        except FileNotFoundError:
                            continue
                        yield space, entry.path, st.st_size, st.st_mtime

    def _make_room(self, d: int, size: int, evictable: bool) -> bool:
        per_dir = self.capacity_bytes // len(self.directories)
        self._puts += 1
        used = self._used[d]
        if used is None or self._puts % RESCAN_EVERY == 0:
            # a fresh count now and then: other processes fill the same directories
            used = self._used[d] = sum(self.usage(d))
        need_free = self._free_shortfall(d, size)
        if used + size <= per_dir and need_free <= 0:
            return True
        self.evict(
            d, target=min(int(per_dir * self.low_water), per_dir - size), extra=max(need_free, 0)
        )
        if self._free_shortfall(d, size) > 0:
            return False
        after = self._used[d]  # evict() counted what is left
        return evictable is False or (after is not None and after + size <= per_dir)

    def _free_shortfall(self, d: int, size: int) -> int:
        try:
            st = os.statvfs(self.directories[d])
        except FileNotFoundError:
            makedirs_private(os.path.join(self.directories[d], "tmp"))
            st = os.statvfs(self.directories[d])
        total = st.f_blocks * st.f_frsize
        free = st.f_bavail * st.f_frsize
        return int(self.free_space_floor * total) - (free - size)

    def evict(self, d: int, target: int, extra: int = 0) -> int:
        """Evict least recently used unpinned cache blocks of directory ``d`` until its
        bytes are at most ``target`` and ``extra`` more bytes were freed.  Returns bytes freed.

        Only one process evicts a directory at a time; the others skip.
        """
        lock_path = os.path.join(self.directories[d], "evict.lock")
        lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            entries = list(self._scan(d))
            used = sum(e[2] for e in entries)
            freed = 0
            for _space, path, size, _mtime in sorted(
                (e for e in entries if e[0] == "c"), key=lambda e: e[3]
            ):
                if used <= target and freed >= extra:
                    break
                if self._try_evict(path):
                    used -= size
                    freed += size
                    self.stats[d].evictions += 1
            self._used[d] = used
            return freed
        finally:
            os.close(lock_fd)

    def _try_evict(self, path: str) -> bool:
        with self._lock:
            h = self._handles.get(path)
            if h is not None:
                if h.refs > 0 or h.pinned:
                    return False
                del self._handles[path]
                h.close()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # pinned by a reader somewhere
            unlink_path(path)
            return True
        finally:
            os.close(fd)

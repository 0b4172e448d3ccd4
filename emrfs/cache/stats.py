"""Cache counters: per directory, in-process, and summed across processes on disk.

Each process counts hits, misses, evictions, corruptions and writes in memory
(:meth:`~emrfs.cache.store.BlockStore.metrics`) and adds what it counted to
``<dir>/stats.json`` under an ``flock`` when it closes or exits, so
``emrfs cache stats`` sees every process's work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
from dataclasses import dataclass

COUNTERS = ("hits", "misses", "evictions", "corruptions", "blocks_written", "bytes_written")


@dataclass
class DirStats:
    directory: str
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    corruptions: int = 0
    blocks_written: int = 0
    bytes_written: int = 0

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}

    def copy(self) -> DirStats:
        return dataclasses.replace(self)

    def minus(self, other: DirStats) -> dict[str, int]:
        return {name: getattr(self, name) - getattr(other, name) for name in COUNTERS}

    @staticmethod
    def add_to_file(path: str, delta: dict[str, int]) -> None:
        """Add ``delta`` to the counters in ``path`` (created if absent), under a lock."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with contextlib.closing(os.fdopen(os.dup(fd), "r+")) as f:
                try:
                    current = json.loads(f.read() or "{}")
                except ValueError:
                    current = {}
                for name, value in delta.items():
                    current[name] = int(current.get(name, 0)) + value
                f.seek(0)
                f.truncate()
                f.write(json.dumps(current, sort_keys=True))
        finally:
            os.close(fd)


def collect(store) -> list[dict]:
    """One row per cache directory: bytes and blocks on disk plus all processes' counters."""
    store.flush_stats()
    rows = []
    for d, directory in enumerate(store.directories):
        counts = {"c": [0, 0], "e": [0, 0]}
        for space, _path, size, _mtime in store._scan(d):
            counts[space][0] += size
            counts[space][1] += 1
        saved = read_stats_file(directory)
        rows.append(
            {
                "directory": directory,
                "exists": os.path.isdir(directory),
                "bytes": counts["c"][0],
                "blocks": counts["c"][1],
                "ephemeral_bytes": counts["e"][0],
                "ephemeral_blocks": counts["e"][1],
                **{name: saved.get(name, 0) for name in COUNTERS},
            }
        )
    return rows


def read_stats_file(directory: str) -> dict[str, int]:
    """Counters every process flushed into ``directory/stats.json``."""
    try:
        with open(os.path.join(directory, "stats.json")) as f:
            return {k: int(v) for k, v in json.load(f).items()}
    except (FileNotFoundError, ValueError):
        return {}

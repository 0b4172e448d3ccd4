"""What the fault proxy remembers to simulate an eventually consistent store.

Three tables, each entry with an expiry time on the proxy's clock:

* hidden    -- keys written through the proxy that LIST must not show yet;
* lingering -- keys deleted through the proxy that LIST must still show;
* stale     -- keys overwritten through the proxy whose GET/HEAD must serve
  the previous version (its body kept in a file, not in memory).

Expired entries are dropped lazily, whenever a table is read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from ._s3wire import ListEntry

Key = tuple[str, str]  # (bucket, key)


@dataclass(frozen=True)
class StaleObject:
    """The previous version of an overwritten object: status line headers and a body file."""

    headers: tuple[tuple[str, str], ...]
    path: str
    size: int

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)


class InconsistencyState:
    """Thread-safe tables of hidden, lingering and stale keys with expiry times."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._lock = threading.Lock()
        self._hidden: dict[Key, float] = {}
        self._lingering: dict[Key, tuple[float, ListEntry]] = {}
        self._stale: dict[Key, tuple[float, StaleObject]] = {}

    # --- recording mutations -------------------------------------------------

    def written(self, bucket: str, key: str) -> None:
        """The key exists again: it no longer lingers as deleted."""
        with self._lock:
            self._lingering.pop((bucket, key), None)

    def hide(self, bucket: str, key: str, delay: float) -> None:
        with self._lock:
            self._hidden[(bucket, key)] = self._clock() + delay

    def make_stale(self, bucket: str, key: str, previous: StaleObject, delay: float) -> None:
        with self._lock:
            old = self._stale.pop((bucket, key), None)
            self._stale[(bucket, key)] = (self._clock() + delay, previous)
        if old is not None:
            _unlink(old[1].path)

    def deleted(self, bucket: str, key: str, entry: ListEntry | None, delay: float) -> None:
        """The key is gone; keep listing ``entry`` for ``delay`` seconds if given.

        A key still hidden from LIST (written within its delay) was never
        visible, so it does not linger."""
        with self._lock:
            was_hidden = self._hidden.pop((bucket, key), None) is not None
            stale = self._stale.pop((bucket, key), None)
            if entry is not None and not was_hidden:
                self._lingering[(bucket, key)] = (self._clock() + delay, entry)
        if stale is not None:
            _unlink(stale[1].path)

    def clear(self) -> None:
        """Forget everything: the store looks consistent from now on."""
        with self._lock:
            stale = list(self._stale.values())
            self._hidden.clear()
            self._lingering.clear()
            self._stale.clear()
        for _, obj in stale:
            _unlink(obj.path)

    # --- reading -------------------------------------------------------------

    def has_listing_state(self, bucket: str) -> bool:
        with self._lock:
            self._expire()
            return any(b == bucket for b, _ in self._hidden) or any(
                b == bucket for b, _ in self._lingering
            )

    def hidden_under(self, bucket: str, prefix: str) -> frozenset[str]:
        with self._lock:
            self._expire()
            return frozenset(k for b, k in self._hidden if b == bucket and k.startswith(prefix))

    def lingering_under(self, bucket: str, prefix: str) -> dict[str, ListEntry]:
        with self._lock:
            self._expire()
            return {
                k: entry
                for (b, k), (_, entry) in self._lingering.items()
                if b == bucket and k.startswith(prefix)
            }

    def open_stale(self, bucket: str, key: str) -> tuple[StaleObject, BinaryIO] | None:
        """The previous version to serve and its body opened for reading, if stale."""
        with self._lock:
            self._expire()
            item = self._stale.get((bucket, key))
            # Opened under the lock, so expiry cannot unlink it first.
            return (item[1], open(item[1].path, "rb")) if item else None

    def sizes(self) -> dict[str, int]:
        """How many keys are hidden, lingering and stale right now."""
        with self._lock:
            self._expire()
            return {
                "hidden": len(self._hidden),
                "lingering": len(self._lingering),
                "stale": len(self._stale),
            }

    def _expire(self) -> None:
        now = self._clock()
        for k in [k for k, until in self._hidden.items() if until <= now]:
            del self._hidden[k]
        for k in [k for k, (until, _) in self._lingering.items() if until <= now]:
            del self._lingering[k]
        for k in [k for k, (until, _) in self._stale.items() if until <= now]:
            # A reader that opened the file keeps reading it after the unlink.
            _unlink(self._stale.pop(k)[1].path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

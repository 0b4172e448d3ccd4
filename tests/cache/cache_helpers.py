"""Helpers for the cache tests: deterministic object bytes and a counting fetch."""

from __future__ import annotations

import random


def object_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating bytes (so a block served at the wrong offset shows)."""
    return random.Random(seed).randbytes(size)


class CountingFetch:
    """``async fetch(start, end)`` over a bytes object, recording every call."""

    def __init__(self, data: bytes):
        self.data = data
        self.calls: list[tuple[int, int]] = []

    async def __call__(self, start: int, end: int) -> bytes:
        self.calls.append((start, end))
        return self.data[start:end]

    @property
    def bytes_fetched(self) -> int:
        return sum(e - s for s, e in self.calls)

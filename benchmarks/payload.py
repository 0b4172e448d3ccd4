"""Large payloads made on demand, so streaming cases never hold the object in memory.

The data is one random block (8 MiB by default) repeated: incompressible
enough for S3 and made once, so producing it costs only memory copies.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

BLOCK = 8 * 2**20


def _block(block_size: int, seed: int | None) -> bytes:
    if seed is None:
        return os.urandom(block_size)
    import random

    return random.Random(seed).randbytes(block_size)


def pattern_chunks(
    size: int, chunk: int = BLOCK, *, seed: int | None = None
) -> Iterator[memoryview]:
    """``size`` bytes as successive views of at most ``chunk`` bytes."""
    block = memoryview(_block(chunk, seed))
    left = size
    while left > 0:
        n = min(left, chunk)
        yield block[:n]
        left -= n


class PatternReader(io.RawIOBase):
    """A read-only file of ``size`` bytes: one random block, repeated."""

    def __init__(self, size: int, block_size: int = BLOCK, *, seed: int | None = None):
        self._block = memoryview(_block(block_size, seed))
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        out = memoryview(buffer).cast("B")
        done = 0
        while done < len(out) and self._pos < self._size:
            offset = self._pos % len(self._block)
            n = min(len(out) - done, len(self._block) - offset, self._size - self._pos)
            out[done : done + n] = self._block[offset : offset + n]
            done += n
            self._pos += n
        return done

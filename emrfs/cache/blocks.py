"""Pure block arithmetic: offsets to block indices, the blocks a read touches,
and runs of adjacent missing blocks that one fetch can fill.

An object of ``size`` bytes is cut into blocks of ``block_size`` bytes; block
``i`` holds ``[i * block_size, min((i + 1) * block_size, size))``.  No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable


def _check(block_size: int) -> None:
    if block_size <= 0:
        raise ValueError(f"block size must be positive, got {block_size}")


def block_count(size: int, block_size: int) -> int:
    """Number of blocks of an object of ``size`` bytes (0 for an empty object)."""
    _check(block_size)
    return -(-size // block_size) if size > 0 else 0


def block_index(offset: int, block_size: int) -> int:
    """Index of the block that holds byte ``offset``."""
    _check(block_size)
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    return offset // block_size


def block_span(index: int, block_size: int, size: int) -> tuple[int, int]:
    """``(start, end)`` byte range of block ``index`` (end exclusive, clipped to ``size``)."""
    _check(block_size)
    start = index * block_size
    if index < 0 or start >= size:
        raise ValueError(f"block {index} is outside an object of {size} bytes")
    return start, min(start + block_size, size)


def clip(offset: int, length: int, size: int) -> tuple[int, int]:
    """Clip a read of ``length`` bytes at ``offset`` to the object: ``(start, end)``.

    ``length < 0`` means "to the end".  A read at or past the end is empty.
    """
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    start = min(offset, size)
    end = size if length < 0 else min(size, offset + length)
    return start, max(start, end)


def blocks_for(offset: int, length: int, block_size: int, size: int) -> range:
    """Indices of the blocks a read of ``length`` bytes at ``offset`` touches."""
    start, end = clip(offset, length, size)
    if end <= start:
        return range(0)
    return range(block_index(start, block_size), block_index(end - 1, block_size) + 1)


def coalesce(indices: Iterable[int], max_run: int = 0) -> list[tuple[int, int]]:
    """Group block indices into runs of consecutive blocks: ``[(first, last), ...]``.

    ``max_run > 0`` caps the blocks in one run (one fetch).  Duplicates are
    ignored; the runs come out in ascending order.
    """
    runs: list[tuple[int, int]] = []
    for i in sorted(set(indices)):
        if runs and runs[-1][1] == i - 1 and (max_run <= 0 or i - runs[-1][0] < max_run):
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def run_span(run: tuple[int, int], block_size: int, size: int) -> tuple[int, int]:
    """Byte range ``(start, end)`` covering the blocks ``first..last`` of a run."""
    first, last = run
    return block_span(first, block_size, size)[0], block_span(last, block_size, size)[1]

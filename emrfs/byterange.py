"""Pure byte-range arithmetic shared by every read path."""

from __future__ import annotations


def resolve_range(start: int | None, end: int | None, size: int) -> tuple[int, int]:
    """fsspec's ``(start, end)`` (None = the ends, negative = from the end) as absolute
    ``[start, end)`` within ``size`` bytes; an empty range has ``end <= start``."""
    start = 0 if start is None else (start + size if start < 0 else start)
    end = size if end is None else (end + size if end < 0 else min(end, size))
    return max(0, start), end

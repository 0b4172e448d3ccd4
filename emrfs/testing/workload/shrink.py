"""Delta debugging: the shortest sub-sequence that still fails."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from .ops import Op


def shrink(
    ops: Sequence[Op], fails: Callable[[Sequence[Op]], bool], *, budget_seconds: float = 60.0
) -> list[Op]:
    """The shortest sub-sequence of ``ops`` that still ``fails`` (delta debugging:
    drop chunks, halving their size, until no single operation can go), within
    ``budget_seconds``."""
    current = list(ops)
    deadline = time.monotonic() + budget_seconds
    chunk = max(1, len(current) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        removed_any = False
        i = 0
        while i < len(current) and time.monotonic() < deadline:
            candidate = current[:i] + current[i + chunk :]
            if candidate and fails(candidate):
                current = candidate
                removed_any = True
            else:
                i += chunk
        if not removed_any:
            if chunk == 1:
                break
            chunk //= 2
    return current

"""Threads for blocking calls that never wait on an event loop (metadata store I/O).

Code on the filesystem's loop also hands *bridging* work to the loop's default
pool: a worker thread that opens a file or writes one (``fs.open`` and friends)
and so waits, with ``fsspec.asyn.sync``, on coroutines of that same loop.  When
those coroutines needed the same pool for their own blocking calls (the
consistent view's DynamoDB requests), enough concurrent bridges filled it with
threads waiting on work queued behind them, and the filesystem hung (the gateway
with the tier and the consistent view on, tier-to-S3 renames, CSE reads).  Leaf
calls run here instead, on threads that only ever wait on I/O: whatever holds the
default pool, they make progress.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from .workers import PerProcess

__all__ = ["run_blocking", "LEAF_THREADS"]

#: threads for leaf calls per process (DynamoDB requests in flight at once)
LEAF_THREADS = 32

T = TypeVar("T")

_leaf_pool = PerProcess(LEAF_THREADS, "emrfs-leaf")


async def run_blocking(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``await asyncio.to_thread(func, ...)`` on the leaf threads: for calls that block on
    I/O only, never on an event loop (which would bring the starvation back)."""
    call = functools.partial(func, *args, **kwargs)
    return await _leaf_pool().run(contextvars.copy_context().run, call)

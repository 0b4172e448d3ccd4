"""The obstore transport's parallel reads: a GET's body drained by a worker thread
straight into the buffer it belongs in, and parts run together, in order, or all or none
(each writes into a buffer shared with the others, so none may outlive a failure)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any

from ..errors import ChangedError
from .obstore_native import native_pool

__all__ = ["REPORT_STEP", "Prefix", "drain", "in_worker", "in_order"]

#: a part's drain reports its progress every this many bytes, when asked to (a reader
#: that decrypts in place works on each prefix as it lands, not only on whole parts)
REPORT_STEP = 2 * 1024 * 1024


def drain(
    stream: Any,
    views: list[memoryview],
    progress: list[int],
    longer: ChangedError,
    report: Callable[[int], None] | None,
    stop: threading.Event,
) -> None:
    """``stream``'s pieces copied into ``views`` (one after the other) from byte
    ``progress[0]`` on, ``progress[0]`` kept at the bytes written; ``longer`` raised if the
    body outgrows them; ``report(n)`` told (from this thread) each time another
    ``REPORT_STEP`` bytes are in place.  Runs in a worker thread: obstore's blocking
    iteration waits without the GIL and hands each piece over as it arrives, where its
    async iteration costs an event-loop round trip per piece (``perf``/process CPU of a
    64 MiB GET: ~10 ms less per read here)."""
    got = progress[0]
    next_report = got + REPORT_STEP
    size = sum(len(v) for v in views)
    index, at = 0, got  # the view the next byte goes to, and where in it
    while index < len(views) and at >= len(views[index]):
        at -= len(views[index])
        index += 1
    for piece in stream:
        n = len(piece)
        if got + n > size:
            raise longer  # it got longer
        if n <= len(views[index]) - at:  # the usual case: within one view
            views[index][at : at + n] = piece
            at += n
        else:
            src = memoryview(piece)
            while len(src):
                view = views[index]
                k = min(len(view) - at, len(src))
                view[at : at + k] = src[:k]
                src, at = src[k:], at + k
                if at == len(view) and index + 1 < len(views):
                    index, at = index + 1, 0
        if at == len(views[index]) and index + 1 < len(views):
            index, at = index + 1, 0
        got += n
        progress[0] = got
        if stop.is_set():  # the read was cancelled
            return
        if report is not None and got >= next_report:
            report(got)
            next_report = got + REPORT_STEP


async def in_worker(
    fn: Callable[..., None], *args: Any, landed: Callable[[int], None] | None = None
) -> None:
    """``fn(*args, report, stop)`` in a worker thread; each ``report(n)`` it makes is
    relayed to ``landed(n)`` on the event loop (``report`` is None without ``landed``).
    Cancelled, or ``landed`` raising, it sets ``stop`` and still waits for the thread to
    end (the thread writes into a buffer the caller frees after), then raises that."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    failed: list[BaseException] = []
    done = False

    def relay(n: int) -> None:  # on the event loop, in the order the thread reported
        if done or failed or landed is None:
            return
        try:
            landed(n)
        except BaseException as exc:  # noqa: BLE001 - raised below, once the thread ended
            failed.append(exc)
            stop.set()

    def report(n: int) -> None:  # in the worker thread
        loop.call_soon_threadsafe(relay, n)

    work = partial(fn, *args, report if landed is not None else None, stop)
    future = native_pool().run(work)
    try:
        # (the thread's reports were queued before its end: relayed before this returns)
        await asyncio.shield(future)
    except asyncio.CancelledError:
        stop.set()
        while not future.done():
            try:
                await asyncio.wait([future])
            except asyncio.CancelledError:
                continue
        if not future.cancelled():
            future.exception()  # retrieved: the cancellation is what the caller sees
        raise
    finally:
        done = True  # a report still queued finds the read over
    if failed:
        raise failed[0]


async def in_order(
    coroutines: Sequence[Coroutine[Any, Any, None]], done: Callable[[int], None]
) -> None:
    """Run them all; ``done(k)`` once the k-th and every one before it finished (in order,
    on the event loop).  At the first failure (or one of ``done``) cancel the others, wait
    for them (they write into shared buffers) and raise it."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    pending = set(tasks)
    told = 0
    try:
        while told < len(tasks):
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                task.result()  # the first failure ends the read
            while told < len(tasks) and tasks[told].done():
                done(told)
                told += 1
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class Prefix:
    """The bytes in place of a read made of parts of ``sizes`` (in order; they land in any
    order, each from its start): ``filled(n)`` told, on the event loop, each time the
    prefix they make grows (whole parts, then what landed of the next one)."""

    def __init__(self, sizes: Sequence[int], filled: Callable[[int], None]):
        self.sizes = list(sizes)
        self.got = [0] * len(self.sizes)
        self.filled = filled
        self.told = 0

    def landed(self, k: int, n: int) -> None:
        """The first ``n`` bytes of part ``k`` are in place."""
        self.got[k] = max(self.got[k], n)
        prefix = 0
        for size, got in zip(self.sizes, self.got, strict=True):
            prefix += got
            if got < size:
                break
        if prefix > self.told:
            self.told = prefix
            self.filled(prefix)

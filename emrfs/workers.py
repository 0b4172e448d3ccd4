"""Threads that run blocking calls for coroutines, with one hand-off each way.

``loop.run_in_executor`` on a ``ThreadPoolExecutor`` makes, per call, a
``concurrent.futures.Future`` (with its ``Condition``), a chained asyncio future,
an idle-thread ``Semaphore`` round and two callbacks between them: 110-125 us of CPU
a call on this machine, against 35-39 us for a queue and one
``call_soon_threadsafe`` (20,000 trivial calls, 64 threads).  A small GET or PUT is
one such call, and its whole client cost is under 1 ms, so the hand-off was a tenth
of it.

:class:`WorkerPool` keeps what the executor gave that matters here: threads made as
calls need them up to a bound, a call not yet started skipped once its future is
cancelled, and every thread joined before the interpreter finalizes (a thread still
inside a native call when CPython tears down aborts the process).  A pool belongs to
the process that made it: after ``fork`` the child makes its own.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["WorkerPool", "PerProcess"]

T = TypeVar("T")

_STOP = None


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class WorkerPool:
    """Up to ``max_workers`` threads named ``name-N``, made on first need."""

    def __init__(self, max_workers: int, name: str):
        if max_workers < 1:
            raise ValueError(f"a worker pool needs at least one thread, not {max_workers}")
        self._max = max_workers
        self._name = name
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads done with a call and not yet promised another
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        _at_shutdown(self.close)

    @property
    def mine(self) -> bool:
        """Made by this process (a forked child inherits the object, not its threads)."""
        return self._pid == os.getpid()

    def run(self, fn: Callable[..., T], /, *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` on a pool thread; its result (or exception) on the running loop."""
        if self._closed:
            raise RuntimeError(f"the {self._name} threads are shut down (the interpreter exits)")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, future, fn, args))
        with self._lock:
            if self._idle:
                self._idle -= 1  # that thread takes it (or one like it)
                return future
            if len(self._threads) < self._max:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}"
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        calls, lock = self._calls, self._lock
        while True:
            call = calls.get()
            if call is _STOP:
                return
            self._one(*call)
            del call  # nothing kept alive while idle
            with lock:
                self._idle += 1

    @staticmethod
    def _one(
        loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], fn: Callable, args: tuple
    ) -> None:
        if future.cancelled():  # (a racy read is fine: at worst the call runs)
            return
        result, error = None, None
        try:
            result = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            error = exc
        try:
            loop.call_soon_threadsafe(_deliver, future, result, error)
        except RuntimeError:  # its loop is closed: nobody waits for it
            pass

    def close(self) -> None:
        """Let every thread finish its call and end; wait for them (this process's)."""
        if self._closed or not self.mine:
            return
        self._closed = True
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._calls.put(_STOP)
        for thread in threads:
            thread.join()


class PerProcess:
    """This process's :class:`WorkerPool` of ``max_workers`` threads named ``name``, made
    on first need: calling it after ``fork`` makes the child its own (the child inherits
    the pool object, not its threads)."""

    def __init__(self, max_workers: int, name: str):
        self._max, self._name = max_workers, name
        self._pool: WorkerPool | None = None
        self._lock = threading.Lock()

    def __call__(self) -> WorkerPool:
        pool = self._pool
        if pool is None or not pool.mine:
            with self._lock:
                pool = self._pool
                if pool is None or not pool.mine:
                    pool = self._pool = WorkerPool(self._max, self._name)
        return pool


def _at_shutdown(hook: Callable[[], None]) -> None:
    """Run ``hook`` when the interpreter exits, before it joins non-daemon threads (as
    ``concurrent.futures`` does: ``atexit`` would run after, and wait forever)."""
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(hook)
    else:  # pragma: no cover - CPython >= 3.9 has it
        import atexit

        atexit.register(hook)

"""``emrfs.workers.WorkerPool``: the threads obstore's calls and the leaf calls block on."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from emrfs.workers import WorkerPool


def test_results_and_exceptions_come_back_to_the_caller():
    pool = WorkerPool(4, "t-results")

    def fail(x: int) -> int:
        raise KeyError(x)

    async def main():
        assert await pool.run(lambda a, b: a + b, 2, 3) == 5
        with pytest.raises(KeyError, match="7"):
            await pool.run(fail, 7)
        return await asyncio.gather(*(pool.run(pow, i, 2) for i in range(50)))

    try:
        assert asyncio.run(main()) == [i * i for i in range(50)]
    finally:
        pool.close()


def test_threads_grow_with_calls_in_flight_up_to_the_bound():
    pool = WorkerPool(3, "t-bound")
    running, peak, lock = 0, 0, threading.Lock()
    gate = threading.Event()

    def call(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(5)
        with lock:
            running -= 1
        return i

    async def main():
        calls = [pool.run(call, i) for i in range(10)]
        await asyncio.sleep(0.2)
        gate.set()
        return await asyncio.gather(*calls)

    try:
        assert asyncio.run(main()) == list(range(10))
        assert peak == 3 and len(pool._threads) == 3
        # done and idle: later calls reuse them
        asyncio.run(main())
        assert len(pool._threads) == 3
    finally:
        pool.close()
    assert not any(t.is_alive() for t in pool._threads)


def test_a_call_cancelled_before_it_starts_does_not_run():
    pool = WorkerPool(1, "t-cancel")
    ran: list[int] = []
    gate = threading.Event()

    async def main():
        first = pool.run(gate.wait, 5)
        second = pool.run(ran.append, 2)
        second.cancel()
        gate.set()
        await first
        await pool.run(ran.append, 3)  # the one thread, after the skipped call

    try:
        asyncio.run(main())
        assert ran == [3]
    finally:
        pool.close()


def test_a_call_that_outlives_its_loop_leaves_the_thread_working():
    pool = WorkerPool(1, "t-closed")
    gate = threading.Event()

    async def leave_early():
        pool.run(gate.wait, 5)  # never awaited: the loop closes first

    try:
        asyncio.run(leave_early())
        gate.set()
        time.sleep(0.1)

        async def again():
            return await pool.run(lambda: "still here")

        assert asyncio.run(again()) == "still here"
    finally:
        pool.close()


def test_the_interpreter_waits_for_a_call_under_way_before_it_exits():
    script = textwrap.dedent(
        """
        import asyncio, time
        from emrfs.workers import WorkerPool
        pool = WorkerPool(2, "t-exit")

        def slow():
            time.sleep(0.5)
            print("finished", flush=True)

        async def main():
            pool.run(slow)  # not awaited: the program ends while it runs
            await asyncio.sleep(0.05)

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "finished"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_gets_threads_of_its_own():
    from emrfs.store.obstore_native import native_pool

    async def work() -> int:
        return await native_pool().run(os.getpid)

    parent = asyncio.run(work())
    assert native_pool() is native_pool()  # one pool per process, made once
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        ok = asyncio.run(work()) == os.getpid() and native_pool().mine
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent == os.getpid()


def test_a_pool_needs_a_thread():
    with pytest.raises(ValueError, match="at least one thread"):
        WorkerPool(0, "none")

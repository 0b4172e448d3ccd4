"""``expansion.gather_each``: the runner under ``cat``, ``pipe`` and ``copy``'s batches."""

from __future__ import annotations

import asyncio

import pytest

from emrfs.expansion import gather_each


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("batch_size", [1, 3, 7, 100, -1])
def test_every_path_is_read_once_with_at_most_batch_size_at_once(batch_size):
    paths = [f"b/k{i}" for i in range(40)]
    running, peak, seen = 0, 0, []

    async def read(p: str) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        seen.append(p)
        await asyncio.sleep(0.001 * (hash(p) % 3))  # finish out of order
        running -= 1
        return p.upper()

    out = run(gather_each(paths, read, batch_size))
    assert out == [p.upper() for p in paths]  # results in the order of the paths
    assert sorted(seen) == sorted(paths)
    assert peak == (len(paths) if batch_size == -1 else min(batch_size, len(paths)))


def test_a_failure_is_returned_in_its_place_and_the_others_still_run():
    async def read(p: str) -> str:
        await asyncio.sleep(0)
        if p.endswith("3"):
            raise FileNotFoundError(p)
        return p

    out = run(gather_each([f"k{i}" for i in range(6)], read, 2))
    assert isinstance(out[3], FileNotFoundError) and str(out[3]) == "k3"
    assert [o for i, o in enumerate(out) if i != 3] == ["k0", "k1", "k2", "k4", "k5"]


def test_nothing_to_read_reads_nothing():
    async def read(p: str) -> str:  # pragma: no cover - never called
        raise AssertionError(p)

    assert run(gather_each([], read, 5)) == []


def test_the_number_of_waiting_reads_does_not_grow_with_the_batch():
    """At most ``batch_size`` coroutines exist at once: a batch of 5,000 small reads does
    not park 5,000 tasks on one semaphore (whose wake-ups rescan the queue)."""
    tasks_seen = 0

    async def read(p: str) -> str:
        nonlocal tasks_seen
        tasks_seen = max(tasks_seen, len(asyncio.all_tasks()))
        await asyncio.sleep(0)
        return p

    paths = [f"k{i}" for i in range(5000)]
    assert run(gather_each(paths, read, 16)) == paths
    assert tasks_seen <= 16 + 1  # the workers and the main task

"""The consistent view's write batching (emrfs.consistency.batching) over the in-memory
store: rows of writes under way fill whole requests, a run reads its ancestors once,
and nothing waits on a write that will not record."""

from __future__ import annotations

import asyncio

import pytest

from emrfs.consistency import batching
from emrfs.consistency.policy import FixedRetryPolicy
from emrfs.consistency.store import InMemoryMetadataStore
from emrfs.consistency.view import ConsistentView


class CountingStore(InMemoryMetadataStore):
    """Counts the rows of each put_many and each read of rows (the ancestors' check)."""

    def __init__(self):
        super().__init__()
        self.puts: list[int] = []
        self.reads: list[list[str]] = []

    def put_many(self, entries, **kwargs):
        entries = list(entries)
        self.puts.append(len(entries))
        super().put_many(entries, **kwargs)

    def _get_rows(self, paths):
        self.reads.append(list(paths))
        return super()._get_rows(paths)


@pytest.fixture
def no_linger(monkeypatch):
    """Rows wait for every write under way, however slow the machine (no timing)."""
    monkeypatch.setattr(batching, "LINGER_SECONDS", 3600.0)


def view_over(store):
    return ConsistentView(store, FixedRetryPolicy(0, 0))


async def write(view, path, ticket, turns):
    """A write whose PUT takes ``turns`` turns of the loop, then records its row."""
    with ticket:
        for _ in range(turns):
            await asyncio.sleep(0)
        await view.record_file(path, 1, "e", ticket=ticket)


def test_rows_of_writes_under_way_fill_whole_requests_and_read_ancestors_once(no_linger):
    store = CountingStore()
    view = view_over(store)

    async def main():
        tickets = [view.expect_row() for _ in range(60)]
        await asyncio.gather(
            *(write(view, f"b/d/f{i:02d}", t, i % 7) for i, t in enumerate(tickets))
        )

    asyncio.run(main())
    assert sum(store.puts) == 60
    # while the writes under way could fill a request (BatchWriteItem takes 25 rows),
    # flushes waited for them: a flush leaves a partial request only when the rows
    # still to come could not have filled it
    written = 0
    for n in store.puts:
        written += n
        partial = n % batching.ROWS_PER_REQUEST
        assert partial == 0 or partial + (60 - written) < batching.ROWS_PER_REQUEST, store.puts
    assert store.reads == [["b", "b/d"]]  # the ancestors, read by the run's first flush only
    assert len(store.list_children("b/d").live) == 60


def test_a_delete_recorded_in_a_run_makes_its_next_flush_check_the_directories(no_linger):
    store = CountingStore()
    view = view_over(store)

    async def main():
        tickets = [view.expect_row() for _ in range(50)]
        first, rest = tickets[:25], tickets[25:]
        await asyncio.gather(*(write(view, f"b/d/f{i}", t, 0) for i, t in enumerate(first)))
        await view.record_delete(["b/d"])  # another verb tombstoned the directory's row
        assert store.get("b/d").deleted
        await asyncio.gather(*(write(view, f"b/d/g{i}", t, 0) for i, t in enumerate(rest)))

    asyncio.run(main())
    row = store.get("b/d")
    assert row.live and row.is_dir  # made live again above the files written after it


def test_the_run_trusts_its_directories_only_for_a_while(no_linger, monkeypatch):
    monkeypatch.setattr(batching, "LIVE_DIRS_SECONDS", -1.0)
    store = CountingStore()
    view = view_over(store)

    async def main():
        tickets = [view.expect_row() for _ in range(50)]
        for i in range(0, 50, 25):
            await asyncio.gather(
                *(write(view, f"b/d/f{i + j}", t, 0) for j, t in enumerate(tickets[i : i + 25]))
            )

    asyncio.run(main())
    assert len(store.puts) == 2 and store.reads == [["b", "b/d"], ["b", "b/d"]]


def test_a_few_writes_under_way_hold_back_no_row(no_linger):
    """Writes under way that cannot fill a request are not waited for (no latency added
    where nothing is saved): each row goes as it comes."""
    store = CountingStore()
    view = view_over(store)

    async def main():
        slow = [view.expect_row() for _ in range(3)]  # PUTs that end after the test
        ticket = view.expect_row()
        await asyncio.wait_for(view.record_file("b/quick", 1, "e", ticket=ticket), timeout=30)
        for t in slow:
            t.close()

    asyncio.run(main())
    assert store.puts == [1] and store.get("b/quick").live


def test_a_write_that_ends_without_a_row_holds_back_no_other(no_linger):
    store = CountingStore()
    view = view_over(store)

    async def failed_put(ticket):
        with ticket:
            await asyncio.sleep(0)
            raise OSError("the PUT failed")

    async def main():
        tickets = [view.expect_row() for _ in range(2)]
        results = await asyncio.wait_for(
            asyncio.gather(
                failed_put(tickets[0]),
                write(view, "b/ok", tickets[1], 3),
                return_exceptions=True,
            ),
            timeout=30,
        )
        return results

    failed, ok = asyncio.run(main())
    assert isinstance(failed, OSError) and ok is None
    assert store.get("b/ok").live


def test_a_row_waits_no_longer_than_the_linger_for_a_write_still_under_way(monkeypatch):
    monkeypatch.setattr(batching, "LINGER_SECONDS", 0.0)
    store = CountingStore()
    view = view_over(store)

    async def main():
        # PUTs under way that could fill a request, taking (here: forever) longer than
        # the linger
        stuck = [view.expect_row() for _ in range(batching.ROWS_PER_REQUEST)]
        ticket = view.expect_row()
        await asyncio.wait_for(view.record_file("b/quick", 1, "e", ticket=ticket), timeout=30)
        for t in stuck:
            t.close()

    asyncio.run(main())
    assert store.get("b/quick").live


def test_the_run_ends_when_its_last_write_ends_without_a_row(no_linger):
    """A write that recorded, then one that failed: nothing is left pending or under way,
    so the flusher ends (and with it the run's trusted directories)."""
    store = CountingStore()
    view = view_over(store)

    async def main():
        recorded, failed = view.expect_row(), view.expect_row()
        await write(view, "b/d/f", recorded, 0)
        batcher = view._batcher()
        assert batcher.live_dirs == {"b", "b/d"}  # the run is on: a write is under way
        for _ in range(3):  # the flusher waits for it
            await asyncio.sleep(0)
        assert batcher._flusher is not None
        failed.close()  # its PUT failed: no row comes
        for _ in range(3):
            await asyncio.sleep(0)
        # (checked here: asyncio.run would cancel a flusher left waiting)
        assert batcher._flusher is None and batcher.live_dirs == set()

    asyncio.run(main())

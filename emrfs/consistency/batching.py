"""The consistent view's write batching: rows of writes recorded together.

Each write through the view records its row once S3 confirmed it (never before);
the rows of writes running at the same time are written together.  A metadata
request costs the table and the client far more than a row in it does (BatchWriteItem
takes 25 rows), so while the writes it was told of (:meth:`RowBatcher.expect`) can
fill a request, a flush waits for them, never longer than :data:`LINGER_SECONDS` for
the first row it holds (counted from when the flusher was free to write it); when
they cannot, it goes at once (a few writes at a time wait for no one, as before).

A *run* is the time the flusher keeps working: rows pending, or writes under way.
The directories a run's flushes made sure of (each row's ancestors, read and created
where missing before the row is written) are not read again by the run's later
flushes, as one ``put_many`` of all the rows would not read them again either; a
delete recorded meanwhile (:meth:`RowBatcher.forget_live_dirs`), the end of the run,
or :data:`LIVE_DIRS_SECONDS` make the next flush read them afresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..blocking import run_blocking
from .store import Entry

__all__ = ["RowBatcher", "Ticket", "ROWS_PER_REQUEST", "LINGER_SECONDS", "LIVE_DIRS_SECONDS"]

#: rows in one BatchWriteItem request
ROWS_PER_REQUEST = 25
#: the longest a row waits for others to share its request
LINGER_SECONDS = 0.02
#: the longest a run trusts the directories it made sure of
LIVE_DIRS_SECONDS = 1.0


class _Pending:
    __slots__ = ("done", "entries", "since")

    def __init__(self, entries: list[Entry], done: asyncio.Future, since: float):
        self.entries = entries
        self.done = done
        self.since = since


class Ticket:
    """A write under way whose row is on its way to the batcher: a flush holding fewer
    rows than a request takes waits for it (up to :data:`LINGER_SECONDS`).  Closed when
    its row arrives, or when the write ends without one (failed, or nothing to record);
    a context manager closes it at the end in any case."""

    __slots__ = ("_batcher", "_open")

    def __init__(self, batcher: RowBatcher):
        self._batcher = batcher
        self._open = True
        batcher.expected += 1

    def close(self) -> None:
        if self._open:
            self._open = False
            self._batcher.expected -= 1
            self._batcher.wake_if_ready()

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class RowBatcher:
    """The rows waiting to be written for one event loop, and the task writing them.

    ``put_many(rows, live_dirs=...)`` is the metadata store's (it blocks: run on a
    leaf thread).  Used on its loop only (it keeps no reference to it: the view keys
    its batchers weakly by loop).
    """

    def __init__(self, put_many: Callable[..., None]):
        self.put_many = put_many
        self.pending: list[_Pending] = []
        self.rows = 0  # rows in pending
        self.expected = 0  # writes under way (tickets) whose rows have not arrived
        self.live_dirs: set[str] = set()
        self.live_since = 0.0
        self.flushed_at = 0.0  # when the last flush ended: rows that came during it
        # waited for the flusher, not for companions: their linger starts then
        self._flusher: asyncio.Task | None = None
        self._waiter: asyncio.Future | None = None

    def expect(self) -> Ticket:
        """A ticket for a write starting now (see :class:`Ticket`)."""
        return Ticket(self)

    async def record(self, entries: list[Entry], ticket: Ticket | None = None) -> None:
        """Write ``entries`` with the next flush; returns once they are stored."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self.pending.append(_Pending(entries, done, loop.time()))
        self.rows += len(entries)
        if ticket is not None:
            ticket.close()
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._run())
        elif len(self.pending) == 1:
            self._wake()  # the flusher waits for rows with no linger timer: arm it
        else:
            self.wake_if_ready()
        await done

    def forget_live_dirs(self) -> None:
        """A delete may tombstone a directory this run made sure of: read them again.
        (A new set: a flush under way updates its own.)"""
        self.live_dirs = set()

    # --- the flusher ------------------------------------------------------------------

    def _ready(self) -> bool:
        """A flush is due: a full request's rows are here, no request can be filled by the
        writes under way (then waiting would only add latency), or the oldest row waited
        its linger."""
        if not self.pending:
            return False
        return (
            self.rows >= ROWS_PER_REQUEST
            or self.rows + self.expected < ROWS_PER_REQUEST
            or self._overdue()
        )

    def _linger_ends(self) -> float:
        return max(self.pending[0].since, self.flushed_at) + LINGER_SECONDS

    def _overdue(self) -> bool:
        return asyncio.get_running_loop().time() >= self._linger_ends()

    def wake_if_ready(self) -> None:
        """Wake the flusher when a flush is due, or when its run is over (nothing pending,
        no write under way: it ends, and the run's directories are forgotten)."""
        if self._ready() or (not self.pending and self.expected <= 0):
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            _wake(self._waiter)

    async def _run(self) -> None:
        try:
            while True:
                await asyncio.sleep(0)  # let writers that are about to call join this flush
                if self._ready():
                    await self._write(self._take())
                elif self.pending or self.expected > 0:
                    await self._wait()
                else:
                    return
        finally:
            self.live_dirs = set()
            self._flusher = None

    def _take(self) -> list[_Pending]:
        """The rows of the next flush: whole requests' worth while more rows are on their
        way and nothing waited its linger (the rest waits for more); else everything."""
        if self.expected <= 0 or self._overdue() or self.rows < ROWS_PER_REQUEST:
            taken, self.pending, self.rows = self.pending, [], 0
            return taken
        want = self.rows - self.rows % ROWS_PER_REQUEST
        count = taken_items = 0
        while count < want:
            count += len(self.pending[taken_items].entries)
            taken_items += 1
        taken, self.pending = self.pending[:taken_items], self.pending[taken_items:]
        self.rows -= count
        return taken

    async def _wait(self) -> None:
        """Until :meth:`wake_if_ready` (a row arrived, or a write ended), or the oldest
        pending row's linger ran out."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None
        if self.pending:
            timer = loop.call_at(self._linger_ends(), _wake, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def _write(self, batch: list[_Pending]) -> None:
        rows = [e for p in batch for e in p.entries]
        now = asyncio.get_running_loop().time()
        if not self.live_dirs or now - self.live_since > LIVE_DIRS_SECONDS:
            self.live_dirs, self.live_since = set(), now
        try:
            await run_blocking(self.put_many, rows, live_dirs=self.live_dirs)
        except Exception as exc:  # noqa: BLE001 - handed to every writer of the batch below
            outcome: BaseException | None = exc
        else:
            outcome = None
        finally:
            self.flushed_at = asyncio.get_running_loop().time()
        for p in batch:
            if p.done.done():
                continue
            if outcome is None:
                p.done.set_result(None)
            else:
                p.done.set_exception(outcome)


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)

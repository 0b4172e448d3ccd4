"""Read-through of one object version: serve ``read(offset, length)`` from local
blocks, fetching only the blocks a read touches that are not cached yet.

The filesystem hands over the object's :class:`~emrfs.cache.store.ObjectIdentity`
and an async ``fetch(start, end) -> bytes`` (end exclusive).  A warm read never
calls ``fetch``.  Reads that continue where the last one ended count as
sequential and start background fills of the next ``prefetch_blocks`` blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable

from ..blocking import run_blocking
from ..errors import IntegrityError
from .blocks import block_span, blocks_for, clip, coalesce, run_span
from .store import BlockStore, ObjectIdentity

log = logging.getLogger("emrfs.cache")

Fetch = Callable[[int, int], Awaitable[bytes]]


class CachedReader:
    """Read-through cache for one object version.

    Parameters
    ----------
    store
        The shared :class:`BlockStore`.
    identity
        Path, size and version (ETag / version id / stamp) of the object.
    fetch
        ``async fetch(start, end) -> bytes`` of the object's bytes ``[start, end)``.
    block_size
        Cache block size (``cache.block_size``).
    prefetch_blocks
        Blocks filled ahead of a sequential reader (``cache.prefetch_blocks``; 0: none).
    sealed
        Seal the blocks at rest whatever the store's setting (CSE objects).
    max_fetch_blocks
        Most adjacent missing blocks joined into one fetch.
    """

    def __init__(
        self,
        store: BlockStore,
        identity: ObjectIdentity,
        fetch: Fetch,
        *,
        block_size: int,
        prefetch_blocks: int = 2,
        sealed: bool = False,
        max_fetch_blocks: int = 8,
    ):
        if block_size <= 0:
            raise ValueError(f"block_size must be positive, got {block_size}")
        self.store = store
        self.identity = identity
        self.fetch = fetch
        self.block_size = block_size
        self.prefetch_blocks = prefetch_blocks
        self.sealed = sealed
        self.max_fetch_blocks = max(1, max_fetch_blocks)
        self._inflight: dict[int, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self._last_end = -1
        self._retired = False
        self._bids: dict = {}
        self.fetches = 0  # calls to fetch (tests and metrics)
        self.skipped_writes = 0  # blocks served but not cached (write backlog full)
        self._writes: set[concurrent.futures.Future] = set()  # block writes not done yet

    @property
    def size(self) -> int:
        return self.identity.size

    # --- warm path ------------------------------------------------------------------

    def read_cached(self, offset: int, length: int = -1) -> bytes | None:
        """The bytes if every block they need is cached (no fetch, no event loop), else None."""
        start, end = clip(offset, length, self.size)
        if start >= end:
            return b""
        parts = []
        for i in blocks_for(start, end - start, self.block_size, self.size):
            b0 = i * self.block_size
            bid = self._bids.get(i)
            if bid is None:
                bid = self._bids[i] = self.identity.block(i)
            data = self.store.read(
                bid,
                max(start, b0) - b0,
                min(end, b0 + self.block_size) - b0,
                where=self.identity.path,
                count_miss=False,
            )
            if data is None:
                return None
            parts.append(data)
        self._note_read(start, end)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # --- read-through ---------------------------------------------------------------

    async def read(self, offset: int, length: int = -1) -> bytes:
        """Bytes ``[offset, offset + length)`` (``length < 0``: to the end), fetching misses."""
        start, end = clip(offset, length, self.size)
        if start >= end:
            return b""
        indices = blocks_for(start, end - start, self.block_size, self.size)
        parts: dict[int, bytes | memoryview] = {}
        missing = []
        for i in indices:
            b0 = i * self.block_size
            lo, hi = max(start, b0) - b0, min(end, b0 + self.block_size) - b0
            data = (
                None
                if i in self._inflight
                else self.store.read(self.identity.block(i), lo, hi, where=self.identity.path)
            )
            if data is None:
                missing.append(i)
            else:
                parts[i] = data
        if missing:
            blocks = await self._get_blocks(missing)
            for i in missing:
                b0 = i * self.block_size
                parts[i] = blocks[i][max(start, b0) - b0 : min(end, b0 + self.block_size) - b0]
        sequential = start == self._last_end
        self._note_read(start, end)
        if sequential and self.prefetch_blocks > 0:
            self._prefetch(indices[-1] + 1)
        out = [parts[i] for i in indices]
        if len(out) == 1:
            return out[0] if isinstance(out[0], bytes) else bytes(out[0])
        return b"".join(out)

    async def adopt(self, start: int, data: bytes) -> None:
        """Cache the blocks of ``data`` (the object's bytes from ``start``, a block
        boundary, fetched elsewhere): each whole block, and the object's last one."""
        view = memoryview(data)
        blocks = {}
        first = start // self.block_size
        for i in range(first, first + -(-len(data) // self.block_size)):
            b0, b1 = block_span(i, self.block_size, self.size)
            if b1 - start <= len(data):
                blocks[i] = view[b0 - start : b1 - start]
        if not blocks:
            return
        if not self._retired:
            self._retired = True  # other versions' blocks can never be served again
            await run_blocking(self.store.drop_owner, "c", self.identity.owner, self.identity.tag)
        await self._write_blocks(blocks)

    async def _write_blocks(self, blocks: dict[int, memoryview]) -> None:
        # on the store's writer threads, shielded: a reader cancelled (or an event loop
        # closed) mid-write must not drop queued blocks
        if self.store.write_backlog_full():
            self.skipped_writes += len(blocks)
            return
        written = self.store.submit(self._store_blocks, blocks)
        self._writes.add(written)
        written.add_done_callback(self._writes.discard)
        await asyncio.shield(asyncio.wrap_future(written))

    def wait_written(self, timeout: float) -> None:
        """Block until the blocks already fetched are on disk (at most ``timeout`` s): a
        reader closed right after a read leaves its blocks readable to the next one.
        Fills still fetching (read-ahead) are not waited for."""
        if self._writes:
            concurrent.futures.wait(list(self._writes), timeout=timeout)

    def _note_read(self, start: int, end: int) -> None:
        self._last_end = end

    async def _get_blocks(self, indices: list[int]) -> dict[int, bytes]:
        """Whole blocks for ``indices``: joined to fetches in flight, the rest fetched now."""
        waiting = {i: self._inflight[i] for i in indices if i in self._inflight}
        todo = [i for i in indices if i not in waiting]
        if todo and not self._retired:
            self._retired = True  # first miss of this reader: drop other versions' blocks
            await run_blocking(self.store.drop_owner, "c", self.identity.owner, self.identity.tag)
        runs = coalesce(todo, self.max_fetch_blocks)
        for run in runs:
            self._start_fill(run)
        waiting.update({i: self._inflight[i] for i in todo})
        results = await asyncio.gather(*waiting.values())
        return dict(zip(waiting, results, strict=True))

    def _start_fill(self, run: tuple[int, int]) -> None:
        loop = asyncio.get_running_loop()
        futures = {i: loop.create_future() for i in range(run[0], run[1] + 1)}
        self._inflight.update(futures)
        task = loop.create_task(self._fill(run, futures))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, run: tuple[int, int], futures: dict[int, asyncio.Future]) -> None:
        try:
            start, end = run_span(run, self.block_size, self.size)
            self.fetches += 1
            data = await self.fetch(start, end)
            if len(data) != end - start:
                raise IntegrityError(
                    f"{self.identity.path!r} returned {len(data)} bytes for range "
                    f"[{start}, {end}); the object changed while it was read - open it again",
                    self.identity.path,
                )
            view = memoryview(data)
            blocks = {}
            for i in futures:
                b0, b1 = block_span(i, self.block_size, self.size)
                blocks[i] = view[b0 - start : b1 - start]
            for i, fut in futures.items():  # readers go on while the blocks are written
                if not fut.done():
                    fut.set_result(blocks[i])
            await self._write_blocks(blocks)
        except BaseException as exc:
            for fut in futures.values():
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()  # prefetch errors are not "never retrieved" noise
            if not isinstance(exc, Exception):
                raise
        finally:
            for i, fut in futures.items():
                if self._inflight.get(i) is fut:
                    del self._inflight[i]

    def _store_blocks(self, blocks: dict[int, memoryview]) -> None:
        for i, view in blocks.items():
            try:
                self.store.put(
                    self.identity.block(i), view, sealed=self.sealed, where=self.identity.path
                )
            except OSError as exc:  # a full or lost disk must not fail the read
                log.warning("could not cache block %d of %r: %s", i, self.identity.path, exc)

    def _prefetch(self, first: int) -> None:
        last_block = -(-self.size // self.block_size) - 1
        todo = [
            i
            for i in range(first, min(first + self.prefetch_blocks, last_block + 1))
            if i not in self._inflight and not self.store.contains(self.identity.block(i))
        ]
        if todo and todo[0] != first and len(todo) < (self.prefetch_blocks + 1) // 2:
            # The next block is on its way: refill once half the window is used, so
            # fetches stay large (every request has a fixed cost; moto even reads the
            # whole object per ranged GET).
            return
        if todo and not self._retired:
            self._retired = True
            self.store.drop_owner("c", self.identity.owner, self.identity.tag)
        for run in coalesce(todo, self.max_fetch_blocks):
            self._start_fill(run)

    async def close(self) -> None:
        """Wait for background fills to finish (their errors are dropped)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

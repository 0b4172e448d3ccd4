"""Read-through: random reads fetch only what they touch; warm reads never fetch;
sequential reads prefetch ahead."""

from __future__ import annotations

import asyncio

import pytest

from cache_helpers import CountingFetch, object_bytes
from emrfs.cache.reader import CachedReader
from emrfs.cache.store import BlockStore, ObjectIdentity
from emrfs.errors import IntegrityError

BS = 64 * 1024


def make(dirs, data, max_pending_writes=1000, **kw):
    store = BlockStore(dirs, free_space_floor=0.0, max_pending_writes=max_pending_writes)
    fetch = CountingFetch(data)
    reader = CachedReader(
        store, ObjectIdentity("b/obj", len(data), etag="e"), fetch, block_size=BS, **kw
    )
    return store, fetch, reader


def test_random_reads_fetch_only_the_blocks_they_touch_and_warm_reads_never_fetch(dirs):
    data = object_bytes(20 * BS + 7)
    store, fetch, r = make(dirs, data, prefetch_blocks=4)

    async def go():
        # a Parquet footer: blocks 19-20, one fetch
        assert await r.read(len(data) - 100, 100) == data[-100:]
        assert await r.read(5 * BS + 3, 10) == data[5 * BS + 3 : 5 * BS + 13]
        assert await r.read(3 * BS - 1, 2) == data[3 * BS - 1 : 3 * BS + 1]
        assert await r.read(5 * BS + 20, 10) == data[5 * BS + 20 : 5 * BS + 30]  # not sequential
        await r.close()

    asyncio.run(go())
    assert fetch.calls == [(19 * BS, 20 * BS + 7), (5 * BS, 6 * BS), (2 * BS, 4 * BS)]
    n = len(fetch.calls)
    assert r.read_cached(3 * BS - 1, 2) == data[3 * BS - 1 : 3 * BS + 1]
    assert r.read_cached(0, 10) is None  # not cached: the sync path says so, fetches nothing
    again = CachedReader(store, r.identity, fetch, block_size=BS)
    assert asyncio.run(again.read(2 * BS, 2 * BS)) == data[2 * BS : 4 * BS]
    asyncio.run(again.close())
    assert len(fetch.calls) == n


def test_sequential_reads_prefetch_ahead_in_the_background(dirs):
    data = object_bytes(12 * BS, seed=4)
    _store, fetch, r = make(dirs, data, prefetch_blocks=3)

    async def go():
        out = bytearray()
        while len(out) < len(data):
            out += await r.read(len(out), BS // 2)
            await asyncio.sleep(0)
        await r.close()
        return bytes(out)

    assert asyncio.run(go()) == data
    assert fetch.bytes_fetched == len(data), "every byte fetched once"
    assert len(fetch.calls) < 12, "prefetch joined blocks into fewer fetches"
    assert r.read_cached(0, -1) == data


def test_a_short_fetch_is_an_error_naming_the_path(dirs):
    data = object_bytes(2 * BS)
    _store, fetch, r = make(dirs, data)
    fetch.data = data[:BS]  # the object shrank under us
    with pytest.raises(IntegrityError, match="b/obj"):
        asyncio.run(r.read(0, -1))
    assert r.read_cached(0, 10) is None, "nothing cached from the failed fetch"


def test_fetch_errors_propagate_and_do_not_poison_the_cache(dirs):
    data = object_bytes(2 * BS)
    store = BlockStore(dirs, free_space_floor=0.0)
    fail = [True]

    async def fetch(start, end):
        if fail[0]:
            raise ConnectionError("dropped")
        return data[start:end]

    r = CachedReader(store, ObjectIdentity("b/x", len(data), etag="e"), fetch, block_size=BS)
    with pytest.raises(ConnectionError):
        asyncio.run(r.read(0, 10))
    fail[0] = False
    assert asyncio.run(r.read(0, -1)) == data
    store.close()
    assert r.read_cached(0, -1) == data


def test_a_write_backlog_serves_reads_without_caching_them(dirs):
    data = object_bytes(4 * BS, seed=8)
    _store, _fetch, r = make(dirs, data, max_pending_writes=0, prefetch_blocks=0)
    assert asyncio.run(r.read(0, -1)) == data
    assert r.skipped_writes == 4
    assert r.read_cached(0, -1) is None


def test_prefetch_refills_half_a_window_at_a_time(dirs):
    data = object_bytes(16 * BS, seed=5)
    _store, fetch, r = make(dirs, data, prefetch_blocks=4)

    async def go():
        out = bytearray()
        while len(out) < len(data):
            out += await r.read(len(out), BS // 4)
            await asyncio.sleep(0)
        await r.close()
        return bytes(out)

    assert asyncio.run(go()) == data
    sizes = [(end - start) // BS for start, end in fetch.calls]
    assert sizes[0] == 1 and all(n >= 2 for n in sizes[1:-1]), sizes  # no 1-block trickle
    assert sum(sizes) == 16

"""The block store: capacity and LRU eviction, pins, crashes, corruption, invalidation."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time

import pytest

from cache_helpers import CountingFetch, object_bytes
from emrfs.cache.reader import CachedReader
from emrfs.cache.store import BlockId, BlockStore, ObjectIdentity

BS = 64 * 1024
FORK = multiprocessing.get_context("fork")


class StepClock:
    """Real time plus a step per call, so LRU touches are ordered and never throttled."""

    def __init__(self):
        self.n = 0

    def __call__(self) -> float:
        self.n += 1
        return time.time() + 10 * self.n


def block_files(store: BlockStore, space: str = "c") -> list[str]:
    return [p for d in range(len(store.directories)) for s, p, _, _ in store._scan(d) if s == space]


def read_all(store, ident, fetch, offset=0, length=-1):
    async def go():
        r = CachedReader(store, ident, fetch, block_size=BS, prefetch_blocks=0)
        try:
            return await r.read(offset, length)
        finally:
            await r.close()  # block writes finished

    return asyncio.run(go())


def test_eviction_keeps_usage_under_capacity_and_evicts_least_recently_used(tmp_path):
    one_block = BS + 200  # data + header
    store = BlockStore(
        [str(tmp_path / "c")], capacity_bytes=4 * one_block, free_space_floor=0.0, clock=StepClock()
    )
    data = object_bytes(8 * BS)
    ident = ObjectIdentity("b/k", len(data), etag="e1")
    fetch = CountingFetch(data)
    for i in range(3):
        assert read_all(store, ident, fetch, i * BS, BS) == data[i * BS : (i + 1) * BS]
    assert store.read(ident.block(0), 0, 10) == data[:10]  # block 0 is now the most recent
    store.close()  # release handles so eviction may take any block
    for i in range(3, 8):
        assert read_all(store, ident, fetch, i * BS, BS) == data[i * BS : (i + 1) * BS]
        store.close()
    c_bytes, _ = store.usage(0)
    assert c_bytes <= 4 * one_block
    assert sum(s.evictions for s in store.stats) >= 4
    assert store.contains(ident.block(7))
    assert not store.contains(ident.block(1))  # least recently used went first
    # Everything still reads right, evicted blocks being fetched again.
    before = len(fetch.calls)
    assert read_all(store, ident, fetch) == data
    assert len(fetch.calls) > before


def _pin_in_child(dirs, bid_fields, pinned, release):
    store = BlockStore(dirs, capacity_bytes=1 << 30, free_space_floor=0.0)
    with store.pin(BlockId(*bid_fields)) as present:
        assert present
        pinned.set()
        release.wait(30)


def test_pinned_blocks_survive_eviction_in_this_and_other_processes(tmp_path):
    dirs = [str(tmp_path / "c")]
    one_block = BS + 200
    store = BlockStore(dirs, capacity_bytes=3 * one_block, free_space_floor=0.0, clock=StepClock())
    data = object_bytes(10 * BS, seed=3)
    ident = ObjectIdentity("b/pinned", len(data), etag="x")
    fetch = CountingFetch(data)
    read_all(store, ident, fetch, 0, 2 * BS)  # blocks 0 and 1, the oldest
    b0, b1 = ident.block(0), ident.block(1)
    pinned, release = FORK.Event(), FORK.Event()
    child = FORK.Process(
        target=_pin_in_child, args=(dirs, (b1.space, b1.owner, b1.tag, b1.index), pinned, release)
    )
    child.start()
    try:
        assert pinned.wait(30)
        with store.pin(b0):
            for i in range(2, 10):
                read_all(store, ident, fetch, i * BS, BS)
            assert store.contains(b0), "pinned here"
            assert store.contains(b1), "pinned by another process"
            assert sum(s.evictions for s in store.stats) > 0
    finally:
        release.set()
        child.join(30)
    store.close()
    read_all(store, ident, fetch, 9 * BS, BS)
    store.evict(0, target=0)
    assert not store.contains(b0) and not store.contains(b1)


def _reader_process(dirs, size, seed, rounds, out):
    data = object_bytes(size, seed)
    store = BlockStore(dirs, capacity_bytes=12 * (BS + 200), free_space_floor=0.0, max_open=4)
    ident = ObjectIdentity("b/shared", size, etag="v1")
    rng = __import__("random").Random(os.getpid())
    bad = 0

    async def fetch(start, end):
        await asyncio.sleep(0)
        return data[start:end]

    async def go():
        nonlocal bad
        r = CachedReader(store, ident, fetch, block_size=BS, prefetch_blocks=2)
        for _ in range(rounds):
            off = rng.randrange(size)
            n = rng.randrange(1, 3 * BS)
            if await r.read(off, n) != data[off : off + n]:
                bad += 1
            got = r.read_cached(off, n)
            if got is not None and got != data[off : off + n]:
                bad += 1
        await r.close()

    asyncio.run(go())
    store.close()
    out.put((bad, sum(s.hits for s in store.stats)))


def test_four_processes_reading_one_object_through_one_cache_always_get_the_right_bytes(dirs):
    size = 40 * BS + 123
    out = FORK.Queue()
    procs = [FORK.Process(target=_reader_process, args=(dirs, size, 7, 150, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert [bad for bad, _ in results] == [0, 0, 0, 0]
    assert all(hits > 0 for _, hits in results)  # they did share the cache
    # No temp files left behind, and nothing half-written was served.
    assert all(not os.listdir(os.path.join(d, "tmp")) for d in dirs)


def _fill_and_hang(dirs, bid_fields, half, started):
    store = BlockStore(dirs, free_space_floor=0.0)

    def pieces():
        yield half
        started.set()
        time.sleep(60)
        yield half

    store.put(BlockId(*bid_fields), pieces(), length=2 * len(half))


def test_a_fill_killed_half_way_is_never_served(dirs):
    data = object_bytes(2 * BS, seed=5)
    ident = ObjectIdentity("b/killed", len(data), etag="x")
    bid = ident.block(0)
    started = FORK.Event()
    child = FORK.Process(
        target=_fill_and_hang,
        args=(dirs, (bid.space, bid.owner, bid.tag, bid.index), data[:BS], started),
    )
    child.start()
    assert started.wait(30)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    store = BlockStore(dirs, free_space_floor=0.0)
    leftovers = [f for d in dirs for f in os.listdir(os.path.join(d, "tmp"))]
    assert leftovers == [], "the dead writer's temp file is cleaned up on open"
    assert store.read(bid) is None
    fetch = CountingFetch(data)
    # A block renamed into place but cut short (a torn write) is refused too.
    assert store.put(bid, data[:BS])
    path = store.block_path(bid, store.placements(bid)[0])
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1000)
    store.close()
    got = asyncio.run(_read(store, ident, fetch, 0, 2 * BS))
    assert got == data and fetch.calls == [(0, 2 * BS)]


async def _read(store, ident, fetch, offset, length):
    r = CachedReader(store, ident, fetch, block_size=2 * BS, prefetch_blocks=0)
    try:
        return await r.read(offset, length)
    finally:
        await r.close()


def test_corrupt_block_is_detected_by_checksum_and_fetched_again(dirs):
    data = object_bytes(3 * BS, seed=9)
    ident = ObjectIdentity("b/corrupt", len(data), etag="x")
    store = BlockStore(dirs, free_space_floor=0.0)
    fetch = CountingFetch(data)
    assert read_all(store, ident, fetch) == data
    store.close()
    path = store.block_path(ident.block(1), store.placements(ident.block(1))[0])
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) - BS // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x40]))
    calls = len(fetch.calls)
    assert read_all(store, ident, fetch, BS + 10, BS) == data[BS + 10 : 2 * BS + 10]
    assert fetch.calls[calls:] == [(BS, 2 * BS)]
    assert sum(s.corruptions for s in store.stats) == 1
    assert read_all(store, ident, fetch) == data
    assert len(fetch.calls) == calls + 1
    # Aligned reads take another path (pread, not the map): checked all the same.
    store.close()
    path2 = store.block_path(ident.block(2), store.placements(ident.block(2))[0])
    with open(path2, "r+b") as f:
        f.seek(-1, 2)
        byte = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([byte[0] ^ 1]))
    assert store.read(ident.block(2), 0, BS) is None
    assert sum(s.corruptions for s in store.stats) == 2


def test_new_etag_never_serves_old_bytes_and_drops_old_blocks(dirs):
    v1, v2 = object_bytes(3 * BS, seed=1), object_bytes(2 * BS + 5, seed=2)
    store = BlockStore(dirs, free_space_floor=0.0)
    old = ObjectIdentity("b/over", len(v1), etag='"1"')
    assert read_all(store, old, CountingFetch(v1)) == v1
    new = ObjectIdentity("b/over", len(v2), etag='"2"')
    fetch2 = CountingFetch(v2)
    assert read_all(store, new, fetch2) == v2
    assert fetch2.calls, "the new version was fetched, not served from old blocks"
    assert all(os.path.basename(p).startswith(new.tag) for p in block_files(store))
    # Same size and a new version id only: still a different identity.
    assert (
        ObjectIdentity("b/over", 5, etag="a", version_id="1").tag
        != ObjectIdentity("b/over", 5, etag="a", version_id="2").tag
    )
    assert store.drop_owner("c", new.owner) == 3
    assert block_files(store) == []


def test_free_space_floor_refuses_cache_writes_but_reads_still_work(dirs):
    store = BlockStore(dirs, free_space_floor=0.999999, capacity_bytes=1 << 40)
    data = object_bytes(2 * BS)
    ident = ObjectIdentity("b/full", len(data), etag="x")
    assert read_all(store, ident, CountingFetch(data)) == data
    assert block_files(store) == []
    with pytest.raises(OSError, match="no room"):
        store.put(BlockId("e", "f" * 32, "0", 0), b"x", evictable=False)


def test_constructor_rejects_bad_options(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        BlockStore([])
    with pytest.raises(ValueError, match="twice"):
        BlockStore([str(tmp_path), str(tmp_path)])
    with pytest.raises(ValueError, match="free_space_floor"):
        BlockStore([str(tmp_path)], free_space_floor=1.5)


def test_a_directory_where_a_block_should_be_is_a_miss_and_fetched_again(dirs):
    data = object_bytes(2 * BS, seed=13)
    ident = ObjectIdentity("b/dir-in-the-way", len(data), etag="x")
    store = BlockStore(dirs, free_space_floor=0.0)
    fetch = CountingFetch(data)
    assert read_all(store, ident, fetch) == data
    store.close()
    path = store.block_path(ident.block(1), store.placements(ident.block(1))[0])
    os.unlink(path)
    os.makedirs(os.path.join(path, "junk"))  # a directory (not empty) stands there now
    assert not store.contains(ident.block(1))  # so read-ahead fetches it again too
    calls = len(fetch.calls)
    assert read_all(store, ident, fetch) == data
    assert fetch.calls[calls:] == [(BS, 2 * BS)]
    assert os.path.isfile(path)  # the refetched block took its place
    assert read_all(store, ident, fetch) == data and len(fetch.calls) == calls + 1
    # a block written over a directory (no read in between) takes its place too
    bid = BlockId("c", "ab" * 16, "t", 0)
    target = store.block_path(bid, store.placements(bid)[0])
    os.makedirs(target)
    assert store.put(bid, b"payload")
    assert store.read(bid) == b"payload"


def test_cache_directories_are_0700_whatever_the_umask(tmp_path):
    old = os.umask(0o002)  # a permissive umask: 0775 directories by default
    try:
        root = tmp_path / "nested" / "cache"
        store = BlockStore([str(root)], free_space_floor=0.0)
        data = object_bytes(BS, seed=3)
        read_all(store, ObjectIdentity("b/perm", len(data), etag="x"), CountingFetch(data))
        store.put(BlockId("e", "cd" * 16, "0", 0), b"tier", evictable=False)
        store.close()
    finally:
        os.umask(old)
    created = [str(tmp_path / "nested")] + [
        os.path.join(top, d) for top, subdirs, _ in os.walk(tmp_path / "nested") for d in subdirs
    ]
    assert len(created) >= 8  # nested, cache, tmp, c, c/<h2>, c/<owner>, e, e/<h2>, e/<owner>
    modes = {d: oct(os.stat(d).st_mode & 0o777) for d in created}
    assert set(modes.values()) == {"0o700"}, modes
    blocks = block_files(store, "c") + block_files(store, "e")
    assert blocks and {oct(os.stat(b).st_mode & 0o777) for b in blocks} == {"0o600"}

"""The router (RoutingStore): the store contract on each side, and what needs both sides,
checked past it (the memory store's objects and the tier's files read directly)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from emrfs.cache.ephemeral import EphemeralTier
from emrfs.cache.matching import is_ephemeral
from emrfs.cache.routing import RoutingStore
from emrfs.cache.store import BlockStore
from emrfs.cache.tierstore import TierStore
from emrfs.store import MemoryStore
from emrfs.testing.store import StoreTests

BS = 64 * 1024
PART = 1000


def in_tier(path: str) -> bool:
    return is_ephemeral(path, ("_temporary", ".spark-staging-*"), ("tierbkt",))


class RoutedStack:
    """A RoutingStore over a MemoryStore and a TierStore, for the tests below."""

    def __init__(self, dirs, *, page_size: int = 1000):
        self.memory = MemoryStore(min_part_size=PART, page_size=page_size)
        self.tier = EphemeralTier(BlockStore(dirs, free_space_floor=0.0), block_size=BS)
        self.store = RoutingStore(
            self.memory, TierStore(self.tier, page_size=100), in_tier, copy_part_size=PART
        )

    def close(self) -> None:
        self.tier.terminate()
        self.tier.store.close()


class _Routed(StoreTests):
    part_size = PART + 1

    @pytest.fixture
    def store(self, dirs):
        self.stack = RoutedStack(dirs)
        self.memory, self.tier = self.stack.memory, self.stack.tier
        yield self.stack.store
        self.stack.close()


class TestPersistentSide(_Routed):
    @pytest.fixture
    def root(self, store) -> str:
        self.memory.create_bucket("bucket")
        return "bucket"

    def raw_put(self, path: str, data: bytes, metadata: Mapping[str, str] | None = None) -> None:
        self.memory.place(path, data, metadata)

    def raw_get(self, path: str) -> bytes:
        found = self.memory.stored(path)
        if found is None:
            raise FileNotFoundError(path)
        return found.data

    def raw_metadata(self, path: str) -> dict[str, str]:
        found = self.memory.stored(path)
        assert found is not None
        return dict(found.metadata)

    def raw_open_uploads(self, bucket: str) -> list[str]:
        return self.memory.open_uploads(bucket)


class TestTierSide(_Routed):
    many_keys = 110  # beyond one page of 100 (each tier file costs a few disk operations)

    @pytest.fixture
    def root(self, store) -> str:
        self.tier.mkdir("tierbkt")
        return "tierbkt"

    def raw_put(self, path: str, data: bytes, metadata: Mapping[str, str] | None = None) -> None:
        extra = {"metadata": {k.lower(): v for k, v in (metadata or {}).items()}}
        with self.tier.open_write(path, extra=extra) as w:
            w.write(data)

    def raw_get(self, path: str) -> bytes:
        if self.tier.isdir(path):
            raise FileNotFoundError(path)
        return self.tier.read_bytes(path)

    def raw_metadata(self, path: str) -> dict[str, str]:
        return dict(self.tier.manifest(path).get("metadata") or {})


@pytest.fixture
def routed(dirs):
    stack = RoutedStack(dirs, page_size=2)  # small pages: the merge crosses page bounds
    stack.memory.create_bucket("bkt")
    yield stack
    stack.close()


def run(coro):
    return asyncio.run(coro)


async def listing(store, prefix, delimiter=None):
    objects, prefixes = [], []
    async for page in store.list(prefix, delimiter=delimiter):
        objects += [o.path for o in page.objects]
        prefixes += page.prefixes
    return objects, prefixes


def test_tier_paths_never_reach_the_persistent_store(routed):
    store = routed.store
    run(store.put("bkt/job/_temporary/0/part-0", b"intermediate"))
    writer = run(store.writer("bkt/job/.spark-staging-1/part-1"))
    run(writer.write_part(1, b"staged"))
    run(writer.complete())
    assert routed.memory.stored("bkt/job/_temporary/0/part-0") is None
    assert routed.memory.stored("bkt/job/.spark-staging-1/part-1") is None
    assert routed.tier.read_bytes("bkt/job/_temporary/0/part-0") == b"intermediate"
    assert routed.tier.read_bytes("bkt/job/.spark-staging-1/part-1") == b"staged"
    assert run(store.get_range("bkt/job/_temporary/0/part-0", 5)) == b"mediate"


def test_listings_merge_both_sides_in_key_order(routed):
    store, memory = routed.store, routed.memory
    for key in ("job/_SUCCESS", "job/a", "job/part-0", "job/z/x", "other"):
        memory.place(f"bkt/{key}", key.encode())
    run(store.put("bkt/job/_temporary/0/t", b"t"))
    run(store.put("bkt/job/b_temporary", b"persistent: not a tier segment"))
    run(store.put("bkt/job/z/_temporary/y", b"y"))
    objects, prefixes = run(listing(store, "bkt/job/", "/"))
    assert objects == ["bkt/job/_SUCCESS", "bkt/job/a", "bkt/job/b_temporary", "bkt/job/part-0"]
    assert prefixes == ["bkt/job/_temporary/", "bkt/job/z/"]  # z/ on both sides: once
    objects, prefixes = run(listing(store, "bkt/"))
    assert objects == sorted(objects) and prefixes == []
    assert objects == [
        "bkt/job/_SUCCESS",
        "bkt/job/_temporary/0/t",
        "bkt/job/a",
        "bkt/job/b_temporary",
        "bkt/job/part-0",
        "bkt/job/z/_temporary/y",
        "bkt/job/z/x",
        "bkt/other",
    ]
    assert run(listing(store, "bkt/", "/")) == (["bkt/other"], ["bkt/job/"])
    assert run(listing(store, "bkt/nothing/")) == ([], [])


def test_copies_between_the_sides_stream_in_parts_and_keep_metadata(routed):
    store, memory, tier = routed.store, routed.memory, routed.tier
    data = bytes(range(256)) * 20  # 5 parts of PART and a bit
    run(store.put("bkt/job/_temporary/0/big", data, metadata={"Origin": "task"}))
    out = run(store.copy("bkt/job/_temporary/0/big", "bkt/job/big"))
    stored = memory.stored("bkt/job/big")
    assert stored is not None and stored.data == data and out.size == len(data)
    assert dict(stored.metadata) == {"origin": "task"}
    assert stored.etag.endswith('-6"')  # a multipart write: memory stays at one part
    run(store.copy("bkt/job/big", "bkt/job/_temporary/1/back", metadata={"k": "v"}))
    assert tier.read_bytes("bkt/job/_temporary/1/back") == data
    assert tier.manifest("bkt/job/_temporary/1/back")["metadata"] == {"k": "v"}
    run(store.copy("bkt/job/_temporary/1/back", "bkt/job/_temporary/2/same-side"))
    assert memory.stored("bkt/job/_temporary/2/same-side") is None
    assert tier.read_bytes("bkt/job/_temporary/2/same-side") == data
    run(store.put("bkt/job/_temporary/0/small", b"tiny"))
    run(store.copy("bkt/job/_temporary/0/small", "bkt/job/small"))
    assert memory.stored("bkt/job/small").data == b"tiny"


def test_deletes_go_to_the_side_that_holds_each_path(routed):
    store, memory, tier = routed.store, routed.memory, routed.tier
    memory.place("bkt/job/part-0", b"p")
    run(store.put("bkt/job/_temporary/0/t", b"t"))
    gone = run(store.delete(["bkt/job/part-0", "bkt/job/_temporary/0/t", "bkt/job/missing"]))
    assert sorted(gone.deleted) == [
        "bkt/job/_temporary/0/t",
        "bkt/job/missing",
        "bkt/job/part-0",
    ]
    assert memory.stored("bkt/job/part-0") is None
    assert not tier.exists("bkt/job/_temporary/0/t")


def test_a_short_listing_finds_what_hides_behind_persistent_objects_at_tier_paths(routed):
    """S3 keys under a tier pattern (written while the tier was off) are not listed; a
    listing asked for its first entry (a directory probe) must still find the persistent
    ones after them.  Before, ``d`` with ``d/_temporary/old`` and ``d/kept`` in S3 and
    nothing in the tier probed empty, so ``info(d)`` said not found and ``rm -r d`` left
    both keys in S3."""
    store, memory = routed.store, routed.memory
    for key in ("d/_temporary/a", "d/_temporary/b", "d/_temporary/c", "d/kept"):
        memory.place(f"bkt/{key}", b"x")

    async def first(prefix: str, limit: int) -> list[str]:
        found = []
        async for page in store.list(prefix, limit=limit):
            found += [o.path for o in page.objects] + page.prefixes
        return found

    assert run(first("bkt/d/", 1)) == ["bkt/d/kept"]
    assert run(first("bkt/", 2)) == ["bkt/d/kept"]

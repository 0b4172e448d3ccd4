"""The store contract suite over MemoryStore, and what is MemoryStore's own."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from emrfs.store import MemoryStore
from emrfs.store.memory import StoredObject
from emrfs.testing.store import StoreTests


class TestMemoryStore(StoreTests):
    @pytest.fixture
    def store(self) -> MemoryStore:
        self.memory = MemoryStore(versioned=True)
        return self.memory

    @pytest.fixture
    def root(self, store) -> str:
        self.memory.create_bucket("bucket")
        return "bucket"

    def _found(self, path: str) -> StoredObject:
        found = self.memory.stored(path)
        if found is None:
            raise FileNotFoundError(path)
        return found

    def raw_put(self, path: str, data: bytes, metadata: Mapping[str, str] | None = None) -> None:
        self.memory.place(path, data, metadata)

    def raw_get(self, path: str) -> bytes:
        return self._found(path).data

    def raw_metadata(self, path: str) -> dict[str, str]:
        return dict(self._found(path).metadata)

    def raw_open_uploads(self, bucket: str) -> list[str]:
        return self.memory.open_uploads(bucket)


def _run(coro):
    return asyncio.run(coro)


def test_buckets_are_created_on_first_put_unless_turned_off():
    store = MemoryStore()
    _run(store.put("new-bucket/k", b"v"))
    assert store.stored("new-bucket/k").data == b"v"
    strict = MemoryStore(auto_create_buckets=False)
    with pytest.raises(FileNotFoundError, match="emrfs mb"):
        _run(strict.put("nope/k", b"v"))
    strict.create_bucket("yes")
    _run(strict.put("yes/k", b"v"))


def test_etags_are_s3s():
    store = MemoryStore()
    meta = _run(store.put("b/k", b"hello"))
    assert meta.etag == '"5d41402abc4b2a76b9719d911017c592"'  # md5("hello"), quoted

    async def two_parts():
        writer = await store.writer("b/m")
        await writer.write_part(1, b"a" * store.min_part_size)
        await writer.write_part(2, b"b")
        return await writer.complete()

    assert _run(two_parts()).etag.endswith('-2"')


def test_small_parts_before_the_last_are_refused_and_leave_nothing_open():
    store = MemoryStore()

    async def small():
        writer = await store.writer("b/m")
        await writer.write_part(1, b"short")
        await writer.write_part(2, b"end")
        await writer.complete()

    with pytest.raises(ValueError, match="smaller than"):
        _run(small())
    assert store.stored("b/m") is None and store.open_uploads("b") == []


def test_listing_pages_hold_page_size_entries():
    store = MemoryStore(page_size=2)
    for k in "abcde":
        _run(store.put(f"b/{k}", b""))

    async def pages():
        return [p async for p in store.list("b/")]

    assert [len(p.objects) for p in _run(pages())] == [2, 2, 1]


def test_bad_bucket_names_and_page_sizes_are_refused():
    with pytest.raises(ValueError, match="page_size"):
        MemoryStore(page_size=0)
    with pytest.raises(ValueError, match="without '/'"):
        MemoryStore().create_bucket("a/b")


class TestWrapperStoreForwardsEveryVerb(TestMemoryStore):
    """A layer that changes nothing passes the contract its inner store passes."""

    @pytest.fixture
    def store(self):
        from emrfs.store import WrapperStore

        self.memory = MemoryStore(versioned=True)
        return WrapperStore(self.memory)


def test_a_layer_that_changes_reads_but_not_get_is_asked_through_its_own_reads():
    """``get`` forwarded past a layer that overrides ``get_range`` (decryption, a cache)
    would hand out what the layer exists to change: the layer's reads answer it instead."""
    from emrfs.store import WrapperStore

    class Shouting(WrapperStore):
        async def get_range(self, path, start=0, end=None, *, if_match=None):
            return (await self.inner.get_range(path, start, end, if_match=if_match)).upper()

    class Transparent(WrapperStore):
        pass

    memory = MemoryStore()
    memory.place("b/k", b"quiet", {"m": "1"})
    meta, data = _run(Shouting(memory).get("b/k", 1))
    assert (data, meta.size, dict(meta.metadata)) == (b"UIET", 5, {"m": "1"})
    assert _run(Transparent(Shouting(memory)).get("b/k"))[1] == b"QUIET"
    assert _run(Transparent(memory).get("b/k"))[1] == b"quiet"

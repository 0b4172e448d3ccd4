"""The block cache as a layer (CachingStore): the store contract, and what the layer adds,
checked past it (calls counted on the store below, block files read off the disk)."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Mapping

import pytest

from cache_helpers import object_bytes
from emrfs.cache.caching import CachingStore
from emrfs.cache.store import BlockStore
from emrfs.errors import ChangedError
from emrfs.store import MemoryStore
from emrfs.store.memory import StoredObject
from emrfs.testing.store import StoreTests

BS = 64 * 1024


class CountingMemoryStore(MemoryStore):
    """A MemoryStore that counts the verbs the layer above sends it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: Counter[str] = Counter()

    async def head(self, path):
        self.calls["head"] += 1
        return await super().head(path)

    async def get_range(self, path, start=0, end=None, *, if_match=None):
        self.calls["get_range"] += 1
        return await super().get_range(path, start, end, if_match=if_match)

    async def get(self, path, start=0, end=None, *, if_match=None):
        self.calls["get"] += 1
        return await super().get(path, start, end, if_match=if_match)

    def get_stream(self, path, start=0, end=None, *, if_match=None, chunk_size=8 << 20):
        self.calls["get_stream"] += 1
        return super().get_stream(path, start, end, if_match=if_match, chunk_size=chunk_size)


def block_store(dirs) -> BlockStore:
    return BlockStore(dirs, free_space_floor=0.0)


class TestCachingStoreOverMemory(StoreTests):
    #: the layer serves the version it saw last; a write past it is seen at its next head
    remembers_versions = True

    @pytest.fixture
    def store(self, dirs):
        self.memory = MemoryStore(versioned=True)
        blocks = block_store(dirs)
        yield CachingStore(self.memory, blocks, block_size=4096)
        blocks.close()

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


@pytest.fixture
def layer(dirs):
    below = CountingMemoryStore()
    blocks = block_store(dirs)
    yield CachingStore(below, blocks, block_size=BS, prefetch_blocks=0), below
    blocks.close()


def block_files(dirs) -> list[str]:
    found = []
    for d in dirs:
        for root, _, files in os.walk(os.path.join(d, "c")):
            found.extend(os.path.join(root, f) for f in files)
    return found


def raw_block_bytes(dirs) -> bytes:
    out = b""
    for name in block_files(dirs):
        with open(name, "rb") as f:
            out += f.read()
    return out


def test_a_second_read_of_a_range_asks_nothing_below(layer, dirs):
    store, below = layer
    data = object_bytes(3 * BS + 100)
    below.place("b/k", data)

    async def go():
        first = await store.get_range("b/k", 1000, 2 * BS + 10)
        calls = dict(below.calls)
        second = await store.get_range("b/k", 1000, 2 * BS + 10)
        inside = await store.get_range("b/k", BS, BS + 5)  # within blocks already read
        return first, calls, second, inside

    first, calls, second, inside = asyncio.run(go())
    assert first == second == data[1000 : 2 * BS + 10] and inside == data[BS : BS + 5]
    assert calls == {"get": 1}  # a path not seen yet: one GET of its 3 blocks tells the version
    assert below.calls == Counter(calls)  # the second and third reads: nothing below
    assert len(block_files(dirs)) == 3


def test_streams_read_through_and_a_second_stream_asks_nothing_below(layer):
    store, below = layer
    data = object_bytes(5 * BS + 7)
    below.place("b/s", data)

    async def stream():
        return b"".join([c async for c in store.get_stream("b/s", 10, chunk_size=BS)])

    assert asyncio.run(stream()) == data[10:]
    calls = dict(below.calls)
    assert asyncio.run(stream()) == data[10:]
    assert below.calls == Counter(calls) and "get_stream" not in below.calls


def test_an_object_replaced_below_is_never_served_from_old_blocks_once_its_etag_differs(layer):
    store, below = layer
    old, new = object_bytes(2 * BS, seed=1), object_bytes(2 * BS, seed=2)
    below.place("b/v", old)

    async def go():
        assert await store.get_range("b/v", 0, 100) == old[:100]
        first_etag = (await store.head("b/v")).etag
        below.place("b/v", new)  # past the layer
        # a pinned read of the old version hears of the change from the store below
        reads_before = below.calls["get_range"]
        head = await store.head("b/v")  # the layer learns the new ETag
        assert head.etag != first_etag
        assert await store.get_range("b/v", 0, 100) == new[:100]
        assert await store.get_range("b/v", 0, 100, if_match=head.etag) == new[:100]
        assert below.calls["get_range"] == reads_before + 1
        with pytest.raises(ChangedError):
            await store.get_range("b/v", 0, 100, if_match=first_etag)

    asyncio.run(go())


def test_a_pinned_read_of_a_version_the_layer_does_not_know_looks_below(layer):
    store, below = layer
    below.place("b/p", b"one" * 1000)

    async def go():
        assert await store.get_range("b/p", 0, 3) == b"one"
        below.place("b/p", b"two" * 1000)
        new = below.stored("b/p").etag
        # pinned to the new version: the layer knows the old one, so it looks again
        assert await store.get_range("b/p", 0, 3, if_match=new) == b"two"
        assert await store.get_range("b/p", 3, 6) == b"two"  # and keeps the new one

    asyncio.run(go())


def test_a_version_changed_under_a_fill_is_re_read_when_unpinned(layer):
    store, below = layer
    below.place("b/r", b"a" * 10)

    async def go():
        await store.head("b/r")  # the layer knows version a
        below.place("b/r", b"b" * 10)  # changed past it before any block is filled
        assert await store.get_range("b/r", 0, 5) == b"bbbbb"  # the fill refused, looked again
        with pytest.raises(ChangedError):
            below.place("b/r", b"c" * 10)
            await store.get_range("b/r", 0, 10, if_match='"nope"')

    asyncio.run(go())


@pytest.mark.parametrize("verb", ["put", "writer", "copy", "delete", "complete_staged"])
def test_every_write_through_the_layer_drops_the_blocks_of_what_was_there(layer, dirs, verb):
    store, below = layer
    below.min_part_size = 1
    old = object_bytes(2 * BS, seed=3)
    below.place("b/w", old)
    below.place("b/src", b"copied bytes")

    async def go():
        assert await store.get_range("b/w") == old
        assert len(block_files(dirs)) == 2
        if verb == "put":
            await store.put("b/w", b"new bytes")
        elif verb == "copy":
            await store.copy("b/src", "b/w")
        elif verb == "delete":
            assert list((await store.delete(["b/w"])).deleted) == ["b/w"]
        else:
            writer = await store.writer("b/w")
            await writer.write_part(1, b"new ")
            await writer.write_part(2, b"bytes")
            if verb == "writer":
                await writer.complete()
            else:
                await store.complete_staged(await writer.stage())
        assert block_files(dirs) == []
        if verb == "delete":
            with pytest.raises(FileNotFoundError):
                await store.get_range("b/w")
        else:
            assert await store.get_range("b/w") == below.stored("b/w").data != old

    asyncio.run(go())


def test_a_sealing_layer_keeps_plaintext_off_the_disk(dirs):
    """A CSE path's plaintext (what the encryption layer below hands over) is sealed at
    rest; the same bytes through an unsealed layer are on disk as they are (the check
    can fail)."""
    secret = b"card=4111-1111-1111-1111;" * (2 * BS // 25)

    def cached_bytes(seal) -> bytes:
        below = MemoryStore()
        below.place("b/secret", secret)
        blocks = block_store(dirs)
        store = CachingStore(below, blocks, block_size=BS, seal=seal)
        try:
            assert asyncio.run(store.get_range("b/secret")) == secret
            assert asyncio.run(store.get_range("b/secret", 5, 50)) == secret[5:50]
        finally:
            blocks.close()
        on_disk = raw_block_bytes(dirs)
        for name in block_files(dirs):
            os.unlink(name)
        return on_disk

    assert b"card=4111" in cached_bytes(False)
    sealed = cached_bytes(lambda path: path == "b/secret")
    assert sealed and b"card=4111" not in sealed and b"4111-1111" not in sealed


def test_bad_input_is_refused_naming_the_path(layer):
    store, below = layer
    below.place("b/x", b"abc")
    with pytest.raises(ValueError, match="b/x"):
        asyncio.run(store.get_range("b/x", -1))
    with pytest.raises(ValueError, match="block_size"):
        CachingStore(below, store.blocks, block_size=0)


def test_over_the_encryption_layer_blocks_hold_sealed_plaintext_apart_from_ciphertext(dirs):
    """The stack's order (cache over CSE over the store): the cache holds what the CSE
    layer hands it, plaintext, so it seals it; a cache over the raw store reading the
    same object (same path and ETag) keeps its ciphertext blocks apart (the stamp)."""
    import base64

    from emrfs.config import CSEOptions
    from emrfs.crypto.store import EncryptingStore

    cse = CSEOptions(
        enabled=True,
        materials_provider="emrfs.crypto.keys:AesKeyProvider",
        aes_key=base64.b64encode(bytes(range(32))).decode(),
    )
    secret = b"salary=123456;" * (3 * BS // 14)
    memory = MemoryStore()
    blocks = block_store(dirs)
    plain_side = CachingStore(
        EncryptingStore(memory, cse), blocks, block_size=BS, seal=True, stamp="cse"
    )
    raw_side = CachingStore(memory, blocks, block_size=BS)
    try:
        asyncio.run(plain_side.put("b/enc", secret))
        assert b"salary=" not in memory.stored("b/enc").data  # encrypted below
        assert asyncio.run(plain_side.get_range("b/enc", 3, 2 * BS)) == secret[3 : 2 * BS]
        assert block_files(dirs) and b"salary=" not in raw_block_bytes(dirs)
        stored = memory.stored("b/enc").data
        assert asyncio.run(raw_side.get_range("b/enc")) == stored  # ciphertext, not plaintext
        assert asyncio.run(plain_side.get_range("b/enc")) == secret  # and the reverse
        assert b"salary=" not in raw_block_bytes(dirs)
    finally:
        blocks.close()


def test_a_first_ranged_read_over_the_encryption_layer_fetches_only_what_its_format_needs(dirs):
    """A cached CSE path never seen before: the cache's first read asks the encryption
    layer for a range with its version, which reads the version by a HEAD and the range
    by its format (a few segments), never the stored bytes at the block's offsets too."""
    import base64

    from emrfs.config import CSEOptions
    from emrfs.crypto.store import EncryptingStore

    cse = CSEOptions(
        enabled=True,
        materials_provider="emrfs.crypto.keys:AesKeyProvider",
        aes_key=base64.b64encode(bytes(range(32))).decode(),
        format="segmented",
        segment_size=4096,
    )

    class Fetched(CountingMemoryStore):
        got = 0

        async def get_range(self, path, start=0, end=None, *, if_match=None):
            data = await super().get_range(path, start, end, if_match=if_match)
            self.got += len(data)
            return data

        async def get(self, path, start=0, end=None, *, if_match=None):
            meta, data = await super().get(path, start, end, if_match=if_match)
            self.got += len(data)
            return meta, data

    below = Fetched()
    below.create_bucket("b")
    encrypting = EncryptingStore(below, cse)
    data = object_bytes(4 * BS)
    asyncio.run(encrypting.put("b/s", data))
    below.calls.clear()
    blocks = block_store(dirs)
    store = CachingStore(encrypting, blocks, block_size=BS, seal=True)
    try:
        got = asyncio.run(store.get_range("b/s", BS + 10, BS + 20))
    finally:
        blocks.close()
    assert got == data[BS + 10 : BS + 20]
    assert below.calls["head"] == 1 and below.calls["get"] == 0
    assert below.got <= BS + 2 * (4096 + 16)  # the block's segments, nothing twice

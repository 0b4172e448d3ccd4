"""The ephemeral tier as a store (TierStore): the store contract, and the tier's own rules,
checked past the store (the tier's files read and written directly, its disk scanned)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

import pytest

from emrfs.cache.ephemeral import EphemeralTier
from emrfs.cache.store import BlockStore
from emrfs.cache.tierstore import TierStore
from emrfs.errors import ChangedError
from emrfs.testing.store import StoreTests

BS = 64 * 1024


def make_tier(dirs, **kwargs) -> EphemeralTier:
    return EphemeralTier(BlockStore(dirs, free_space_floor=0.0), block_size=BS, **kwargs)


class TestTierStore(StoreTests):
    part_size = BS + 3  # the tier takes parts of any size; a block and a bit crosses blocks
    many_keys = 110  # beyond one page of 100 (each tier file costs a few disk operations)
    has_buckets = False  # a tier path's first segment is only a name

    @pytest.fixture
    def store(self, dirs):
        self.tier = make_tier(dirs)
        yield TierStore(self.tier, page_size=100)
        self.tier.terminate()
        self.tier.store.close()

    @pytest.fixture
    def root(self, store) -> str:
        self.tier.mkdir("bucket")
        return "bucket"

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
def tier_store(dirs):
    tier = make_tier(dirs)
    tier.mkdir("bkt")
    yield TierStore(tier), tier
    tier.terminate()
    tier.store.close()


def run(coro):
    return asyncio.run(coro)


async def listing(store, prefix, delimiter=None):
    objects, prefixes = [], []
    async for page in store.list(prefix, delimiter=delimiter):
        objects += [o.path for o in page.objects]
        prefixes += page.prefixes
    return objects, prefixes


def test_markers_are_the_tiers_directories(tier_store):
    store, tier = tier_store
    run(store.put("bkt/d/", b""))
    assert tier.isdir("bkt/d")
    assert run(store.head("bkt/d/")).size == 0
    assert run(listing(store, "bkt/")) == (["bkt/d/"], [])
    assert run(listing(store, "bkt/", "/")) == ([], ["bkt/d/"])
    assert run(listing(store, "bkt/d/", "/")) == (["bkt/d/"], [])
    run(store.put("bkt/d/f", b"x"))  # a child: the directory is implied by it now
    with pytest.raises(FileNotFoundError):
        run(store.head("bkt/d/"))
    assert run(listing(store, "bkt/")) == (["bkt/d/f"], [])
    run(store.delete(["bkt/d/"]))  # the namespace clearing the marker: children keep it
    assert tier.read_bytes("bkt/d/f") == b"x"
    run(store.delete(["bkt/d/f"]))  # the last child gone: nothing stays behind, as in S3
    assert not tier.exists("bkt/d") and tier.isdir("bkt")
    with pytest.raises(ValueError, match="marker"):
        run(store.put("bkt/e/", b"body"))


def test_a_file_and_a_directory_of_one_name_are_refused_naming_the_path(tier_store):
    store, tier = tier_store
    run(store.put("bkt/x/y", b"1"))
    with pytest.raises(IsADirectoryError, match="bkt/x"):
        run(store.put("bkt/x", b"2"))
    with pytest.raises(NotADirectoryError, match="bkt/x/y"):
        run(store.put("bkt/x/y/z", b"3"))
    with pytest.raises(FileNotFoundError):
        run(store.head("bkt/x"))  # a directory is no object
    assert tier.read_bytes("bkt/x/y") == b"1"


def test_every_write_is_a_new_etag_and_pinned_reads_refuse_the_old_one(tier_store):
    store, tier = tier_store
    first = run(store.put("bkt/v", b"same"))
    second = run(store.put("bkt/v", b"same"))
    assert first.etag != second.etag  # a new file id, even for the same bytes
    with pytest.raises(ChangedError):
        run(store.get_range("bkt/v", if_match=first.etag))
    copied = run(store.copy("bkt/v", "bkt/w"))
    assert copied.etag not in (first.etag, second.etag) and tier.read_bytes("bkt/w") == b"same"


def test_tier_files_of_paths_that_must_be_sealed_are_not_on_disk_in_plaintext(dirs):
    secret = b"plaintext-of-a-cse-path;" * 5000
    tier = make_tier(dirs, must_seal=lambda path: "/cse/" in path)
    store = TierStore(tier)

    def on_disk_in_plaintext() -> int:
        found = 0
        for d in dirs:
            for base, _, files in os.walk(d):
                for name in files:
                    with open(os.path.join(base, name), "rb") as f:
                        found += b"plaintext-of-a-cse-path" in f.read()
        return found

    try:
        run(store.put("bkt/cse/part-0", secret))
        writer = run(store.writer("bkt/cse/part-1"))
        run(writer.write_part(1, secret))
        run(writer.complete())
        run(store.copy("bkt/cse/part-1", "bkt/cse/part-2"))
        assert run(store.get_range("bkt/cse/part-2")) == secret
        assert on_disk_in_plaintext() == 0
        run(store.put("bkt/plain/part-0", secret))
        assert on_disk_in_plaintext() > 0  # the check can fail
    finally:
        tier.terminate()
        tier.store.close()


def test_parts_written_out_of_order_land_in_order_and_abort_leaves_nothing(tier_store):
    store, tier = tier_store

    async def go():
        writer = await store.writer("bkt/parts")
        await writer.write_part(2, b"second")
        await writer.write_part(1, b"first-")
        with pytest.raises(ValueError, match="written already"):
            await writer.write_part(1, b"again")
        await writer.complete()
        aborted = await store.writer("bkt/gone")
        await aborted.write_part(1, b"x" * BS)
        await aborted.abort()

    run(go())
    assert tier.read_bytes("bkt/parts") == b"first-second"
    assert not tier.exists("bkt/gone")

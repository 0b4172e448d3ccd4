"""The stack in force for a path (emrfs.stacks.Stacks): which layers each configuration
builds, one stack per distinct effective options, options resolved once per path, and a
write through the full stack checked past it (the memory store's bytes, the table's
rows, the cache's block files)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
from collections import Counter
from pathlib import Path

import pytest

from emrfs.cache.caching import CachingStore
from emrfs.cache.routing import RoutingStore
from emrfs.config import Options, load
from emrfs.consistency import ConsistentView, InMemoryMetadataStore, create_retry_policy
from emrfs.consistency.layer import ConsistentStore
from emrfs.crypto.guard import EnvelopeGuard
from emrfs.crypto.store import EncryptingStore
from emrfs.stacks import Stacks
from emrfs.store import MemoryStore

AES_KEY = base64.b64encode(bytes(range(32))).decode()
CSE = {
    "enabled": True,
    "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
    "aes_key": AES_KEY,
}
ON = {"enabled": True}


class Fakes:
    """The factories a filesystem hands Stacks, over memory: one MemoryStore per S3/SSE
    options (counted), one in-memory table per consistency options."""

    def __init__(self) -> None:
        self.transports: dict = {}
        self.made: Counter = Counter()
        self.tables: dict = {}

    def transport(self, options: Options) -> MemoryStore:
        key = (options.s3, options.sse)
        self.made[key] += 1
        if key not in self.transports:
            self.transports[key] = MemoryStore(versioned=True)
        return self.transports[key]

    def view(self, options: Options) -> ConsistentView:
        table = self.tables.setdefault(options.consistency, InMemoryMetadataStore())
        return ConsistentView(table, create_retry_policy("fixed", 3, 0.001))


def stacks_of(tmp_path, fakes: Fakes, **storage_options) -> Stacks:
    cache = storage_options.pop("cache", {})
    cache = {"directories": [str(tmp_path / "cache")], "free_space_floor": 0.0, **cache}
    options = load({"cache": cache, **storage_options}, environ={})
    return Stacks(options, transport=fakes.transport, view=fakes.view)


def kinds(stacks: Stacks, path: str) -> list[type]:
    return [type(layer) for layer in stacks.layers(path)]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, [EnvelopeGuard]),
        ({"cse": CSE}, [EncryptingStore]),
        ({"consistency": ON}, [EnvelopeGuard, ConsistentStore]),
        ({"cache": ON, "ephemeral": {"enabled": False}}, [EnvelopeGuard, CachingStore]),
        ({"cache": ON}, [EnvelopeGuard, CachingStore, RoutingStore]),
        (
            {"cse": CSE, "consistency": ON, "cache": ON},
            [EncryptingStore, ConsistentStore, CachingStore, RoutingStore],
        ),
    ],
    ids=["plain", "cse", "view", "cache", "cache+tier", "all"],
)
def test_layers_are_built_bottom_up_as_the_options_ask(tmp_path, config, expected):
    fakes = Fakes()
    stacks = stacks_of(tmp_path, fakes, **config)
    layers = stacks.layers("bkt/k")
    assert [type(layer) for layer in layers] == [MemoryStore, *expected]
    for below, above in itertools.pairwise(layers):  # each layer wraps the one before it
        assert (above.persistent if isinstance(above, RoutingStore) else above.inner) is below
    assert stacks.for_path("bkt/k") is layers[-1]


def test_one_stack_per_distinct_effective_options(tmp_path):
    fakes = Fakes()
    stacks = stacks_of(
        tmp_path,
        fakes,
        overrides={
            "bkt/sealed": {"cse": CSE},
            "bkt/also-sealed": {"cse": CSE},
            "bkt/kms": {"sse": {"enabled": True}},
        },
    )
    plain, sealed = stacks.for_path("bkt/x"), stacks.for_path("bkt/sealed/x")
    kms = stacks.for_path("bkt/kms/x")
    assert len({id(plain), id(sealed), id(kms)}) == 3
    # same effective options, same stack: another key, another prefix with equal overrides
    assert stacks.for_path("bkt/y/z") is plain
    assert stacks.for_path("bkt/also-sealed/x") is sealed
    # the CSE prefix shares the plain transport (same S3/SSE options); the SSE prefix has its own
    assert stacks.layers("bkt/sealed/x")[0] is stacks.layers("bkt/x")[0]
    assert stacks.layers("bkt/kms/x")[0] is not stacks.layers("bkt/x")[0]
    assert kinds(stacks, "bkt/sealed/x") == [MemoryStore, EncryptingStore]
    assert kinds(stacks, "bkt/x") == [MemoryStore, EnvelopeGuard]
    assert sorted(fakes.made.values()) == [1, 2]  # asked once per stack built


def test_options_are_resolved_once_per_path(tmp_path, monkeypatch):
    fakes = Fakes()
    stacks = stacks_of(
        tmp_path,
        fakes,
        cse=CSE,
        consistency=ON,
        cache=ON,
        overrides={"bkt/p": {"cache": {"enabled": False}}},
    )
    calls: Counter = Counter()
    resolve = Options.for_path

    def counted(self: Options, path: str) -> Options:
        calls[path] += 1
        return resolve(self, path)

    monkeypatch.setattr(Options, "for_path", counted)
    stacks.for_path("bkt/k")
    stacks.for_path("bkt/p/k")
    stacks.for_path("bkt/k")
    assert calls == Counter({"bkt/k": 2, "bkt/p/k": 1})

    async def through() -> None:  # and no layer of the built stack asks again
        stack = stacks.for_path("bkt/q")
        await stack.put("bkt/q", b"data")
        assert await stack.get_range("bkt/q", 0, 4) == b"data"
        await stack.head("bkt/q")
        assert [m.path async for page in stack.list("bkt/") for m in page.objects] == ["bkt/q"]

    calls.clear()
    asyncio.run(through())
    assert calls == Counter({"bkt/q": 1})


def test_a_write_through_the_full_stack_is_sealed_recorded_cached_sealed_and_read_back(tmp_path):
    fakes = Fakes()
    stacks = stacks_of(tmp_path, fakes, cse=CSE, consistency=ON, cache=ON)
    plaintext = b"nothing in plaintext " * 500
    path = "bkt/d/file"

    async def go() -> None:
        stack = stacks.for_path(path)
        meta = await stack.put(path, plaintext)
        assert meta.size == len(plaintext)
        assert await stack.get_range(path, 0, None) == plaintext  # read back (and cached)
        assert await stack.get_range(path, 100, 200) == plaintext[100:200]
        caching = stacks.layers(path)[3]
        assert isinstance(caching, CachingStore) and caching.known(path) is not None
        # a tier path through the same stack stays local: S3 never sees it
        await stack.put("bkt/d/_temporary/0/part", b"task output")
        assert await stack.get_range("bkt/d/_temporary/0/part") == b"task output"
        await stacks.close()

    asyncio.run(go())
    (memory,) = fakes.transports.values()
    stored = memory.stored(path)
    assert stored is not None and plaintext[:32] not in stored.data  # sealed at rest
    assert "x-amz-key-v2" in stored.metadata or "x-amz-3" in stored.metadata
    assert memory.stored("bkt/d/_temporary/0/part") is None
    (table,) = fakes.tables.values()
    row = table.get(path)
    assert row is not None and row.live and row.size == len(plaintext)
    assert f'"{row.etag}"' == stored.etag  # recorded after the store confirmed it
    cached = b"".join(
        Path(root, name).read_bytes()
        for root, _, names in os.walk(tmp_path / "cache")
        for name in names
    )
    assert len(cached) > 0 and plaintext[:32] not in cached  # cache blocks sealed too


def test_close_closes_what_it_made_and_leaves_what_was_handed_in(tmp_path):
    closed: list[str] = []

    class Tracked(MemoryStore):
        async def close(self) -> None:
            closed.append("transport")

    handed = Tracked()
    options = load({}, environ={})
    stacks = Stacks(options, transport=lambda options: handed)
    stacks.for_path("bkt/k")
    asyncio.run(stacks.close())
    assert closed == []  # the factory's owner closes it


def test_a_filesystem_hands_its_stacks_its_own_transports_views_keys_and_blocks(tmp_path):
    from emrfs import EmrFileSystem

    cache = {"enabled": True, "directories": [str(tmp_path / "c")], "free_space_floor": 0.0}
    fs = EmrFileSystem(
        endpoint_url="http://127.0.0.1:9",
        skip_instance_cache=True,
        cse=CSE,
        consistency=ON,
        cache=cache,
    )
    transport, encrypting, consistent, caching, routing = fs._stacks.layers("bkt/k")
    assert transport is fs._transport("bkt/k")  # one transport per S3/SSE options, not two
    assert isinstance(consistent, ConsistentStore) and consistent.view is fs._views("bkt/k")
    assert isinstance(encrypting, EncryptingStore)
    assert encrypting.crypto.provider("bkt/k") is fs._encrypted.crypto.provider("bkt/k")
    assert isinstance(caching, CachingStore) and caching.blocks is fs._cached.local.store
    assert isinstance(routing, RoutingStore) and routing.in_tier("bkt/_temporary/x")


def test_the_tier_is_made_at_its_first_path_not_when_a_stack_is_built(tmp_path):
    fakes = Fakes()  # one cache directory cannot hold two replicas: the tier cannot be made
    stacks = stacks_of(tmp_path, fakes, cache=ON, ephemeral={"replication": 2})

    async def go() -> None:
        stack = stacks.for_path("bkt/out/part-0")
        await stack.put("bkt/out/part-0", b"persistent")  # never needs the tier
        assert await stack.get_range("bkt/out/part-0") == b"persistent"
        with pytest.raises(ValueError, match=r"ephemeral\.replication"):
            await stack.put("bkt/out/_temporary/0/part-0", b"task output")
        await stacks.close()

    asyncio.run(go())

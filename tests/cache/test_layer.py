"""Construction from the options tree, as the filesystem does it."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import stat

from cache_helpers import CountingFetch, object_bytes
from emrfs.cache.layer import LocalCache, default_key_file
from emrfs.cache.store import ObjectIdentity
from emrfs.config import load


def options_for(dirs, **cache):
    opts = load(
        {
            "cache.encrypt": cache.pop("encrypt", False),
            "cache.block_size": 64 * 1024,
            "ephemeral.replication": 2,
        }
    )
    return dataclasses.replace(
        opts, cache=dataclasses.replace(opts.cache, directories=tuple(dirs), **cache)
    )


def test_local_cache_from_options_reads_through_invalidates_and_matches(
    dirs, tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    lc = LocalCache(options_for(dirs, encrypt=True))
    key_file = default_key_file(tuple(dirs))
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert not any(key_file.startswith(d) for d in dirs), "the key is kept apart from the blocks"
    data = object_bytes(3 * 64 * 1024 + 5)
    ident = ObjectIdentity("bkt/data/x.parquet", len(data), etag='"abc"')
    fetch = CountingFetch(data)

    async def go():
        r = lc.reader(ident, fetch)
        assert await r.read(0, -1) == data
        await r.close()

    asyncio.run(go())
    assert lc.reader(ident, fetch).read_cached(10, 100) == data[10:110]
    assert lc.invalidate("bkt/data/x.parquet") == 4
    assert lc.reader(ident, fetch).read_cached(10, 100) is None
    assert lc.is_ephemeral("emrfs://bkt/out/_temporary/0/part-0")
    assert not lc.is_ephemeral("bkt/out/part-0")
    lc.tier.write_bytes("bkt/out/_temporary/0/part-0", b"abc")
    assert lc.tier.replication == 2 and lc.tier.encrypt
    assert lc.tier.read_bytes("bkt/out/_temporary/0/part-0") == b"abc"
    assert lc.metrics()[dirs[0]].keys() >= {"hits", "misses", "evictions"}
    lc.tier.terminate()
    lc.close()

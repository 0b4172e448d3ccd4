"""``emrfs cache stats`` / ``clear`` and the in-process metrics."""

from __future__ import annotations

import asyncio
import json

from cache_helpers import CountingFetch, object_bytes
from emrfs.cache.ephemeral import EphemeralTier
from emrfs.cache.reader import CachedReader
from emrfs.cache.store import BlockStore, ObjectIdentity
from emrfs.cli import main

BS = 64 * 1024


def test_stats_and_clear(dirs, capsys):
    store = BlockStore(dirs, free_space_floor=0.0)
    data = object_bytes(4 * BS)
    ident = ObjectIdentity("b/k", len(data), etag="e")

    async def go():
        r = CachedReader(store, ident, CountingFetch(data), block_size=BS, prefetch_blocks=0)
        await r.read(0, -1)
        await r.close()  # blocks written: a second reader's read hits
        r2 = CachedReader(store, ident, CountingFetch(data), block_size=BS, prefetch_blocks=0)
        await r2.read(0, -1)

    asyncio.run(go())
    metrics = store.metrics()
    assert sum(m["misses"] for m in metrics.values()) == 4
    assert sum(m["hits"] for m in metrics.values()) == 4
    store.close()

    argv = [a for d in dirs for a in ("--dir", d)]
    assert main(["--json", "cache", "stats", *argv]) == 0
    rows = json.loads(capsys.readouterr().out)["directories"]
    assert [r["directory"] for r in rows] == dirs
    assert sum(r["blocks"] for r in rows) == 4
    assert sum(r["hits"] for r in rows) == 4 and sum(r["misses"] for r in rows) == 4
    assert main(["cache", "stats", *argv]) == 0
    assert "evictions" in capsys.readouterr().out

    tier = EphemeralTier(BlockStore(dirs, free_space_floor=0.0), block_size=BS)
    tier.write_bytes("bkt/j/_temporary/f", b"x" * 10)
    assert main(["cache", "clear", *argv]) == 0
    assert "cached blocks" in capsys.readouterr().out
    assert tier.exists("bkt/j/_temporary/f"), "plain clear keeps the ephemeral tier"
    assert main(["--json", "cache", "stats", *argv]) == 0
    rows = json.loads(capsys.readouterr().out)["directories"]
    assert sum(r["blocks"] for r in rows) == 0 and sum(r["ephemeral_blocks"] for r in rows) == 1
    assert main(["cache", "clear", "--ephemeral", *argv]) == 0
    assert not tier.exists("bkt/j/_temporary/f")

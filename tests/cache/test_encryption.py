"""Encryption at rest: sealed blocks are unreadable from the raw files or with another key."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from cache_helpers import CountingFetch
from emrfs.cache.reader import CachedReader
from emrfs.cache.store import BlockStore, ObjectIdentity
from emrfs.crypto.atrest import OVERHEAD, BlockSealer, CacheKey
from emrfs.errors import EncryptionError, IntegrityError

BS = 64 * 1024
SECRET = b"top-secret-row;" * (3 * BS // 15)


def raw_files(dirs):
    for d in dirs:
        for root, _, files in os.walk(d):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    yield fh.read()


def fill(store, ident, *, sealed=False):
    async def go():
        r = CachedReader(store, ident, CountingFetch(SECRET), block_size=BS, sealed=sealed)
        try:
            return await r.read(0, -1)
        finally:
            await r.close()

    return asyncio.run(go())


def test_encrypted_cache_blocks_are_unreadable_without_the_key(dirs, tmp_path):
    key = CacheKey.load_or_create(str(tmp_path / "keys" / "cache.key"))
    assert stat.S_IMODE(os.stat(key.path).st_mode) == 0o600
    store = BlockStore(dirs, sealer=BlockSealer(key), encrypt_all=True, free_space_floor=0.0)
    ident = ObjectIdentity("b/secret", len(SECRET), etag="x")
    assert fill(store, ident) == SECRET
    assert not any(b"top-secret" in raw for raw in raw_files(dirs))
    store.close()
    # Same key (a new process): readable.  Another key: every block is a miss.
    again = BlockStore(
        dirs,
        sealer=BlockSealer(CacheKey.load_or_create(key.path)),
        encrypt_all=True,
        free_space_floor=0.0,
    )
    assert again.read(ident.block(1)) == SECRET[BS : 2 * BS]
    other = BlockStore(
        dirs, sealer=BlockSealer(CacheKey.in_memory()), encrypt_all=True, free_space_floor=0.0
    )
    assert other.read(ident.block(0)) is None
    assert sum(s.corruptions for s in other.stats) == 1


def test_cse_blocks_are_always_sealed_even_in_a_plain_cache(dirs):
    store = BlockStore(dirs, free_space_floor=0.0)
    cse = ObjectIdentity("b/cse-object", len(SECRET), etag="c")
    assert fill(store, cse, sealed=True) == SECRET
    assert not any(b"top-secret" in raw for raw in raw_files(dirs))
    plain = ObjectIdentity("b/plain-object", len(SECRET), etag="p")
    fill(store, plain)
    assert any(b"top-secret" in raw for raw in raw_files(dirs))  # the check can see plaintext
    key_path = store._own_key.path
    store.clear()
    assert key_path is None or not os.path.exists(key_path), "clearing the cache drops its key"


def test_sealer_binds_the_block_identity_and_rejects_tampering():
    sealer = BlockSealer(CacheKey.in_memory(), urandom=lambda n: b"\x01" * n)
    sealed = sealer.seal(b"hello", b"c/owner/tag/0#0")
    assert len(sealed) == 5 + OVERHEAD and sealed[:12] == b"\x01" * 12
    assert sealer.open(sealed, b"c/owner/tag/0#0") == b"hello"
    with pytest.raises(IntegrityError, match="moved"):
        sealer.open(sealed, b"c/owner/tag/1#0")  # a block moved to another place
    bad = bytearray(sealed)
    bad[14] ^= 1
    with pytest.raises(IntegrityError):
        sealer.open(bytes(bad), b"c/owner/tag/0#0")
    with pytest.raises(IntegrityError, match="truncated"):
        sealer.open(b"short", b"x")


def test_key_files_are_private_and_shared_memory_keys_die_with_the_cache(tmp_path):
    path = tmp_path / "k.key"
    path.write_bytes(b"\0" * 32)
    os.chmod(path, 0o644)
    with pytest.raises(EncryptionError, match="chmod 600"):
        CacheKey.load_or_create(str(path))
    os.chmod(path, 0o600)
    path.write_bytes(b"short")
    with pytest.raises(EncryptionError, match="32 bytes"):
        CacheKey.load_or_create(str(path))
    shm = CacheKey.shared_memory(f"test-{os.getpid()}")
    assert CacheKey.shared_memory(f"test-{os.getpid()}").key == shm.key
    sealed = BlockSealer(shm).seal(b"data", b"id")
    shm.destroy()
    if shm.path:
        assert not os.path.exists(shm.path)
    with pytest.raises(IntegrityError):
        BlockSealer(CacheKey.shared_memory(f"test-{os.getpid()}")).open(sealed, b"id")
    CacheKey.shared_memory(f"test-{os.getpid()}").destroy()

"""What the filesystem holds: the block store, the ephemeral tier and the
read-through readers, built from :class:`emrfs.config.Options`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from ..config import CacheOptions, EphemeralOptions, Options
from .ephemeral import EphemeralTier
from .matching import is_ephemeral
from .reader import CachedReader, Fetch
from .stats import collect
from .store import BlockStore, ObjectIdentity


def default_directories() -> tuple[str, ...]:
    """``$XDG_CACHE_HOME/emrfs`` (``~/.cache/emrfs``) when ``cache.directories`` is empty."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return (os.path.join(base, "emrfs"),)


def default_key_file(directories: tuple[str, ...]) -> str:
    """Outside the cache directories, so a copy of the blocks alone is unreadable."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    digest = hashlib.sha256("\0".join(os.path.abspath(d) for d in directories).encode())
    return os.path.join(base, "emrfs", f"cache-{digest.hexdigest()[:16]}.key")


def as_tuple(value) -> tuple[str, ...]:
    """A tuple option as a tuple: ``emrfs.config`` currently hands tuple options over as
    the comma-separated string they were given as."""
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value or ())


def store_from_options(cache: CacheOptions) -> BlockStore:
    """A :class:`BlockStore` for ``Options.cache`` (encrypted with a 0600 key file if asked)."""
    dirs = as_tuple(cache.directories) or default_directories()
    sealer = None
    if cache.encrypt:
        from ..crypto.atrest import BlockSealer, CacheKey

        sealer = BlockSealer(CacheKey.load_or_create(cache.key_file or default_key_file(dirs)))
    return BlockStore(
        dirs,
        capacity_bytes=cache.capacity_bytes,
        free_space_floor=cache.free_space_floor,
        sealer=sealer,
        encrypt_all=cache.encrypt,
        verify=cache.verify,
    )


class LocalCache:
    """The cache layer of one filesystem instance.

    ``LocalCache(options)`` builds the store from ``options.cache``; the tier
    (from ``options.ephemeral``) is joined on first use of :attr:`tier`.  The
    tier's blocks are encrypted when ``cache.encrypt`` is on, with a key on
    ``/dev/shm`` that is destroyed with the tier; files of paths for which
    ``must_seal(path)`` is True (client-side encrypted paths) are encrypted
    that way whatever ``cache.encrypt`` says.
    """

    def __init__(self, options: Options, must_seal: Callable[[str], bool] | None = None):
        self.options = options
        self.must_seal = must_seal
        cache: CacheOptions = options.cache
        self.block_size = cache.block_size
        self.prefetch_blocks = cache.prefetch_blocks
        self.store = store_from_options(cache)
        self._tier: EphemeralTier | None = None
        self._patterns = as_tuple(options.ephemeral.patterns)
        self._prefixes = as_tuple(options.ephemeral.prefixes)

    @property
    def tier(self) -> EphemeralTier:
        """The ephemeral tier, joined on first use (so a process that never touches an
        ephemeral path never becomes a member)."""
        if self._tier is None:
            eph: EphemeralOptions = self.options.ephemeral
            if not eph.enabled:
                raise ValueError("the ephemeral tier is off (ephemeral.enabled=False)")
            self._tier = EphemeralTier(
                self.store,
                block_size=self.block_size,
                replication=eph.replication,
                lifetime_seconds=eph.lifetime_seconds,
                encrypt=self.options.cache.encrypt,
                must_seal=self.must_seal,
            )
        return self._tier

    def reader(
        self, identity: ObjectIdentity, fetch: Fetch, *, sealed: bool = False
    ) -> CachedReader:
        """A read-through reader of one object version (``sealed=True`` for CSE objects)."""
        return CachedReader(
            self.store,
            identity,
            fetch,
            block_size=self.block_size,
            prefetch_blocks=self.prefetch_blocks,
            sealed=sealed,
        )

    def invalidate(self, path: str) -> int:
        """Drop every cached block of ``path`` (after an overwrite or delete through emrfs)."""
        from .store import path_owner

        return self.store.drop_owner("c", path_owner(path))

    def is_ephemeral(self, path: str) -> bool:
        """True when ``path`` belongs to the ephemeral tier (and the tier is on)."""
        return self.options.ephemeral.enabled and is_ephemeral(path, self._patterns, self._prefixes)

    def metrics(self) -> dict[str, dict[str, int]]:
        return self.store.metrics()

    def stats(self) -> list[dict]:
        return collect(self.store)

    def close(self) -> None:
        """Flush counters and release open blocks (the tier stays until its process exits)."""
        self.store.close()

"""The block cache as the filesystem sees it.

The blocks live in :mod:`emrfs.cache`; the cache is the
:class:`~emrfs.cache.caching.CachingStore` layer of each path's stack
(:mod:`emrfs.stacks`), which ``cat_file``, ``cat_ranges`` and ``get_file`` read
through.  This module keeps what the filesystem adds around it:

* ``open(path, "rb")``: the file's read cache is :class:`BlockCacheAdapter`,
  which serves warm reads from the same local blocks with no event loop and no
  S3 request, and fetches misses through the file's own ``_fetch_range`` (pinned
  to the version opened, read below the block cache).
* every ``info()`` and listing tells the path's layer the version emrfs saw
  (:meth:`CachedIO.seen`), so an overwrite from outside emrfs is served fresh as
  soon as emrfs has seen it; every write, copy, rename and delete through emrfs
  forgets the path and drops its blocks.

Correctness under change: blocks belong to one object version
(:class:`~emrfs.cache.store.ObjectIdentity`: size, ETag, version id); fills are
ETag-pinned, so an overwrite in the middle of a read fails rather than mixes
versions.  Warm reads of a path emrfs has seen send no request at all, with the
consistent view on as well.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fsspec.asyn import sync
from fsspec.caching import BaseCache, register_cache

from . import paths
from .store.protocol import ObjectMeta, ObjectStore

if TYPE_CHECKING:
    from .cache.caching import CachingStore
    from .cache.layer import LocalCache
    from .cache.reader import CachedReader
    from .config import Options
    from .encrypted_io import EncryptedIO
    from .stacks import Stacks

logger = logging.getLogger("emrfs.cached_io")


class BlockCacheAdapter(BaseCache):
    """fsspec file cache (``cache_type="emrfs-blocks"``) over a :class:`CachedReader`.

    ``fetcher`` is the file's own (blocking) ``_fetch_range``; misses run it on a
    worker thread so the reader's fills stay on the filesystem's event loop.
    """

    name = "emrfs-blocks"

    def __init__(
        self, blocksize: int, fetcher, size: int, *, reader_factory=None, loop=None, **kwargs: Any
    ):
        super().__init__(blocksize, fetcher, size)
        self.loop = loop
        self.reader: CachedReader = reader_factory(self._fetch_async)

    async def _fetch_async(self, start: int, end: int) -> bytes:
        # The file's own coroutine when it has one: a worker thread parked in the file's
        # blocking _fetch_range (sync on this loop) would hold a pool thread that threads
        # already waiting on this loop (fs.open in a tier copy) may need: they starve.
        fetch_async = getattr(getattr(self.fetcher, "__self__", None), "_fetch_range_async", None)
        if fetch_async is not None:
            return await fetch_async(start, end)
        return await asyncio.to_thread(self.fetcher, start, end)

    def _fetch(self, start: int | None, end: int | None) -> bytes:
        start = 0 if start is None else start
        end = self.size if end is None or end > self.size else end
        if start >= end:
            return b""
        data = self.reader.read_cached(start, end - start)
        if data is not None:
            self.hit_count += 1
            return data
        self.miss_count += 1
        self.total_requested_bytes += end - start
        return sync(self.loop, self.reader.read, start, end - start)

    def close(self) -> None:
        """Wait for the blocks this file fetched to be written (the next reader of the file
        finds them, warm); leave fills still fetching running in the background: closing
        does not wait for read-ahead the caller no longer needs."""
        self.reader.wait_written(timeout=_WRITTEN_TIMEOUT)
        if self.reader._tasks and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(_keep_running, self.reader)


#: The longest a closing file waits for its fetched blocks to reach the disk (a hung
#: disk must not hang close; the blocks are then only not cached)
_WRITTEN_TIMEOUT = 30.0
#: Fills of closed files, referenced until they finish (the loop holds tasks weakly).
_BACKGROUND: set[asyncio.Task] = set()


def _keep_running(reader: CachedReader) -> None:
    for task in list(reader._tasks):
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)


register_cache(BlockCacheAdapter, clobber=True)


class CachedIO:
    """The block cache as the filesystem sees it: one per filesystem instance.

    The cache itself is the :class:`~emrfs.cache.caching.CachingStore` layer of each
    path's stack (:class:`~emrfs.stacks.Stacks`); reads go through the stack.  What is
    left here: the :class:`~emrfs.cache.layer.LocalCache` every stack shares (built on
    first use, when ``cache.enabled`` is on globally or for any bucket/prefix
    override), telling a path's layer what emrfs saw or changed (``info``, listings,
    writes made past the stack), and the block cache of files opened for reading.
    ``cache.enabled`` per path (``options.for_path``) decides whether a path's reads
    are cached.
    """

    def __init__(
        self,
        options: Options,
        encrypted: EncryptedIO,
        stacks: Callable[[], Stacks],
        loop: Callable[[], asyncio.AbstractEventLoop],
    ):
        self.options = options
        self.encrypted = encrypted
        self.stacks = stacks
        self.loop = loop
        self._local: LocalCache | None = None

    # --- the local cache --------------------------------------------------------------

    @property
    def local(self) -> LocalCache:
        """The instance's :class:`LocalCache` (built on first use)."""
        if self._local is None:
            from .cache.layer import LocalCache

            # a CSE path's plaintext is sealed in the tier too, whatever cache.encrypt says
            self._local = LocalCache(self.options, must_seal=self.encrypted.maybe_encrypted)
        return self._local

    def layer(self, path: str) -> CachingStore | None:
        """The block cache layer of ``path``'s stack (None where the cache is off)."""
        if not self.enabled(path):
            return None
        return _caching(self.stacks().layers(path))

    def _layers(self) -> list[CachingStore]:
        found = (_caching(layers) for layers in self.stacks().built())
        return [layer for layer in found if layer is not None]

    @property
    def built(self) -> bool:
        return self._local is not None

    def enabled(self, path: str) -> bool:
        """True when reads of ``path`` go through the block cache."""
        return self.options.for_path(path).cache.enabled

    def metrics(self) -> dict[str, int]:
        """Hits, misses, evictions, corruptions and writes summed over the cache directories."""
        total: dict[str, int] = {}
        if self._local is None:
            return total
        for counters in self._local.metrics().values():
            for name, n in counters.items():
                total[name] = total.get(name, 0) + n
        return total

    # --- versions emrfs has seen --------------------------------------------------------

    def seen(self, info: dict) -> None:
        """Record the version an ``info()`` (or listing) found; forget it for non-files."""
        name = info.get("name")
        layer = self.layer(name) if name else None
        if layer is None or name is None:
            return
        if (
            info.get("type") != "file"
            or info.get("ephemeral")
            or (info.get("cse") and not layer.sealed(name))
        ):
            # not a file; or sealed where the layer would keep plaintext unsealed: its
            # own head (through the layer below, which then seals it) teaches it
            if layer.known(name) is not None:
                layer.forget(name)
            return
        layer.remember(_meta(info))  # the old version's blocks are dropped there

    def forget(self, path: str) -> None:
        """``path`` changed through emrfs (written, copied over, renamed or deleted)."""
        if self._local is not None:
            layer = self.layer(path)
            if layer is not None:
                layer.forget(path)

    def forget_tree(self, root: str, files: Iterable[str] = ()) -> None:
        """Every file under ``root`` changed; ``files`` names those emrfs knows were there."""
        if self._local is not None:
            for layer in self._layers():
                for name in [n for n in layer.known_paths() if paths.is_within(n, root)]:
                    layer.forget(name)
        for name in files:
            self.forget(name)

    # --- reading ----------------------------------------------------------------------

    def known_size(self, path: str) -> int | None:
        """The size of the version of ``path`` the block cache serves now (None: none
        known; the next read asks)."""
        layer = self.layer(path)
        ident = None if layer is None else layer.known(path)
        return None if ident is None else ident.size

    def file_cache(self, path: str, info: dict) -> tuple[str, dict] | None:
        """``(cache_type, cache_options)`` for a file opened for reading, or None (uncached)."""
        layer = self.layer(path)
        if layer is None or info.get("type") != "file":
            return None
        self.seen(info)
        ident = layer.known(path)
        if ident is None:  # no ETag (nothing tells its versions apart), or sealed elsewhere
            return None
        sealed = layer.sealed(path)
        local = self.local
        return BlockCacheAdapter.name, {
            "reader_factory": lambda fetch: local.reader(ident, fetch, sealed=sealed),
            "loop": self.loop(),
        }

    def file_store(self, path: str, cache_type: str | None) -> ObjectStore:
        """The store a file of ``path`` opened for reading fetches through: the path's
        stack, or the layer below its block cache when the file's own cache is those
        blocks (:class:`BlockCacheAdapter`, which fills them)."""
        stack = self.stacks().for_path(path)
        layer = self.layer(path) if cache_type == BlockCacheAdapter.name else None
        return stack if layer is None else layer.inner

    def close(self) -> None:
        if self._local is not None:
            self._local.close()


def _caching(layers: Sequence[ObjectStore]) -> CachingStore | None:
    from .cache.caching import CachingStore

    return next((layer for layer in layers if isinstance(layer, CachingStore)), None)


def _meta(info: Mapping[str, Any]) -> ObjectMeta:
    return ObjectMeta(
        info["name"], int(info["size"]), etag=info.get("ETag"), version_id=info.get("VersionId")
    )

"""Read-through block cache for the filesystem's reads.

The filesystem calls this module at a few hook points; the blocks themselves
live in :mod:`emrfs.cache`.

* ``open(path, "rb")``: the file's read cache is :class:`BlockCacheAdapter`,
  which serves warm reads from local blocks with no event loop and no S3
  request, and fetches misses through the file's own ``_fetch_range`` (so a
  subclass that decrypts client-side-encrypted objects is cached *above* the
  decryption, with the blocks sealed at rest).
* ``cat_file(path, start, end)``: served through the same blocks for the
  object version emrfs last saw.
* every write, copy, rename and delete through emrfs forgets the path and
  drops its blocks.

Correctness under change: blocks belong to one object version
(:class:`~emrfs.cache.store.ObjectIdentity`: size, ETag, version id).  The
version used is the one emrfs saw last: every ``info()`` (and so every
``open()``) records what S3 (or the consistent view) says now, so an
overwrite from outside emrfs is served fresh as soon as emrfs has seen it;
fills go through the filesystem's ETag-pinned ranged read, so an overwrite
in the middle of a read fails rather than mixes versions (``cat_file`` then
looks again, once).  ``cat_file`` ranges for a path emrfs has not seen yet ask
for its version first (``info()``: a HEAD, or the consistent view's checked
record); warm reads of a path emrfs has seen send no request at all, with the
consistent view on as well.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from fsspec.asyn import sync
from fsspec.caching import BaseCache, register_cache

from . import paths
from .byterange import resolve_range
from .errors import is_a_directory
from .s3.client import ChangedError

if TYPE_CHECKING:
    from .cache.layer import LocalCache
    from .cache.reader import CachedReader
    from .cache.store import ObjectIdentity
    from .config import Options
    from .encrypted_io import EncryptedIO

logger = logging.getLogger("emrfs.cached_io")

#: Versions remembered per filesystem instance (most recently seen kept).
MAX_KNOWN = 100_000


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
        """Leave background fills running (the next reader wants their blocks); closing
        does not wait for read-ahead the caller no longer needs."""
        if self.reader._tasks and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(_keep_running, self.reader)


#: Fills of closed files, referenced until they finish (the loop holds tasks weakly).
_BACKGROUND: set[asyncio.Task] = set()


def _keep_running(reader: CachedReader) -> None:
    for task in list(reader._tasks):
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)


register_cache(BlockCacheAdapter, clobber=True)


class CachedIO:
    """The block cache as the filesystem sees it: one per filesystem instance.

    The :class:`~emrfs.cache.layer.LocalCache` is built on first use, from the
    instance's options, when ``cache.enabled`` is on globally or for any
    bucket/prefix override; ``cache.enabled`` per path (``options.for_path``)
    decides whether a path's reads are cached.
    """

    def __init__(
        self,
        options: Options,
        encrypted: EncryptedIO,
        lookup: Callable[[str], Awaitable[dict]],
        loop: Callable[[], asyncio.AbstractEventLoop],
    ):
        self.options = options
        self.encrypted = encrypted
        self.lookup = lookup  # the stack's info(): records the version it finds (seen())
        self.loop = loop
        self._local: LocalCache | None = None
        self._known: OrderedDict[str, ObjectIdentity] = OrderedDict()

    # --- the local cache --------------------------------------------------------------

    @property
    def local(self) -> LocalCache:
        """The instance's :class:`LocalCache` (built on first use)."""
        if self._local is None:
            from .cache.layer import LocalCache

            # a CSE path's plaintext is sealed in the tier too, whatever cache.encrypt says
            self._local = LocalCache(self.options, must_seal=self.encrypted.maybe_encrypted)
        return self._local

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
        if not name or not self.enabled(name):
            return
        if info.get("type") != "file" or info.get("ephemeral"):
            self._known.pop(name, None)
            return
        ident = self._identity(info)
        old = self._known.get(name)
        if old is not None and old != ident and self._local is not None:
            # the old version's blocks can never be served again (the new one's stay)
            self._local.store.drop_owner("c", ident.owner, keep_tag=ident.tag)
        self._known[name] = ident
        self._known.move_to_end(name)
        if len(self._known) > MAX_KNOWN:
            self._known.popitem(last=False)

    def _identity(self, info: dict) -> ObjectIdentity:
        from .cache.store import ObjectIdentity

        # a CSE object's plaintext differs from its stored bytes: keep them apart
        stamp = "cse" if info.get("cse") else None
        return ObjectIdentity(
            info["name"],
            int(info["size"]),
            etag=info.get("ETag"),
            version_id=info.get("VersionId"),
            stamp=stamp,
        )

    def forget(self, path: str) -> None:
        """``path`` changed through emrfs (written, copied over, renamed or deleted)."""
        self._known.pop(path, None)
        if self._local is not None:
            self._local.invalidate(path)

    def forget_tree(self, root: str, files: Iterable[str] = ()) -> None:
        """Every file under ``root`` changed; ``files`` names those emrfs knows were there."""
        for name in [n for n in self._known if paths.is_within(n, root)]:
            self.forget(name)
        for name in files:
            self.forget(name)

    def forget_keys(self, by_bucket: dict[str, list[str]]) -> None:
        """Objects deleted through emrfs, as ``{bucket: [key, ...]}``."""
        for bucket, keys in by_bucket.items():
            for key in keys:
                if not key.endswith("/"):
                    self.forget(f"{bucket}/{key}")

    # --- reading ----------------------------------------------------------------------

    def serves(self, path: str, start: int | None, end: int | None) -> bool:
        """True when ``cat_file(path, start, end)`` is served through the cache: ranges,
        and whole objects whose version emrfs knows already (no extra request)."""
        if not self.enabled(path):
            return False
        return start is not None or end is not None or path in self._known

    def _reader_factory(self, info: dict):
        ident = self._identity(info)
        sealed = bool(info.get("cse"))
        return lambda fetch: self.local.reader(ident, fetch, sealed=sealed)

    def file_cache(self, path: str, info: dict) -> tuple[str, dict] | None:
        """``(cache_type, cache_options)`` for a file opened for reading, or None (uncached)."""
        if not self.enabled(path) or info.get("type") != "file":
            return None
        self.seen(info)
        return BlockCacheAdapter.name, {
            "reader_factory": self._reader_factory(info),
            "loop": self.loop(),
        }

    async def cat_range(
        self, path: str, start: int | None, end: int | None, *, retried: bool = False
    ) -> bytes:
        """Bytes ``[start, end)`` of ``path`` (negative offsets from the end) through the cache."""
        ident = self._known.get(path)
        info = None
        if ident is None:
            info = await self.lookup(path)  # records the version (see seen())
            ident = self._known.get(path)
            if ident is None:  # not a file
                raise is_a_directory(path, "open a file below it, or use ls")
        size = ident.size
        start, end = resolve_range(start, end, size)
        if end <= start:
            return b""
        if info is None:
            info = {
                "name": path,
                "size": size,
                "type": "file",
                "ETag": ident.etag,
                "VersionId": ident.version_id,
                "cse": ident.stamp == "cse",
            }
        reader = self.local.reader(
            ident, self._ranged_fetch(path, info), sealed=ident.stamp == "cse"
        )
        data = reader.read_cached(start, end - start)
        if data is not None:
            return data
        try:
            return await reader.read(start, end - start)
        except ChangedError:
            if retried:
                raise
        finally:
            await reader.close()
        # overwritten since emrfs last looked: look again, once
        self.forget(path)
        return await self.cat_range(path, start, end, retried=True)

    def _ranged_fetch(self, path: str, info: dict):
        """Uncached ranged reads of the version ``info`` names (``If-Match`` its ETag)."""
        etag = info.get("ETag")

        source = None

        async def fetch(start: int, end: int) -> bytes:
            nonlocal source
            if info.get("cse"):
                # Decrypted here, on the loop: a worker thread opening the file would wait
                # (sync) on loop work that needs a worker thread too, and concurrent reads
                # then fill the loop's pool with threads waiting on each other.
                current = source
                if current is None:
                    current = source = await self.encrypted.range_source(
                        path, await self._cse_details(path, info)
                    )
                    assert current is not None  # None is for plaintext; info has "cse"
                return await current.read(start, end)
            return await self.encrypted.read_range_checked(path, start, end, etag)

        return fetch

    async def _cse_details(self, path: str, info: dict) -> dict:
        """``info`` with its CSE envelope (a version known only by identity has none):
        looked up again, and refused (ChangedError) if it is another version now."""
        if isinstance(info.get("cse"), dict):
            return info
        current = await self.lookup(path)
        etag = info.get("ETag")
        if (etag and current.get("ETag") != etag) or not isinstance(current.get("cse"), dict):
            raise ChangedError(path, etag or "?", current.get("ETag"))
        return current

    def close(self) -> None:
        if self._local is not None:
            self._local.close()

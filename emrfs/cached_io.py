"""Read-through block cache for the filesystem's reads.

The filesystem calls this module at a few hook points; the blocks themselves
live in :mod:`emrfs.cache`.

* ``open(path, "rb")``: the file's read cache is :class:`BlockCacheAdapter`,
  which serves warm reads from local blocks with no event loop and no S3
  request, and fetches misses through the file's own ``_fetch_range`` (so a
  subclass that decrypts client-side-encrypted objects is cached *above* the
  decryption, with the blocks sealed at rest).
* ``cat_file(path, start, end)``: served by the block cache layer
  (:class:`~emrfs.cache.caching.CachingStore`) over :class:`ReadsBelow`, for the
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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fsspec.asyn import sync
from fsspec.caching import BaseCache, register_cache

from . import paths
from .byterange import resolve_range
from .errors import is_a_directory
from .s3.client import ChangedError
from .store.protocol import DeleteResult, ListPage, ObjectMeta, ObjectStore, ObjectWriter

if TYPE_CHECKING:
    from .cache.caching import CachingStore
    from .cache.layer import LocalCache
    from .cache.reader import CachedReader
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

    The reads go through :attr:`layer`, a :class:`~emrfs.cache.caching.CachingStore`
    over :class:`ReadsBelow` (what the filesystem reads under the cache).  The
    :class:`~emrfs.cache.layer.LocalCache` is built on first use, from the
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
        self._layer: CachingStore | None = None
        self.below = ReadsBelow(encrypted, lookup)

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
    def layer(self) -> CachingStore:
        """The block cache layer over :attr:`below` (built with the local cache)."""
        if self._layer is None:
            from .cache.caching import CachingStore

            local, below = self.local, self.below
            self._layer = CachingStore(
                below,
                local.store,
                block_size=local.block_size,
                prefetch_blocks=local.prefetch_blocks,
                # CSE objects: plaintext sealed at rest, and kept apart from stored bytes
                seal=below.is_cse,
                stamp=lambda meta: "cse" if below.is_cse(meta.path) else None,
            )
        return self._layer

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
            self.below.note(name, None)
            if self._layer is not None and self._layer.known(name) is not None:
                self._layer.forget(name)
            return
        self.below.note(name, info)
        self.layer.remember(_meta(info))  # the old version's blocks are dropped there

    def forget(self, path: str) -> None:
        """``path`` changed through emrfs (written, copied over, renamed or deleted)."""
        self.below.note(path, None)
        if self._local is not None:
            self.layer.forget(path)

    def forget_tree(self, root: str, files: Iterable[str] = ()) -> None:
        """Every file under ``root`` changed; ``files`` names those emrfs knows were there."""
        if self._layer is not None:
            for name in [n for n in self._layer.known_paths() if paths.is_within(n, root)]:
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
        if start is not None or end is not None:
            return True
        return self._layer is not None and self._layer.known(path) is not None

    def file_cache(self, path: str, info: dict) -> tuple[str, dict] | None:
        """``(cache_type, cache_options)`` for a file opened for reading, or None (uncached)."""
        if not self.enabled(path) or info.get("type") != "file":
            return None
        self.seen(info)
        ident = self.layer.known(path)
        if ident is None:  # no ETag: nothing tells its versions apart
            return None
        sealed = self.layer.sealed(path)
        local = self.local
        return BlockCacheAdapter.name, {
            "reader_factory": lambda fetch: local.reader(ident, fetch, sealed=sealed),
            "loop": self.loop(),
        }

    async def cat_range(
        self, path: str, start: int | None, end: int | None, *, retried: bool = False
    ) -> bytes:
        """Bytes ``[start, end)`` of ``path`` (negative offsets from the end) through the
        cache layer, pinned to the version emrfs saw last (looked up first if none)."""
        layer = self.layer
        ident = layer.known(path)
        if ident is None:
            info = await self.lookup(path)  # records the version (see seen())
            if info.get("type") != "file":
                raise is_a_directory(path, "open a file below it, or use ls")
            ident = layer.known(path)
            if ident is None:  # a version with no ETag: read past the cache
                start, end = resolve_range(start, end, int(info["size"]))
                return await self.below.get_range(path, start, end) if end > start else b""
        start, end = resolve_range(start, end, ident.size)
        if end <= start:
            return b""
        try:
            return await layer.get_range(path, start, end, if_match=ident.etag)
        except ChangedError:
            if retried:
                raise
        # overwritten since emrfs last looked: look again, once
        self.forget(path)
        return await self.cat_range(path, start, end, retried=True)

    def close(self) -> None:
        if self._local is not None:
            self._local.close()


def _meta(info: Mapping[str, Any]) -> ObjectMeta:
    return ObjectMeta(
        info["name"], int(info["size"]), etag=info.get("ETag"), version_id=info.get("VersionId")
    )


class ReadsBelow(ObjectStore):
    """What the filesystem reads under the block cache, as a store, until encryption and
    the consistent view are layers of their own: ``head`` is the filesystem's checked
    status (``lookup``: the view's record, plaintext sizes); ranges of a CSE object are
    decrypted and verified by its format, other ranges are ETag-pinned GETs on the
    path's transport (where the consistent view's policy retries stale copies).

    It serves reads only: writes, copies, deletes and listings go through the
    filesystem's verbs, which tell the cache what they changed.
    """

    def __init__(self, encrypted: EncryptedIO, lookup: Callable[[str], Awaitable[dict]]):
        self.encrypted = encrypted
        self.lookup = lookup
        self._cse: OrderedDict[str, Mapping[str, Any]] = OrderedDict()  # path -> its status
        self._sources: OrderedDict[tuple[str, str], Any] = OrderedDict()

    def note(self, path: str, info: Mapping[str, Any] | None) -> None:
        """The status emrfs saw of ``path`` (None: not a file, or changed)."""
        if info is not None and info.get("cse"):
            self._cse[path] = info
            self._cse.move_to_end(path)
            if len(self._cse) > MAX_KNOWN:
                self._cse.popitem(last=False)
        else:
            self._cse.pop(path, None)
            for ident in [i for i in self._sources if i[0] == path]:
                del self._sources[ident]

    def is_cse(self, path: str) -> bool:
        """True when the version emrfs saw of ``path`` is client-side encrypted."""
        return path in self._cse

    async def head(self, path: str) -> ObjectMeta:
        info = await self.lookup(path)
        if info.get("type") != "file":
            raise is_a_directory(path, "open a file below it, or use ls")
        return _meta(info)

    async def get_range(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> bytes:
        info = self._cse.get(path)
        if info is None:
            transport = self.encrypted.transport(path)
            return await transport.get_range(path, start, end, if_match=if_match or None)
        if not isinstance(info.get("cse"), dict) or (
            if_match and _bare(info.get("ETag")) != _bare(if_match)
        ):
            info = await self._cse_details(path, if_match or info.get("ETag"))
        size = int(info["size"])
        end = size if end is None else min(end, size)
        if end <= start:
            return b""
        source = await self._source(path, info)
        return await source.read(start, end)

    async def _source(self, path: str, info: Mapping[str, Any]) -> Any:
        """The range source of one CSE version (its data key unwrapped once, reused)."""
        ident = (path, str(info.get("ETag")))
        source = self._sources.get(ident)
        if source is None:
            # Decrypted here, on the loop: a worker thread opening the file would wait
            # (sync) on loop work that needs a worker thread too, and concurrent reads
            # then fill the loop's pool with threads waiting on each other.
            source = await self.encrypted.range_source(path, info)
            assert source is not None  # None is for plaintext; info has "cse"
            self._sources[ident] = source
            if len(self._sources) > MAX_SOURCES:
                self._sources.popitem(last=False)
        return source

    async def _cse_details(self, path: str, etag: str | None) -> Mapping[str, Any]:
        """The status with its CSE envelope (a listing's has none): looked up again, and
        refused (ChangedError) if it is another version now."""
        current = await self.lookup(path)  # noted by seen()
        if (etag and _bare(current.get("ETag")) != _bare(etag)) or not isinstance(
            current.get("cse"), dict
        ):
            raise ChangedError(path, etag or "?", current.get("ETag"))
        return current

    def get_stream(
        self,
        path: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 8 * 1024 * 1024,
    ) -> AsyncIterator[bytes]:
        return _one_chunk(self.get_range(path, start, end, if_match=if_match))

    async def put(
        self,
        path: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectMeta:
        raise _reads_only("put", path)

    async def writer(
        self,
        path: str,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectWriter:
        raise _reads_only("writer", path)

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
    ) -> ObjectMeta:
        raise _reads_only("copy", dst)

    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        raise _reads_only("delete", ", ".join(paths))

    def list(
        self, prefix: str, *, delimiter: str | None = None, limit: int | None = None
    ) -> AsyncIterator[ListPage]:
        raise _reads_only("list", prefix)


#: CSE range sources kept (each holds one object version's unwrapped data key).
MAX_SOURCES = 64


def _bare(etag: str | None) -> str:
    return (etag or "").strip('"')


async def _one_chunk(data: Awaitable[bytes]) -> AsyncIterator[bytes]:
    yield await data


def _reads_only(verb: str, path: str) -> NotImplementedError:
    return NotImplementedError(
        f"{verb} of {path!r}: the store under the block cache serves reads only; "
        "write through the emrfs filesystem, which drops the blocks it changes"
    )

"""Read planning: what a read may skip because the filesystem already knows it.

A Parquet reader asks ``info``, ``isfile``, opens, reads the footer, opens again for
the column chunks: naively a request each.  Here, above each path's stack:

* **Statuses are remembered** (:class:`KnownStatuses`): a file's status from
  ``info`` or a listing (size and ETag) serves ``isfile`` and ``open`` for
  ``s3.status_reuse_seconds``, with no HEAD (``info`` itself always asks).  This
  filesystem's own writes, deletes and renames forget what they touch.  A stale
  status can never mix two versions: every read of an open file is pinned to the
  ETag it was opened with, so a changed object is a
  :class:`~emrfs.s3.client.ChangedError`, not a mix.
* **The tail comes with the status** (the transport's ``head_tail``, kept by
  :meth:`ReadPlanner.keep_tail`): the ``info`` of a
  plaintext file is a GET of its last ``s3.status_tail_bytes`` (``Range: bytes=-N``)
  instead of a HEAD: the same one request, with the size, ETag and metadata a HEAD
  gives, plus the bytes where Parquet and ORC keep their footers, remembered by ETag
  (:class:`Tails`), so the footer read that follows costs nothing.  A file opened
  from a listing gets the same on its first read in the tail (as S3A's analytics
  stream prefetches the footer on open).
* **Ranges of one file are one version, nearby ones one GET**
  (:meth:`ReadPlanner.cat_ranges`, behind ``cat_ranges``: fsspec's
  ``open_parquet_file`` and the Parquet readers built on it): the ranges of a
  plaintext file are fetched through the path's stack pinned to one ETag, those less
  than :data:`MERGE_GAP` apart together (as S3A's vectored reads), and a remembered
  status that went stale is asked again once, so the caller gets the new version whole.

CSE and block-cached paths keep the HEAD (a ciphertext tail; the cache's ``open`` asks
for the current version).  Both options are per path; 0 turns each off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from . import paths
from .byterange import resolve_range
from .crypto.envelope import is_encrypted
from .known_statuses import KnownStatuses, Tails
from .s3.client import ChangedError
from .stacks import cse_in_force

if TYPE_CHECKING:
    from .config import Options
    from .stacks import Stacks
    from .status import StatusFactory
    from .store.protocol import ListedRow, ObjectMeta

logger = logging.getLogger("emrfs.readplan")

#: Ranges of one file at most this far apart are fetched by one GET (fsspec's
#: ``open_parquet_file`` merges at 64,000; S3A's vectored reads at 4 KiB .. 1 MiB).
MERGE_GAP = 64 * 1024


class ReadPlanner:
    """What one filesystem instance remembers to plan its reads, above the stack.

    ``stacks``: each path's stack (:class:`~emrfs.stacks.Stacks`), which planned ranges
    are fetched through, pinned to one ETag; ``s3``: the client of the status GET
    (a suffix range, which the store protocol does not speak); ``views``: the
    consistent view of a path, or None; ``in_tier``: whether the ephemeral tier
    serves a path; ``lookup``: the filesystem's ``info()``.
    """

    def __init__(
        self,
        options: Options,
        stacks: Callable[[], Stacks],
        views: Callable[[str], Any],
        *,
        in_tier: Callable[[str], bool],
        lookup: Callable[[str], Awaitable[dict]],
    ):
        self.options = options
        self.stacks = stacks
        self.views = views
        self.in_tier = in_tier
        self.lookup = lookup
        self.statuses = KnownStatuses()
        self.tails = Tails()

    # --- statuses -------------------------------------------------------------------------

    def _plans(self, path: str) -> bool:
        """Reads of ``path`` are planned here (the block cache plans its own)."""
        return not self.options.for_path(path).cache.enabled

    def _maybe_encrypted(self, path: str) -> bool:
        return cse_in_force(self.options.for_path(path).cse)

    def remember(self, info: dict[str, Any]) -> None:
        self.statuses.remember(info)

    def _remembers(self, path: str) -> bool:
        return not (self._maybe_encrypted(path) or self.views(path) is not None) and self._plans(
            path
        )

    def remember_listed_rows(
        self, rows: list[ListedRow], status: StatusFactory, scope: str
    ) -> None:
        """Keep the files of a listing below ``scope`` (its rows: a file's status dict is
        made by ``status`` only if a read asks for it).  Not where CSE may apply (a
        listing's size there may be an estimate, ``cse.listing_lengths = "adjust"``) nor
        under the consistent view (its entries may come from the metadata table, without
        the envelope an open needs).  The options are looked up once when no override
        starts inside ``scope``."""
        if self.options.uniform_below(scope):
            if self._remembers(scope):
                self.statuses.remember_rows(rows, status)
            return
        self.statuses.remember_rows([r for r in rows if self._remembers(r[0])], status)

    def _reuse_seconds(self, path: str) -> float:
        return self.options.for_path(path).s3.status_reuse_seconds

    def tail_bytes(self, path: str) -> int:
        """``s3.status_tail_bytes`` at ``path``: what a status and a first read in the tail
        fetch of a file's end."""
        return self.options.for_path(path).s3.status_tail_bytes

    def known(self, path: str) -> dict[str, Any] | None:
        """The status an ``open`` of ``path`` may use instead of a HEAD (block-cached paths
        ask at every open: the cache serves local blocks by the version ``open`` sees)."""
        if not self._plans(path) or self.views(path) is not None:
            # under the consistent view an open reads the version the view records now,
            # which a status remembered from before another writer's commit may not be
            return None
        return self.statuses.get(path, self._reuse_seconds(path)) or None

    def known_file(self, path: str) -> bool:
        """``path`` was a file a moment ago (``isfile`` needs no request)."""
        return self.statuses.get(path, self._reuse_seconds(path)) is not None

    def forget(self, path: str) -> None:
        self.statuses.forget(path)

    def forget_below(self, root: str) -> None:
        self.statuses.forget_below(root)

    # --- the status request -----------------------------------------------------------------

    def fetches_tail(self, path: str) -> bool:
        """The status of ``path`` comes with its tail (plaintext: no CSE can apply)."""
        return self._plans(path) and self.tail_bytes(path) > 0 and not self._maybe_encrypted(path)

    def keep_tail(self, meta: ObjectMeta, tail: bytes | None) -> None:
        """Keep the last bytes a status request brought (the transport's ``head_tail``:
        one suffix-range GET) for the reads of that version; an encrypted object's are
        ciphertext, no use to a read."""
        if tail is not None and meta.etag and not is_encrypted(meta.metadata):
            self.tails.put(meta.path, meta.etag, meta.size - len(tail), tail)

    # --- reads ------------------------------------------------------------------------------

    async def read(
        self,
        path: str,
        etag: str | None,
        size: int,
        start: int,
        end: int,
        first: bool,
        fetch,
        *,
        reuse: bool = True,
    ) -> bytes:
        """Bytes ``[start, end)`` of version ``etag`` of ``path``: from its remembered tail, or
        ``fetch(start, end)``; the ``first`` read of an open file that starts in the tail
        fetches the whole tail (the footer, and what the reader asks for next).  Without
        ``reuse`` (a file opened with ``cache_type="none"``) every read asks S3."""
        if not reuse:
            return await fetch(start, end)
        # A remembered tail serves a part of the file (a footer), never a whole-file read:
        # that one asks S3, pinned, so a file replaced since its status was taken is seen
        # (and an open on a remembered status reads the new version, EmrFile.read).
        cached = None if start <= 0 and end >= size else self.tails.read(path, etag, start, end)
        if cached is not None:
            return cached
        tail = self.tail_bytes(path)
        tail_start = max(0, size - tail)
        if first and tail and etag and start >= tail_start and end <= size and start < end:
            data = await fetch(tail_start, size)
            if len(data) == size - tail_start:
                self.tails.put(path, etag, tail_start, data)
            return data[start - tail_start : end - tail_start]
        return await fetch(start, end)

    async def cat_ranges(
        self,
        paths_: list[str],
        starts,
        ends,
        *,
        max_gap: int | None = None,
        batch_size: int | None = None,
        on_error: str = "return",
        one: Callable[[str, int | None, int | None], Awaitable[bytes]],
    ) -> list:
        """``cat_ranges``: the ranges of each plaintext file read from one version, nearby
        ones coalesced; anything else (CSE, the block cache, the tier, the consistent view,
        a file with one range and no remembered status) through ``one`` (``_cat_file``)."""
        names, starts, ends = _one_per_range(paths_, starts, ends)
        gap = MERGE_GAP if max_gap is None else max_gap
        by_path: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            by_path.setdefault(name, []).append(i)
        out: list = [None] * len(names)
        limit = asyncio.Semaphore(batch_size or self.options.s3.max_concurrency)

        async def single(i: int) -> None:
            async with limit:
                try:
                    out[i] = await one(names[i], starts[i], ends[i])
                except Exception as exc:  # noqa: BLE001 - per range, as fsspec's
                    out[i] = exc

        async def planned(name: str, indices: list[int]) -> None:
            got: list[bytes | Exception]
            try:
                ranges = [(starts[i], ends[i]) for i in indices]
                got = list(await self._pinned_ranges(name, ranges, gap, limit))
            except (FileNotFoundError, IsADirectoryError, _NotPlanned):
                # not one plaintext file after all: asked range by range, each with its own
                # error (a directory, a missing file...) as cat_file gives it
                await asyncio.gather(*(single(i) for i in indices))
                return
            except Exception as exc:  # noqa: BLE001 - per range, as fsspec's (ChangedError
                got = [exc] * len(indices)  # too: it changed twice; never read unpinned)
            for i, data in zip(indices, got, strict=True):
                out[i] = data

        jobs = []
        for name, indices in by_path.items():
            if self._plans_ranges(name) and (len(indices) > 1 or self.known(name)):
                jobs.append(planned(name, indices))
            else:
                jobs.extend(single(i) for i in indices)
        await asyncio.gather(*jobs)
        failed = next((x for x in out if isinstance(x, BaseException)), None)
        if on_error != "return" and failed is not None:
            raise failed
        return out

    def _plans_ranges(self, path: str) -> bool:
        _, key = paths.split(path)
        return (
            bool(key)
            and self.fetches_tail(path)
            and self.views(path) is None
            and not self.in_tier(path)
        )

    async def _pinned_ranges(
        self,
        path: str,
        ranges: list[tuple[int | None, int | None]],
        gap: int,
        limit: asyncio.Semaphore,
    ) -> list[bytes]:
        """The ``ranges`` of ``path`` from one version; a remembered status that went
        stale is replaced by a fresh one once (the caller gets the new version whole)."""
        status = self.known(path)
        for attempt in (0, 1):
            if status is None:
                status = await self.lookup(path)
            if status.get("type") != "file" or status.get("cse") or not status.get("ETag"):
                raise _NotPlanned(path)
            try:
                return await self._read_ranges(path, status, ranges, gap, limit)
            except ChangedError:
                if attempt:
                    raise
                self.forget(path)
                status = None
        raise AssertionError("unreachable")

    async def _read_ranges(
        self, path: str, status: dict, ranges, gap: int, limit: asyncio.Semaphore
    ) -> list[bytes]:
        size, etag = status["size"], status["ETag"]
        wanted = [resolve_range(s, e, size) for s, e in ranges]
        spans: list[list[int]] = []  # [start, end] of each GET, ranges merged across gaps
        for start, end in sorted(r for r in wanted if r[1] > r[0]):
            if (
                spans
                and start - spans[-1][1] <= gap
                and end - spans[-1][0] <= self.options.s3.read_block_size
            ):
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])

        stack = self.stacks().for_path(path)

        async def fetch(span: list[int]) -> bytes:
            cached = self.tails.read(path, etag, span[0], span[1])
            if cached is not None:
                return cached
            async with limit:
                return await stack.get_range(path, span[0], span[1], if_match=etag)

        fetched = await asyncio.gather(*(fetch(span) for span in spans))
        result = []
        for start, end in wanted:
            if end <= start:
                result.append(b"")
                continue
            for (s, e), data in zip(spans, fetched, strict=True):
                if s <= start and end <= e:
                    result.append(data[start - s : end - s])
                    break
        return result


def _one_per_range(paths_: list[str], starts, ends) -> tuple[list[str], list, list]:
    """``cat_ranges``' arguments as one (validated path, start, end) per range."""
    if not isinstance(paths_, list):
        raise TypeError(f"cat_ranges takes a list of paths, not {type(paths_).__name__}")
    starts = list(starts) if isinstance(starts, Iterable) else [starts] * len(paths_)
    ends = list(ends) if isinstance(ends, Iterable) else [ends] * len(paths_)
    if not len(starts) == len(ends) == len(paths_):
        raise ValueError(
            f"cat_ranges: {len(paths_)} paths, {len(starts)} starts and "
            f"{len(ends)} ends; give one of each per range"
        )
    return [paths.validate(p) for p in paths_], starts, ends


class _NotPlanned(Exception):
    """The path is not one plaintext file with an ETag: its ranges go one by one."""

"""``EmrFile``: buffered reads with adaptive read-ahead, and uploads with bounded memory.

Reads: a read at offset 0 assumes a sequential scan and reads ahead up to the block size; a
read elsewhere (a Parquet footer, a column chunk) fetches exactly what was asked, and
read-ahead only grows back after reads turn sequential — the "adaptive" input policy of
Hadoop's S3A.  Once a scan reads sequentially with the whole block as read-ahead, the next
window is fetched in the background while the reader consumes this one (S3A's prefetching
stream): one window ahead at most, so a scan holds at most two windows however large the file.

Writes: small files are one PUT on close; larger ones a multipart upload whose parts go up
in the background, ``s3.upload_concurrency`` at a time, so memory stays near ``part_size ×
(upload_concurrency + 1)`` however large the file.  Mode ``xb`` completes with
``If-None-Match: *``: of two concurrent exclusive creators exactly one wins.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fsspec.asyn import sync
from fsspec.caching import BaseCache, register_cache
from fsspec.spec import AbstractBufferedFile

from . import paths
from .errors import ChangedError, exists, is_a_directory
from .s3.multipart import MIN_PART

if TYPE_CHECKING:
    from .store.protocol import ObjectWriter, StagedUpload

logger = logging.getLogger("emrfs.files")

_MIN_READAHEAD = 1024 * 1024
#: a sequential scan's read-ahead comes in this many pieces, fetched at once: 8 MiB of
#: the default 32 MiB block (fresh allocations of 32 MiB and more are mapped and faulted
#: in anew each time, which costs more CPU here than receiving the bytes)
_AHEAD_PIECES = 4


class AdaptiveReadahead(BaseCache):
    """One window of bytes; read-ahead grows on sequential reads and drops on seeks.

    ``prefetch(start, end)``, when given, starts fetching ``[start, end)`` in the
    background and returns its future.  A scan reading sequentially at full read-ahead
    then reads in pieces (a ``_AHEAD_PIECES``-th of the block) while the next ``blocksize``
    bytes are on their way (a few GETs in flight, as a stream's parts read ahead):
    the reader works while the network does, and holds one piece plus the block
    ahead.  A seek drops the pieces ahead."""

    name = "emrfs-adaptive"

    def __init__(
        self,
        blocksize: int,
        fetcher,
        size: int,
        prefetch: Callable[[int, int], concurrent.futures.Future[bytes]] | None = None,
        **kwargs,
    ):
        super().__init__(blocksize, fetcher, size)
        self.cache = b""
        self.start = 0
        self.end = 0
        self.last_end: int | None = None
        self.readahead: int | None = None  # None until the first read decides
        self.prefetch = prefetch
        #: the pieces on their way, in order and contiguous: (start, end, future)
        self.ahead: deque[tuple[int, int, concurrent.futures.Future[bytes]]] = deque()

    def _fetch(self, start: int | None, end: int | None) -> bytes:
        start = 0 if start is None else start
        end = self.size if end is None or end > self.size else end
        if start >= end:
            return b""
        if self.start <= start and end <= self.end:
            self.hit_count += 1
            self.last_end = end
            return self.cache[start - self.start : end - self.start]
        self.miss_count += 1
        sequential = start == self.last_end or (self.start <= start <= self.end and self.end)
        if self.readahead is None:
            self.readahead = self.blocksize if start == 0 else 0
        elif sequential:
            self.readahead = min(self.blocksize, max(_MIN_READAHEAD, self.readahead * 2))
        else:
            self.readahead = 0
        kept = self.cache[start - self.start :] if self.start <= start < self.end else b""
        lo = start + len(kept)
        if self._streaming():
            # the pieces fetched ahead, then (a read larger than they hold) the rest now
            pieces = self._take_ahead(lo, end)
            got = lo + sum(map(len, pieces))
            if got < end:
                pieces.append(self.fetcher(got, min(self.size, max(end, got + self._piece()))))
            new = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        else:
            self._drop_ahead()
            new = self.fetcher(lo, min(self.size, end + self.readahead))
        self.total_requested_bytes += len(new)
        data = kept + new if kept else new
        self.cache, self.start, self.end = data, start, start + len(data)
        self.last_end = end
        if self._streaming():
            self._fetch_ahead()
        return data[: end - start]

    def _streaming(self) -> bool:
        return self.prefetch is not None and self.readahead == self.blocksize

    def _piece(self) -> int:
        return min(self.blocksize, max(_MIN_READAHEAD, self.blocksize // _AHEAD_PIECES))

    def _fetch_ahead(self) -> None:
        """Start fetching the pieces of the ``blocksize`` bytes after this window that
        are not on their way yet."""
        assert self.prefetch is not None
        lo = self.ahead[-1][1] if self.ahead else self.end
        stop = min(self.size, self.end + self.blocksize)
        while lo < stop:
            hi = min(stop, lo + self._piece())
            self.ahead.append((lo, hi, self.prefetch(lo, hi)))
            lo = hi

    def _take_ahead(self, start: int, end: int) -> list[bytes]:
        """The pieces fetched ahead from ``start`` on, as far as ``end`` needs (waiting
        for them); none if they start elsewhere (a seek: they are dropped)."""
        if self.ahead and self.ahead[0][0] != start:
            self._drop_ahead()
        pieces: list[bytes] = []
        while self.ahead and start < end:
            lo, hi, future = self.ahead.popleft()
            try:
                piece = future.result()
            except ChangedError:
                self._drop_ahead()
                raise  # another version: the reader's error, as a fetch in the foreground
            except Exception:  # noqa: BLE001 - fetched again in the foreground, which reports
                logger.debug("a read-ahead from byte %d failed; reading it now", start)
                self._drop_ahead()
                break
            pieces.append(piece)
            start += len(piece)
            if len(piece) != hi - lo:  # short (the end moved): the rest is asked anew
                self._drop_ahead()
        return pieces

    def _drop_ahead(self) -> None:
        while self.ahead:
            self.ahead.pop()[2].cancel()

    def close(self) -> None:
        self._drop_ahead()
        self.cache = b""


register_cache(AdaptiveReadahead, clobber=True)


class EmrFile(AbstractBufferedFile):
    """A file of the emrfs filesystem (modes rb, wb, ab, xb)."""

    buffer: io.BytesIO  # fsspec's write buffer

    def __init__(
        self,
        fs,
        path: str,
        mode: str = "rb",
        block_size=None,
        autocommit=True,
        cache_type: str | None = None,
        cache_options=None,
        size=None,
        **kwargs,
    ):
        self.bucket, self.key = paths.split(path)
        if not self.key:
            raise is_a_directory(path, "a bucket cannot be opened as a file")
        self._writer: ObjectWriter | None = None  # the stack's write in parts, once started
        self._parts_in_flight: list[concurrent.futures.Future] = []
        self._part_number = 0
        self._etag = None
        self._fetched = False  # the first read plans for the footer (emrfs.readplan)
        self._reuse_tail = cache_type != "none"  # "none": every read asks S3
        if mode == "rb":  # given a size, no status is asked (and no version pinned)
            if size is None:
                size, cache_type, cache_options = self._open_status(
                    fs, path, cache_type, cache_options
                )
            self._source = fs._cached.file_store(paths.validate(path), cache_type)
        elif mode in ("wb", "xb", "ab"):
            sync(fs.loop, fs._check_write_target, path)
            if mode == "xb" and fs.exists(path):
                # fast refusal; the conditional write below is what makes it atomic
                raise exists(path, "mode 'xb' creates only new files")
        if mode == "rb":
            block_size = block_size or fs.blocksize
        else:  # every part but the last must be >= 5 MiB (S3's rule), whatever was asked
            block_size = max(block_size or fs.options.s3.part_size, MIN_PART)
        self._cache_spec = (cache_type or "emrfs-adaptive", dict(cache_options or {}))
        super().__init__(
            fs,
            path,
            mode,
            block_size=block_size,
            autocommit=autocommit,
            cache_type=cache_type or "emrfs-adaptive",
            cache_options=cache_options,
            size=size,
            **kwargs,
        )
        self._arm_read_ahead()
        if mode == "ab":
            self._prepare_append()

    def _open_status(
        self, fs, path: str, cache_type: str | None, cache_options: Any
    ) -> tuple[int, str | None, Any]:
        """Size and read cache of a file opened ``rb``: a status seen a moment ago (info,
        ls) needs no HEAD (reads pin its ETag)."""
        info = fs._reads.known(paths.strip_protocol(path))
        self._status_reused = info is not None  # a read that meets another version asks again
        info = info or fs.info(path)
        if info["type"] != "file":
            raise is_a_directory(path, "open a file below it, or use ls")
        self._etag = info.get("ETag")
        self._details = info
        chosen = cache_type is None and fs._cached.file_cache(path, info)
        if chosen:  # the block cache, when it is on (emrfs.cached_io)
            cache_type, cache_options = chosen
        return info["size"], cache_type, cache_options

    # --- reading -------------------------------------------------------------------

    _status_reused = False  # opened on a status remembered from info/ls, not asked at open
    _served = False  # bytes have reached the caller: the version is fixed from then on

    def read(self, length: int = -1) -> bytes:
        try:
            out = super().read(length)
        except ChangedError:
            # Opened on a remembered status and the object was replaced since: before any
            # byte reached the caller, ask again and read the version there now (as an open
            # that made its own HEAD would have).  Afterwards a change is the caller's error.
            if not self._status_reused or self._served:
                raise
            self._take_fresh_status()
            out = super().read(length)
        self._served = self._served or bool(out)
        return out

    def _take_fresh_status(self) -> None:
        self._status_reused = False
        self.fs._reads.forget(self.path)
        info = self.fs.info(self.path)
        if info["type"] != "file":
            raise is_a_directory(self.path, "it was replaced by a directory while opening")
        self.size, self._etag, self._details = info["size"], info.get("ETag"), info
        self._fetched = False
        from fsspec.core import caches

        cache_type, cache_options = self._cache_spec
        old = getattr(self, "cache", None)
        if isinstance(old, AdaptiveReadahead):
            old.close()  # its pieces ahead are of the version no longer read
        self.cache = caches[cache_type](
            self.blocksize, self._fetch_range, self.size, **cache_options
        )
        self._arm_read_ahead()

    def _arm_read_ahead(self) -> None:
        """A sequential scan fetches its next window in the background (AdaptiveReadahead)."""
        if isinstance(getattr(self, "cache", None), AdaptiveReadahead):
            self.cache.prefetch = self._fetch_range_later

    def _fetch_range(self, start: int, end: int) -> bytes:
        return sync(self.fs.loop, self._fetch_range_async, start, end)

    def _fetch_range_later(self, start: int, end: int) -> concurrent.futures.Future[bytes]:
        """``_fetch_range`` started on the filesystem's loop; its future."""
        return asyncio.run_coroutine_threadsafe(self._fetch_range_async(start, end), self.fs.loop)

    async def _fetch_range_async(self, start: int, end: int) -> bytes:
        """``_fetch_range`` as a coroutine on the filesystem's loop (the block cache's fills)."""
        # With the ETag pinned, an overwrite mid-read fails (ChangedError) instead of
        # mixing two versions; the consistent view retries stale copies first.
        first, self._fetched = not self._fetched, True

        async def fetch(start: int, end: int) -> bytes:
            return await self._source.get_range(self.path, start, end, if_match=self._etag)

        return await self.fs._reads.read(
            self.path, self._etag, self.size, start, end, first, fetch, reuse=self._reuse_tail
        )

    # --- writing -------------------------------------------------------------------
    # Every write goes through the path's stack (emrfs.stacks): one PUT, or parts through
    # its writer; CSE, the view's record, the cache's invalidation, SSE and the purge of
    # abandoned uploads are its layers'.

    def _prepare_append(self) -> None:
        try:
            info = self.fs.info(self.path)
        except FileNotFoundError:
            return
        if info["type"] != "file":
            raise is_a_directory(self.path, "cannot append to a directory")
        size = info["size"]
        if size < 5 * 1024 * 1024:
            self.write(self.fs.cat_file(self.path))
            return
        if info.get("cse") or self.fs._encrypted.cse_enabled(self.path):
            # An encrypted object cannot be extended in place (one cipher stream, its tag
            # at the end), nor copied into one: its plaintext streams into this writer,
            # encrypted afresh, parts going up as they fill; the new object replaces the
            # old one whole when the file closes.
            with self.fs.open(self.path, "rb") as old:
                while chunk := old.read(self.blocksize):
                    self.write(chunk)
            return
        # large: the existing object becomes the first parts, copied server-side
        self.loc = size
        self.offset = 0
        writer = self._start_upload()
        for start in range(0, size, 5 * 1024**3):
            self._part_number += 1
            end = min(size, start + 5 * 1024**3)
            sync(self.fs.loop, writer.copy_part, self._part_number, self.path, start, end)
        self.offset = size

    def _start_upload(self) -> ObjectWriter:
        stack = self.fs._stacks.for_path(self.path)
        self._writer = sync(self.fs.loop, stack.writer, self.path, if_none_match=self.mode == "xb")
        return self._writer

    def _current_upload(self) -> ObjectWriter:
        if self._writer is None:  # a part before _start_upload: a bug, said plainly
            raise RuntimeError(f"no multipart upload of {self.path!r} is in progress")
        return self._writer

    def _initiate_upload(self) -> None:
        if self._writer is None and self.buffer.tell() >= self.blocksize:
            self._start_upload()

    def write(self, data) -> int:
        """Buffer ``data``; each time the buffer holds a part, it goes up (in the background).

        A write larger than the room left in the buffer is taken in pieces that fill
        it exactly, so the buffer never holds more than one part, however much one
        call writes.
        """
        view = memoryview(data).cast("B")
        if view.nbytes <= self.blocksize - self.buffer.tell():
            return super().write(view)
        taken = 0
        while taken < view.nbytes:
            room = self.blocksize - self.buffer.tell()
            taken += super().write(view[taken : taken + max(room, 1)])
        return taken

    def _submit_part(self, body: bytes) -> None:
        """Send part ``body`` in the background once fewer than ``s3.upload_concurrency``
        parts are in flight (blocking the writer until then: memory stays bounded)."""
        limit = max(1, self.fs.options.s3.upload_concurrency)
        while len(self._parts_in_flight) >= limit:
            done, _ = concurrent.futures.wait(
                self._parts_in_flight, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                self._parts_in_flight.remove(future)
                future.result()  # a failed part fails the write now
        self._part_number += 1
        future = asyncio.run_coroutine_threadsafe(
            self._current_upload().write_part(self._part_number, body), self.fs.loop
        )
        self._parts_in_flight.append(future)

    def _full_parts(self, final: bool) -> list[bytes]:
        """Take from the buffer what goes up now: the buffer's bytes as one part when it
        holds one (``getvalue`` of a buffer dropped right after shares its memory: no
        copy), else pieces of ``blocksize`` (a buffer an override filled past two parts);
        with ``final``, everything.  What stays behind is less than one part."""
        size = self.buffer.seek(0, 2)
        if size == 0 or (size < self.blocksize and not final):
            return []
        if size < 2 * self.blocksize:
            body, self.buffer = self.buffer.getvalue(), io.BytesIO()
            return [body]
        with self.buffer.getbuffer() as view:
            cut = size if final else size - size % self.blocksize
            pieces = [
                bytes(view[start : min(cut, start + self.blocksize)])
                for start in range(0, cut, self.blocksize)
            ]
            rest = io.BytesIO()
            rest.write(view[cut:])
        self.buffer = rest
        return pieces

    def _upload_chunk(self, final: bool = False):
        if self._writer is None:
            if final:
                if not self.autocommit:
                    return False  # held until commit()
                self._put_whole(self.buffer.getvalue())
                return True
            self._start_upload()
        try:
            for body in self._full_parts(final):
                self._submit_part(body)
            if final:
                for future in self._parts_in_flight:
                    future.result()
                self._parts_in_flight.clear()
                if self.autocommit:
                    self._complete()
        except BaseException:
            self._abort()
            raise
        return False

    def _put_whole(self, data: bytes) -> None:
        stack = self.fs._stacks.for_path(self.path)
        sync(self.fs.loop, stack.put, self.path, data, if_none_match=self.mode == "xb")
        self._stored()

    def _complete(self) -> None:
        writer = self._current_upload()
        sync(self.fs.loop, writer.complete)  # an empty body: the writer sends one empty part
        self._writer = None
        self._stored()

    def _stored(self) -> None:
        """The object is stored (the stack recorded it where the view is on): the
        namespace's part, the parents' markers."""
        sync(self.fs.loop, self.fs._markers.after_create, self.path)

    def _abort(self) -> None:
        for future in self._parts_in_flight:
            future.cancel()
        self._parts_in_flight.clear()
        if self._writer is not None:
            try:
                sync(self.fs.loop, self._writer.abort)
            finally:
                self._writer = None

    def commit(self) -> None:
        if self._writer is None:
            self._put_whole(self.buffer.getvalue())
        else:
            self._complete()

    def discard(self) -> None:
        self._abort()

    def stage(self) -> StagedUpload:
        """Close without completing (a file opened with ``autocommit=False``).

        Every byte goes up as parts of a multipart upload that stays open, so
        nothing is visible; returns the :class:`~emrfs.store.StagedUpload` (its
        upload id, part ETags, plaintext size and, for a CSE instruction file, what
        goes beside the object once published) for whoever completes it later
        (:mod:`emrfs.staging`).  A failure aborts the upload.
        """
        if self.autocommit or self.mode not in ("wb", "xb"):
            raise ValueError(
                f"stage() needs a file opened with mode 'wb' and autocommit=False ({self.path!r})"
            )
        try:
            self.flush(force=True)  # the rest goes up as the last part, unless held
            if self._writer is None:  # small: held in the buffer; it becomes part 1 (even empty)
                self._start_upload()
                self._submit_part(self.buffer.getvalue())
            for future in self._parts_in_flight:
                future.result()
            self._parts_in_flight.clear()
            staged = sync(self.fs.loop, self._current_upload().stage)
        except BaseException:
            self._abort()
            raise
        finally:
            self.closed = True
        self._writer = None  # no longer ours: discard() must not abort it
        return staged

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        except BaseException:
            self._abort()
            raise

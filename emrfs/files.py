"""``EmrFile``: buffered reads with adaptive read-ahead, and uploads with bounded memory.

Reads: a read at offset 0 assumes a sequential scan and reads ahead up to the
block size; a read elsewhere (a Parquet footer, a column chunk) fetches exactly
what was asked, and read-ahead only grows back after reads turn sequential —
the "adaptive" input policy of Hadoop's S3A.

Writes: small files are one PUT on close; larger ones a multipart upload whose
parts go up in the background, ``s3.upload_concurrency`` at a time, so memory
stays near ``part_size × (upload_concurrency + 1)`` however large the file.
Mode ``xb`` completes with ``If-None-Match: *``: of two concurrent exclusive
creators exactly one wins, without a check-then-write race.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
from typing import TYPE_CHECKING

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


class AdaptiveReadahead(BaseCache):
    """One window of bytes; read-ahead grows on sequential reads and drops on seeks."""

    name = "emrfs-adaptive"

    def __init__(self, blocksize: int, fetcher, size: int, **kwargs):
        super().__init__(blocksize, fetcher, size)
        self.cache = b""
        self.start = 0
        self.end = 0
        self.last_end: int | None = None
        self.readahead: int | None = None  # None until the first read decides

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
        fetch_end = min(self.size, end + self.readahead)
        if self.start <= start < self.end:
            data = self.cache[start - self.start :] + self.fetcher(self.end, fetch_end)
        else:
            data = self.fetcher(start, fetch_end)
        self.total_requested_bytes += fetch_end - start
        self.cache, self.start, self.end = data, start, start + len(data)
        self.last_end = end
        return data[: end - start]


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
        if mode == "rb" and size is None:
            # a status seen a moment ago (info, ls) needs no HEAD: reads pin its ETag
            info = fs._reads.known(paths.strip_protocol(path))
            self._status_reused = info is not None  # a read that meets another version asks again
            info = info or fs.info(path)
            if info["type"] != "file":
                raise is_a_directory(path, "open a file below it, or use ls")
            size = info["size"]
            self._etag = info.get("ETag")
            self._details = info
            if cache_type is None:  # the block cache when it is on (emrfs.cached_io)
                cache_type, cache_options = fs._cached.file_cache(path, info) or (
                    cache_type,
                    cache_options,
                )
            # the path's stack (below its block cache when the file reads those blocks)
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
        if mode == "ab":
            self._prepare_append()

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
        self.cache = caches[cache_type](
            self.blocksize, self._fetch_range, self.size, **cache_options
        )

    def _fetch_range(self, start: int, end: int) -> bytes:
        return sync(self.fs.loop, self._fetch_range_async, start, end)

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

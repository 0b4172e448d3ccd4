"""The obstore transport: the object-store protocol over obstore's ``S3Store`` (Rust
``object_store``), several times less client CPU per request than botocore.

What obstore cannot do goes to the botocore transport given as ``fallback``, verb
by verb:

* multipart uploads by upload id (:meth:`writer`, staging, :meth:`complete_staged`),
  copies that replace metadata, cross the bucket or exceed ``s3.copy_threshold``;
* keys obstore's path type cannot hold faithfully: a trailing ``/`` (S3A's
  directory markers, which obstore would silently strip), ``//``, ``.`` or ``..``
  segments, control characters; and listings whose prefix is not a directory
  (obstore lists by path segment) or that meet such a key;
* every verb in a process forked from one that used obstore: its tokio runtime
  does not survive ``fork`` (the child hangs on its first request), so such a
  child switches to botocore by itself and logs it at debug level.

Errors leave through :func:`emrfs.errors.map_s3_errors`, the same table the
botocore transport uses; a pinned GET that meets another version raises
``ChangedError``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # obstore's TypedDicts exist only for type checkers
    from obstore import GetOptions

from ..errors import ChangedError, TransportError, is_retryable
from .buffers import FilledBytes
from .obstore_drain import Prefix, drain, in_order, in_worker
from .obstore_listing import ObstoreListing
from .obstore_native import (
    blocking,
    choose_transport,
    each,
    get_reading_small,
    obstore_available,
    obstore_key,
    obstore_usable,
    unsupported_by_obstore,
)
from .obstore_writes import ObstoreWrites
from .protocol import ObjectMeta, check_range, pinned_head, split
from .targets import ReadTarget, Scatter

logger = logging.getLogger("emrfs.store.obstore")

__all__ = [
    "ObstoreStore",
    "obstore_available",
    "obstore_usable",
    "unsupported_by_obstore",
    "choose_transport",
    "obstore_key",
]

#: A whole-object ``get`` asks for this much first; a larger object's other parts come in
#: ranged GETs of this size, ``_GET_PARALLEL`` at a time (as boto3's TransferManager, which
#: reads 8 MiB parts 10 at a time; 16 MiB measured a little faster on SeaweedFS here)
_GET_PART = 16 * 1024 * 1024
_GET_PARALLEL = 8
#: the first GET asks for this much more than a part, and a last part this short (or up to
#: ``_GET_PART // 8``) joins the one before: a client-side encrypted object is its
#: plaintext's size plus a tag (16 bytes, or 16 a segment), and a 16 MiB or 64 MiB one read
#: in 16 MiB parts must not cost one more GET of its last few bytes
_GET_SLACK = 64 * 1024
#: the smallest piece obstore hands a worker thread draining a large GET's part: 0, each
#: piece as it arrives (a larger minimum makes obstore join pieces first: one more copy)
_FILL_CHUNK = 0
#: a larger stream comes in parts of at least this size, up to ``_STREAM_AHEAD`` of them
#: (and ``_STREAM_WINDOW`` bytes) read ahead of the one handed out
_STREAM_PART = 8 * 1024 * 1024
_STREAM_AHEAD = 4
_STREAM_WINDOW = 32 * 1024 * 1024


def _quoted(etag: str) -> str:
    etag = etag.strip()
    return etag if etag.startswith('"') or etag.startswith("W/") else f'"{etag}"'


def _same_etag(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip('"') == b.strip('"')


def _any_size(size: int) -> bool:
    return True


def _first_end(start: int, end: int | None) -> int:
    """Where the first GET of a read of ``[start, end)`` ends (it tells the size)."""
    first = start + _GET_PART + _GET_SLACK
    return first if end is None else min(end, first)


def _part_bounds(
    start: int, first_end: int, stop: int, part: int | None = None
) -> list[tuple[int, int]]:
    """The parts of ``[start, stop)``: the first GET's, then ``part`` (``_GET_PART``) each,
    a short last one joined to the one before."""
    part = part or _GET_PART
    bounds = [(start, min(stop, first_end))]
    bounds += [(lo, min(stop, lo + part)) for lo in range(first_end, stop, part)]
    if len(bounds) > 2 and bounds[-1][1] - bounds[-1][0] <= max(_GET_SLACK, part // 8):
        (lo, _), (_, hi) = bounds[-2], bounds.pop()
        bounds[-1] = (lo, hi)
    return bounds


class ObstoreStore(ObstoreWrites, ObstoreListing):
    """The S3 transport over obstore, for one resolved set of S3 and SSE options.

    ``fallback`` makes (once, lazily) the botocore transport for what obstore cannot
    do; it is a store or a zero-argument factory.  A GET pinned to an ETag that meets
    another version is :class:`~emrfs.errors.ChangedError` (the consistent layer above
    retries a stale copy).
    """

    # --- reads --------------------------------------------------------------------------

    async def head(self, path: str) -> ObjectMeta:
        if not self._direct(path):
            return await self.fallback.head(path)
        import obstore

        bucket, key = split(path)
        with self._errors(path):
            # a GET with head=True is a HEAD whose answer obstore reads in full
            # (user metadata and content type; its head() drops them)
            result = await blocking(obstore.get, self._store(bucket), key, options={"head": True})
        return self._meta(path, result.meta, result.attributes)

    async def head_tail(self, path: str, nbytes: int) -> tuple[ObjectMeta, bytes | None]:
        """As :meth:`~emrfs.store.s3.S3Store.head_tail`: one suffix-range GET."""
        if not self._direct(path):
            return await self.fallback.head_tail(path, nbytes)
        import obstore

        bucket, key = split(path)
        try:
            with self._errors(path):
                result = await blocking(
                    obstore.get, self._store(bucket), key, options={"range": {"suffix": nbytes}}
                )
        except (FileNotFoundError, PermissionError):
            raise
        except Exception:  # noqa: BLE001 - the status alone, by a HEAD (which raises what is wrong)
            # an empty object has no last bytes (416), and some servers answer a suffix
            # range with the whole body, which obstore refuses ("non-partial response")
            return await self.head(path), None
        meta = self._meta(path, result.meta, result.attributes)
        try:
            data: bytes | None = bytes(await blocking(result.bytes))
        except Exception:  # noqa: BLE001 - a body cut short: the headers are the status
            data = None
        return meta, data

    async def get_range(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> bytes:
        if not self._direct(path):
            return await self.fallback.get_range(path, start, end, if_match=if_match)
        if end is not None and end <= start:
            return b""
        if end is None or end - start > _GET_PART:  # large: in parts, into one buffer
            return (await self.get(path, start, end, if_match=if_match))[1]
        got = await self._request(path, start, end, if_match, _any_size)
        return b"" if got is None else got[1] or b""

    async def get(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> tuple[ObjectMeta, bytes]:
        if not self._direct(path):
            return await self.fallback.get(path, start, end, if_match=if_match)
        check_range(path, start, end)
        if end is not None and end <= start:
            return await pinned_head(self, path, if_match), b""
        # the first part tells the object's size; a larger object's other parts come in
        # parallel ranged GETs pinned to the version it served (as boto3 reads)
        first_end = _first_end(start, end)
        whole = min(first_end, start + _GET_PART)  # a read that stops by here is one GET

        def one_get(size: int) -> bool:
            return (size if end is None else min(end, size)) <= whole

        got = await self._request(path, start, first_end, if_match, one_get)
        if got is None:  # the range starts at or past the end: the meta from a HEAD
            return await pinned_head(self, path, if_match), b""
        first, data = got
        # obstore's meta describes the whole object (its size from Content-Range)
        meta = self._meta(path, first.meta, first.attributes)
        stop = meta.size if end is None else min(end, meta.size)
        if data is not None:  # small: obstore's buffer, copied once
            if len(data) != stop - start:
                raise ChangedError(path, meta.etag or "", None)  # changed under the read
            return meta, data
        out = FilledBytes(stop - start)
        try:
            await self._parts(
                path, start, first_end, stop, first, meta.etag or if_match, Scatter([out.view])
            )
        except BaseException:
            out.view.release()
            raise
        return meta, out.value()

    async def get_into(
        self,
        path: str,
        target: ReadTarget,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
    ) -> ObjectMeta:
        if not self._direct(path):
            return await self.fallback.get_into(path, target, start, end, if_match=if_match)
        check_range(path, start, end)
        first = None
        if end is None or end > start:
            first_end = _first_end(start, end)
            first = await self._get(path, start, first_end, if_match)
        if first is None:  # nothing to read (at or past the end): the meta from a HEAD
            meta = await pinned_head(self, path, if_match)
            await target.open(meta, 0)
            target.filled(0)
            return meta
        meta = self._meta(path, first.meta, first.attributes)
        stop = meta.size if end is None else min(end, meta.size)

        # the other parts' GETs go out while the target opens (a decrypting one resolves
        # its key meanwhile); it is told as each prefix completes, so it works while the
        # next parts arrive
        async def opened() -> Sequence[memoryview]:
            await asyncio.sleep(0)  # the parts' GETs, scheduled next, go out first
            return await target.open(meta, stop - start)

        opening = asyncio.ensure_future(opened())
        try:
            await self._parts(
                path, start, first_end, stop, first, meta.etag or if_match, opening, target.filled
            )
        finally:
            if not opening.done():  # a part failed first
                opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
        return meta

    async def _parts(
        self,
        path: str,
        start: int,
        first_end: int,
        stop: int,
        first: Any,
        pin: str | None,
        into: Scatter | asyncio.Future[Sequence[memoryview]],
        filled: Callable[[int], None] | None = None,
    ) -> None:
        """Bytes ``[start, stop)`` into ``into`` (offset 0 is ``start``): the first part
        from ``first`` (its GET made, of ``[start, first_end)``), the others by parallel
        GETs pinned to ``pin``, each drained by a worker thread straight into its place;
        ``filled(n)`` told as the prefix in place grows (at part ends, and as the drains
        report).  ``into`` may be the buffers still to come: each part's GET is made
        meanwhile, drained once they are."""
        limit = asyncio.Semaphore(max(1, min(self.s3.max_concurrency, _GET_PARALLEL)))

        bounds = _part_bounds(start, first_end, stop)
        # the parts land together: a target told of each prefix as its drains report works
        # (decrypts) behind the download, not all at its end
        prefix = Prefix([hi - lo for lo, hi in bounds], filled) if filled is not None else None

        async def part(k: int, result: Any = None) -> None:
            lo, hi = bounds[k]
            async with limit:
                if result is None:
                    result = await self._get(path, lo, hi, pin)
                    if result is None:
                        raise ChangedError(path, pin or "", None)  # it got shorter
                scatter = into if isinstance(into, Scatter) else Scatter(await into)
                views = scatter.slices(lo - start, hi - start)
                landing = partial(prefix.landed, k) if prefix is not None else None
                await self._fill(path, lo, hi, pin, views, result, landing)

        await in_order(
            [part(0, first), *(part(k) for k in range(1, len(bounds)))],
            lambda k: prefix.landed(k, bounds[k][1] - bounds[k][0]) if prefix is not None else None,
        )

    async def _fill(
        self,
        path: str,
        lo: int,
        hi: int,
        pin: str | None,
        views: list[memoryview],
        result: Any = None,
        landed: Callable[[int], None] | None = None,
    ) -> None:
        """Bytes ``[lo, hi)`` written into ``views`` (in order), from ``result`` (a GET
        already made) or GETs pinned to ``pin``; a body that breaks is resumed from the
        byte it broke at.  ``landed(n)`` is told on the event loop, now and then, that the
        first ``n`` bytes are in place."""
        got = 0
        attempts = 0
        try:
            while got < hi - lo:
                if result is None:
                    result = await self._get(path, lo + got, hi, pin)
                    if result is None:
                        raise ChangedError(path, pin or "", None)  # it got shorter
                progress = [got]
                try:
                    try:
                        with self._errors(path, if_match=pin):
                            await in_worker(
                                drain,
                                result.stream(min_chunk_size=_FILL_CHUNK),
                                views,
                                progress,
                                ChangedError(path, pin or "", None),
                                landed=landed,
                            )
                    finally:
                        got = progress[0]
                    result = None
                    if got < hi - lo:  # the server ended the body early: ask again from there
                        raise TransportError(
                            f"S3 ended the body of {path!r} early (at byte {lo + got} of "
                            f"[{lo}, {hi})); check the endpoint if this repeats",
                            path,
                        )
                except ChangedError:
                    raise
                except Exception as exc:
                    result = None
                    attempts += 1
                    if not is_retryable(exc) or attempts >= self.s3.max_attempts:
                        raise
                    logger.info("read of %s broke at byte %d (%s); resuming", path, lo + got, exc)
                    await asyncio.sleep(
                        min(
                            self.s3.retry_max_seconds,
                            self.s3.retry_base_seconds * 2 ** (attempts - 1),
                        )
                    )
        finally:
            for view in views:
                view.release()

    async def _get(self, path: str, start: int, end: int | None, if_match: str | None) -> Any:
        """One GET of ``[start, end)``; None when the range starts at or past the end."""
        got = await self._request(path, start, end, if_match, None)
        return None if got is None else got[0]

    async def _request(
        self,
        path: str,
        start: int,
        end: int | None,
        if_match: str | None,
        small: Callable[[int], bool] | None,
    ) -> tuple[Any, bytes | None] | None:
        """One GET of ``[start, end)`` and, when ``small(size)`` says the object's size
        makes it the whole read, its body (read on the same pool thread); None when the
        range starts at or past the end."""
        bucket, key = split(path)
        options: GetOptions = {}
        if end is not None:
            options["range"] = (start, end)
        elif start:
            options["range"] = {"offset": start}
        if if_match is not None:
            options["if_match"] = _quoted(if_match)
        try:
            with self._errors(path, if_match=if_match):
                result, body = await blocking(
                    get_reading_small, self._store(bucket), key, options, small
                )
        except Exception as exc:
            if getattr(exc, "code", None) == "InvalidRange":
                return None
            raise
        served = result.meta.get("e_tag")
        if if_match is not None and served is not None and not _same_etag(served, if_match):
            # an intermediary that ignored If-Match: the ETag says what was served
            raise ChangedError(path, if_match, served)
        return result, body

    async def get_stream(
        self,
        path: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 8 * 1024 * 1024,
    ) -> AsyncIterator[bytes]:
        if not self._direct(path):
            async for chunk in self.fallback.get_stream(
                path, start, end, if_match=if_match, chunk_size=chunk_size
            ):
                yield chunk
            return
        if end is not None and end <= start:
            return
        # parts of whole chunks, at least _STREAM_PART: a small chunk size must not mean
        # one GET per chunk
        part = chunk_size * -(-_STREAM_PART // chunk_size)
        first_end = start + part if end is None else min(end, start + part)
        first = await self._get(path, start, first_end, if_match)
        if first is None:  # the range starts at or past the end
            return
        meta = self._meta(path, first.meta, first.attributes)
        stop = meta.size if end is None else min(end, meta.size)
        if stop <= first_end:
            async for chunk in self._stream_body(path, start, stop, if_match, chunk_size, first):
                yield chunk
            return
        pin = meta.etag or if_match
        bounds = _part_bounds(start, first_end, stop, part)
        async for chunk in self._parts_ahead(path, first, bounds, pin):
            if len(chunk) <= chunk_size:
                yield chunk
            else:  # a part of several chunks
                for at in range(0, len(chunk), chunk_size):
                    yield chunk[at : at + chunk_size]

    async def _parts_ahead(
        self, path: str, first: Any, bounds: list[tuple[int, int]], pin: str | None
    ) -> AsyncIterator[bytes]:
        """The parts ``bounds`` (the first one's GET made: ``first``) in order, the next
        ones read ahead in parallel, pinned to ``pin`` (a consumer that decrypts or writes
        works while the next parts arrive)."""
        part = bounds[0][1] - bounds[0][0]
        ahead = max(1, min(_STREAM_AHEAD, _STREAM_WINDOW // part))
        later = iter(bounds[1:])
        window: deque[tuple[FilledBytes, asyncio.Future[None]]] = deque()

        def launch(lo: int, hi: int, result: Any = None) -> None:
            buf = FilledBytes(hi - lo)
            fill = self._fill(path, lo, hi, pin, [buf.view[:]], result)
            window.append((buf, asyncio.ensure_future(fill)))

        launch(*bounds[0], first)
        try:
            for lo, hi in islice(later, ahead):
                launch(lo, hi)
            while window:
                buf, filling = window[0]
                await filling
                window.popleft()
                following = next(later, None)
                if following is not None:
                    launch(*following)
                yield buf.value()
        finally:
            for _, filling in window:
                filling.cancel()
            await asyncio.gather(*(filling for _, filling in window), return_exceptions=True)
            for buf, _ in window:
                buf.view.release()

    async def _stream_body(
        self,
        path: str,
        start: int,
        end: int | None,
        pin: str | None,
        chunk_size: int,
        result: Any,
    ) -> AsyncIterator[bytes]:
        """The body of ``result`` (a GET of ``[start, end)``) in chunks as it arrives; a
        body that breaks is resumed from the byte it broke at, on the version it served."""
        got = 0
        attempts = 0
        while end is None or start + got < end:
            if result is None:
                result = await self._get(path, start + got, end, pin)
                if result is None:
                    return
            pin = pin or result.meta.get("e_tag")  # a resumed read stays on this version
            try:
                with self._errors(path, if_match=pin):
                    pieces = result.stream(min_chunk_size=chunk_size)
                    async for chunk in _cut_to_chunks(each(pieces), chunk_size):
                        got += len(chunk)  # counted before the yield: a resume starts past it
                        yield chunk
                return
            except ChangedError:
                raise
            except Exception as exc:
                result = None
                attempts += 1
                if not is_retryable(exc) or attempts >= self.s3.max_attempts:
                    raise
                logger.info("read of %s broke at byte %d (%s); resuming", path, start + got, exc)
                await asyncio.sleep(
                    min(self.s3.retry_max_seconds, self.s3.retry_base_seconds * 2 ** (attempts - 1))
                )


async def _cut_to_chunks(pieces: AsyncIterator[Any], chunk_size: int) -> AsyncIterator[bytes]:
    """Chunks of exactly ``chunk_size`` bytes (the last one shorter) from ``pieces``.

    obstore's pieces are "at least" the size: cut them to it, each byte copied out of
    obstore's buffer once (joining and re-slicing ``bytes`` copied a piece up to four
    times)."""
    held = b""  # the start of the next chunk, from the last piece
    async for piece in pieces:
        with memoryview(piece) as view:
            at = 0
            if held:
                at = min(len(view), chunk_size - len(held))
                held += view[:at]
                if len(held) < chunk_size:
                    continue
                yield held
                held = b""
            while len(view) - at >= chunk_size:
                chunk = bytes(view[at : at + chunk_size])
                at += chunk_size
                yield chunk
            held = bytes(view[at:])
    if held:
        yield held

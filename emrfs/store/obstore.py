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
import builtins
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # obstore's TypedDicts exist only for type checkers
    from obstore import GetOptions

    from ..s3.client import PinnedGet

from ..config import S3Options, SSEOptions
from ..crypto import sse as _sse
from ..errors import (
    ChangedError,
    ConfigurationError,
    TransportError,
    is_obstore_error,
    is_retryable,
    map_s3_errors,
)
from .buffers import FilledBytes
from .obstore_native import (
    _mark_used,
    _unparseable,
    choose_transport,
    forked_after_use,
    make_native_store,
    obstore_available,
    obstore_key,
    obstore_usable,
    unsupported_by_obstore,
)
from .protocol import (
    DeleteFailure,
    DeleteResult,
    ListedRow,
    ListPage,
    ObjectMeta,
    ObjectStore,
    ObjectWriter,
    StagedUpload,
    check_range,
    pinned_head,
    split,
)

logger = logging.getLogger("emrfs.store.obstore")

__all__ = [
    "ObstoreStore",
    "obstore_available",
    "obstore_usable",
    "unsupported_by_obstore",
    "choose_transport",
    "obstore_key",
]

#: ``x-amz-meta-*`` aside, the attributes obstore reports (not user metadata).
_STANDARD_ATTRIBUTES = frozenset(
    {
        "content-disposition",
        "content-encoding",
        "content-language",
        "content-type",
        "cache-control",
        "storage-class",
    }
)
#: A whole-object ``get`` asks for this much first; a larger object's other parts come in
#: ranged GETs of this size, ``_GET_PARALLEL`` at a time (as boto3's TransferManager, which
#: reads 8 MiB parts 10 at a time; 16 MiB measured a little faster on SeaweedFS here)
_GET_PART = 16 * 1024 * 1024
_GET_PARALLEL = 8
#: a pinned GET's answer when the range starts at or past the end of the object
_PAST_END = object()
#: obstore hands a body over in pieces of at least this much
_FILL_CHUNK = 1024 * 1024
#: a GET's body longer than this is collected in chunks (memory and Python objects both)
_LIST_CHUNK = 1000


def _quoted(etag: str) -> str:
    etag = etag.strip()
    return etag if etag.startswith('"') or etag.startswith("W/") else f'"{etag}"'


def _same_etag(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip('"') == b.strip('"')


class ObstoreStore(ObjectStore):
    """The S3 transport over obstore, for one resolved set of S3 and SSE options.

    ``fallback`` makes (once, lazily) the botocore transport for what obstore cannot
    do; it is a store or a zero-argument factory.  ``pinned_get`` is the policy for a
    GET pinned to an ETag (:data:`emrfs.s3.client.PinnedGet`: the consistent view
    retries a stale copy there), as the botocore client applies it.
    """

    def __init__(
        self,
        s3: S3Options,
        sse: SSEOptions | None = None,
        *,
        fallback: ObjectStore | Callable[[], ObjectStore] | None = None,
        source_sse: Callable[[str], SSEOptions] | None = None,
        pinned_get: PinnedGet | None = None,
    ):
        self.s3 = s3
        self.sse = sse or SSEOptions()
        self._source_sse = source_sse  # a copy's source may need its own SSE-C key
        # the policy for a pinned GET that meets another version (the consistent view
        # retries stale copies), as the botocore client applies it to its own GETs
        self._pinned_get = pinned_get
        self._fallback_factory = fallback
        self._fallback: ObjectStore | None = fallback if isinstance(fallback, ObjectStore) else None
        self._stores: dict[str, Any] = {}
        self._pid = os.getpid()
        self._said_forked = False
        if s3.require_tls and not (s3.endpoint_url or "https://").lower().startswith("https://"):
            raise ConfigurationError(
                f"s3.require_tls is on but the endpoint {s3.endpoint_url!r} is not https://",
                "s3.endpoint_url",
            )
        self._write_sse = _sse.effective_algorithm(self.sse)
        self._customer_key = _sse.customer_key(self.sse)
        reason = unsupported_by_obstore(s3, self.sse)
        self._refused = reason  # every verb goes to botocore when set

    # --- routing ------------------------------------------------------------------------

    def _native(self) -> bool:
        """obstore serves this call (else the botocore fallback does)."""
        if self._refused is not None:
            return False
        if forked_after_use(self._pid):
            if not self._said_forked:
                self._said_forked = True
                logger.debug(
                    "process %d was forked from one that used obstore: its S3 calls "
                    "go through the botocore transport",
                    os.getpid(),
                )
            return False
        return True

    @property
    def fallback(self) -> ObjectStore:
        """The botocore transport, made on first need."""
        if self._fallback is None:
            if self._fallback_factory is None:
                from .s3 import S3Store

                self._fallback = S3Store.from_options(
                    self.s3, self.sse, source_sse=self._source_sse
                )
            else:
                factory = self._fallback_factory
                self._fallback = factory() if callable(factory) else factory
        return self._fallback

    def _direct(self, path: str) -> bool:
        return self._native() and obstore_key(split(path)[1])

    def _store(self, bucket: str) -> Any:
        store = self._stores.get(bucket)
        if store is None:
            store = self._stores[bucket] = make_native_store(
                self.s3, self.sse, self._write_sse, self._customer_key, bucket
            )
        _mark_used()
        return store

    @contextmanager
    def _errors(self, path: str, *, if_match: str | None = None) -> Iterator[None]:
        """obstore's exceptions into emrfs's, once (the shared table); a failed
        ``if_match`` is a :class:`ChangedError`."""
        try:
            with map_s3_errors(path):
                yield
        except FileExistsError as exc:  # the table's reading of 412
            if if_match is None or not is_obstore_error(exc.__cause__ or exc):
                raise
            raise ChangedError(path, if_match, None) from exc

    # --- reads --------------------------------------------------------------------------

    async def head(self, path: str) -> ObjectMeta:
        if not self._direct(path):
            return await self.fallback.head(path)
        import obstore

        bucket, key = split(path)
        with self._errors(path):
            # a GET with head=True is a HEAD whose answer obstore reads in full
            # (user metadata and content type; its head() drops them)
            result = await obstore.get_async(self._store(bucket), key, options={"head": True})
        return self._meta(path, result.meta, result.attributes)

    async def get_range(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> bytes:
        if not self._direct(path):
            return await self.fallback.get_range(path, start, end, if_match=if_match)
        if end is not None and end <= start:
            return b""
        if end is None or end - start > _GET_PART:  # large: in parts, into one buffer
            return (await self.get(path, start, end, if_match=if_match))[1]
        result = await self._get(path, start, end, if_match)
        if result is None:
            return b""
        with self._errors(path):
            return bytes(await result.bytes_async())

    async def get(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> tuple[ObjectMeta, bytes]:
        if not self._direct(path):
            return await self.fallback.get(path, start, end, if_match=if_match)
        check_range(path, start, end)
        if end is not None and end <= start:
            return await pinned_head(self, path, if_match), b""
        if if_match is not None and self._pinned_get is not None and start == 0 and end is None:
            # the whole object pinned under the consistent view's policy: one GET, which the
            # policy may retry whole (or, lenient, serve unpinned: a whole GET describes itself)
            first_end = None
        else:
            # the first part tells the object's size; a larger object's other parts come
            # in parallel ranged GETs pinned to the version it served (as boto3 reads),
            # each under the pinned-read policy as any pinned GET
            first_end = start + _GET_PART if end is None else min(end, start + _GET_PART)
        first = await self._get(path, start, first_end, if_match)
        if first is None:  # the range starts at or past the end: the meta from a HEAD
            return await pinned_head(self, path, if_match), b""
        # obstore's meta describes the whole object (its size from Content-Range)
        meta = self._meta(path, first.meta, first.attributes)
        stop = meta.size if end is None else min(end, meta.size)
        if stop - start <= _GET_PART and (first_end is None or first_end >= stop):
            with self._errors(path):  # small: obstore's buffer, copied once
                data = bytes(await first.bytes_async())
            if len(data) != stop - start:
                raise ChangedError(path, meta.etag or "", None)  # changed under the read
            return meta, data
        out = FilledBytes(stop - start)
        try:
            pin = meta.etag or if_match
            served = min(stop, start + _GET_PART) if first_end is not None else stop
            limit = asyncio.Semaphore(max(1, min(self.s3.max_concurrency, _GET_PARALLEL)))

            async def part(lo: int, hi: int) -> None:
                async with limit:
                    await self._fill(path, lo, hi, pin, out.view[lo - start : hi - start])

            await _all_or_none(
                [
                    self._fill(path, start, served, pin, out.view[: served - start], first),
                    *(part(lo, min(stop, lo + _GET_PART)) for lo in range(served, stop, _GET_PART)),
                ]
            )
        except BaseException:
            out.view.release()
            raise
        return meta, out.value()

    async def _fill(
        self, path: str, lo: int, hi: int, pin: str | None, view: memoryview, result: Any = None
    ) -> None:
        """Bytes ``[lo, hi)`` written into ``view``, from ``result`` (a GET already made) or
        GETs pinned to ``pin``; a body that breaks is resumed from the byte it broke at."""
        got = 0
        attempts = 0
        try:
            while got < hi - lo:
                if result is None:
                    result = await self._get(path, lo + got, hi, pin)
                    if result is None:
                        raise ChangedError(path, pin or "", None)  # it got shorter
                try:
                    with self._errors(path, if_match=pin):
                        async for piece in result.stream(min_chunk_size=_FILL_CHUNK):
                            n = len(piece)
                            if got + n > hi - lo:
                                raise ChangedError(path, pin or "", None)  # it got longer
                            view[got : got + n] = piece
                            got += n
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
            view.release()

    async def _get(self, path: str, start: int, end: int | None, if_match: str | None) -> Any:
        """One GET of ``[start, end)``; None when the range starts at or past the end.  A
        pinned GET runs under the ``pinned_get`` policy (``unpinned``: the same GET without
        the pin, for a whole-object GET, which describes itself)."""
        if if_match is None or self._pinned_get is None:
            return await self._get_once(path, start, end, if_match)
        whole = start == 0 and end is None

        async def once(pin: str | None) -> Any:
            # the policy reads None as "no answer": a range past the end says so otherwise
            result = await self._get_once(path, start, end, pin)
            return _PAST_END if result is None else result

        result = await self._pinned_get(
            path,
            if_match,
            lambda: once(if_match),
            (lambda: once(None)) if whole else None,
        )
        return None if result is _PAST_END else result

    async def _get_once(self, path: str, start: int, end: int | None, if_match: str | None) -> Any:
        import obstore

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
                result = await obstore.get_async(self._store(bucket), key, options=options)
        except Exception as exc:
            if getattr(exc, "code", None) == "InvalidRange":
                return None
            raise
        served = result.meta.get("e_tag")
        if if_match is not None and served is not None and not _same_etag(served, if_match):
            # an intermediary that ignored If-Match: the ETag says what was served
            raise ChangedError(path, if_match, served)
        return result

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
        got = 0
        attempts = 0
        pin = if_match
        while end is None or start + got < end:
            result = await self._get(path, start + got, end, pin)
            if result is None:
                return
            pin = pin or result.meta.get("e_tag")  # a resumed read stays on this version
            try:
                with self._errors(path, if_match=pin):
                    held = b""  # obstore's chunks are "at least" the size: cut them to it
                    async for piece in result.stream(min_chunk_size=chunk_size):
                        held += bytes(piece)
                        while len(held) >= chunk_size:
                            chunk, held = held[:chunk_size], held[chunk_size:]
                            got += len(chunk)
                            yield chunk
                    if held:
                        got += len(held)
                        yield held
                return
            except ChangedError:
                raise
            except Exception as exc:
                from ..errors import is_retryable

                attempts += 1
                if not is_retryable(exc) or attempts >= self.s3.max_attempts:
                    raise
                logger.info("read of %s broke at byte %d (%s); resuming", path, start + got, exc)
                await asyncio.sleep(
                    min(self.s3.retry_max_seconds, self.s3.retry_base_seconds * 2 ** (attempts - 1))
                )

    # --- writes -------------------------------------------------------------------------

    async def put(
        self,
        path: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectMeta:
        if not self._direct(path):
            return await self.fallback.put(
                path,
                data,
                if_none_match=if_none_match,
                metadata=metadata,
                content_type=content_type,
            )
        import obstore

        bucket, key = split(path)
        attributes: dict[str, str] = dict(metadata or {})
        if content_type:
            attributes["Content-Type"] = content_type
        with self._errors(path):
            result = await obstore.put_async(
                self._store(bucket),
                key,
                data,
                attributes=attributes or None,
                mode="create" if if_none_match else "overwrite",
                use_multipart=False,
            )
        return ObjectMeta(
            path,
            len(data),
            etag=result.get("e_tag"),
            version_id=result.get("version"),
            metadata={k.lower(): v for k, v in (metadata or {}).items()},
            content_type=content_type,
        )

    async def writer(
        self,
        path: str,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectWriter:
        # parts by upload id (staged for another process to complete): botocore's
        return await self.fallback.writer(
            path, if_none_match=if_none_match, metadata=metadata, content_type=content_type
        )

    async def complete_staged(self, staged: StagedUpload) -> ObjectMeta:
        return await self.fallback.complete_staged(staged)

    async def abort_staged(self, staged: StagedUpload) -> None:
        await self.fallback.abort_staged(staged)

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
    ) -> ObjectMeta:
        (src_bucket, src_key), (dst_bucket, _) = split(src), split(dst)
        if (
            metadata is not None
            # a known size: botocore's one CopyObject reports the ETag (obstore's
            # copy reports nothing, so it would cost a HEAD after)
            or source_size is not None
            or src_bucket != dst_bucket
            or not self._direct(src)
            or not self._direct(dst)
            or self.s3.copy_threshold < 5 * 1024**3
            or self._customer_key is not None
            or (self._source_sse is not None and _sse.customer_key(self._source_sse(src)))
        ):
            # replacing metadata, across buckets, multipart copies, SSE-C source keys
            return await self.fallback.copy(src, dst, metadata=metadata, source_size=source_size)
        import obstore

        try:
            with self._errors(src):
                await obstore.copy_async(self._store(src_bucket), src_key, split(dst)[1])
        except Exception as exc:
            if "larger than the maximum allowable size" not in str(exc.__cause__ or exc):
                raise
            return await self.fallback.copy(src, dst, metadata=metadata)
        return await self.head(dst)

    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        if not self._native():
            return await self.fallback.delete(paths)
        import obstore

        by_bucket: dict[str, list[str]] = {}
        odd: list[str] = []
        for path in dict.fromkeys(paths):
            bucket, key = split(path)
            (by_bucket.setdefault(bucket, []) if obstore_key(key) else odd).append(path)
        deleted: list[str] = []
        errors: list[DeleteFailure] = []
        if odd:
            other = await self.fallback.delete(odd)
            deleted += other.deleted
            errors += other.errors
        for bucket, group in by_bucket.items():
            for i in range(0, len(group), 1000):  # DeleteObjects takes 1,000 keys
                batch = group[i : i + 1000]
                try:
                    with self._errors(batch[0]):
                        await obstore.delete_async(
                            self._store(bucket), [split(p)[1] for p in batch]
                        )
                except OSError as exc:  # obstore reports no per-key outcome: the batch
                    code = getattr(exc, "code", None)
                    errors += [DeleteFailure(p, code, str(exc), exc) for p in batch]
                    continue
                deleted += batch
        return DeleteResult(deleted, errors)

    # --- listing --------------------------------------------------------------------------

    async def list(
        self, prefix: str, *, delimiter: str | None = None, limit: int | None = None
    ) -> AsyncIterator[ListPage]:
        bucket, key_prefix = split(prefix)
        # obstore lists by path segment: only a directory prefix ("a/b/" or the bucket)
        # means the same to it as to S3; and it has no MaxKeys (a probe is botocore's)
        directory = key_prefix == "" or (key_prefix.endswith("/") and obstore_key(key_prefix[:-1]))
        if not self._native() or not directory or delimiter not in (None, "/") or limit is not None:
            async for page in self.fallback.list(prefix, delimiter=delimiter, limit=limit):
                yield page
            return
        import obstore

        store = self._store(bucket)
        base = key_prefix[:-1] or None
        if delimiter == "/":
            try:
                with self._errors(prefix):
                    result = await obstore.list_with_delimiter_async(store, base)
            except Exception as exc:
                if not _unparseable(exc):
                    raise
                # a key obstore cannot parse: botocore lists it as it is
                async for page in self.fallback.list(prefix, delimiter=delimiter):
                    yield page
                return
            rows = [self._listed(bucket, o, marker_of=base) for o in result["objects"]]
            rows.sort(key=itemgetter(0))  # by path
            prefixes = [f"{bucket}/{p}/" for p in result["common_prefixes"]]
            for i in range(0, max(len(rows), len(prefixes), 1), _LIST_CHUNK):
                yield ListPage.of_rows(rows[i : i + _LIST_CHUNK], prefixes[i : i + _LIST_CHUNK])
            return
        # recursive: obstore strips the "/" of a directory marker "d/", so a zero-byte
        # "d" is a file "d" or the marker "d/"; the second sighting of a path is the marker
        # (the file sorts first), a first zero-byte sighting is settled by one HEAD
        seen: set[str] = set()
        last: str | None = None
        try:
            with self._errors(prefix):
                async for chunk in obstore.list(store, base, chunk_size=_LIST_CHUNK):
                    settled = await self._settle(bucket, chunk, seen)
                    if settled:
                        last = settled[-1][0]
                        yield ListPage.of_rows(settled)
        except Exception as exc:
            if not _unparseable(exc):
                raise
            # a key obstore cannot parse: botocore goes on after the last one yielded
            async for page in self.fallback.list(prefix, delimiter=None):
                rest = [o for o in page.objects if last is None or o.path > last]
                if rest:
                    yield ListPage(rest)

    async def _settle(
        self, bucket: str, chunk: Sequence[Mapping[str, Any]], seen: set[str]
    ) -> builtins.list[ListedRow]:
        """``chunk``'s objects as rows with the markers' slashes back, in the chunk's (S3's)
        order.  Runs once per listed key: one pass in Python building a tuple per key (an
        :class:`ObjectMeta` is built only if a layer reads the page's objects), and tasks
        only for the zero-byte first sightings that need a HEAD (none in most listings)."""
        prefix = bucket + "/"
        out: builtins.list[ListedRow] = []
        append = out.append
        remember = seen.add
        undecided: builtins.list[tuple[int, Mapping[str, Any]]] = []
        for item in chunk:
            path = item["path"]
            size = item["size"]
            if path in seen:
                path += "/"  # the second sighting: obstore's path type dropped its slash
            else:
                remember(path)
                if size == 0:
                    undecided.append((len(out), item))
            append(
                (
                    prefix + path,
                    size,
                    item.get("e_tag"),
                    item.get("last_modified"),
                    item.get("version"),
                    None,
                )
            )
        if undecided:
            flags = await asyncio.gather(*(self._is_marker(bucket, item) for _, item in undecided))
            for (index, item), flag in zip(undecided, flags, strict=True):
                if flag:
                    out[index] = self._listed(bucket, item, marker=True)
        return out

    async def _is_marker(self, bucket: str, item: Mapping[str, Any]) -> bool:
        """A zero-byte ``d`` seen once is a file ``d`` or the marker ``d/``: a HEAD of ``d``
        tells (a marker has no object without the slash)."""
        import obstore

        try:
            with self._errors(f"{bucket}/{item['path']}"):
                await obstore.head_async(self._store(bucket), item["path"])
        except FileNotFoundError:
            return True
        return False

    def _listed(
        self,
        bucket: str,
        item: Mapping[str, Any],
        *,
        marker: bool = False,
        marker_of: str | None = None,
    ) -> ListedRow:
        key = item["path"]
        if marker or (marker_of is not None and key == marker_of):
            key += "/"  # obstore's path type dropped the marker's slash
        return (
            f"{bucket}/{key}",
            item["size"],
            item.get("e_tag"),
            item.get("last_modified"),
            item.get("version"),
            None,
        )

    def _meta(
        self, path: str, meta: Mapping[str, Any], attributes: Mapping[str, str]
    ) -> ObjectMeta:
        user = {
            k.lower(): v for k, v in attributes.items() if k.lower() not in _STANDARD_ATTRIBUTES
        }
        content_type = next((v for k, v in attributes.items() if k.lower() == "content-type"), None)
        return ObjectMeta(
            path,
            meta["size"],
            etag=meta.get("e_tag"),
            last_modified=meta.get("last_modified"),
            version_id=meta.get("version"),
            metadata=user,
            content_type=content_type,
        )

    async def close(self) -> None:
        self._stores.clear()  # obstore's connections close with their store
        if self._fallback is not None:
            await self._fallback.close()


async def _all_or_none(coroutines: Sequence[Coroutine[Any, Any, None]]) -> None:
    """Run them all; at the first failure cancel the others (and wait for them: they
    write into a shared buffer) and raise it."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:  # cancelled from outside
        pending = {t for t in tasks if not t.done()}
        done = set()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        raise
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in tasks:
        if task in done and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

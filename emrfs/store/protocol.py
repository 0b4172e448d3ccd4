"""The object-store protocol every layer of the stack speaks.

A store holds objects named by ``bucket/key`` paths (no scheme, no leading
slash).  Each layer of the stack (transport, encryption, consistent view,
cache, tier, router) is an :class:`ObjectStore` that wraps the store below it
and knows nothing above; :class:`WrapperStore` forwards every method, so a
layer overrides only what it changes.  Shapes returned are emrfs's own
(:class:`ObjectMeta`, :class:`ListPage`): nothing boto-shaped travels above
the transport.

Errors are the built-in ``OSError`` classes and the :mod:`emrfs.errors`
hierarchy, translated once at the transport:

- a missing object or bucket: ``FileNotFoundError`` naming the path;
- ``put(..., if_none_match=True)`` over an existing object: ``FileExistsError``;
- a GET pinned with ``if_match`` that meets another version:
  :class:`~emrfs.errors.ChangedError` (an :class:`~emrfs.errors.EmrfsError` with code
  ``PreconditionFailed``; also importable from :mod:`emrfs.s3.client`, where it lived first).

ETags are kept exactly as S3 sends them, *quoted* (``'"9a0364b9e99bb480dd25e1f0284c8555"'``;
a multipart object's ends in ``-N`` inside the quotes): the consistent view's records,
the block cache's keys and fsspec's ``info()["ETag"]`` all hold S3's spelling, so one
spelling everywhere avoids a whole class of "same version, different string" bugs.
``if_match`` accepts either spelling (stores compare without the quotes).

Ranges are half-open ``[start, end)``; ``end=None`` means "to the end".  As a
local file reads, a range at or past the end of the object is ``b""`` and a
range running past it is cut there.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping, Sequence

from ..errors import ChangedError
from .shapes import (
    DeleteFailure,
    DeleteResult,
    ListedRow,
    ListPage,
    ObjectMeta,
    StagedUpload,
    listed_meta,
    split,
)
from .targets import ReadTarget, get_into_by_stream

__all__ = [
    "ObjectMeta",
    "ListPage",
    "ListedRow",
    "DeleteFailure",
    "DeleteResult",
    "ObjectStore",
    "ObjectWriter",
    "ReadTarget",
    "StagedUpload",
    "WrapperStore",
    "check_chunk_size",
    "check_range",
    "cut_listing",
    "listed_meta",
    "pinned_head",
    "split",
]


def check_range(path: str, start: int, end: int | None) -> None:
    """A read's offsets are never negative (every store's rule, one message)."""
    if start < 0 or (end is not None and end < 0):
        raise ValueError(f"range [{start}, {end}) of {path!r}: offsets are never negative")


def check_chunk_size(path: str, chunk_size: int) -> None:
    """A stream's ``chunk_size`` is at least one byte."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size for {path!r} must be at least 1, not {chunk_size}")


class ObjectWriter(abc.ABC):
    """A write in parts (a multipart upload on S3).  Parts are numbered from 1;
    every part but the last is at least the store's minimum part size (5 MiB on
    S3).  Exactly one of :meth:`complete`, :meth:`abort` or :meth:`stage` ends it."""

    path: str

    @abc.abstractmethod
    async def write_part(self, number: int, data: bytes) -> None: ...

    @abc.abstractmethod
    async def complete(self) -> ObjectMeta:
        """Publish the object; its meta carries the new ETag (and version)."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """Discard the parts; nothing is published.  Safe to call twice."""

    async def stage(self) -> StagedUpload:
        """Leave the upload open for a later :meth:`ObjectStore.complete_staged`."""
        raise NotImplementedError(f"{type(self).__name__} cannot stage an upload of {self.path!r}")

    async def copy_part(self, number: int, src: str, start: int, end: int) -> None:
        """Part ``number`` is bytes ``[start, end)`` of the object ``src`` as stored, copied
        by the store itself (an append to a large object sends no byte twice).  Optional:
        a layer that changes the bytes (encryption) cannot, and says so."""
        raise NotImplementedError(f"{type(self).__name__} cannot copy parts into {self.path!r}")


class ObjectStore(abc.ABC):
    """The nine-verb async object store.  Paths are ``bucket/key``."""

    @abc.abstractmethod
    async def head(self, path: str) -> ObjectMeta:
        """The object at ``path`` with its user metadata; ``FileNotFoundError`` if none."""

    @abc.abstractmethod
    async def get_range(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> bytes:
        """Bytes ``[start, end)`` of the object (all of it by default)."""

    async def get(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> tuple[ObjectMeta, bytes]:
        """The object's meta (its whole ``size``, ETag, user metadata) and its bytes
        ``[start, end)``, from one version: what a reader needs to see a CSE envelope
        without a HEAD.  A transport answers with one GET; this default (for stores that
        have nothing better) heads the object and reads the range pinned to that ETag."""
        meta = await pinned_head(self, path, if_match)
        return meta, await self.get_range(path, start, end, if_match=meta.etag)

    @abc.abstractmethod
    def get_stream(
        self,
        path: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 8 * 1024 * 1024,
    ) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` as chunks of about ``chunk_size`` (memory stays at
        one chunk whatever the length); a body that breaks is resumed, pinned to the
        version first served."""

    async def get_into(
        self,
        path: str,
        target: ReadTarget,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
    ) -> ObjectMeta:
        """Bytes ``[start, end)`` of one version written into the buffers ``target.open``
        gives once the object is known (no HEAD first), ``target.filled`` told as they
        land, in order; returns that version's meta.  For a layer that works on a whole
        body where it lies (decryption in place): no copy per chunk.  A transport reads
        parts in parallel straight into the buffers; this default copies the chunks of
        ``get`` and ``get_stream`` (so a layer that changes those is honoured)."""
        return await get_into_by_stream(self, path, target, start, end, if_match)

    async def head_tail(self, path: str, nbytes: int) -> tuple[ObjectMeta, bytes | None]:
        """The object's meta and its last ``nbytes`` stored bytes, by one request where
        the store can (a suffix-range GET: a Parquet footer with the status); None for the
        bytes where it cannot.  This default is ``head`` alone: a layer that changes the
        bytes has no stored tail to give."""
        return await self.head(path), None

    @abc.abstractmethod
    async def put(
        self,
        path: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectMeta:
        """Write the whole object in one request.  ``if_none_match``: create only if
        absent (``FileExistsError`` otherwise)."""

    @abc.abstractmethod
    async def writer(
        self,
        path: str,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectWriter:
        """A write in parts (see :class:`ObjectWriter`)."""

    @abc.abstractmethod
    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
    ) -> ObjectMeta:
        """Server-side copy; returns the new object (its ETag and version as the store
        reports them, so no HEAD is needed after).  ``metadata`` replaces the source's
        user metadata when given.  ``source_size``: the source's size when the caller
        knows it (a listing said so); a store may then skip reading the source's status,
        and the meta returned may leave ``metadata`` and ``content_type`` unknown (empty)."""

    @abc.abstractmethod
    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        """Delete objects (missing ones count as deleted); paths may span buckets.
        Reports the paths confirmed deleted and, per path not, why
        (:class:`DeleteResult`); raises only for a call that cannot be made at all."""

    @abc.abstractmethod
    def list(
        self, prefix: str, *, delimiter: str | None = None, limit: int | None = None
    ) -> AsyncIterator[ListPage]:
        """Pages of objects whose path starts with ``prefix`` (``bucket/`` lists the
        bucket), in key order; with ``delimiter="/"``, one level and its common prefixes.
        ``limit``: at most that many entries (objects and common prefixes together, the
        first in key order), fetched as such (S3's ``MaxKeys``): "is there anything
        under ``d/``" costs one short request, not a page of 1,000."""

    async def complete_staged(self, staged: StagedUpload) -> ObjectMeta:
        """Complete an upload another writer :meth:`ObjectWriter.stage`\\ d."""
        raise NotImplementedError(f"{type(self).__name__} cannot complete staged uploads")

    async def abort_staged(self, staged: StagedUpload) -> None:
        """Discard a staged upload's parts, nothing published; one already completed or
        aborted is fine (a job abort may run twice)."""
        raise NotImplementedError(f"{type(self).__name__} cannot abort staged uploads")

    async def close(self) -> None:  # noqa: B027 - optional: a store may hold nothing
        """Release connections.  The store may not be used afterwards."""


async def cut_listing(pages: AsyncIterator[ListPage], limit: int | None) -> AsyncIterator[ListPage]:
    """``pages`` cut to their first ``limit`` entries (objects and prefixes together, in
    key order): for a layer that merges listings of its own (each source asked with the
    same ``limit``, so the first entries of the merge are among theirs)."""
    if limit is not None and limit < 1:
        raise ValueError(f"a listing's limit must be at least 1, not {limit}")
    left = limit
    async for page in pages:
        if left is None:
            yield page
            continue
        entries = sorted(
            [(o.path, o) for o in page.objects] + [(p, None) for p in page.prefixes],
            key=lambda e: e[0],
        )[:left]
        left -= len(entries)
        yield ListPage(
            objects=[o for _, o in entries if o is not None],
            prefixes=[p for p, o in entries if o is None],
        )
        if left <= 0:
            return


async def pinned_head(store: ObjectStore, path: str, if_match: str | None) -> ObjectMeta:
    """``store.head(path)``, refused as :class:`~emrfs.errors.ChangedError` when it
    describes another version than ``if_match`` (a GET pinned there would have been)."""
    meta = await store.head(path)
    if (
        if_match is not None
        and meta.etag is not None
        and meta.etag.strip('"') != if_match.strip('"')
    ):
        raise ChangedError(path, if_match, meta.etag)
    return meta


class WrapperStore(ObjectStore):
    """A layer: forwards every verb to the store below (``self.inner``).  Subclasses
    override only what their concern changes (as zarr's ``WrapperStore``)."""

    def __init__(self, inner: ObjectStore):
        self.inner = inner

    async def head(self, path: str) -> ObjectMeta:
        return await self.inner.head(path)

    async def get_range(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> bytes:
        return await self.inner.get_range(path, start, end, if_match=if_match)

    async def get(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> tuple[ObjectMeta, bytes]:
        cls = type(self)
        if cls.head is not WrapperStore.head or cls.get_range is not WrapperStore.get_range:
            # a layer that changes what head or get_range answer (decrypts, caches, checks)
            # but not get is asked through them: forwarding would skip its concern
            return await ObjectStore.get(self, path, start, end, if_match=if_match)
        return await self.inner.get(path, start, end, if_match=if_match)

    def get_stream(
        self,
        path: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 8 * 1024 * 1024,
    ) -> AsyncIterator[bytes]:
        return self.inner.get_stream(path, start, end, if_match=if_match, chunk_size=chunk_size)

    async def put(
        self,
        path: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectMeta:
        return await self.inner.put(
            path, data, if_none_match=if_none_match, metadata=metadata, content_type=content_type
        )

    async def writer(
        self,
        path: str,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectWriter:
        return await self.inner.writer(
            path, if_none_match=if_none_match, metadata=metadata, content_type=content_type
        )

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
    ) -> ObjectMeta:
        return await self.inner.copy(src, dst, metadata=metadata, source_size=source_size)

    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        return await self.inner.delete(paths)

    def list(
        self, prefix: str, *, delimiter: str | None = None, limit: int | None = None
    ) -> AsyncIterator[ListPage]:
        return self.inner.list(prefix, delimiter=delimiter, limit=limit)

    async def complete_staged(self, staged: StagedUpload) -> ObjectMeta:
        return await self.inner.complete_staged(staged)

    async def abort_staged(self, staged: StagedUpload) -> None:
        await self.inner.abort_staged(staged)

    async def close(self) -> None:
        await self.inner.close()

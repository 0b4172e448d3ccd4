"""An in-memory :class:`~emrfs.store.protocol.ObjectStore`: for fast unit runs and users' tests.

It behaves as S3 does where the protocol leaves room: ETags are the quoted MD5
hex of the bytes (a multipart object's is the MD5 of its parts' MD5s, ``-N``),
listings come in key order, a pinned read of another version raises
:class:`~emrfs.errors.ChangedError`, every part of a multipart write but the
last must be at least ``min_part_size``.  Buckets are created on the first
write into them (``auto_create_buckets=True``, the default) or with
:meth:`MemoryStore.create_bucket`.

Nothing is copied in or out beyond what ``bytes`` already guarantees; the
store is safe to use from one event loop (no locks: every verb runs to
completion without awaiting in the middle).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import ChangedError, exists, missing_bucket, not_found
from .protocol import (
    DeleteFailure,
    DeleteResult,
    ListPage,
    ObjectMeta,
    ObjectStore,
    ObjectWriter,
    StagedUpload,
    check_chunk_size,
    check_range,
    split,
)

__all__ = ["MemoryStore", "StoredObject"]

MIN_PART = 5 * 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    """One object as the memory store holds it."""

    data: bytes
    etag: str
    last_modified: _dt.datetime
    version_id: str | None
    metadata: Mapping[str, str]
    content_type: str | None

    def meta(self, path: str) -> ObjectMeta:
        return ObjectMeta(
            path,
            len(self.data),
            self.etag,
            self.last_modified,
            self.version_id,
            dict(self.metadata),
            self.content_type,
        )


@dataclass
class _Upload:
    path: str
    if_none_match: bool
    metadata: Mapping[str, str]
    content_type: str | None
    parts: dict[int, bytes] = field(default_factory=dict)


def _etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'  # noqa: S324 - S3's ETag


def _multipart_etag(parts: Sequence[bytes]) -> str:
    digests = b"".join(hashlib.md5(p).digest() for p in parts)  # noqa: S324 - S3's ETag
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'  # noqa: S324


def _bare(etag: str | None) -> str:
    return (etag or "").strip('"')


def _user_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    # S3 sends user metadata back with lower-case names (HTTP headers)
    return {k.lower(): v for k, v in (metadata or {}).items()}


class MemoryStore(ObjectStore):
    """Objects in a dict per bucket.  ``versioned``: every write gets a version id.
    ``page_size``: objects and prefixes per listing page (S3's is 1,000)."""

    def __init__(
        self,
        *,
        auto_create_buckets: bool = True,
        versioned: bool = False,
        min_part_size: int = MIN_PART,
        page_size: int = 1000,
    ):
        if page_size < 1:
            raise ValueError(f"MemoryStore page_size must be at least 1, not {page_size}")
        self.auto_create_buckets = auto_create_buckets
        self.versioned = versioned
        self.min_part_size = min_part_size
        self.page_size = page_size
        self._buckets: dict[str, dict[str, StoredObject]] = {}
        self._uploads: dict[str, _Upload] = {}
        self._clock = itertools.count()

    # --- outside the protocol: setup and inspection for tests ---------------------------

    def create_bucket(self, bucket: str) -> None:
        """Make ``bucket`` (a no-op if it exists)."""
        if not bucket or "/" in bucket:
            raise ValueError(f"bucket name {bucket!r}: give a name without '/'")
        self._buckets.setdefault(bucket, {})

    def stored(self, path: str) -> StoredObject | None:
        """What the store holds at ``path``, read past the verbs (a test's side channel)."""
        bucket, key = split(path)
        return self._buckets.get(bucket, {}).get(key)

    def place(
        self, path: str, data: bytes, metadata: Mapping[str, str] | None = None
    ) -> ObjectMeta:
        """Write ``path`` past the verbs, synchronously (a test's side channel)."""
        return self._store(path, data, _etag(data), metadata, None, if_none_match=False)

    def open_uploads(self, bucket: str) -> list[str]:
        """Paths with a multipart write open (started, not completed or aborted) in ``bucket``."""
        return sorted(u.path for u in self._uploads.values() if split(u.path)[0] == bucket)

    # --- the protocol ----------------------------------------------------------------------

    def _bucket(self, path: str, *, create: bool = False) -> dict[str, StoredObject]:
        bucket, _ = split(path)
        objects = self._buckets.get(bucket)
        if objects is None:
            if not (create and self.auto_create_buckets and bucket):
                raise missing_bucket(path, bucket)
            objects = self._buckets[bucket] = {}
        return objects

    def _object(self, path: str) -> StoredObject:
        found = self._bucket(path).get(split(path)[1])
        if found is None:
            raise not_found(path)
        return found

    def _store(
        self,
        path: str,
        data: bytes,
        etag: str,
        metadata: Mapping[str, str] | None,
        content_type: str | None,
        *,
        if_none_match: bool,
    ) -> ObjectMeta:
        key = split(path)[1]
        if not key:
            raise not_found(path, "a bucket is not an object; give bucket/key")
        objects = self._bucket(path, create=True)
        if if_none_match and key in objects:
            raise _exists(path)
        # a strictly increasing clock: two writes in one microsecond still differ in order
        now = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(microseconds=next(self._clock))
        stored = StoredObject(
            bytes(data),
            etag,
            now,
            uuid.uuid4().hex if self.versioned else None,
            _user_metadata(metadata),
            content_type,
        )
        objects[key] = stored
        return stored.meta(path)

    async def head(self, path: str) -> ObjectMeta:
        return self._object(path).meta(path)

    def _read(self, path: str, start: int, end: int | None, if_match: str | None) -> bytes:
        return self._read_object(path, start, end, if_match).data[start:end]

    def _read_object(
        self, path: str, start: int, end: int | None, if_match: str | None
    ) -> StoredObject:
        check_range(path, start, end)
        found = self._object(path)
        if if_match is not None and _bare(if_match) != _bare(found.etag):
            raise ChangedError(path, if_match, found.etag)
        return found

    async def get(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> tuple[ObjectMeta, bytes]:
        found = self._read_object(path, start, end, if_match)
        return found.meta(path), found.data[start:end]

    async def get_range(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> bytes:
        return self._read(path, start, end, if_match)

    async def get_stream(
        self,
        path: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 8 * 1024 * 1024,
    ) -> AsyncIterator[bytes]:
        check_chunk_size(path, chunk_size)
        data = self._read(path, start, end, if_match)
        for offset in range(0, len(data), chunk_size):
            yield data[offset : offset + chunk_size]

    async def put(
        self,
        path: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectMeta:
        return self._store(
            path, data, _etag(data), metadata, content_type, if_none_match=if_none_match
        )

    async def writer(
        self,
        path: str,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectWriter:
        if not split(path)[1]:
            raise not_found(path, "a bucket is not an object; give bucket/key")
        self._bucket(path, create=True)
        upload_id = uuid.uuid4().hex
        self._uploads[upload_id] = _Upload(
            path, if_none_match, _user_metadata(metadata), content_type
        )
        return _MemoryWriter(self, path, upload_id)

    def _complete(self, upload_id: str, numbers: Sequence[int] | None = None) -> ObjectMeta:
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise not_found(f"{upload_id}", "the multipart upload was aborted or completed")
        path = upload.path
        chosen = sorted(upload.parts) if numbers is None else list(numbers)
        missing = [n for n in chosen if n not in upload.parts]
        if missing:
            raise ValueError(f"multipart write of {path!r}: parts {missing} were never written")
        parts = [upload.parts[n] for n in chosen] or [b""]
        small = [n for n, p in zip(chosen, parts[:-1], strict=False) if len(p) < self.min_part_size]
        if small:
            raise ValueError(
                f"multipart write of {path!r}: parts {small} are smaller than "
                f"{self.min_part_size} bytes; only the last part may be"
            )
        data = b"".join(parts)
        meta = self._store(
            path,
            data,
            _multipart_etag(parts),
            upload.metadata,
            upload.content_type,
            if_none_match=upload.if_none_match,
        )
        del self._uploads[upload_id]
        return meta

    async def complete_staged(self, staged: StagedUpload) -> ObjectMeta:
        upload = self._uploads.get(staged.upload_id)
        if upload is None or upload.path != staged.path:
            raise not_found(
                staged.path,
                f"no open upload {staged.upload_id!r} there: it was aborted or completed",
            )
        for number, etag in staged.parts:
            data = upload.parts.get(number)
            if data is None or _bare(_etag(data)) != _bare(etag):
                raise ChangedError(staged.path, etag, None if data is None else _etag(data))
        return self._complete(staged.upload_id, [n for n, _ in sorted(staged.parts)])

    async def abort_staged(self, staged: StagedUpload) -> None:
        upload = self._uploads.get(staged.upload_id)
        if upload is not None and upload.path == staged.path:
            del self._uploads[staged.upload_id]

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
    ) -> ObjectMeta:
        source = self._object(src)
        return self._store(
            dst,
            source.data,
            source.etag,
            source.metadata if metadata is None else metadata,
            source.content_type,
            if_none_match=False,
        )

    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        deleted: list[str] = []
        errors: list[DeleteFailure] = []
        for path in dict.fromkeys(paths):
            bucket, key = split(path)
            objects = self._buckets.get(bucket)
            if objects is None:  # S3 refuses a batch in a missing bucket as a whole
                errors.append(
                    DeleteFailure(path, "NoSuchBucket", error=missing_bucket(path, bucket))
                )
                continue
            objects.pop(key, None)
            deleted.append(path)
        return DeleteResult(deleted, errors)

    async def list(
        self, prefix: str, *, delimiter: str | None = None, limit: int | None = None
    ) -> AsyncIterator[ListPage]:
        bucket, key_prefix = split(prefix)
        if not bucket:
            raise ValueError("list needs a prefix that starts with a bucket name")
        if limit is not None and limit < 1:
            raise ValueError(f"list of {prefix!r}: limit must be at least 1, not {limit}")
        objects = self._bucket(prefix)
        entries: list[tuple[str, ObjectMeta | None]] = []  # (key, meta) or (common prefix, None)
        seen_prefixes: set[str] = set()
        for key in sorted(k for k in objects if k.startswith(key_prefix)):
            if limit is not None and len(entries) >= limit:
                break
            rest = key[len(key_prefix) :]
            if delimiter and delimiter in rest:
                common = key_prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if common not in seen_prefixes:
                    seen_prefixes.add(common)
                    entries.append((common, None))
                continue
            entries.append((key, objects[key].meta(f"{bucket}/{key}")))
        for i in range(0, max(len(entries), 1), self.page_size):
            page = entries[i : i + self.page_size]
            yield ListPage(
                objects=[m for _, m in page if m is not None],
                prefixes=[f"{bucket}/{k}" for k, m in page if m is None],
            )

    async def close(self) -> None:
        """Nothing to release; the objects stay (a test may look at them after)."""


class _MemoryWriter(ObjectWriter):
    def __init__(self, store: MemoryStore, path: str, upload_id: str):
        self.store = store
        self.path = path
        self.upload_id = upload_id
        self._done = False

    def _upload(self) -> _Upload:
        upload = self.store._uploads.get(self.upload_id)
        if self._done or upload is None:
            raise ValueError(
                f"the multipart write of {self.path!r} already ended (completed, aborted or staged)"
            )
        return upload

    async def write_part(self, number: int, data: bytes) -> None:
        if not 1 <= number <= 10_000:
            raise ValueError(f"part number {number} of {self.path!r}: parts are 1 to 10,000")
        self._upload().parts[number] = bytes(data)

    async def complete(self) -> ObjectMeta:
        self._upload()
        try:
            return self.store._complete(self.upload_id)
        except BaseException:
            await self.abort()  # as S3's writer: a failed completion leaves nothing open
            raise
        finally:
            self._done = True

    async def abort(self) -> None:
        self._done = True
        self.store._uploads.pop(self.upload_id, None)

    async def stage(self) -> StagedUpload:
        upload = self._upload()
        self._done = True
        parts = sorted((n, _etag(d)) for n, d in upload.parts.items())
        return StagedUpload(
            self.path, self.upload_id, parts, sum(len(d) for d in upload.parts.values())
        )


def _exists(path: str) -> FileExistsError:
    return exists(path, "it already exists and overwrite was not allowed")

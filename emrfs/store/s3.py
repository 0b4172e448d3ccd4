"""The aiobotocore transport: :class:`S3Store`, an :class:`~emrfs.store.protocol.ObjectStore`
over :class:`~emrfs.s3.client.S3Client`.

Everything boto-shaped stops here.  The client's policy comes along unchanged:
request retries, resumable bodies (``read_range``/``get_object_stream``), errors
translated once (``map_s3_errors``) and the ``pinned_get`` hook through which
every GET pinned to an ETag passes.  The SSE arguments of each request family
come from the :class:`~emrfs.config.SSEOptions` the store was made with, and
responses become :class:`~emrfs.store.protocol.ObjectMeta`, by the pure functions
of :mod:`emrfs.store.s3_shapes` (importable from here too).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from ..config import S3Options, SSEOptions
from ..crypto import sse as _sse
from ..errors import ChangedError
from ..s3.client import S3Client
from ..s3.listing import list_pages
from ..s3.multipart import MultipartUpload, UploadPurge, part_ranges
from .progress import ProgressBody, send_progress
from .protocol import (
    DeleteFailure,
    DeleteResult,
    ListPage,
    ObjectMeta,
    ObjectStore,
    ObjectWriter,
    StagedUpload,
    cut_listing,
    listed_meta,
    pinned_head,
    split,
)
from .s3_shapes import (
    COPY_PART_KEYS,
    SSEArguments,
    check_range,
    meta_from_response,
    object_key,
    sse_arguments,
)

__all__ = ["S3Store", "SSEArguments", "sse_arguments", "meta_from_response"]

#: Keys one DeleteObjects request may carry.
DELETE_BATCH = 1000


class S3Store(ObjectStore):
    """S3 through one :class:`S3Client`, with the SSE settings of one bucket or prefix.

    ``source_sse`` gives the SSE options in force at a copy's *source* (its SSE-C key
    must be sent); by default the source shares this store's.  ``purge`` aborts
    abandoned multipart uploads as each new one starts (see
    :class:`~emrfs.s3.multipart.UploadPurge`).  ``page_size`` is the LIST page size.
    """

    def __init__(
        self,
        client: S3Client,
        *,
        sse: SSEOptions | None = None,
        source_sse: Callable[[str], SSEOptions] | None = None,
        purge: UploadPurge | None = None,
        page_size: int = 1000,
        owns_client: bool = False,
    ):
        self.client = client
        self.sse = sse or SSEOptions()
        self.arguments = sse_arguments(self.sse)  # fails now for a malformed SSE-C key
        self._source_sse = source_sse
        self.purge = purge
        self.page_size = page_size
        self._owns_client = owns_client

    @classmethod
    def from_options(cls, s3: S3Options, sse: SSEOptions | None = None, **kwargs: Any) -> S3Store:
        """A store with its own client (closed by :meth:`close`)."""
        return cls(S3Client(s3), sse=sse, owns_client=True, **kwargs)

    @property
    def options(self) -> S3Options:
        return self.client.options

    # --- reading -------------------------------------------------------------------------

    async def head(self, path: str) -> ObjectMeta:
        bucket, key = object_key(path)
        response = await self.client.call(
            "head_object", path, Bucket=bucket, Key=key, **self.arguments.read
        )
        return meta_from_response(path, response)

    def _get_kwargs(self, if_match: str | None) -> dict[str, Any]:
        kwargs = dict(self.arguments.read)
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        return kwargs

    async def get_range(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> bytes:
        bucket, key = object_key(path)
        check_range(path, start, end)
        if end is not None:
            return await self.client.read_range(
                path, bucket, key, start, end, **self._get_kwargs(if_match)
            )
        # to the end: one GET (no Range when from 0), resumed from the byte it broke at
        chunks = [
            c
            async for c in self.client.get_object_stream(
                path, bucket, key, start=start, **self._get_kwargs(if_match)
            )
        ]
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def get(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> tuple[ObjectMeta, bytes]:
        bucket, key = object_key(path)
        check_range(path, start, end)
        responses: list[dict[str, Any]] = []
        kwargs = self._get_kwargs(if_match)
        if end is not None:
            data = await self.client.read_range(
                path, bucket, key, start, end, on_response=responses.append, **kwargs
            )
        else:  # to the end: one GET (no Range when from 0), resumed from the byte it broke at
            chunks = [
                c
                async for c in self.client.get_object_stream(
                    path, bucket, key, start=start, on_response=responses.append, **kwargs
                )
            ]
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if not responses:  # the range starts at or past the end: S3 said so, and nothing else
            return await pinned_head(self, path, if_match), b""
        first = responses[0]  # a resumed body was pinned to its version
        return meta_from_response(path, first, size=_whole_size(first)), data

    async def get_stream(
        self,
        path: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 8 * 1024 * 1024,
    ) -> AsyncIterator[bytes]:
        bucket, key = object_key(path)
        check_range(path, start, end)
        if end is not None and end <= start:
            return
        async for chunk in self.client.get_object_stream(
            path, bucket, key, chunk_size, start=start, end=end, **self._get_kwargs(if_match)
        ):
            yield chunk

    # --- writing -------------------------------------------------------------------------

    def _create_kwargs(
        self, metadata: Mapping[str, str] | None, content_type: str | None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(self.arguments.write)
        if metadata:
            kwargs["Metadata"] = dict(metadata)
        if content_type:
            kwargs["ContentType"] = content_type
        return kwargs

    async def put(
        self,
        path: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectMeta:
        bucket, key = object_key(path)
        kwargs = self._create_kwargs(metadata, content_type)
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        report = send_progress()  # a caller's progress bar (put_file): bytes as they are read
        body: Any = data if report is None else ProgressBody(data, report)
        response = await self.client.call(
            "put_object", path, Bucket=bucket, Key=key, Body=body, **kwargs
        )
        return meta_from_response(
            path,
            {**response, "Metadata": metadata or {}, "ContentType": content_type},
            size=len(data),
        )

    async def writer(
        self,
        path: str,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectWriter:
        bucket, key = object_key(path)
        upload = MultipartUpload(
            self.client,
            path,
            bucket,
            key,
            create_kwargs=self._create_kwargs(metadata, content_type),
            part_kwargs=dict(self.arguments.part),
            concurrency=self.options.upload_concurrency,
            if_none_match=if_none_match,
            purge=self.purge,
        )
        await upload.start()
        return S3Writer(upload, metadata, content_type)

    async def complete_staged(self, staged: StagedUpload) -> ObjectMeta:
        bucket, key = object_key(staged.path)
        parts = [{"PartNumber": n, "ETag": e} for n, e in sorted(staged.parts)]
        response = await self.client.call(
            "complete_multipart_upload",
            staged.path,
            Bucket=bucket,
            Key=key,
            UploadId=staged.upload_id,
            MultipartUpload={"Parts": parts},
        )
        return meta_from_response(staged.path, response, size=staged.size)

    async def abort_staged(self, staged: StagedUpload) -> None:
        bucket, key = object_key(staged.path)
        try:
            await self.client.call(
                "abort_multipart_upload",
                staged.path,
                Bucket=bucket,
                Key=key,
                UploadId=staged.upload_id,
            )
        except FileNotFoundError:
            pass  # NoSuchUpload: completed or aborted already

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
    ) -> ObjectMeta:
        sb, sk = object_key(src)
        object_key(dst)
        source_sse = self._source_sse(src) if self._source_sse else self.sse
        if (
            source_size is not None
            and metadata is None
            and source_size <= self.options.copy_threshold
        ):
            # the caller knows the size: one CopyObject, no HEAD (the metadata is copied
            # as it is, so the meta returned leaves it unknown)
            return await self._copy_object(
                src, dst, source_size, None, SSEArguments.copy(self.sse, source_sse)
            )
        # the source's size (a large one is copied in parts) and ETag (the copy is pinned
        # to it, so the meta returned describes the bytes copied)
        head = await self.client.call(
            "head_object", src, Bucket=sb, Key=sk, **_sse.read_kwargs(source_sse)
        )
        source = meta_from_response(src, head)
        extra = SSEArguments.copy(self.sse, source_sse)
        new_metadata = dict(source.metadata if metadata is None else metadata)
        if source.size > self.options.copy_threshold:
            return await self._copy_in_parts(source, dst, new_metadata, extra)
        if metadata is not None:
            extra.update(MetadataDirective="REPLACE", Metadata=new_metadata)
            if source.content_type:  # REPLACE would reset it to S3's default
                extra["ContentType"] = source.content_type
        return await self._copy_object(src, dst, source.size, source, extra, new_metadata)

    async def _copy_object(
        self,
        src: str,
        dst: str,
        size: int,
        source: ObjectMeta | None,
        extra: dict[str, Any],
        new_metadata: dict[str, str] | None = None,
    ) -> ObjectMeta:
        """One CopyObject, pinned to ``source``'s ETag when the source was read."""
        (sb, sk), (db, dk) = split(src), split(dst)
        if source is not None and source.etag:
            extra = {**extra, "CopySourceIfMatch": source.etag}
        try:
            response = await self.client.call(
                "copy_object",
                f"{src} -> {dst}",
                Bucket=db,
                Key=dk,
                CopySource={"Bucket": sb, "Key": sk},
                **extra,
            )
        except FileExistsError as exc:  # the table's reading of 412: the source changed
            if source is None:
                raise
            raise ChangedError(src, source.etag or "", None) from exc
        result = response.get("CopyObjectResult") or {}
        return ObjectMeta(
            dst,
            size,
            result.get("ETag"),
            result.get("LastModified"),
            response.get("VersionId"),
            new_metadata if new_metadata is not None else {},
            source.content_type if source is not None else None,
        )

    async def _copy_in_parts(
        self, source: ObjectMeta, dst: str, metadata: dict[str, str], extra: dict[str, Any]
    ) -> ObjectMeta:
        sb, sk = split(source.path)
        db, dk = split(dst)
        upload = MultipartUpload(
            self.client,
            dst,
            db,
            dk,
            create_kwargs=self._create_kwargs(metadata, source.content_type),
            concurrency=self.options.upload_concurrency,
            purge=self.purge,
        )
        await upload.start()
        part_extra = {k: v for k, v in extra.items() if k in COPY_PART_KEYS}
        if source.etag:
            part_extra["CopySourceIfMatch"] = source.etag
        try:
            await asyncio.gather(
                *(
                    upload.copy_part(n, {"Bucket": sb, "Key": sk}, start, end, **part_extra)
                    for n, (start, end) in enumerate(
                        part_ranges(source.size, self.options.copy_part_size), start=1
                    )
                )
            )
        except BaseException:
            await upload.abort()
            raise
        response = await upload.complete()
        return meta_from_response(
            dst,
            {**response, "Metadata": metadata, "ContentType": source.content_type},
            size=source.size,
        )

    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        by_bucket: dict[str, list[str]] = {}
        for path in dict.fromkeys(paths):
            bucket, key = object_key(path)
            by_bucket.setdefault(bucket, []).append(key)
        semaphore = asyncio.Semaphore(self.options.max_concurrency)
        deleted: list[str] = []
        errors: list[DeleteFailure] = []

        async def one(bucket: str, batch: list[str]) -> None:
            try:
                async with semaphore:
                    response = await self.client.call(
                        "delete_objects",
                        f"{bucket}/{batch[0]}",
                        Bucket=bucket,
                        Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                    )
            except OSError as exc:  # the batch as a whole (translated): none confirmed
                errors.extend(
                    DeleteFailure(f"{bucket}/{k}", getattr(exc, "code", None), str(exc), exc)
                    for k in batch
                )
                return
            refused = {e.get("Key"): e for e in response.get("Errors") or []}
            deleted.extend(f"{bucket}/{k}" for k in batch if k not in refused)
            errors.extend(
                DeleteFailure(f"{bucket}/{k}", e.get("Code"), e.get("Message") or "")
                for k, e in refused.items()
            )

        await asyncio.gather(
            *(
                one(bucket, keys[i : i + DELETE_BATCH])
                for bucket, keys in by_bucket.items()
                for i in range(0, len(keys), DELETE_BATCH)
            )
        )
        return DeleteResult(deleted, errors)

    # --- listing -------------------------------------------------------------------------

    async def list(
        self, prefix: str, *, delimiter: str | None = None, limit: int | None = None
    ) -> AsyncIterator[ListPage]:
        bucket, key_prefix = split(prefix)
        if not bucket:
            raise ValueError("list needs a prefix that starts with a bucket name")
        if limit is not None and limit < 1:
            raise ValueError(f"list of {prefix!r}: limit must be at least 1, not {limit}")
        pages = self._pages(prefix, bucket, key_prefix, delimiter, limit)
        async for page in cut_listing(pages, limit):  # S3 may send more than MaxKeys asks
            yield page

    async def _pages(
        self, prefix: str, bucket: str, key_prefix: str, delimiter: str | None, limit: int | None
    ) -> AsyncIterator[ListPage]:
        async for page in list_pages(
            self.client,
            prefix,
            bucket,
            key_prefix,
            delimiter=delimiter,
            max_keys=limit,
            page_size=self.page_size,
        ):
            yield ListPage(
                objects=[
                    listed_meta(
                        f"{bucket}/{o['Key']}",
                        o.get("Size", 0),
                        o.get("ETag"),
                        o.get("LastModified"),
                        None,
                        o.get("StorageClass"),
                    )
                    for o in page.get("Contents", ())
                ],
                prefixes=[f"{bucket}/{p['Prefix']}" for p in page.get("CommonPrefixes", ())],
            )

    async def close(self) -> None:
        """Closes the client if this store made it (a shared client is its owner's)."""
        if self._owns_client:
            await self.client.close()


class S3Writer(ObjectWriter):
    """One multipart upload as an :class:`ObjectWriter`."""

    def __init__(
        self, upload: MultipartUpload, metadata: Mapping[str, str] | None, content_type: str | None
    ):
        self.upload = upload
        self.path = upload.path
        self._metadata = dict(metadata or {})
        self._content_type = content_type
        self._sizes: dict[int, int] = {}

    def _open(self) -> str:
        if self.upload.upload_id is None:
            raise ValueError(
                f"the multipart write of {self.path!r} already ended (completed, aborted or staged)"
            )
        return self.upload.upload_id

    async def write_part(self, number: int, data: bytes) -> None:
        self._open()
        if not 1 <= number <= 10_000:
            raise ValueError(f"part number {number} of {self.path!r}: parts are 1 to 10,000")
        await self.upload.upload_part(number, data)
        self._sizes[number] = len(data)

    async def copy_part(self, number: int, src: str, start: int, end: int) -> None:
        self._open()
        bucket, key = object_key(src)
        await self.upload.copy_part(number, {"Bucket": bucket, "Key": key}, start, end)
        self._sizes[number] = end - start

    async def complete(self) -> ObjectMeta:
        self._open()
        if not self.upload.parts:  # S3 completes no upload without a part: one empty part
            await self.write_part(1, b"")
        response = await self.upload.complete()  # aborts the upload if completion fails
        self.upload.upload_id = None
        return meta_from_response(
            self.path,
            {**response, "Metadata": self._metadata, "ContentType": self._content_type},
            size=sum(self._sizes.values()),
        )

    async def abort(self) -> None:
        await self.upload.abort()

    async def stage(self) -> StagedUpload:
        upload_id = self._open()
        self.upload.upload_id = None  # this writer is done; the upload stays open in S3
        return StagedUpload(
            self.path, upload_id, sorted(self.upload.parts.items()), sum(self._sizes.values())
        )


def _whole_size(response: Mapping[str, Any]) -> int:
    """The whole object's length: a ranged GET's ``Content-Range`` total, else its length."""
    _, _, total = (response.get("ContentRange") or "").rpartition("/")
    return int(total) if total.isdigit() else int(response.get("ContentLength") or 0)

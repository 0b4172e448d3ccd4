"""The aiobotocore transport's writes: ``put``, ``copy`` (one CopyObject, or in parts
past the copy threshold) and multipart uploads (``writer``, :class:`S3Writer`, staged
uploads), as :class:`S3Writes`, a base of :class:`~emrfs.store.s3.S3Store`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from ..config import S3Options, SSEOptions
from ..crypto import sse as _sse
from ..errors import ChangedError
from ..s3.client import S3Client
from ..s3.multipart import MultipartUpload, UploadPurge, part_ranges
from .progress import ProgressBody, send_progress
from .protocol import ObjectMeta, ObjectStore, ObjectWriter, StagedUpload, split
from .s3_shapes import COPY_PART_KEYS, SSEArguments, meta_from_response, object_key

__all__ = ["S3Writer", "S3Writes"]


class S3Writes(ObjectStore):
    """The write verbs of :class:`~emrfs.store.s3.S3Store` (which sets the attributes)."""

    client: S3Client
    sse: SSEOptions
    arguments: SSEArguments
    _source_sse: Callable[[str], SSEOptions] | None
    purge: UploadPurge | None

    @property
    def options(self) -> S3Options:
        return self.client.options

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

"""The aiobotocore transport: :class:`S3Store`, an :class:`~emrfs.store.protocol.ObjectStore`
over :class:`~emrfs.s3.client.S3Client`.

Everything boto-shaped stops here.  The client's policy comes along unchanged:
request retries, resumable bodies (``read_range``/``get_object_stream``), errors
translated once (``map_s3_errors``) and the ``pinned_get`` hook through which
every GET pinned to an ETag passes.  The SSE arguments of each request family
are built here too, from the :class:`~emrfs.config.SSEOptions` the store was
made with (:func:`sse_arguments`, pure; :mod:`emrfs.crypto.sse` has the rules).

Responses become :class:`~emrfs.store.protocol.ObjectMeta`: user metadata with
lower-case names and no ``x-amz-meta-`` prefix, the ETag quoted as S3 sends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import S3Options, SSEOptions
from ..crypto import sse as _sse
from ..errors import ChangedError, EmrfsError, not_found
from ..s3.client import S3Client
from ..s3.listing import list_pages
from ..s3.multipart import MultipartUpload, UploadPurge, part_ranges
from .protocol import (
    ListPage,
    ObjectMeta,
    ObjectStore,
    ObjectWriter,
    StagedUpload,
    pinned_head,
    split,
)

__all__ = ["S3Store", "SSEArguments", "sse_arguments", "meta_from_response"]

#: Keys one DeleteObjects request may carry.
DELETE_BATCH = 1000
#: UploadPartCopy takes the SSE-C keys of both ends but none of the write settings.
_COPY_PART_KEYS = (
    "SSECustomerAlgorithm",
    "SSECustomerKey",
    "SSECustomerKeyMD5",
    "CopySourceSSECustomerAlgorithm",
    "CopySourceSSECustomerKey",
    "CopySourceSSECustomerKeyMD5",
)


@dataclass(frozen=True)
class SSEArguments:
    """The SSE request arguments of one set of options, per request family."""

    write: Mapping[str, Any]  # put_object, create_multipart_upload
    part: Mapping[str, Any]  # upload_part
    read: Mapping[str, Any]  # get_object, head_object

    @staticmethod
    def copy(dest: SSEOptions, source: SSEOptions) -> dict[str, Any]:
        """copy_object: the destination's settings and the source's SSE-C key."""
        return _sse.copy_kwargs(dest, source)


def sse_arguments(options: SSEOptions) -> SSEArguments:
    """The SSE arguments every request of a store with ``options`` carries (pure; raises
    :class:`~emrfs.errors.ConfigurationError` for a malformed SSE-C key)."""
    return SSEArguments(
        _sse.write_kwargs(options), _sse.part_kwargs(options), _sse.read_kwargs(options)
    )


def meta_from_response(
    path: str, response: Mapping[str, Any], size: int | None = None
) -> ObjectMeta:
    """An ObjectMeta from a HeadObject/GetObject/PutObject/Complete response (``size`` when
    the response does not carry the length, as a PUT's does not)."""
    length = response.get("ContentLength") if size is None else size
    return ObjectMeta(
        path,
        int(length or 0),
        etag=response.get("ETag"),
        last_modified=response.get("LastModified"),
        version_id=response.get("VersionId"),
        metadata={k.lower(): v for k, v in (response.get("Metadata") or {}).items()},
        content_type=response.get("ContentType"),
        storage_class=response.get("StorageClass"),
    )


def _object_key(path: str) -> tuple[str, str]:
    bucket, key = split(path)
    if not bucket or not key:
        raise not_found(path, "a bucket is not an object; give bucket/key")
    return bucket, key


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
        bucket, key = _object_key(path)
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
        bucket, key = _object_key(path)
        _check_range(path, start, end)
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
        bucket, key = _object_key(path)
        _check_range(path, start, end)
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
        bucket, key = _object_key(path)
        _check_range(path, start, end)
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
        bucket, key = _object_key(path)
        kwargs = self._create_kwargs(metadata, content_type)
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        response = await self.client.call(
            "put_object", path, Bucket=bucket, Key=key, Body=data, **kwargs
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
        bucket, key = _object_key(path)
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
        bucket, key = _object_key(staged.path)
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

    async def copy(
        self, src: str, dst: str, *, metadata: Mapping[str, str] | None = None
    ) -> ObjectMeta:
        sb, sk = _object_key(src)
        db, dk = _object_key(dst)
        source_sse = self._source_sse(src) if self._source_sse else self.sse
        # the source's size (a large one is copied in parts) and ETag (the copy is pinned
        # to it, so the meta returned describes the bytes copied)
        head = await self.client.call(
            "head_object", src, Bucket=sb, Key=sk, **_sse.read_kwargs(source_sse)
        )
        source = meta_from_response(src, head)
        extra = SSEArguments.copy(self.sse, source_sse)
        new_metadata = dict(source.metadata if metadata is None else metadata)
        label = f"{src} -> {dst}"
        if source.size > self.options.copy_threshold:
            return await self._copy_in_parts(source, dst, new_metadata, extra)
        if metadata is not None:
            extra.update(MetadataDirective="REPLACE", Metadata=new_metadata)
            if source.content_type:  # REPLACE would reset it to S3's default
                extra["ContentType"] = source.content_type
        try:
            response = await self.client.call(
                "copy_object",
                label,
                Bucket=db,
                Key=dk,
                CopySource={"Bucket": sb, "Key": sk},
                CopySourceIfMatch=source.etag,
                **extra,
            )
        except FileExistsError as exc:  # the table's reading of 412: the source changed
            raise ChangedError(src, source.etag or "", None) from exc
        result = response.get("CopyObjectResult") or {}
        return ObjectMeta(
            dst,
            source.size,
            result.get("ETag"),
            result.get("LastModified"),
            response.get("VersionId"),
            new_metadata,
            source.content_type,
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
        part_extra = {k: v for k, v in extra.items() if k in _COPY_PART_KEYS}
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

    async def delete(self, paths: Sequence[str]) -> list[str]:
        by_bucket: dict[str, list[str]] = {}
        for path in dict.fromkeys(paths):
            bucket, key = _object_key(path)
            by_bucket.setdefault(bucket, []).append(key)
        semaphore = asyncio.Semaphore(self.options.max_concurrency)
        confirmed: list[str] = []
        failures: list[BaseException] = []

        async def one(bucket: str, batch: list[str]) -> None:
            async with semaphore:
                response = await self.client.call(
                    "delete_objects",
                    f"{bucket}/{batch[0]}",
                    Bucket=bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            errors = response.get("Errors") or []
            refused = {e.get("Key") for e in errors}
            confirmed.extend(f"{bucket}/{k}" for k in batch if k not in refused)
            if errors:
                first = errors[0]
                failures.append(
                    EmrfsError(
                        f"S3 refused to delete {len(errors)} of {len(batch)} objects in "
                        f"{bucket!r}, e.g. {bucket}/{first.get('Key')}: {first.get('Code')} "
                        f"{first.get('Message')}; run the delete again",
                        f"{bucket}/{first.get('Key')}",
                        code=first.get("Code"),
                    )
                )

        results = await asyncio.gather(
            *(
                one(bucket, keys[i : i + DELETE_BATCH])
                for bucket, keys in by_bucket.items()
                for i in range(0, len(keys), DELETE_BATCH)
            ),
            return_exceptions=True,
        )
        failures.extend(r for r in results if isinstance(r, BaseException))
        if failures:
            raise failures[0]
        return confirmed

    # --- listing -------------------------------------------------------------------------

    async def list(self, prefix: str, *, delimiter: str | None = None) -> AsyncIterator[ListPage]:
        bucket, key_prefix = split(prefix)
        if not bucket:
            raise ValueError("list needs a prefix that starts with a bucket name")
        async for page in list_pages(
            self.client, prefix, bucket, key_prefix, delimiter=delimiter, page_size=self.page_size
        ):
            yield ListPage(
                objects=[
                    ObjectMeta(
                        f"{bucket}/{o['Key']}",
                        o.get("Size", 0),
                        o.get("ETag"),
                        o.get("LastModified"),
                        storage_class=o.get("StorageClass"),
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


def _check_range(path: str, start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < 0):
        raise ValueError(f"range [{start}, {end}) of {path!r}: offsets are never negative")

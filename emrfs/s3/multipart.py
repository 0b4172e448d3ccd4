"""Multipart uploads and copies: part plans (pure) and the async driver."""

from __future__ import annotations

import asyncio
from typing import Any

from .client import S3Client

MIN_PART = 5 * 1024 * 1024
MAX_PARTS = 10_000


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """[start, end) ranges covering ``size`` bytes; grows the part size to stay within 10,000 parts."""
    if size <= 0:
        return [(0, 0)]
    part_size = max(part_size, MIN_PART, -(-size // MAX_PARTS))
    return [(start, min(size, start + part_size)) for start in range(0, size, part_size)]


class MultipartUpload:
    """One multipart upload: start, upload parts (bounded concurrency), complete or abort."""

    def __init__(self, s3: S3Client, path: str, bucket: str, key: str, *,
                 create_kwargs: dict[str, Any] | None = None,
                 part_kwargs: dict[str, Any] | None = None,
                 concurrency: int = 4, if_none_match: bool = False):
        self.s3 = s3
        self.path = path
        self.bucket = bucket
        self.key = key
        self.create_kwargs = create_kwargs or {}
        self.part_kwargs = part_kwargs or {}
        self.if_none_match = if_none_match
        self.upload_id: str | None = None
        self.parts: dict[int, str] = {}
        self._semaphore = asyncio.Semaphore(concurrency) if concurrency else None

    async def start(self) -> str:
        response = await self.s3.call("create_multipart_upload", self.path, Bucket=self.bucket,
                                      Key=self.key, **self.create_kwargs)
        self.upload_id = response["UploadId"]
        return self.upload_id

    async def upload_part(self, number: int, data: bytes) -> str:
        response = await self.s3.call("upload_part", self.path, Bucket=self.bucket, Key=self.key,
                                      UploadId=self.upload_id, PartNumber=number, Body=data,
                                      **self.part_kwargs)
        self.parts[number] = response["ETag"]
        return response["ETag"]

    async def copy_part(self, number: int, source: dict[str, str], start: int, end: int,
                        **kwargs: Any) -> str:
        async with self._semaphore or _null():
            response = await self.s3.call(
                "upload_part_copy", self.path, Bucket=self.bucket, Key=self.key,
                UploadId=self.upload_id, PartNumber=number, CopySource=source,
                CopySourceRange=f"bytes={start}-{end - 1}", **kwargs)
        self.parts[number] = response["CopyPartResult"]["ETag"]
        return self.parts[number]

    async def complete(self) -> dict:
        kwargs: dict[str, Any] = {}
        if self.if_none_match:
            kwargs["IfNoneMatch"] = "*"
        parts = [{"PartNumber": n, "ETag": e} for n, e in sorted(self.parts.items())]
        try:
            return await self.s3.call(
                "complete_multipart_upload", self.path, Bucket=self.bucket, Key=self.key,
                UploadId=self.upload_id, MultipartUpload={"Parts": parts}, **kwargs)
        except BaseException:
            await self.abort()
            raise

    async def abort(self) -> None:
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        try:
            await self.s3.call("abort_multipart_upload", self.path, Bucket=self.bucket,
                               Key=self.key, UploadId=upload_id)
        except FileNotFoundError:
            pass


class _null:
    async def __aenter__(self):
        return None

    async def __aexit__(self, *exc):
        return False

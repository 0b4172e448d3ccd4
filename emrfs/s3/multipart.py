"""Multipart uploads and copies: part plans (pure), the async driver, and the purge of
abandoned uploads.

An upload whose writer died (killed, crashed, machine lost) stays open in S3,
invisible and billed, until someone aborts it.  :class:`UploadPurge` is
emrfs's answer, after S3A's ``fs.s3a.multipart.purge``: an upload started more
than ``s3.multipart_purge_age`` seconds ago (default 24 h) is *abandoned*,
unless the staged task commit (:mod:`emrfs.staging`) records it as waiting for
its job commit.  Abandoned uploads of a key are aborted whenever a new
multipart write of that key starts (so a rewritten file never leaves two), and
with ``s3.multipart_purge`` on, the first multipart write into a bucket also
aborts every abandoned upload in that bucket (once per filesystem instance).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import io
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

from ..errors import ConfigurationError
from .client import S3Client

logger = logging.getLogger("emrfs.multipart")

MIN_PART = 5 * 1024 * 1024
MAX_PARTS = 10_000


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """[start, end) ranges covering ``size`` bytes.

    Grows the part size to stay within 10,000 parts.
    """
    if size <= 0:
        return [(0, 0)]
    part_size = max(part_size, MIN_PART, -(-size // MAX_PARTS))
    return [(start, min(size, start + part_size)) for start in range(0, size, part_size)]


class MultipartUpload:
    """One multipart upload: start, upload parts (bounded concurrency), complete or abort."""

    def __init__(
        self,
        s3: S3Client,
        path: str,
        bucket: str,
        key: str,
        *,
        create_kwargs: dict[str, Any] | None = None,
        part_kwargs: dict[str, Any] | None = None,
        concurrency: int = 4,
        if_none_match: bool = False,
        purge: UploadPurge | None = None,
    ):
        self.s3 = s3
        self.purge = purge
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
        response = await self.s3.call(
            "create_multipart_upload",
            self.path,
            Bucket=self.bucket,
            Key=self.key,
            **self.create_kwargs,
        )
        self.upload_id = response["UploadId"]
        if self.purge is not None:
            await self.purge.after_start(self.path, self.bucket, self.key, self.upload_id)
        return self.upload_id

    async def upload_part(self, number: int, data: bytes | BinaryIO) -> str:
        """Send part ``number``: ``data`` is its bytes or a seekable stream of them (a
        BytesIO goes out as it is, without a copy; botocore rewinds it for a retry)."""
        if isinstance(data, bytes):
            data = _SharedBody(data)
        response = await self.s3.call(
            "upload_part",
            self.path,
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
            **self.part_kwargs,
        )
        self.parts[number] = response["ETag"]
        return response["ETag"]

    async def copy_part(
        self, number: int, source: dict[str, str], start: int, end: int, **kwargs: Any
    ) -> str:
        async with self._semaphore or _null():
            response = await self.s3.call(
                "upload_part_copy",
                self.path,
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                CopySource=source,
                CopySourceRange=f"bytes={start}-{end - 1}",
                **kwargs,
            )
        self.parts[number] = response["CopyPartResult"]["ETag"]
        return self.parts[number]

    async def complete(self) -> dict:
        kwargs: dict[str, Any] = {}
        if self.if_none_match:
            kwargs["IfNoneMatch"] = "*"
        parts = [{"PartNumber": n, "ETag": e} for n, e in sorted(self.parts.items())]
        try:
            return await self.s3.call(
                "complete_multipart_upload",
                self.path,
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
                **kwargs,
            )
        except BaseException:
            await self.abort()
            raise

    async def abort(self) -> None:
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        try:
            await self.s3.call(
                "abort_multipart_upload",
                self.path,
                Bucket=self.bucket,
                Key=self.key,
                UploadId=upload_id,
            )
        except FileNotFoundError:
            pass


class _SharedBody(io.BytesIO):
    """``bytes`` as a request body, sent in pieces and never copied whole.

    A ``bytes`` body goes to the socket in one write, and what the socket does not
    take at once is copied into the transport's buffer (a part per part in flight);
    a stream is sent in pieces.  A BytesIO made from bytes shares their memory until
    a buffer of it is exported, which copies them: the HTTP client sizes the body
    with ``getbuffer()``, so that view is of the bytes themselves.
    """

    def __init__(self, data: bytes):
        super().__init__(data)
        self._data = data

    def getbuffer(self) -> memoryview:
        return memoryview(self._data)


class _null:
    async def __aenter__(self):
        return None

    async def __aexit__(self, *exc):
        return False


#: ``async staged_ids(bucket) -> upload ids the staged task commit still needs there``
StagedIds = Callable[[str], Awaitable[set[str]]]


class UploadPurge:
    """Aborts the multipart uploads this policy considers abandoned (see the module doc).

    ``age_seconds``: an upload initiated longer ago than this is abandoned
    (0: every upload but the caller's own, which also ends concurrent writers
    of the same key); ``whole_bucket``: the first write into a bucket also
    purges the whole bucket; ``staged_ids``: the uploads recorded as staged,
    never aborted.  Failures to list or abort are logged, never raised: a
    purge must not fail the write that triggered it.
    """

    def __init__(
        self,
        s3: S3Client,
        *,
        age_seconds: float,
        whole_bucket: bool,
        staged_ids: StagedIds,
        clock: Callable[[], float] = time.time,
    ):
        if not age_seconds >= 0:
            raise ConfigurationError(
                f"s3.multipart_purge_age (fs.s3a.multipart.purge.age) is {age_seconds!r}; "
                "give the age in seconds (>= 0) after which an open upload is abandoned",
                "s3.multipart_purge_age",
            )
        self.s3 = s3
        self.age_seconds = age_seconds
        self.whole_bucket = whole_bucket
        self.staged_ids = staged_ids
        self.clock = clock
        self._buckets_done: set[str] = set()

    async def after_start(self, path: str, bucket: str, key: str, upload_id: str) -> int:
        """A multipart write of ``key`` started as ``upload_id``: abort the abandoned uploads of
        that key (of the whole bucket, the first time, with ``whole_bucket``)."""
        whole = self.whole_bucket and bucket not in self._buckets_done
        self._buckets_done.add(bucket)
        try:
            return await self.purge(
                path, bucket, "" if whole else key, exact_key=None if whole else key, keep=upload_id
            )
        # best effort, logged: e.g. no s3:ListBucketMultipartUploads permission; the write goes on
        except Exception as exc:  # noqa: BLE001
            logger.warning("could not purge abandoned multipart uploads for %r: %s", path, exc)
            return 0

    async def purge(
        self,
        path: str,
        bucket: str,
        prefix: str = "",
        *,
        exact_key: str | None = None,
        keep: str | None = None,
    ) -> int:
        """Abort the abandoned uploads below ``prefix`` (of ``exact_key`` alone, if given);
        returns how many were aborted."""
        cutoff = self.clock() - self.age_seconds
        candidates = [
            u
            for u in await self._list(path, bucket, prefix)
            if u["UploadId"] != keep
            and (exact_key is None or u["Key"] == exact_key)
            and u["Initiated"].timestamp() <= cutoff
        ]
        if not candidates:
            return 0
        staged = await self.staged_ids(bucket)  # looked up only when there is something to do
        aborted = 0
        for u in candidates:
            if u["UploadId"] in staged:
                continue
            target = f"{bucket}/{u['Key']}"
            try:
                await self.s3.call(
                    "abort_multipart_upload",
                    target,
                    Bucket=bucket,
                    Key=u["Key"],
                    UploadId=u["UploadId"],
                )
            except FileNotFoundError:
                continue  # completed or aborted meanwhile
            aborted += 1
            logger.info(
                "aborted abandoned multipart upload %s of %r (started %s)",
                u["UploadId"],
                target,
                u["Initiated"].isoformat(),
            )
        return aborted

    async def _list(self, path: str, bucket: str, prefix: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        marker: dict[str, str] = {}
        while True:
            page = await self.s3.call(
                "list_multipart_uploads", path, Bucket=bucket, Prefix=prefix, **marker
            )
            for u in page.get("Uploads", []):
                initiated = u["Initiated"]
                if initiated.tzinfo is None:
                    initiated = initiated.replace(tzinfo=_dt.timezone.utc)
                found.append({"Key": u["Key"], "UploadId": u["UploadId"], "Initiated": initiated})
            if not page.get("IsTruncated"):
                return found
            marker = {
                "KeyMarker": page.get("NextKeyMarker", ""),
                "UploadIdMarker": page.get("NextUploadIdMarker", ""),
            }

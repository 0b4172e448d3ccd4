"""The aiobotocore transport: :class:`S3Store`, an :class:`~emrfs.store.protocol.ObjectStore`
over :class:`~emrfs.s3.client.S3Client`.

Everything boto-shaped stops here.  The client's policy comes along unchanged:
request retries, resumable bodies (``read_range``/``get_object_stream``), errors
translated once (``map_s3_errors``); a GET pinned to an ETag that meets another
version is :class:`~emrfs.errors.ChangedError` (the consistent layer above decides
what that means).  The SSE arguments of each request family
come from the :class:`~emrfs.config.SSEOptions` the store was made with, and
responses become :class:`~emrfs.store.protocol.ObjectMeta`, by the pure functions
of :mod:`emrfs.store.s3_shapes` (importable from here too).  The writes (``put``,
``copy``, multipart uploads) are :class:`~emrfs.store.s3_writes.S3Writes`, its base.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from ..config import S3Options, SSEOptions
from ..errors import ServiceError
from ..s3.client import S3Client
from ..s3.listing import list_pages
from ..s3.multipart import UploadPurge
from .protocol import (
    DeleteFailure,
    DeleteResult,
    ListPage,
    ObjectMeta,
    cut_listing,
    listed_meta,
    pinned_head,
    split,
)
from .s3_shapes import (
    SSEArguments,
    check_range,
    meta_from_response,
    object_key,
    sse_arguments,
)
from .s3_writes import S3Writer, S3Writes

logger = logging.getLogger("emrfs.store.s3")

__all__ = ["S3Store", "S3Writer", "SSEArguments", "sse_arguments", "meta_from_response"]

#: Keys one DeleteObjects request may carry.
DELETE_BATCH = 1000


class S3Store(S3Writes):
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

    # --- reading -------------------------------------------------------------------------

    async def head(self, path: str) -> ObjectMeta:
        bucket, key = object_key(path)
        response = await self.client.call(
            "head_object", path, Bucket=bucket, Key=key, **self.arguments.read
        )
        return meta_from_response(path, response)

    async def head_tail(self, path: str, nbytes: int) -> tuple[ObjectMeta, bytes | None]:
        """The object's status and its last ``nbytes`` in one GET (``Range: bytes=-N``);
        None for the bytes when the body broke off (the headers are the status) or the
        object is empty (a HEAD answers: it has no last bytes)."""
        bucket, key = object_key(path)
        try:
            response = await self.client.call(
                "get_object",
                path,
                Bucket=bucket,
                Key=key,
                Range=f"bytes=-{nbytes}",
                **self.arguments.read,
            )
        except ServiceError as exc:
            if exc.code != "InvalidRange":
                raise
            return await self.head(path), None
        data: bytes | None = None
        try:
            async with response["Body"] as body:
                data = await body.read()
        except Exception:  # a body cut short: the headers are the status
            logger.debug(
                "the tail of %r broke off; its status stands without it", path, exc_info=True
            )
        if data is not None and len(data) != response.get("ContentLength", len(data)):
            data = None
        return meta_from_response(path, response, size=_whole_size(response)), data

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


def _whole_size(response: Mapping[str, Any]) -> int:
    """The whole object's length: a ranged GET's ``Content-Range`` total, else its length."""
    _, _, total = (response.get("ContentRange") or "").rpartition("/")
    return int(total) if total.isdigit() else int(response.get("ContentLength") or 0)

"""Multipart uploads of many parts: bounded memory and concurrency, SSE on every request.

What the write verbs, the CSE layer and the files share to send a large object
(:class:`~emrfs.s3.multipart.MultipartUpload` does the requests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from .config import Options
from .crypto import sse
from .s3.client import S3Client
from .s3.multipart import MultipartUpload, UploadPurge, part_ranges
from .store.protocol import ObjectMeta, ObjectStore

__all__ = ["Uploads", "bytes_parts", "file_parts", "write_parts"]


async def write_parts(
    store: ObjectStore,
    path: str,
    parts: Iterable[bytes],
    *,
    concurrency: int,
    if_none_match: bool = False,
    part_done: Callable[[int], None] | None = None,
) -> ObjectMeta:
    """Write ``parts`` (in order) as one object through ``store``'s writer, at most
    ``concurrency`` parts in flight (memory stays near that many parts); the write is
    aborted if any part fails.  ``part_done(nbytes)`` after each part (progress)."""
    writer = await store.writer(path, if_none_match=if_none_match)
    in_flight: set[asyncio.Task] = set()
    try:
        for number, data in enumerate(parts, start=1):
            if len(in_flight) >= concurrency:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    t.result()
            # tasks start in the order made: an encrypting writer sees its parts in order
            task = asyncio.ensure_future(writer.write_part(number, data))
            if part_done is not None:
                task.add_done_callback(_report_part(part_done, len(data)))
            in_flight.add(task)
        if in_flight:
            for outcome in await asyncio.gather(*in_flight, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise outcome
    except BaseException:
        for t in in_flight:
            t.cancel()
        await writer.abort()
        raise
    return await writer.complete()


class Uploads:
    """Starts and runs multipart uploads with the SSE arguments of each path."""

    def __init__(self, s3: S3Client, options: Options, purge: UploadPurge):
        self.s3 = s3
        self.options = options
        self.purge = purge

    def new_upload(
        self,
        path: str,
        bucket: str,
        key: str,
        *,
        if_none_match: bool = False,
        metadata: dict[str, str] | None = None,
    ) -> MultipartUpload:
        encryption = self.options.for_path(path).sse
        create_kwargs = dict(sse.write_kwargs(encryption))
        if metadata:
            create_kwargs["Metadata"] = dict(metadata)  # the CSE envelope, or a copy's metadata
        return MultipartUpload(
            self.s3,
            path,
            bucket,
            key,
            create_kwargs=create_kwargs,
            part_kwargs=sse.part_kwargs(encryption),
            concurrency=self.options.s3.upload_concurrency,
            purge=self.purge,
            if_none_match=if_none_match,
        )

    async def upload(
        self,
        path: str,
        bucket: str,
        key: str,
        parts: Iterable[bytes],
        if_none_match: bool = False,
        metadata: dict[str, str] | None = None,
        part_done: Callable[[int], None] | None = None,
    ) -> dict:
        """Upload an iterable of part bytes with bounded memory and concurrency;
        ``part_done(nbytes)`` after each part (progress callbacks)."""
        upload = self.new_upload(path, bucket, key, if_none_match=if_none_match, metadata=metadata)
        await upload.start()
        in_flight: set[asyncio.Task] = set()
        try:
            for number, data in enumerate(parts, start=1):
                if len(in_flight) >= self.options.s3.upload_concurrency:
                    done, in_flight = await asyncio.wait(
                        in_flight, return_when=asyncio.FIRST_COMPLETED
                    )
                    for t in done:
                        t.result()
                task = asyncio.ensure_future(upload.upload_part(number, data))
                if part_done is not None:
                    task.add_done_callback(_report_part(part_done, len(data)))
                in_flight.add(task)
            if in_flight:
                for outcome in await asyncio.gather(*in_flight, return_exceptions=True):
                    if isinstance(outcome, BaseException):
                        raise outcome
        except BaseException:
            for t in in_flight:
                t.cancel()
            await upload.abort()
            raise
        return await upload.complete()


def _report_part(part_done: Callable[[int], None], nbytes: int):
    """A task done-callback: ``part_done(nbytes)`` when the part uploaded."""

    def done(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is None:
            part_done(nbytes)

    return done


def bytes_parts(value: bytes, part_size: int):
    view = memoryview(value)
    for start, end in part_ranges(len(value), part_size):
        yield bytes(view[start:end])


def file_parts(f: Any, size: int, part_size: int):
    for start, end in part_ranges(size, part_size):
        yield f.read(end - start)

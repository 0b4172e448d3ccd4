"""Writes in many parts through a store's writer: bounded memory and concurrency.

What ``pipe_file`` and ``put_file`` use to send a large object through the path's
stack (the transport's writer does the multipart requests, SSE on every part and
the purge of abandoned uploads; the CSE layer's encrypts the parts in order).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from .s3.multipart import part_ranges
from .store.protocol import ObjectMeta, ObjectStore

__all__ = ["bytes_parts", "file_parts", "write_parts"]


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

"""A byte range of a file as a stream of pieces, for callers that pipe bytes through.

The WebHDFS gateway's OPEN sends a range to its client as it arrives.  Reading
that range as many ranged ``cat_file`` calls holds each whole read in memory
and costs the object store one request each; a plain S3 object can instead
come from one GET whose body is passed on piece by piece, pinned to the
version being read.  Objects that another layer serves or transforms — the
ephemeral tier, the block cache, client-side encryption — get ``None``, and
the caller reads ranges through ``_cat_file`` where every layer applies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from . import paths
from .encrypted_io import EnvelopeFound, refuse_envelope
from .s3.client import ChangedError, S3Client

__all__ = ["stream", "PIECE_SIZE"]

PIECE_SIZE = 1024 * 1024


async def stream(
    s3: S3Client,
    path: str,
    start: int,
    end: int,
    *,
    etag: str | None,
    piece_size: int,
    read_kwargs: dict[str, Any],
    recorded_etag: Callable[[], Awaitable[str | None]] | None,
    cat_range: Callable[[int, int], Awaitable[bytes]],
) -> AsyncIterator[bytes]:
    """Bytes ``[start, end)`` of the plain S3 object ``path`` as pieces of ``piece_size``.

    The caller decides that ``path`` is a plain S3 object (no tier, block cache or
    client-side encryption configured there).  ``etag`` (from the ``info`` the caller
    checked; else, with the consistent view on, ``recorded_etag()``, the view's) pins
    the version, and a stale copy is retried by the view's policy as for every pinned
    GET; if S3 serves another version, or the object turns out to be encrypted, before
    the first piece, the pieces come from ``cat_range(start, end)`` (every layer
    applied) instead.
    """
    bucket, key = paths.split(path)
    if etag is None and recorded_etag is not None:
        etag = await recorded_etag()  # the version the view recorded, pinned
    extra = dict(read_kwargs)
    if etag:
        extra["IfMatch"] = etag
    sent = 0
    try:
        async for piece in s3.get_object_stream(
            path,
            bucket,
            key,
            piece_size,
            on_response=refuse_envelope,
            start=start,
            end=end,
            **extra,
        ):
            sent += len(piece)
            yield piece
    except (ChangedError, EnvelopeFound):
        if sent:
            raise  # a version changed under a running read: never mix two versions
        for pos in range(start, end, piece_size):
            yield await cat_range(pos, min(end, pos + piece_size))

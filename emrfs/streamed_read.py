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

__all__ = ["stream", "PIECE_SIZE", "WINDOW_SIZE"]

PIECE_SIZE = 1024 * 1024
# One GET asks for at most this much.  A reader that leaves mid-way (Hadoop's WebHDFS
# client reads a little and closes) then costs the store at most the window it was in
# and the next, whatever the socket buffers between here and S3 absorb (loopback TCP
# autotunes them to tens of MiB): an open-ended GET would be drained into them.
WINDOW_SIZE = 8 * 1024 * 1024


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
    window_size: int = WINDOW_SIZE,
) -> AsyncIterator[bytes]:
    """Bytes ``[start, end)`` of the plain S3 object ``path`` as pieces of ``piece_size``.

    The caller decides that ``path`` is a plain S3 object (no tier, block cache or
    client-side encryption configured there).  ``etag`` (from the ``info`` the caller
    checked; else, with the consistent view on, ``recorded_etag()``, the view's) pins
    the version, and a stale copy is retried by the view's policy as for every pinned
    GET; if S3 serves another version, or the object turns out to be encrypted, before
    the first piece, the pieces come from ``cat_range(start, end)`` (every layer
    applied) instead.  Each GET covers at most ``window_size`` bytes (see WINDOW_SIZE);
    the windows after the first are pinned to the version the first one served.
    """
    bucket, key = paths.split(path)
    if etag is None and recorded_etag is not None:
        etag = await recorded_etag()  # the version the view recorded, pinned
    pinned: dict[str, str | None] = {"etag": etag}

    def on_response(response: dict) -> None:
        refuse_envelope(response)
        # later windows are pinned to the version the first one served
        pinned["etag"] = pinned["etag"] or response.get("ETag")

    sent = 0
    try:
        for window_start in range(start, end, window_size):
            window_end = min(end, window_start + window_size)
            extra = dict(read_kwargs)
            if pinned["etag"]:
                extra["IfMatch"] = pinned["etag"]
            got = 0
            async for piece in s3.get_object_stream(
                path,
                bucket,
                key,
                piece_size,
                on_response=on_response,
                start=window_start,
                end=window_end,
                **extra,
            ):
                sent += len(piece)
                got += len(piece)
                yield piece
            if got < window_end - window_start:
                return  # the object ends inside this window
    except (ChangedError, EnvelopeFound):
        if sent:
            raise  # a version changed under a running read: never mix two versions
        for pos in range(start, end, piece_size):
            yield await cat_range(pos, min(end, pos + piece_size))

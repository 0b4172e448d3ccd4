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

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from . import paths
from .encrypted_io import EnvelopeFound, refuse_envelope
from .s3.client import ChangedError

if TYPE_CHECKING:
    from .filesystem import EmrFileSystem

__all__ = ["cat_stream", "PIECE_SIZE"]

PIECE_SIZE = 1024 * 1024


def cat_stream(fs: EmrFileSystem, path: str, start: int, end: int, *,
               etag: str | None = None,
               piece_size: int = PIECE_SIZE) -> AsyncIterator[bytes] | None:
    """Bytes ``[start, end)`` of ``path`` as pieces of ``piece_size``, or ``None``.

    ``None`` when the path is not a plain S3 object (a tier, the block cache
    or client-side encryption is configured there): read ranges instead.
    ``etag`` (from the ``info`` the caller checked; with the consistent view on
    and no ``etag``, the view's) pins the version, and a stale copy is retried by
    the view's policy as for every pinned GET; if S3 serves another version, or
    the object turns out to be encrypted, before the first piece, the pieces
    come from ``_cat_file`` instead.  Iterate on ``fs``'s loop.
    """
    path = fs._norm(path)
    bucket, key = paths.split(path)
    if (not key or end <= start or fs._tiers.owns(path) or fs._cached.serves(path, start, end)
            or fs._encrypted.maybe_encrypted(path)):
        return None
    return _stream(fs, path, bucket, key, start, end, etag, piece_size)


async def _stream(fs: EmrFileSystem, path: str, bucket: str, key: str, start: int, end: int,
                  etag: str | None, piece_size: int) -> AsyncIterator[bytes]:
    if etag is None and fs._view(path) is not None:
        etag = (await fs._info(path)).get("ETag")  # the version the view recorded, pinned
    extra = dict(fs._read_kwargs(path))
    if etag:
        extra["IfMatch"] = etag
    sent = 0
    try:
        async for piece in fs.s3.get_object_stream(path, bucket, key, piece_size,
                                                   on_response=refuse_envelope,
                                                   start=start, end=end, **extra):
            sent += len(piece)
            yield piece
    except (ChangedError, EnvelopeFound):
        if sent:
            raise  # a version changed under a running read: never mix two versions
        for pos in range(start, end, piece_size):
            yield await fs._cat_file(path, pos, min(end, pos + piece_size))

"""A byte range of a file as a stream of pieces, for callers that pipe bytes through.

The WebHDFS gateway's OPEN sends a range to its client as it arrives.  Reading
that range as many ranged ``cat_file`` calls holds each whole read in memory
and costs the object store one request each; here the range comes from the
path's stack (:mod:`emrfs.stacks`) as ``get_stream`` pieces, pinned to one
version: the tier or the block cache serve what they hold, the consistent view
retries a stale copy by its policy, client-side encryption decrypts and verifies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from .errors import ChangedError
from .store.protocol import ObjectStore

__all__ = ["stream", "PIECE_SIZE", "WINDOW_SIZE"]

PIECE_SIZE = 1024 * 1024
# One GET asks for at most this much.  A reader that leaves mid-way (Hadoop's WebHDFS
# client reads a little and closes) then costs the store at most the window it was in
# and the next, whatever the socket buffers between here and S3 absorb (loopback TCP
# autotunes them to tens of MiB): an open-ended GET would be drained into them.
WINDOW_SIZE = 8 * 1024 * 1024


async def stream(
    store: ObjectStore,
    path: str,
    start: int,
    end: int,
    *,
    etag: str | None,
    piece_size: int,
    windowed: bool = True,
    window_size: int = WINDOW_SIZE,
) -> AsyncIterator[bytes]:
    """Bytes ``[start, end)`` of the file ``path`` of ``store`` (its stack) as pieces of
    about ``piece_size``, every piece of one version.

    ``etag`` (from the status the caller checked; else the stack's ``head``, which the
    consistent view checks) pins the version.  If the store holds another version
    before the first piece went out, the range is read again from the version there now
    (never a mix of two).  ``windowed``: each ``get_stream`` covers at most
    ``window_size`` bytes (see WINDOW_SIZE); off where a layer must read an object whole
    to verify it (client-side encryption), which then picks its own reads.
    """
    sent = 0
    for attempt in (0, 1):
        if etag is None or attempt:
            etag = (await store.head(path)).etag  # the version there now, pinned
        try:
            async for piece in _pieces(
                store, path, start, end, etag, piece_size, windowed, window_size
            ):
                sent += len(piece)
                yield piece
            return
        except ChangedError:
            if sent or attempt:
                raise  # a version changed under a running read: never mix two versions


async def _pieces(
    store: ObjectStore,
    path: str,
    start: int,
    end: int,
    etag: str | None,
    piece_size: int,
    windowed: bool,
    window_size: int,
) -> AsyncIterator[bytes]:
    step = window_size if windowed else end - start
    for window_start in range(start, end, step):
        window_end = min(end, window_start + step)
        got = 0
        async for piece in store.get_stream(
            path, window_start, window_end, if_match=etag, chunk_size=piece_size
        ):
            got += len(piece)
            yield piece
        if got < window_end - window_start:
            return  # the object ends inside this window

"""Reads into buffers their reader provides: :class:`ReadTarget` and the pieces a store
needs to serve :meth:`~emrfs.store.protocol.ObjectStore.get_into`.

A layer that transforms a whole object (client-side decryption) wants the bytes
where it will work on them, not handed over in chunks it must copy again: it says
where they go once the object is known (its meta from the first response, so no HEAD
first), and is told as they land, in order, so it can work behind the download.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from ..errors import ChangedError
from .shapes import ObjectMeta

__all__ = ["ReadTarget", "Scatter", "get_into_by_stream"]

#: the default ``get_into`` asks for this much first (the meta comes with it)
_FIRST = 8 * 1024 * 1024


class ReadTarget(abc.ABC):
    """Where the bytes of one read land (see ``ObjectStore.get_into``)."""

    @abc.abstractmethod
    async def open(self, meta: ObjectMeta, length: int) -> Sequence[memoryview]:
        """Writable buffers, in order, for the ``length`` bytes to come (their lengths add
        up to ``length``); called once, with the meta of the version being read.  Raising
        here ends the read with that error."""

    def filled(self, upto: int) -> None:  # noqa: B027 - optional: a target may only collect
        """The first ``upto`` bytes are in place (called in increasing order, on the event
        loop, the last time with ``length``).  Raising here ends the read with that error."""


class Scatter:
    """Buffers that together hold bytes ``[0, length)``, written by offset."""

    def __init__(self, views: Sequence[memoryview]):
        self.views = [v for v in views if len(v)]
        self.length = sum(len(v) for v in self.views)

    def slices(self, lo: int, hi: int) -> list[memoryview]:
        """Views of the buffers over bytes ``[lo, hi)`` (one per buffer it crosses)."""
        out = []
        at = 0
        for view in self.views:
            a, b = max(lo, at), min(hi, at + len(view))
            if a < b:
                out.append(view[a - at : b - at])
            at += len(view)
        return out

    def write(self, at: int, data: bytes | memoryview) -> None:
        """``data`` at offset ``at`` (``ChangedError`` is the caller's to raise past the end)."""
        src = memoryview(data)
        for view in self.slices(at, at + len(src)):
            view[:] = src[: len(view)]
            src = src[len(view) :]
            view.release()


class _Readable(Protocol):
    async def get(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> tuple[ObjectMeta, bytes]: ...

    def get_stream(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> AsyncIterator[bytes]: ...


async def get_into_by_stream(
    store: _Readable,
    path: str,
    target: ReadTarget,
    start: int,
    end: int | None,
    if_match: str | None,
) -> ObjectMeta:
    """``get_into`` for a store with nothing better: its ``get`` for the first piece (the
    meta comes with it), then its ``get_stream`` pinned to that version, each chunk copied
    into the target's buffers as it arrives."""
    first_end = start + _FIRST if end is None else min(end, start + _FIRST)
    meta, first = await store.get(path, start, first_end, if_match=if_match)
    stop = meta.size if end is None else min(end, meta.size)
    length = max(0, stop - start)
    scatter = Scatter(await target.open(meta, length))
    got = 0

    def land(chunk: bytes) -> None:
        nonlocal got
        if got + len(chunk) > length:
            raise ChangedError(path, meta.etag or if_match or "", None)  # it got longer
        if chunk:
            scatter.write(got, chunk)
            got += len(chunk)
            target.filled(got)

    land(first)
    if got < length:
        async for chunk in store.get_stream(
            path, start + got, stop, if_match=meta.etag or if_match
        ):
            land(chunk)
    if got != length:
        raise ChangedError(path, meta.etag or if_match or "", None)  # it got shorter
    if not length:
        target.filled(0)
    return meta

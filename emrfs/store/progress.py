"""Progress of a single PUT as the transport sends it: :func:`reporting_sends`.

A caller with a progress bar (``put_file``'s fsspec callback) wraps the stack's
``put`` in ``with reporting_sends(report):``; the transport that sends the body
then calls ``report(nbytes)`` as the HTTP client reads it (a retry's rewind is not
counted twice).  A context variable, not an argument of every layer's ``put``: only
the transport, which alone sees bytes leave, has something to say, and the layers
between it and the caller forward ``put`` unchanged.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["ProgressBody", "reporting_sends", "send_progress"]

_report: ContextVar[Callable[[int], None] | None] = ContextVar("emrfs_send_progress", default=None)


@contextmanager
def reporting_sends(report: Callable[[int], None]) -> Iterator[None]:
    """PUT bodies sent by the transport inside this block report their bytes to ``report``."""
    token = _report.set(report)
    try:
        yield
    finally:
        _report.reset(token)


def send_progress() -> Callable[[int], None] | None:
    """The report the caller asked for (:func:`reporting_sends`), or None."""
    return _report.get()


class ProgressBody(io.BufferedIOBase):
    """``data`` as a request body that reports bytes as the HTTP client reads them; a
    retry's rewind re-reads without reporting twice (only new high-water bytes count)."""

    def __init__(self, data: bytes, report: Callable[[int], None]):
        super().__init__()
        self._f = io.BytesIO(data)
        self._report = report
        self._high = 0
        self.size = len(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._f.read(size)
        position = self._f.tell()
        if position > self._high:
            self._report(position - self._high)
            self._high = position
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

"""A ``bytes`` object of known length filled in place, for large reads.

A 128 MiB GET collected by the transport and then copied into ``bytes`` touches
every page twice (and a fresh 128 MiB allocation costs page faults each time);
filling one buffer as the body arrives and handing it out as ``bytes`` copies the
body once.  CPython's ``io.BytesIO.getvalue()`` returns its own buffer, uncopied,
when no view of it is open.
"""

from __future__ import annotations

import io

__all__ = ["FilledBytes"]


class FilledBytes:
    """``size`` bytes written at any offsets through :attr:`view`, then :meth:`value`."""

    def __init__(self, size: int):
        self._io = io.BytesIO()
        if size:
            self._io.seek(size - 1)
            self._io.write(b"\0")
        self.view = self._io.getbuffer()

    def value(self) -> bytes:
        """The bytes (the buffer is spent: :attr:`view` is released)."""
        self.view.release()
        value = self._io.getvalue()
        self._io = io.BytesIO()
        return value

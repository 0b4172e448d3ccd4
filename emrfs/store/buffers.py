"""A ``bytes`` object of known length filled in place, for large reads.

A 128 MiB GET collected by the transport and then copied into ``bytes`` touches
every page twice (and a fresh 128 MiB allocation costs page faults each time);
filling one buffer as the body arrives and handing it out as ``bytes`` copies the
body once.

On CPython the buffer is the ``bytes`` object itself, allocated uninitialised
(``PyBytes_FromStringAndSize(NULL, n)``) and written through a view of its storage
before anyone else sees it: no zero-filling pass over memory every byte of which is
written next (``perf`` of a 64 MiB ``cat_file``: ~6 ms of ``memset`` per read, a
tenth of obstore's whole read).  Elsewhere, an ``io.BytesIO`` sized up front, whose
``getvalue()`` returns its own buffer uncopied when no view of it is open.
Callers hand :meth:`FilledBytes.value` out only once every byte was written (an
uninitialised buffer holds whatever the allocator left there).

No huge pages are asked for: advising them (``MADV_HUGEPAGE``) made a 64 MiB read
cost more client CPU here, not less (median of 8 interleaved: 106 against 72 ms read
right after a 64 MiB write, 82 against 74 ms in a read-only loop; SeaweedFS, THP
``defrag=madvise``), and direct compaction stalled single reads up to 213 ms.
"""

from __future__ import annotations

import io
import sys
from typing import Any

__all__ = ["FilledBytes"]


def _uninitialised_bytes() -> Any:
    """``(size) -> (bytes, writable memoryview of its storage)`` on CPython, else None."""
    if sys.implementation.name != "cpython":
        return None
    try:
        import ctypes

        new = ctypes.pythonapi.PyBytes_FromStringAndSize
    except (ImportError, AttributeError):  # pragma: no cover - a CPython without ctypes
        return None
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
    # a bytes object's storage (ob_sval) starts where its fixed part ends, less the one
    # byte the fixed size counts for the terminating NUL
    offset = bytes.__basicsize__ - 1

    def make(size: int) -> tuple[bytes, memoryview]:
        data = new(None, size)
        address = id(data) + offset
        storage = (ctypes.c_char * size).from_address(address)
        # every view of the storage keeps the bytes alive: a worker thread still writing
        # into a slice after its reader gave up never writes into freed memory
        storage.owner = data  # type: ignore[attr-defined]
        return data, memoryview(storage).cast("B")

    return make


_make_uninitialised = _uninitialised_bytes()


class FilledBytes:
    """``size`` bytes written at any offsets through :attr:`view`, then :meth:`value`.

    The object behind :attr:`view` lives as long as this one: whoever writes through
    the view (or a slice of it) must be done before this object is dropped.
    """

    def __init__(self, size: int):
        self._data: bytes | None = None
        self._io: io.BytesIO | None = None
        if _make_uninitialised is not None and size:
            self._data, self.view = _make_uninitialised(size)
            return
        self._io = io.BytesIO()
        if size:
            self._io.seek(size - 1)
            self._io.write(b"\0")
        self.view = self._io.getbuffer()

    def value(self) -> bytes:
        """The bytes (the buffer is spent: :attr:`view` is released)."""
        self.view.release()
        if self._data is not None:
            value, self._data = self._data, None
            return value
        assert self._io is not None
        value = self._io.getvalue()
        self._io = io.BytesIO()
        return value

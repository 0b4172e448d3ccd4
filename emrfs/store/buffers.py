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

A buffer of ``_HUGE_FROM`` bytes or more is mapped afresh by the allocator each time
(glibc maps every allocation above 32 MiB), and faulting it in 4 KiB at a time costs
more CPU than receiving the bytes (a 128 MiB GET on SeaweedFS here: ~1.25 ms of client
CPU per MiB); on Linux such a buffer asks for transparent huge pages (``madvise``; THP
in its default ``madvise`` mode), which its writes fill whole: ~0.8 ms per MiB.
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

    advise = _huge_pages_advice()

    def make(size: int, huge_pages: bool = True) -> tuple[bytes, memoryview]:
        data = new(None, size)
        address = id(data) + offset
        if advise is not None and huge_pages and size >= _HUGE_FROM:
            advise(address, size)
        storage = (ctypes.c_char * size).from_address(address)
        return data, memoryview(storage).cast("B")

    return make


#: buffers from this size ask for huge pages (the allocator maps them afresh)
_HUGE_FROM = 32 * 1024 * 1024
_HUGE_PAGE = 2 * 1024 * 1024
_MADV_HUGEPAGE = 14  # Linux's <sys/mman.h>


def _huge_pages_advice() -> Any:
    """``(address, size) -> None`` asking Linux to back the whole 2 MiB pages inside
    ``[address, address + size)`` with huge pages (advice: a refusal changes nothing),
    or None where there is no such advice."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (ImportError, OSError, AttributeError):  # pragma: no cover - no libc symbol
        return None
    madvise.restype = ctypes.c_int
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

    def advise(address: int, size: int) -> None:
        lo = -(-address // _HUGE_PAGE) * _HUGE_PAGE
        hi = (address + size) // _HUGE_PAGE * _HUGE_PAGE
        if hi > lo:
            madvise(lo, hi - lo, _MADV_HUGEPAGE)

    return advise


_make_uninitialised = _uninitialised_bytes()


class FilledBytes:
    """``size`` bytes written at any offsets through :attr:`view`, then :meth:`value`.

    The object behind :attr:`view` lives as long as this one: whoever writes through
    the view (or a slice of it) must be done before this object is dropped.
    ``huge_pages=False``: a large buffer stays in 4 KiB pages (see the module doc).
    """

    def __init__(self, size: int, *, huge_pages: bool = True):
        self._data: bytes | None = None
        self._io: io.BytesIO | None = None
        if _make_uninitialised is not None and size:
            self._data, self.view = _make_uninitialised(size, huge_pages)
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

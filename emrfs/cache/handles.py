"""An open block file and the verified reads served from it.

A :class:`BlockHandle` is a block file held open under a shared ``flock`` and
mapped read-only; the block store refcounts them.  :func:`read_range` returns
bytes of the block after checking the chunks it touches (checksums, or the
GCM tags of a sealed block), raising :class:`~emrfs.errors.IntegrityError`
on any mismatch so the store drops the block and reports a miss.
"""

from __future__ import annotations

import contextlib
import mmap
import os

from ..errors import IntegrityError
from .blockfile import BlockId, Header, checksum, checksum_parts


class BlockHandle:
    """An open, shared-locked, mapped block file; refcounted by the store."""

    __slots__ = (
        "__weakref__",
        "dir_index",
        "fd",
        "header",
        "map",
        "path",
        "pinned",
        "refs",
        "touched",
        "verified",
    )

    def __init__(self, fd: int, mapped: mmap.mmap, header: Header, path: str, dir_index: int):
        self.fd, self.map, self.header, self.path = fd, mapped, header, path
        self.refs = 0
        self.pinned = 0
        self.touched = 0.0
        self.dir_index = dir_index
        self.verified = bytearray(len(header.checksums))  # chunks checked through this map

    def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self.map.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)  # closing the fd releases the flock


def stored_len(h: Header) -> int:
    """Bytes the data of a block takes in its file (chunks plus any GCM overhead)."""
    if not h.length:
        return 0
    off, n = h.chunk_range(len(h.checksums) - 1)
    return off + n - h.data_offset


def read_range(
    handle: BlockHandle,
    bid: BlockId,
    start: int,
    end: int | None,
    where: str,
    *,
    verify: str,
    sealer=None,
) -> bytes:
    """Verified bytes ``[start, end)`` of the block behind ``handle``.

    ``verify`` is the store's mode ("always" or "open"); ``sealer`` opens the
    chunks of a sealed block (required when the block is sealed).
    """
    h = handle.header
    end = h.length if end is None else min(end, h.length)
    if start >= end:
        return b""
    cs = h.chunk_size
    if h.sealed:
        return _read_sealed(handle, bid, start, end, where, sealer)
    if verify == "always" and start % cs == 0 and (end % cs == 0 or end == h.length):
        return _read_aligned(handle, start, end, where)
    return _read_unaligned(handle, start, end, where, once=verify == "open")


def _read_aligned(handle: BlockHandle, start: int, end: int, where: str) -> bytes:
    # A chunk-aligned read: one pread (no page faults on a fresh map),
    # checked while hot in the CPU cache, returned without another copy.
    # (Unaligned reads would need a second copy: the map serves them.)
    h = handle.header
    cs = h.chunk_size
    first, last = start // cs, (end - 1) // cs
    a, b = first * cs, min((last + 1) * cs, h.length)
    buf = os.pread(handle.fd, b - a, h.data_offset + a)
    if len(buf) != b - a:
        raise IntegrityError(f"cache block for {where!r} is truncated", where)
    with memoryview(buf) as bv:
        for c in range(first, last + 1):
            c0 = c * cs - a
            if checksum(h.algo, bv[c0 : min(c0 + cs, b - a)]) != h.checksums[c]:
                raise IntegrityError(
                    f"cache block for {where!r} fails its checksum (chunk {c})", where
                )
    return buf


def _read_unaligned(handle: BlockHandle, start: int, end: int, where: str, *, once: bool) -> bytes:
    # Copy first, then check the copy (hot in the CPU cache, and exactly
    # what is returned); chunk edges outside the read come from the map.
    # ``once``: a chunk already checked through this map is not checked again.
    h = handle.header
    base, cs = h.data_offset, h.chunk_size
    first, last = start // cs, (end - 1) // cs
    data = handle.map[base + start : base + end]
    verified = handle.verified if once else None
    with memoryview(handle.map) as view, memoryview(data) as out:
        for c in range(first, last + 1):
            if verified is not None and verified[c]:
                continue
            c0, c1 = c * cs, min(c * cs + cs, h.length)
            if c0 >= start and c1 <= end:
                digest = checksum(h.algo, out[c0 - start : c1 - start])
            else:
                digest = checksum_parts(
                    h.algo,
                    (
                        view[base + c0 : base + start] if c0 < start else b"",
                        out[max(c0, start) - start : min(c1, end) - start],
                        view[base + end : base + c1] if c1 > end else b"",
                    ),
                )
            if digest != h.checksums[c]:
                raise IntegrityError(
                    f"cache block for {where!r} fails its checksum (chunk {c})", where
                )
            if verified is not None:
                verified[c] = 1
    return data


def _read_sealed(
    handle: BlockHandle, bid: BlockId, start: int, end: int, where: str, sealer
) -> bytes:
    h = handle.header
    first, last = start // h.chunk_size, (end - 1) // h.chunk_size
    parts = []
    with memoryview(handle.map) as view:
        for c in range(first, last + 1):
            off, n = h.chunk_range(c)
            parts.append(sealer.open(view[off : off + n], bid.key + b"#%d" % c, where))
    skip = start - first * h.chunk_size
    joined = parts[0] if len(parts) == 1 else b"".join(parts)
    return joined[skip : skip + (end - start)]

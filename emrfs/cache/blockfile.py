"""The block file format: identities, header, per-chunk checksums, chunking of writes.

A block file is a header (magic, flags, chunk size, length, the block id, one
checksum per chunk, a checksum of the header itself) followed by the data in
chunks of :data:`CHUNK_SIZE`; sealed blocks store each chunk as an AES-GCM unit
(see :mod:`emrfs.crypto.atrest`).  Pure: no file is opened here but the
descriptors handed in.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import Any

from ..crypto.atrest import OVERHEAD as _OVERHEAD
from ..errors import IntegrityError

xxhash: ModuleType | None
try:  # xxh3 runs ~6x faster than zlib.crc32 here (see benchmarks/bench_cache.py)
    import xxhash as _xxhash_module
except ImportError:  # pragma: no cover - fallback keeps the cache working without xxhash
    xxhash = None
else:
    xxhash = _xxhash_module
_xxh3: Callable[[Any], int] | None = xxhash.xxh3_64_intdigest if xxhash else None
_NO_XXHASH = "block written with xxh3 but the xxhash module is missing; pip install xxhash"

MAGIC = b"EMRFSBK1"
CHUNK_SIZE = 128 * 1024
FLAG_SEALED = 1
ALGO_XXH3, ALGO_CRC32 = 1, 2
_FIXED = struct.Struct("<8sBBHIQHI")  # magic flags algo reserved chunk len idlen nchunks
_U64 = struct.Struct("<Q")
SPACES = ("c", "e")


def checksum(algo: int, data) -> int:
    if algo == ALGO_XXH3:
        if _xxh3 is None:
            raise IntegrityError(_NO_XXHASH)
        return _xxh3(data)
    return zlib.crc32(data)


def checksum_parts(algo: int, parts) -> int:
    """Checksum of the concatenation of ``parts`` without joining them."""
    if algo == ALGO_XXH3:
        if xxhash is None:
            raise IntegrityError(_NO_XXHASH)
        hasher = xxhash.xxh3_64()
        for p in parts:
            hasher.update(p)
        return hasher.intdigest()
    value = 0
    for p in parts:
        value = zlib.crc32(p, value)
    return value


WRITE_ALGO = ALGO_XXH3 if _xxh3 is not None else ALGO_CRC32


def path_owner(path: str) -> str:
    """Stable hex id of an object path (the read cache keys blocks by it)."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class BlockId:
    """Where a block belongs: space ('c' cache, 'e' ephemeral), owner, version tag, index."""

    space: str
    owner: str
    tag: str
    index: int

    @cached_property
    def key(self) -> bytes:
        """Identity bytes: stored in the header and used as AES-GCM associated data."""
        return f"{self.space}/{self.owner}/{self.tag}/{self.index}".encode()

    @cached_property
    def relpath(self) -> str:
        return f"{self.space}/{self.owner[:2]}/{self.owner}/{self.tag}.{self.index}"


@dataclass(frozen=True)
class ObjectIdentity:
    """One version of one object: blocks are valid only for the identity they came from.

    ``stamp`` carries whatever else pins the version (the consistent view's
    record, for instance); any field changing makes a new identity.
    """

    path: str
    size: int
    etag: str | None = None
    version_id: str | None = None
    stamp: str | None = None

    @cached_property
    def owner(self) -> str:
        return path_owner(self.path)

    @cached_property
    def tag(self) -> str:
        text = f"{self.size}\0{self.etag or ''}\0{self.version_id or ''}\0{self.stamp or ''}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def block(self, index: int) -> BlockId:
        return BlockId("c", self.owner, self.tag, index)


@dataclass
class Header:
    sealed: bool
    algo: int
    chunk_size: int
    length: int
    checksums: tuple[int, ...]
    data_offset: int

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        """Stored ``(offset, length)`` of a chunk in the file."""
        plain = self.chunk_size
        stored = plain + (_OVERHEAD if self.sealed else 0)
        off = self.data_offset + chunk * stored
        n = min(plain, self.length - chunk * plain) + (_OVERHEAD if self.sealed else 0)
        return off, n


def header_bytes(bid: BlockId, sealed: bool, algo: int, length: int, checksums: list[int]) -> bytes:
    key = bid.key
    nchunks = -(-length // CHUNK_SIZE)
    body = (
        _FIXED.pack(
            MAGIC, FLAG_SEALED if sealed else 0, algo, 0, CHUNK_SIZE, length, len(key), nchunks
        )
        + key
        + b"".join(_U64.pack(c) for c in checksums)
    )
    return body + _U64.pack(xxhash.xxh3_64_intdigest(body) if xxhash else zlib.crc32(body))


def header_size(bid: BlockId, length: int) -> int:
    return _FIXED.size + len(bid.key) + 8 * (-(-length // CHUNK_SIZE)) + 8


def parse_header(buf, bid: BlockId, where: str) -> Header:
    try:
        magic, flags, algo, _, chunk, length, idlen, nchunks = _FIXED.unpack_from(buf, 0)
    except struct.error as exc:
        raise IntegrityError(f"cache block for {where!r} is truncated", where) from exc
    if magic != MAGIC:
        raise IntegrityError(f"cache block for {where!r} has a bad magic number", where)
    end = _FIXED.size + idlen + 8 * nchunks
    if len(buf) < end + 8 or nchunks != -(-length // max(chunk, 1)):
        raise IntegrityError(f"cache block header for {where!r} is truncated", where)
    body = bytes(buf[:end])
    stored = _U64.unpack_from(buf, end)[0]
    expect = xxhash.xxh3_64_intdigest(body) if (xxhash and algo == ALGO_XXH3) else zlib.crc32(body)
    if stored != expect:
        raise IntegrityError(f"cache block header for {where!r} fails its checksum", where)
    if body[_FIXED.size : _FIXED.size + idlen] != bid.key:
        raise IntegrityError(f"cache block for {where!r} belongs to another block", where)
    sums = struct.unpack_from(f"<{nchunks}Q", buf, _FIXED.size + idlen)
    return Header(bool(flags & FLAG_SEALED), algo, chunk, length, sums, end + 8)


def rechunk(pieces: Iterable, size: int) -> Iterator[memoryview | bytes | None]:
    """Re-cut a stream of bytes-like pieces into ``size``-byte chunks (last one shorter).

    ``None`` follows the chunks completed by each input piece (a point to flush at).
    """
    pending = bytearray()
    for piece in pieces:
        view = memoryview(piece).cast("B")
        if not pending:
            while len(view) >= size:
                yield view[:size]
                view = view[size:]
        pending += view
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
        yield None
    if pending:
        yield bytes(pending)


def writev_all(fd: int, bufs: list) -> None:
    """Write every buffer of ``bufs`` in order (writev, resumed after short writes)."""
    views = [memoryview(b).cast("B") for b in bufs if len(b)]
    while views:
        n = os.writev(fd, views[:1024])  # IOV_MAX
        while n and views:
            if n >= len(views[0]):
                n -= len(views.pop(0))
            else:
                views[0] = views[0][n:]
                n = 0

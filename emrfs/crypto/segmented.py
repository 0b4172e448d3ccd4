"""The emrfs segmented format: a streaming AEAD with a tag per segment.

Byte-for-byte specification: ``docs/cse-segmented-format.md``.  In short
(after Tink's AES-GCM-HKDF streaming AEAD): the plaintext is cut into
segments of ``P`` bytes; segment ``i`` of ``n`` is
``AES-256-GCM(segment_key, nonce_prefix(7) || be32(i) || last(1), segment)``,
so each segment verifies on its own, in place: a reordered segment fails (the
index is in the nonce), a truncated object fails (its new last segment was not
sealed as last).  ``segment_key`` and a key commitment come from HKDF-SHA256
over the data key, a random salt and the header, which is stored in object
metadata (``x-emrfs-h``), so a range read needs no extra request.

Pure range arithmetic (:func:`plan`), and the ciphers.
"""

from __future__ import annotations

import hmac
import os
import struct
from dataclasses import dataclass
from typing import overload

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import EncryptionError, IntegrityError

__all__ = [
    "MAGIC",
    "HEADER_BYTES",
    "TAG_BYTES",
    "MIN_SEGMENT",
    "MAX_SEGMENT",
    "Header",
    "SegmentPlan",
    "SegmentedKey",
    "SegmentEncryptor",
    "SegmentDecryptor",
    "stored_length",
    "plaintext_length",
    "plan",
]

MAGIC = b"ESG1"
VERSION = 1
AEAD_AES256_GCM = 1
KDF_HKDF_SHA256 = 1
TAG_BYTES = 16
SALT_BYTES = 32
PREFIX_BYTES = 7
COMMIT_BYTES = 32
MIN_SEGMENT = 4096
MAX_SEGMENT = 8 * 1024 * 1024
_FIXED = struct.Struct(">4sBBBBI")  # magic, version, aead, kdf, reserved, segment size
_BOUND = _FIXED.size + SALT_BYTES + PREFIX_BYTES  # bytes bound into the key derivation
HEADER_BYTES = _BOUND + COMMIT_BYTES  # 83
INFO = b"emrfs-seg1"
_HAS_INTO = hasattr(AESGCM, "encrypt_into")


@dataclass(frozen=True)
class Header:
    segment_size: int
    salt: bytes
    nonce_prefix: bytes
    commitment: bytes

    def bound(self) -> bytes:
        """The header bytes before the commitment (what the key derivation binds)."""
        return (
            _FIXED.pack(MAGIC, VERSION, AEAD_AES256_GCM, KDF_HKDF_SHA256, 0, self.segment_size)
            + self.salt
            + self.nonce_prefix
        )

    def to_bytes(self) -> bytes:
        return self.bound() + self.commitment

    @classmethod
    def from_bytes(cls, data: bytes, path: str = "") -> Header:
        if len(data) != HEADER_BYTES:
            raise EncryptionError(
                f"the segmented-format header of {path!r} has {len(data)} bytes, not "
                f"{HEADER_BYTES}; it may have been altered",
                path,
            )
        magic, version, aead, kdf, reserved, size = _FIXED.unpack_from(data)
        if magic != MAGIC or version != VERSION or reserved != 0:
            raise EncryptionError(
                f"{path!r} has an unknown segmented-format header (magic {magic!r}, version "
                f"{version}); upgrade emrfs or check the object",
                path,
            )
        if aead != AEAD_AES256_GCM or kdf != KDF_HKDF_SHA256:
            raise EncryptionError(
                f"{path!r} uses segmented-format algorithms aead={aead} kdf={kdf}, which this "
                "emrfs does not know",
                path,
            )
        if not MIN_SEGMENT <= size <= MAX_SEGMENT:
            raise EncryptionError(
                f"{path!r} declares a segment size of {size}; it may have been altered", path
            )
        salt_end = _FIXED.size + SALT_BYTES
        return cls(size, data[_FIXED.size : salt_end], data[salt_end:_BOUND], data[_BOUND:])


def _derive(data_key: bytes, header: Header) -> tuple[bytes, bytes]:
    okm = HKDF(hashes.SHA256(), 64, header.salt, INFO + header.bound()).derive(data_key)
    return okm[:32], okm[32:]


def check_segment_size(size: int) -> int:
    if not MIN_SEGMENT <= size <= MAX_SEGMENT:
        raise EncryptionError(
            f"cse.segment_size is {size}; use {MIN_SEGMENT} to {MAX_SEGMENT} bytes"
        )
    return size


# --- pure length and range arithmetic -------------------------------------------------


def segment_count(plaintext_len: int, segment_size: int) -> int:
    return max(1, -(-plaintext_len // segment_size))


def stored_length(plaintext_len: int, segment_size: int) -> int:
    """Body length for ``plaintext_len`` bytes: one 16-byte tag per segment."""
    return plaintext_len + TAG_BYTES * segment_count(plaintext_len, segment_size)


def plaintext_length(stored_len: int, segment_size: int, path: str = "") -> int:
    """Plaintext length of a body of ``stored_len`` bytes; IntegrityError if none fits."""
    c = segment_size + TAG_BYTES
    n = max(1, -(-stored_len // c))
    if stored_len - (n - 1) * c < TAG_BYTES:
        raise IntegrityError(
            f"{path!r} has {stored_len} bytes, which no segmented object has: it is truncated", path
        )
    return stored_len - TAG_BYTES * n


@dataclass(frozen=True)
class SegmentPlan:
    """What to fetch for plaintext ``[start, end)``, and how to cut it after.

    Fetch ciphertext ``[fetch_start, fetch_end)`` (segments ``first..last``),
    decrypt, then take ``length`` bytes from ``skip``.  ``segments`` is the
    object's segment count, so the reader knows which one is last.
    """

    start: int
    end: int
    first: int
    last: int
    fetch_start: int
    fetch_end: int
    skip: int
    segments: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def fetch_length(self) -> int:
        return self.fetch_end - self.fetch_start


def plan(start: int, end: int, stored_len: int, segment_size: int, path: str = "") -> SegmentPlan:
    """The ciphertext to fetch for plaintext ``[start, end)``, clipped to the object."""
    total = plaintext_length(stored_len, segment_size, path)
    n = segment_count(total, segment_size)
    start = max(0, min(start, total))
    end = max(start, min(end, total))
    first = start // segment_size
    last = max(first, (end - 1) // segment_size) if end > start else first
    last = min(last, n - 1)
    first = min(first, last)
    c = segment_size + TAG_BYTES
    return SegmentPlan(
        start,
        end,
        first,
        last,
        first * c,
        min((last + 1) * c, stored_len),
        start - first * segment_size,
        n,
    )


# --- the ciphers ------------------------------------------------------------------------


class SegmentedKey:
    """The derived segment key of one object, with its header."""

    def __init__(self, data_key: bytes, header: Header, path: str = ""):
        key, commitment = _derive(data_key, header)
        if not hmac.compare_digest(commitment, header.commitment):
            raise IntegrityError(
                f"the key commitment of {path!r} does not match its data key: the envelope "
                "was altered or belongs to another object",
                path,
            )
        self.header = header
        self.path = path
        self._aead = AESGCM(key)

    @classmethod
    def new(
        cls,
        data_key: bytes,
        segment_size: int,
        *,
        salt: bytes | None = None,
        nonce_prefix: bytes | None = None,
        path: str = "",
    ) -> SegmentedKey:
        """A fresh header (random salt and nonce prefix unless given) for ``data_key``."""
        partial = Header(
            check_segment_size(segment_size),
            os.urandom(SALT_BYTES) if salt is None else salt,
            os.urandom(PREFIX_BYTES) if nonce_prefix is None else nonce_prefix,
            b"",
        )
        _, commitment = _derive(data_key, partial)
        return cls(
            data_key,
            Header(partial.segment_size, partial.salt, partial.nonce_prefix, commitment),
            path,
        )

    @property
    def segment_size(self) -> int:
        return self.header.segment_size

    def nonce(self, index: int, last: bool) -> bytes:
        if not 0 <= index < 2**32:
            raise EncryptionError(f"{self.path!r}: more than 2**32 segments", self.path)
        return self.header.nonce_prefix + struct.pack(">IB", index, 1 if last else 0)

    def seal(
        self, index: int, last: bool, segment: bytes | memoryview, out: memoryview | None = None
    ) -> int | bytes:
        if out is not None and _HAS_INTO:
            return self._aead.encrypt_into(
                self.nonce(index, last), segment, None, out[: len(segment) + TAG_BYTES]
            )
        data = self._aead.encrypt(self.nonce(index, last), bytes(segment), None)
        if out is None:
            return data
        out[: len(data)] = data
        return len(data)

    @overload
    def open(
        self, index: int, last: bool, segment: bytes | memoryview, out: None = None
    ) -> bytes: ...

    @overload
    def open(self, index: int, last: bool, segment: bytes | memoryview, out: memoryview) -> int: ...

    def open(
        self, index: int, last: bool, segment: bytes | memoryview, out: memoryview | None = None
    ) -> bytes | int:
        """Verify and decrypt segment ``index``; into ``out`` when given (returns the count)."""
        nonce = self.nonce(index, last)
        try:
            if out is None:
                return self._aead.decrypt(nonce, segment, None)
            n = len(segment) - TAG_BYTES
            if n < 0:
                raise InvalidTag()
            if _HAS_INTO:
                return self._aead.decrypt_into(nonce, segment, None, out[:n])
            out[:n] = self._aead.decrypt(nonce, segment, None)
            return n
        except InvalidTag as exc:
            raise IntegrityError(
                f"segment {index} of {self.path!r} does not verify: the object is truncated, "
                "reordered or altered, or was encrypted with another key; discard what was "
                "read",
                self.path,
            ) from exc

    def encryptor(self) -> SegmentEncryptor:
        return SegmentEncryptor(self)

    def decryptor(self) -> SegmentDecryptor:
        return SegmentDecryptor(self)

    def decrypt_plan(self, plan_: SegmentPlan, data: bytes | memoryview) -> bytes:
        """Verify and decrypt the fetched segments of ``plan_``; the requested bytes."""
        if len(data) != plan_.fetch_length:
            raise IntegrityError(
                f"fetched {len(data)} bytes of {self.path!r} where {plan_.fetch_length} were "
                "asked for: the object changed or was truncated",
                self.path,
            )
        c = self.segment_size + TAG_BYTES
        view = memoryview(data)
        parts = [
            self.open(
                i, i == plan_.segments - 1, view[(i - plan_.first) * c : (i - plan_.first + 1) * c]
            )
            for i in range(plan_.first, plan_.last + 1)
        ]
        plain = parts[0] if len(parts) == 1 else b"".join(parts)
        return plain[plan_.skip : plan_.skip + plan_.length]


class SegmentEncryptor:
    """Plaintext chunks in order -> segments; memory: one segment of buffer."""

    def __init__(self, key: SegmentedKey):
        self.key = key
        self._p = key.segment_size
        self._buf = bytearray()
        self._index = 0
        self.plaintext_bytes = 0

    def max_output(self, n: int) -> int:
        """Most bytes :meth:`update` of ``n`` bytes can return."""
        return (len(self._buf) + n) // self._p * (self._p + TAG_BYTES)

    def update(self, data: bytes | bytearray | memoryview) -> bytearray:
        out = bytearray(self.max_output(len(data)))
        n = self.update_into(data, out)
        del out[n:]
        return out

    def update_into(self, data: bytes | bytearray | memoryview, out: bytearray | memoryview) -> int:
        """Seal every segment known not to be last; returns the bytes written."""
        self.plaintext_bytes += len(data)
        view, target, written, p = memoryview(data), memoryview(out), 0, self._p
        if self._buf:
            take = min(p - len(self._buf), len(view))
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) < p or not len(view):
                return 0  # the segment may still be the last one
            written += self._seal(self._buf, target, written)
            self._buf = bytearray()
        while len(view) > p:  # a whole segment with more after it: not last
            written += self._seal(view[:p], target, written)
            view = view[p:]
        self._buf += view
        return written

    def _seal(self, segment, target: memoryview, offset: int) -> int:
        n = self.key.seal(self._index, False, segment, target[offset:])
        self._index += 1
        return n  # type: ignore[return-value]

    def finalize(self) -> bytes:
        """The last segment (sealed as last; empty plaintext gives a lone tag)."""
        data = self.key.seal(self._index, True, bytes(self._buf))
        self._buf = bytearray()
        return data  # type: ignore[return-value]


class SegmentDecryptor:
    """Ciphertext chunks in order -> verified segments; ``finalize`` checks the end.

    Each segment it returns has verified; only truncation at a segment
    boundary is left for :meth:`finalize` to find (the last segment must be
    sealed as last), so callers still hold output back until it returns.
    """

    def __init__(self, key: SegmentedKey):
        self.key = key
        self._c = key.segment_size + TAG_BYTES
        self._buf = bytearray()  # a partial segment, or a whole one that may be the last
        self._index = 0
        self.path = key.path

    def update(self, data: bytes | memoryview) -> bytes | bytearray:
        out = bytearray(len(self._buf) + len(data))
        n = self.update_into(data, out)
        del out[n:]
        return out

    def update_into(self, data: bytes | memoryview, out: bytearray | memoryview) -> int:
        """Open every segment known not to be last into ``out`` (room for ``len(data)``
        plus one held segment); returns the bytes written."""
        view, target, written, c = memoryview(data), memoryview(out), 0, self._c
        if self._buf:
            take = min(c - len(self._buf), len(view))
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) < c or not len(view):
                return 0
            written += self._open(self._buf, target[written:])
            self._buf = bytearray()
        while len(view) > c:  # a whole segment with more after it: not last
            written += self._open(view[:c], target[written:])
            view = view[c:]
        self._buf += view
        return written

    def _open(self, segment, target: memoryview) -> int:
        n = self.key.open(self._index, False, segment, target)
        self._index += 1
        return n

    def finalize(self) -> bytes:
        if len(self._buf) < TAG_BYTES:
            raise IntegrityError(
                f"{self.path!r} ends inside a segment tag: the object is truncated", self.path
            )
        plain = self.key.open(self._index, True, bytes(self._buf))
        self._buf = bytearray()
        return plain

"""What the filesystem holds while an object streams: one encryptor or decryptor.

:class:`ContentEncryptor` and :class:`ContentDecryptor` put the AWS GCM stream
and the segmented format behind one shape (``update`` / ``update_into`` /
``finalize``).  :func:`verified_chunks` and :func:`averified_chunks` turn a
decryptor and a chunk source into plaintext chunks that hold the last one back
until the tag verifies, so a consumer that commits only after the iterator
ends (a temp file renamed at the end, a cache block sealed at the end) never
keeps unverified plaintext.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from ..config import CSEOptions

from ..errors import EncryptionError, IntegrityError
from ..store.buffers import FilledBytes
from . import segmented
from .content import TAG_BYTES, GcmDecryptor, GcmEncryptor
from .envelope import INSTRUCTION_MARKER, Envelope, Suite, is_encrypted, parse_instruction
from .populate import populate_behind

__all__ = [
    "ContentEncryptor",
    "ContentDecryptor",
    "verified_chunks",
    "averified_chunks",
    "plaintext_length",
    "adecrypt_whole",
]

#: Room ``update_into`` may want beyond its output (cryptography asks block size - 1).
_SLACK = 64


class _BytesBuffer:
    """A ``bytes`` object filled in place, handed out without a copy.

    An ``io.BytesIO`` sized up front is written through ``getbuffer()``, then
    ``getvalue()`` returns its own buffer as ``bytes`` (CPython shares it when no
    view is open).  Why ``bytes``: botocore streams a ``bytes`` body from a BytesIO,
    while aiohttp sends a ``bytearray`` body as one slice (a copy) joined to the
    headers (a copy) and mostly left in the transport's buffer (a copy): 2.6x the
    client CPU of the same PUT from ``bytes`` (measured on SeaweedFS, 64 MiB); and a
    ``bytes(bytearray)`` copy of a fresh buffer costs as much as the encryption.
    """

    def __init__(self, capacity: int):
        self._io = io.BytesIO()
        if capacity:
            self._io.seek(capacity - 1)
            self._io.write(b"\0")
        self.view = self._io.getbuffer()
        self.length = 0

    @property
    def room(self) -> int:
        return len(self.view) - self.length

    def append(self, data: bytes | memoryview) -> None:
        self.view[self.length : self.length + len(data)] = data
        self.length += len(data)

    def value(self) -> bytes:
        """The bytes written (the buffer is spent)."""
        self.view.release()
        self._io.truncate(self.length)
        value = self._io.getvalue()
        self._io = io.BytesIO()
        return value


class _Cipher(Protocol):
    def update(self, data: bytes | memoryview) -> bytes | bytearray: ...
    def finalize(self) -> bytes: ...


class ContentEncryptor:
    """Encrypts one object's plaintext, in order, across any number of parts.

    ``metadata`` is the user metadata to store with the object;
    ``instruction`` the instruction-file body to PUT at ``<key><suffix>``
    with metadata ``instruction_metadata`` (None in ObjectMetadata mode).
    The ciphertext is ``update(...)`` for every chunk, then ``finalize()``.
    """

    instruction_metadata: ClassVar[dict[str, str]] = {INSTRUCTION_MARKER: ""}

    def __init__(
        self,
        envelope: Envelope,
        cipher: GcmEncryptor | segmented.SegmentEncryptor,
        instruction_file: bool,
        path: str = "",
    ):
        self.envelope = envelope
        self.path = path
        self._cipher = cipher
        meta, instr = envelope.to_metadata(instruction_file)
        self.metadata: dict[str, str] = meta
        self.instruction: bytes | None = (
            None if instr is None else json.dumps(instr, sort_keys=True).encode()
        )
        self._finalized = False

    @property
    def suite(self) -> Suite:
        return self.envelope.suite

    @property
    def plaintext_bytes(self) -> int:
        return self._cipher.plaintext_bytes

    def max_output(self, n: int) -> int:
        """Room ``update_into`` needs for ``n`` more plaintext bytes."""
        if isinstance(self._cipher, segmented.SegmentEncryptor):
            return self._cipher.max_output(n)
        return n

    def update(self, data: bytes | memoryview) -> bytes | bytearray:
        """Ciphertext for the next plaintext chunk (may be shorter: segments wait to fill)."""
        return self._cipher.update(data)

    def update_into(self, data: bytes | memoryview, out: bytearray | memoryview) -> int:
        """As :meth:`update` into a preallocated buffer of ``max_output(len(data))``."""
        return self._cipher.update_into(data, out)

    def finalize(self) -> bytes:
        """The trailing ciphertext (GCM tag, or the last segment); call once, at the end."""
        if self._finalized:
            raise EncryptionError(
                f"the encryptor of {self.path!r} was already finalized", self.path
            )
        self._finalized = True
        return self._cipher.finalize()

    def stored_length(self, plaintext_len: int) -> int:
        """Bytes the object will have on S3 for ``plaintext_len`` bytes of plaintext."""
        if isinstance(self._cipher, segmented.SegmentEncryptor):
            return segmented.stored_length(plaintext_len, self._cipher.key.segment_size)
        return plaintext_len + TAG_BYTES

    def encrypt_whole(self, chunks: Iterable[bytes | memoryview], plaintext_len: int) -> bytes:
        """The whole body (finalized) for ``plaintext_len`` bytes arriving as ``chunks``.

        Encrypted in place into one uninitialised buffer of exactly the stored length
        (:class:`~emrfs.store.buffers.FilledBytes`: no zero-filling pass first), returned as
        ``bytes`` without a copy (see :class:`_BytesBuffer` for why ``bytes``).  Chunks
        adding up to more or fewer than ``plaintext_len`` bytes raise
        :class:`EncryptionError`.
        """
        out = FilledBytes(self.stored_length(plaintext_len))
        populating = populate_behind(out.view)  # its later pages, on another core
        seen = written = 0
        try:
            for chunk in chunks:
                seen += len(chunk)
                if seen > plaintext_len:
                    raise EncryptionError(
                        f"more than the {plaintext_len} bytes announced were written to "
                        f"{self.path!r}",
                        self.path,
                    )
                written += self.update_into(chunk, out.view[written:])
            if seen != plaintext_len:
                raise EncryptionError(
                    f"{seen} of the {plaintext_len} bytes announced were written to {self.path!r}",
                    self.path,
                )
            tail = self.finalize()
            if written + len(tail) != len(out.view):  # never hand out uninitialised bytes
                raise EncryptionError(
                    f"the ciphertext of {self.path!r} is not its stored length", self.path
                )
            out.view[written:] = tail
        except BaseException:
            out.view.release()
            raise
        finally:
            if populating is not None:
                populating.join()
        return out.value()


class ContentDecryptor:
    """Decrypts one object's body, chunk by chunk, in order.

    Output of :meth:`update` is not yet verified (GCM: nothing is until the
    tag; segmented: each segment is, but truncation is only found at the end).
    :meth:`finalize` raises :class:`~emrfs.errors.IntegrityError` naming the
    object when verification fails; callers discard everything they got then.
    """

    def __init__(self, envelope: Envelope, cipher: _Cipher, path: str = ""):
        self.envelope = envelope
        self.path = path
        self._cipher = cipher

    @property
    def suite(self) -> Suite:
        return self.envelope.suite

    @property
    def cipher(self) -> _Cipher:
        """The format's own cipher (a reader that decrypts in place picks its way by it)."""
        return self._cipher

    def update(self, data: bytes | memoryview) -> bytes | bytearray:
        return self._cipher.update(data)

    def max_output(self, n: int) -> int:
        """Room ``update_into`` needs for ``n`` more ciphertext bytes."""
        if isinstance(self._cipher, segmented.SegmentDecryptor):
            return n + self._cipher.key.segment_size
        return n

    def update_into(self, data: bytes | memoryview, out: bytearray | memoryview) -> int:
        """Decrypt into ``out`` (room for ``max_output(len(data))``); returns the count."""
        if isinstance(self._cipher, (GcmDecryptor, segmented.SegmentDecryptor)):
            return self._cipher.update_into(data, out)
        plain = self._cipher.update(data)
        memoryview(out)[: len(plain)] = plain
        return len(plain)

    def finalize(self) -> bytes:
        """Verify the end of the object; returns any last plaintext."""
        return self._cipher.finalize()

    def decrypt_into(self, body: bytes | memoryview, out: bytearray | memoryview) -> int:
        """Decrypt a whole body into ``out`` (room for ``len(body)`` bytes); returns the
        plaintext length only once it verified (``out`` is garbage after an error)."""
        n = self.update_into(body, out)
        tail = self.finalize()
        memoryview(out)[n : n + len(tail)] = tail
        return n + len(tail)

    def decrypt(self, body: bytes | memoryview) -> bytes | bytearray:
        """The whole plaintext of ``body``, returned only once it verified."""
        head = self.update(body)
        tail = self.finalize()
        return head + tail if tail else head


class _HoldLast:
    """Releases plaintext one chunk late, so the last chunk waits for the tag."""

    def __init__(self, decryptor: ContentDecryptor):
        self.decryptor = decryptor
        self.pending: bytes | bytearray = b""

    def push(self, chunk: bytes) -> bytes | bytearray:
        """Decrypt ``chunk``; returns what may be released now (often ``b""``)."""
        plain = self.decryptor.update(chunk)
        if not plain:
            return b""
        out, self.pending = self.pending, plain
        return out

    def finish(self) -> list[bytes | bytearray]:
        """Verify (raises on a bad tag), then what was held back."""
        tail = self.decryptor.finalize()
        return [c for c in (self.pending, tail) if c]


def verified_chunks(
    decryptor: ContentDecryptor, chunks: Iterable[bytes]
) -> Iterator[bytes | bytearray]:
    """Plaintext chunks; the last is held back until the object verifies."""
    hold = _HoldLast(decryptor)
    for chunk in chunks:
        if out := hold.push(chunk):
            yield out
    yield from hold.finish()


async def averified_chunks(
    decryptor: ContentDecryptor, chunks: AsyncIterable[bytes]
) -> AsyncIterator[bytes | bytearray]:
    """:func:`verified_chunks` over an async chunk source (an aiobotocore body)."""
    hold = _HoldLast(decryptor)
    async for chunk in chunks:
        if out := hold.push(chunk):
            yield out
    for out in hold.finish():
        yield out


async def adecrypt_whole(
    decryptor: ContentDecryptor, chunks: AsyncIterable[bytes], stored_length: int
) -> bytes:
    """The whole plaintext of a body of ``stored_length`` bytes arriving as ``chunks``,
    returned only once it verified.

    Decrypted in place into one buffer as the chunks stream, handed out as
    ``bytes`` without a copy (:class:`_BytesBuffer`): a plaintext read joins its
    chunks once, and so does this.  A body longer than ``stored_length`` raises
    :class:`IntegrityError` (the object changed under the read).
    """
    path = decryptor.path
    out = _BytesBuffer(decryptor.max_output(stored_length) + _SLACK)
    try:
        async for chunk in chunks:
            if decryptor.max_output(len(chunk)) + _SLACK > out.room:
                raise IntegrityError(f"{path!r} is longer than S3 reported; read it again", path)
            out.length += decryptor.update_into(chunk, out.view[out.length :])
        out.append(decryptor.finalize())
    except BaseException:
        out.view.release()
        raise
    return out.value()


def plaintext_length(
    stored_length: int,
    metadata: Mapping[str, str] | None,
    instruction: bytes | Mapping[str, str] | None = None,
    path: str = "",
) -> int:
    """The plaintext length of an object for ``info()`` and listings.

    AWS GCM formats: stored − 16 (S3A reported the stored length: wrong by
    16).  Segmented: stored − 16 per segment.  A body no plaintext fits (shorter
    than its tag: truncated) raises :class:`~emrfs.errors.IntegrityError`.  Legacy CBC:
    ``x-amz-unencrypted-content-length`` when the writer stored it.  Objects
    without an envelope on the object (plaintext, or v2 with an instruction
    file the caller did not read) are taken as they are.
    """
    meta = {k.lower(): v for k, v in (metadata or {}).items()}
    if isinstance(instruction, (bytes, bytearray, memoryview)):
        instruction = parse_instruction(bytes(instruction), path)
    if not is_encrypted(meta) and instruction is None:
        return stored_length
    declared = meta.get("x-amz-unencrypted-content-length")
    if "x-emrfs-h" in meta:
        size = segmented.Header.from_bytes(_header_only(meta, path), path).segment_size
        return segmented.plaintext_length(stored_length, size, path)
    if "x-amz-key" in meta or (instruction and "x-amz-key" in instruction):
        if declared is not None and declared.isdigit():
            return int(declared)
        return stored_length  # CBC padding length is unknowable without decrypting
    if stored_length < TAG_BYTES:
        # no plaintext length fits: reporting 0 would make reads quietly return b""
        raise IntegrityError(
            f"{path!r} has {stored_length} bytes, shorter than its {TAG_BYTES}-byte GCM tag: "
            "the object is truncated; restore it from a copy or delete it",
            path,
        )
    return stored_length - TAG_BYTES


def _header_only(meta: Mapping[str, str], path: str) -> bytes:
    try:
        return base64.b64decode(meta["x-emrfs-h"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EncryptionError(f"the segmented header of {path!r} is not base64", path) from exc


def adjusted_length(stored: int, options: CSEOptions) -> int:
    """Plaintext length by the configured format's fixed overhead (``listing_lengths=adjust``)."""
    if options.format == "segmented":
        try:
            return segmented.plaintext_length(stored, options.segment_size)
        except IntegrityError:
            return stored  # not a segmented object of this segment size
    return stored - 16 if stored >= 16 else stored

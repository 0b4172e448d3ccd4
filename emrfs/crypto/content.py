"""Content ciphers of the AWS formats: one GCM stream per object, CBC for legacy v1.

Body = ``ciphertext || tag(16)``.  v2 encrypts with the data key and the
12-byte IV from the envelope; v3 with ``dek`` derived by HKDF-SHA512 from the
data key and the 28-byte message id, IV ``01 * 12`` and AAD ``00 73``, after
checking the 28-byte key commitment (``cse-format.md``).

Streaming, with bounded memory: :class:`GcmEncryptor` takes plaintext chunks in
order and returns ciphertext, the tag from :meth:`~GcmEncryptor.finalize`;
:class:`GcmDecryptor` takes ciphertext chunks in order, holding back the last
16 bytes (the tag) until :meth:`~GcmDecryptor.finalize` verifies it.  Plaintext
it returns before ``finalize`` is *unverified*: callers keep it from users
until then (see :func:`emrfs.crypto.stream.verified_chunks`).
"""

from __future__ import annotations

import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from ..errors import EncryptionError, IntegrityError
from .envelope import Envelope, Suite

__all__ = [
    "TAG_BYTES",
    "V3_IV",
    "V3_AAD",
    "derive_v3",
    "content_parameters",
    "GcmEncryptor",
    "GcmDecryptor",
    "CbcDecryptor",
]

TAG_BYTES = 16
V3_IV = b"\x01" * 12
V3_AAD = b"\x00\x73"


def derive_v3(data_key: bytes, message_id: bytes) -> tuple[bytes, bytes]:
    """``(dek, commitment)`` of the v3 suite (0x73) for ``data_key`` and ``message_id``."""
    prk = hmac.new(message_id, data_key, "sha512").digest()  # HKDF-Extract(salt=message id)
    dek = HKDFExpand(hashes.SHA512(), 32, V3_AAD + b"DERIVEKEY").derive(prk)
    commitment = HKDFExpand(hashes.SHA512(), 28, V3_AAD + b"COMMITKEY").derive(prk)
    return dek, commitment


def content_parameters(
    envelope: Envelope, data_key: bytes, path: str
) -> tuple[bytes, bytes, bytes]:
    """``(key, iv, aad)`` of the content cipher; checks the v3 key commitment."""
    if envelope.suite is Suite.V3_GCM_COMMIT:
        assert envelope.message_id is not None and envelope.commitment is not None
        dek, commitment = derive_v3(data_key, envelope.message_id)
        if not hmac.compare_digest(commitment, envelope.commitment):
            raise IntegrityError(
                f"the key commitment of {path!r} does not match its data key: the envelope "
                "was altered or belongs to another object",
                path,
            )
        return dek, V3_IV, V3_AAD
    if envelope.suite in (Suite.V2_GCM, Suite.V1_CBC):
        assert envelope.iv is not None
        return data_key, envelope.iv, b""
    raise EncryptionError(f"{path!r}: {envelope.suite.name} is not an AWS GCM suite", path)


class GcmEncryptor:
    """One AES-GCM stream; ``update`` in order, then ``finalize`` for the tag."""

    def __init__(self, key: bytes, iv: bytes, aad: bytes = b""):
        self._ctx = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
        if aad:
            self._ctx.authenticate_additional_data(aad)
        self.plaintext_bytes = 0

    def update(self, data: bytes | memoryview) -> bytes:
        self.plaintext_bytes += len(data)
        return self._ctx.update(data)

    def update_into(self, data: bytes | memoryview, out: bytearray | memoryview) -> int:
        """Encrypt ``data`` into the preallocated ``out`` (no allocation per chunk)."""
        self.plaintext_bytes += len(data)
        return self._ctx.update_into(data, out)

    def finalize(self) -> bytes:
        """The trailing ciphertext: the 16-byte tag."""
        self._ctx.finalize()
        return self._ctx.tag


class GcmDecryptor:
    """One AES-GCM stream over ``ciphertext || tag``; ``finalize`` verifies."""

    def __init__(self, key: bytes, iv: bytes, aad: bytes = b"", path: str = ""):
        self._ctx = Cipher(algorithms.AES(key), modes.GCM(iv)).decryptor()
        if aad:
            self._ctx.authenticate_additional_data(aad)
        self._held = b""  # the last <= 16 bytes seen: maybe the tag
        self.path = path

    def update(self, data: bytes | memoryview) -> bytes:
        """Unverified plaintext for ``data`` (less the bytes held back as a possible tag)."""
        total = len(self._held) + len(data)
        emit = total - TAG_BYTES
        if emit <= 0:
            self._held = self._held + bytes(data)
            return b""
        if emit <= len(self._held):
            out = self._ctx.update(self._held[:emit])
            self._held = self._held[emit:] + bytes(data)
            return out
        head = self._ctx.update(self._held) if self._held else b""
        view = memoryview(data)
        cut = emit - len(self._held)
        body = self._ctx.update(view[:cut])
        self._held = bytes(view[cut:])
        return head + body if head else body

    def update_into(self, data: bytes | memoryview, out: bytearray | memoryview) -> int:
        """As :meth:`update`, into ``out`` (room for ``len(data)`` bytes); returns the count."""
        total = len(self._held) + len(data)
        emit = total - TAG_BYTES
        if emit <= 0:
            self._held = self._held + bytes(data)
            return 0
        target = memoryview(out)
        if emit <= len(self._held):
            n = self._ctx.update_into(self._held[:emit], target)
            self._held = self._held[emit:] + bytes(data)
            return n
        n = self._ctx.update_into(self._held, target) if self._held else 0
        view = memoryview(data)
        cut = emit - len(self._held)
        n += self._ctx.update_into(view[:cut], target[n:])
        self._held = bytes(view[cut:])
        return n

    def update_in_place(self, ciphertext: memoryview) -> None:
        """Decrypt ``ciphertext`` where it lies (unverified until :meth:`finalize`), for a
        reader that keeps the tag apart and hands it to :meth:`update` at the end."""
        if self._held:
            raise ValueError(f"{self.path!r}: decrypting in place after update()")
        self._ctx.update_into(ciphertext, ciphertext)

    def finalize(self) -> bytes:
        """Verify the tag; :class:`IntegrityError` naming the object if it does not."""
        if len(self._held) != TAG_BYTES:
            raise IntegrityError(
                f"{self.path!r} is shorter than its 16-byte GCM tag: the object is truncated",
                self.path,
            )
        try:
            self._ctx.finalize_with_tag(self._held)
        except InvalidTag as exc:
            raise IntegrityError(
                f"the GCM tag of {self.path!r} does not verify: the object is truncated or "
                "altered, or was encrypted with another key; discard what was read",
                self.path,
            ) from exc
        return b""


class CbcDecryptor:
    """Legacy v1 AES-CBC/PKCS5 (no authentication: only behind ``cse.allow_legacy``)."""

    def __init__(self, key: bytes, iv: bytes, path: str = ""):
        self._ctx = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        self._unpad = padding.PKCS7(128).unpadder()
        self.path = path

    def update(self, data: bytes | memoryview) -> bytes:
        return self._unpad.update(self._ctx.update(data))

    def finalize(self) -> bytes:
        try:
            return self._unpad.update(self._ctx.finalize()) + self._unpad.finalize()
        except ValueError as exc:
            raise IntegrityError(
                f"the CBC padding of legacy object {self.path!r} is invalid: wrong key, "
                "truncated or altered",
                self.path,
            ) from exc

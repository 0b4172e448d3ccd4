"""The AWS S3 Encryption Client format written out by hand from ``notes/cse-format.md``,
with no emrfs code: the side channel tests use to read (and write) what lies below an
:class:`~emrfs.crypto.store.EncryptingStore`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

V3_IV = b"\x01" * 12
V3_AAD = b"\x00\x73"


def _derive(data_key: bytes, message_id: bytes) -> tuple[bytes, bytes]:
    prk = hmac.new(message_id, data_key, hashlib.sha512).digest()
    dek = HKDFExpand(hashes.SHA512(), 32, V3_AAD + b"DERIVEKEY").derive(prk)
    commit = HKDFExpand(hashes.SHA512(), 28, V3_AAD + b"COMMITKEY").derive(prk)
    return dek, commit


def v3_encrypt(master: bytes, plaintext: bytes) -> tuple[bytes, dict[str, str]]:
    """``(body, metadata)`` of a v3 object, the data key wrapped by AES/GCM under ``master``."""
    data_key, message_id, nonce = os.urandom(32), os.urandom(28), os.urandom(12)
    dek, commit = _derive(data_key, message_id)
    wrapped = nonce + AESGCM(master).encrypt(nonce, data_key, b"115")
    metadata = {
        "x-amz-c": "115",
        "x-amz-w": "02",
        "x-amz-3": base64.b64encode(wrapped).decode(),
        "x-amz-i": base64.b64encode(message_id).decode(),
        "x-amz-d": base64.b64encode(commit).decode(),
        "x-amz-m": "{}",
    }
    return AESGCM(dek).encrypt(V3_IV, plaintext, V3_AAD), metadata


def decrypt(master: bytes, body: bytes, metadata: Mapping[str, str]) -> bytes:
    """The plaintext of a v2 or v3 object (AES/GCM-wrapped key); raises on a bad tag."""
    meta = {k.lower(): v for k, v in metadata.items()}
    if "x-amz-3" in meta:
        assert meta["x-amz-c"] == "115" and meta["x-amz-w"] == "02", meta
        wrapped = base64.b64decode(meta["x-amz-3"])
        data_key = AESGCM(master).decrypt(wrapped[:12], wrapped[12:], b"115")
        dek, commit = _derive(data_key, base64.b64decode(meta["x-amz-i"]))
        assert commit == base64.b64decode(meta["x-amz-d"]), "key commitment"
        return AESGCM(dek).decrypt(V3_IV, body, V3_AAD)
    assert meta["x-amz-cek-alg"] == "AES/GCM/NoPadding" and meta["x-amz-wrap-alg"] == "AES/GCM"
    wrapped = base64.b64decode(meta["x-amz-key-v2"])
    data_key = AESGCM(master).decrypt(wrapped[:12], wrapped[12:], b"AES/GCM/NoPadding")
    return AESGCM(data_key).decrypt(base64.b64decode(meta["x-amz-iv"]), body, None)


def envelope_of(metadata: Mapping[str, str], instruction: bytes | None) -> dict[str, str]:
    """The object's metadata with the instruction file's names (if any) merged in."""
    meta = {k.lower(): v for k, v in metadata.items()}
    if instruction is not None:
        meta.update({k.lower(): v for k, v in json.loads(instruction).items()})
    return meta


def is_sealed(metadata: Mapping[str, str]) -> bool:
    meta = {k.lower() for k in metadata}
    return bool(meta & {"x-amz-3", "x-amz-key-v2", "x-amz-c", "x-amz-cek-alg"})


#: names the format puts in object metadata (what a user's metadata is compared without)
ENVELOPE_NAMES = frozenset(
    {
        "x-amz-c",
        "x-amz-w",
        "x-amz-3",
        "x-amz-i",
        "x-amz-d",
        "x-amz-m",
        "x-amz-t",
        "x-amz-key-v2",
        "x-amz-iv",
        "x-amz-cek-alg",
        "x-amz-wrap-alg",
        "x-amz-tag-len",
        "x-amz-matdesc",
        "x-amz-crypto-instr-file",
        # the emrfs segmented format's names (docs/cse-segmented-format.md)
        "x-emrfs-c",
        "x-emrfs-w",
        "x-emrfs-k",
        "x-emrfs-h",
        "x-emrfs-t",
        "x-emrfs-m",
    }
)

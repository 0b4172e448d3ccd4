"""Key providers: where data keys come from and how they are wrapped.

A :class:`KeyProvider` makes a fresh data key for a write (returning it plain
and wrapped) and unwraps the key of an object being read.  Shipped:

* :class:`KmsKeyProvider` — CSE-KMS: ``GenerateDataKey`` / ``Decrypt`` with an
  encryption context (``kms+context``), on an aiobotocore-style KMS client;
* :class:`AesKeyProvider` — a raw AES-256 master key, ``AES/GCM`` wrapping;
* :class:`RsaKeyProvider` — an RSA key pair, ``RSA-OAEP-SHA1`` wrapping;
* :class:`~emrfs.crypto.materials.MaterialsKeyProvider` — adapts an EMRFS-style
  :class:`~emrfs.crypto.materials.EncryptionMaterialsProvider` (which hands out
  key material per materials description) to the above.

``cse.materials_provider = "module:Class"`` names a :class:`KeyProvider` or
``EncryptionMaterialsProvider`` subclass; see
:func:`emrfs.crypto.materials.load_provider` (all of these are importable from
:mod:`emrfs.crypto`).
Wrapping follows AWS's S3 Encryption Client exactly, so keys cross both ways.
"""

from __future__ import annotations

import abc
import base64
import binascii
import inspect
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

from ..config import CSEOptions
from ..errors import KMS, ConfigurationError, EncryptionError, translate_aws_error
from .envelope import KMS_CONTEXT_ALGORITHM_KEY, V1_DEFAULT_WRAP, Envelope, Suite

__all__ = [
    "DataKey",
    "KeyProvider",
    "KmsKeyProvider",
    "AesKeyProvider",
    "RsaKeyProvider",
]

DATA_KEY_BYTES = 32
_LEGACY_HINT = "set cse.allow_legacy (fs.s3.cse.allowLegacy) to read legacy v1 objects"


@dataclass(frozen=True)
class DataKey:
    """A fresh data key: ``plaintext`` for the cipher, the rest for the envelope."""

    plaintext: bytes = field(repr=False)
    wrapped: bytes
    wrap_algorithm: str
    context: Mapping[str, str]


class KeyProvider(abc.ABC):
    """Makes and unwraps data keys.  Subclass it for a custom key source."""

    @abc.abstractmethod
    async def generate(self, suite: Suite, path: str) -> DataKey:
        """A new random data key for an object at ``path`` written with ``suite``."""

    @abc.abstractmethod
    async def decrypt(self, envelope: Envelope, path: str, *, allow_legacy: bool = False) -> bytes:
        """The plaintext data key of ``envelope``; :class:`EncryptionError` if it cannot be had."""


def _random_key() -> bytes:
    return os.urandom(DATA_KEY_BYTES)


def _check_key(key: bytes, path: str) -> bytes:
    if len(key) != DATA_KEY_BYTES:
        raise EncryptionError(
            f"the data key of {path!r} unwrapped to {len(key)} bytes, not 32; "
            "the envelope may have been altered",
            path,
        )
    return key


def _wrong_key(path: str, how: str, exc: BaseException | None = None) -> EncryptionError:
    return EncryptionError(
        f"cannot unwrap the data key of {path!r} ({how}): the key in use is not the one it "
        "was written with, or the envelope was altered",
        path,
    )


# --- KMS ------------------------------------------------------------------------------


class KmsKeyProvider(KeyProvider):
    """CSE-KMS.  ``client`` is an aiobotocore KMS client, or a zero-argument
    callable returning one (or an awaitable of one), made on first use.

    ``context`` is extra encryption context; the reserved
    ``aws:x-amz-cek-alg`` entry naming the content cipher is always added and
    checked on read, so a v3 key cannot be replayed as a v2 one.  When a
    context is configured, objects must carry exactly it; without one, any
    stored context is accepted (KMS itself binds the key to it).
    """

    def __init__(self, key_id: str | None, client: Any, context: Mapping[str, str] | None = None):
        self.key_id = key_id
        self._client = client
        self._resolved: Any = None
        self.context = dict(context or {})
        if KMS_CONTEXT_ALGORITHM_KEY in self.context:
            raise ConfigurationError(
                f"{KMS_CONTEXT_ALGORITHM_KEY!r} is reserved in cse.encryption_context; remove it",
                "cse.encryption_context",
            )

    async def client(self) -> Any:
        if self._resolved is None:
            client = self._client
            if client is None:
                raise ConfigurationError(
                    "CSE-KMS needs a KMS client; the filesystem passes one (kms_client=)",
                    "cse.kms_key_id",
                )
            if not hasattr(client, "generate_data_key") and callable(client):
                client = client()
                if inspect.isawaitable(client):
                    client = await client
            self._resolved = client
        return self._resolved

    async def generate(self, suite: Suite, path: str) -> DataKey:
        if not self.key_id:
            raise ConfigurationError(
                f"writing {path!r} with CSE-KMS needs cse.kms_key_id (fs.s3.cse.kms.keyId)",
                "cse.kms_key_id",
            )
        context = {**self.context, KMS_CONTEXT_ALGORITHM_KEY: suite.wrap_aad.decode()}
        client = await self.client()
        try:
            response = await client.generate_data_key(
                KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=context
            )
        except Exception as exc:  # botocore ClientError and transport errors
            raise self._translate(exc, "GenerateDataKey", path) from exc
        return DataKey(
            _check_key(response["Plaintext"], path),
            response["CiphertextBlob"],
            "kms+context",
            context,
        )

    async def decrypt(self, envelope: Envelope, path: str, *, allow_legacy: bool = False) -> bytes:
        context = dict(envelope.context)
        if envelope.wrap_algorithm == "kms+context":
            stored = context.get(KMS_CONTEXT_ALGORITHM_KEY)
            if stored != envelope.suite.wrap_aad.decode():
                raise EncryptionError(
                    f"the KMS encryption context of {path!r} names content cipher {stored!r}, "
                    f"but the object is {envelope.suite.name}; it may have been altered",
                    path,
                )
            extra = {
                k: v
                for k, v in context.items()
                if k not in (KMS_CONTEXT_ALGORITHM_KEY, "kms_cmk_id")
            }
            if self.context and extra != self.context:
                raise EncryptionError(
                    f"the KMS encryption context of {path!r} is {extra}, not the configured "
                    f"{self.context} (cse.encryption_context)",
                    path,
                )
        elif envelope.wrap_algorithm == "kms":
            if not allow_legacy:
                raise EncryptionError(
                    f"{path!r} wraps its key with legacy 'kms' (no encryption context); "
                    + _LEGACY_HINT,
                    path,
                )
        else:
            raise EncryptionError(
                f"{path!r} wraps its key with {envelope.wrap_algorithm!r}, but CSE-KMS is "
                "configured; configure the matching key provider (cse.materials_provider)",
                path,
            )
        kwargs: dict[str, Any] = {
            "CiphertextBlob": envelope.wrapped_key,
            "EncryptionContext": context,
        }
        if self.key_id:
            kwargs["KeyId"] = self.key_id
        client = await self.client()
        try:
            response = await client.decrypt(**kwargs)
        except Exception as exc:
            raise self._translate(exc, "Decrypt of the data key", path) from exc
        return _check_key(response["Plaintext"], path)

    def _translate(self, exc: Exception, operation: str, path: str) -> BaseException:
        """KMS's answer through the one error table: a key problem is an EncryptionError,
        throttling and an unreachable endpoint are what they are."""
        new = translate_aws_error(
            exc,
            path,
            KMS,
            operation=operation,
            name=self.key_id or "",
            resource=f"KMS key {self.key_id!r}" if self.key_id else "",
        )
        if new is exc:  # not an AWS answer (a broken custom client): still the key's failure
            new = EncryptionError(f"KMS {operation} failed for {path!r}: {exc!r}", path)
        return new


# --- raw AES master key ---------------------------------------------------------------


class AesKeyProvider(KeyProvider):
    """A raw AES-256 master key; data keys wrapped with AES/GCM as AWS's AES keyring does:
    ``nonce(12) || AES-GCM(master, nonce, data_key, aad=suite cipher name)``."""

    def __init__(self, key: bytes, description: Mapping[str, str] | None = None):
        if len(key) != 32:
            raise ConfigurationError(
                f"the AES master key has {len(key)} bytes; CSE needs a 256-bit key", "cse.aes_key"
            )
        self._key = bytes(key)
        self.description = dict(description or {})

    @classmethod
    def from_options(cls, options: CSEOptions) -> AesKeyProvider:
        if not options.aes_key:
            raise ConfigurationError(
                "AesKeyProvider needs cse.aes_key (fs.s3.cse.aesKey): base64 of 32 bytes",
                "cse.aes_key",
            )
        try:
            key = base64.b64decode(options.aes_key.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigurationError("cse.aes_key is not valid base64", "cse.aes_key") from exc
        return cls(key, _description(options))

    async def generate(self, suite: Suite, path: str) -> DataKey:
        data_key = _random_key()
        return DataKey(data_key, self.wrap(data_key, suite), "AES/GCM", self.description)

    def wrap(self, data_key: bytes, suite: Suite, nonce: bytes | None = None) -> bytes:
        nonce = os.urandom(12) if nonce is None else nonce
        return nonce + AESGCM(self._key).encrypt(nonce, data_key, suite.wrap_aad)

    async def decrypt(self, envelope: Envelope, path: str, *, allow_legacy: bool = False) -> bytes:
        wrapped = envelope.wrapped_key
        if envelope.wrap_algorithm == "AES/GCM":
            try:
                return _check_key(
                    AESGCM(self._key).decrypt(wrapped[:12], wrapped[12:], envelope.suite.wrap_aad),
                    path,
                )
            except (InvalidTag, ValueError) as exc:
                raise _wrong_key(path, "AES/GCM") from exc
        if envelope.wrap_algorithm in ("AESWrap", "AES", V1_DEFAULT_WRAP):
            if not allow_legacy:
                raise EncryptionError(
                    f"{path!r} wraps its key with legacy {envelope.wrap_algorithm!r}; "
                    + _LEGACY_HINT,
                    path,
                )
            return _check_key(self._legacy_unwrap(wrapped, envelope.wrap_algorithm, path), path)
        raise EncryptionError(
            f"{path!r} wraps its key with {envelope.wrap_algorithm!r}; an AES master key "
            "unwraps AES/GCM (and AESWrap/AES with cse.allow_legacy)",
            path,
        )

    def _legacy_unwrap(self, wrapped: bytes, algorithm: str, path: str) -> bytes:
        try:
            if algorithm == "AESWrap":
                return aes_key_unwrap(self._key, wrapped)
            # "AES" or unnamed (v1): AES/ECB/PKCS5Padding, the v1 Java client's default
            decryptor = Cipher(algorithms.AES(self._key), modes.ECB()).decryptor()  # noqa: S305
            unpadder = padding.PKCS7(128).unpadder()
            raw = decryptor.update(wrapped) + decryptor.finalize()
            return unpadder.update(raw) + unpadder.finalize()
        except (InvalidUnwrap, ValueError) as exc:
            raise _wrong_key(path, algorithm) from exc


# --- RSA key pair ---------------------------------------------------------------------

# SHA-1 where the AWS SDKs' RSA-OAEP wraps use it (their wire format, not our choice): both
# digests of the v2 wrap, and MGF1 of Java's OAEPWithSHA-256AndMGF1Padding
_SHA1 = hashes.SHA1()  # noqa: S303
_OAEP_SHA1 = asym_padding.OAEP(mgf=asym_padding.MGF1(_SHA1), algorithm=_SHA1, label=None)


class RsaKeyProvider(KeyProvider):
    """An RSA key pair; RSA-OAEP-SHA1 wrapping of ``len(key) || key || cipher name``
    (AWS's RSA keyring).  The public key suffices for writes, the private for reads."""

    def __init__(
        self,
        public_key: rsa.RSAPublicKey | None = None,
        private_key: rsa.RSAPrivateKey | None = None,
        description: Mapping[str, str] | None = None,
    ):
        if public_key is None and private_key is not None:
            public_key = private_key.public_key()
        if public_key is None:
            raise ConfigurationError(
                "RsaKeyProvider needs a public or a private key", "cse.rsa_public_key_file"
            )
        self.public_key = public_key
        self.private_key = private_key
        self.description = dict(description or {})

    @classmethod
    def from_options(cls, options: CSEOptions) -> RsaKeyProvider:
        public = private = None
        if options.rsa_private_key_file:
            private = serialization.load_pem_private_key(
                _read(options.rsa_private_key_file, "cse.rsa_private_key_file"), password=None
            )
        if options.rsa_public_key_file:
            public = serialization.load_pem_public_key(
                _read(options.rsa_public_key_file, "cse.rsa_public_key_file")
            )
        return cls(public, private, _description(options))  # type: ignore[arg-type]

    async def generate(self, suite: Suite, path: str) -> DataKey:
        data_key = _random_key()
        pseudo = bytes([len(data_key)]) + data_key + suite.wrap_aad
        return DataKey(
            data_key, self.public_key.encrypt(pseudo, _OAEP_SHA1), "RSA-OAEP-SHA1", self.description
        )

    async def decrypt(self, envelope: Envelope, path: str, *, allow_legacy: bool = False) -> bytes:
        if self.private_key is None:
            raise EncryptionError(
                f"reading {path!r} needs the RSA private key (cse.rsa_private_key_file)", path
            )
        algorithm = envelope.wrap_algorithm
        if algorithm == "RSA-OAEP-SHA1":
            try:
                pseudo = self.private_key.decrypt(envelope.wrapped_key, _OAEP_SHA1)
            except ValueError as exc:
                raise _wrong_key(path, "RSA-OAEP-SHA1") from exc
            size, name = pseudo[0] if pseudo else 0, envelope.suite.wrap_aad
            if size != DATA_KEY_BYTES or pseudo[1 + size :] != name:
                raise EncryptionError(
                    f"the RSA-wrapped key of {path!r} names another content cipher than "
                    f"{name.decode()!r}; the object may have been altered",
                    path,
                )
            return pseudo[1 : 1 + size]
        if algorithm in ("RSA", "RSA/ECB/OAEPWithSHA-256AndMGF1Padding", V1_DEFAULT_WRAP):
            if not allow_legacy:
                raise EncryptionError(
                    f"{path!r} wraps its key with legacy {algorithm!r}; " + _LEGACY_HINT, path
                )
            scheme = (
                asym_padding.OAEP(asym_padding.MGF1(_SHA1), hashes.SHA256(), None)
                if "OAEP" in algorithm
                else asym_padding.PKCS1v15()
            )
            try:
                return _check_key(self.private_key.decrypt(envelope.wrapped_key, scheme), path)
            except ValueError as exc:
                raise _wrong_key(path, algorithm) from exc
        raise EncryptionError(
            f"{path!r} wraps its key with {algorithm!r}; an RSA key pair unwraps "
            "RSA-OAEP-SHA1 (and RSA with cse.allow_legacy)",
            path,
        )


def _read(filename: str, option: str) -> bytes:
    try:
        with open(filename, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {option} {filename!r}: {exc}", option) from exc


def _description(options: CSEOptions) -> dict[str, str]:
    return _json_object(options.materials_description, "cse.materials_description")


def _json_object(text: str | None, option: str) -> dict[str, str]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{option} is not valid JSON: {exc}", option) from exc
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k.isascii() and v.isascii()
        for k, v in value.items()
    ):
        raise ConfigurationError(
            f"{option} must be a JSON object of ASCII strings (S3 metadata is ASCII)", option
        )
    return value

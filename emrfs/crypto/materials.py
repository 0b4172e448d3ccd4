"""EMRFS-style encryption materials providers, and the choice of key provider.

An :class:`EncryptionMaterialsProvider` hands out key material per materials
description, as EMRFS's Java interface does; :class:`MaterialsKeyProvider`
adapts one to :class:`~emrfs.crypto.keys.KeyProvider`.  :func:`load_provider`
builds the provider ``cse.materials_provider`` names (CSE-KMS by default).
"""

from __future__ import annotations

import abc
import importlib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from ..config import CSEOptions
from ..errors import ConfigurationError, EncryptionError
from .envelope import Envelope, Suite
from .keys import (
    AesKeyProvider,
    DataKey,
    KeyProvider,
    KmsKeyProvider,
    RsaKeyProvider,
    _json_object,
)

__all__ = ["Materials", "EncryptionMaterialsProvider", "MaterialsKeyProvider", "load_provider"]


@dataclass(frozen=True)
class Materials:
    """Key material for one materials description: a symmetric key or an RSA pair."""

    description: Mapping[str, str] = field(default_factory=dict)
    symmetric_key: bytes | None = field(default=None, repr=False)
    public_key: rsa.RSAPublicKey | None = None
    private_key: rsa.RSAPrivateKey | None = field(default=None, repr=False)


class EncryptionMaterialsProvider(abc.ABC):
    """EMRFS's ``EncryptionMaterialsProvider`` in Python: hand out key material.

    ``encryption_materials(path)`` gives the material (and its description) a
    new object at ``path`` is written with; ``decryption_materials(description,
    path)`` finds the material for a stored description.  Either may be a
    coroutine.  Wrapping is done for you (AES/GCM or RSA-OAEP-SHA1).
    """

    @abc.abstractmethod
    def encryption_materials(self, path: str) -> Materials | Awaitable[Materials]: ...

    @abc.abstractmethod
    def decryption_materials(
        self, description: Mapping[str, str], path: str
    ) -> Materials | Awaitable[Materials]: ...


class MaterialsKeyProvider(KeyProvider):
    """Adapts an :class:`EncryptionMaterialsProvider` to :class:`KeyProvider`."""

    def __init__(self, provider: EncryptionMaterialsProvider):
        self.provider = provider

    @staticmethod
    def _keyring(materials: Materials, path: str) -> KeyProvider:
        if materials.symmetric_key is not None:
            return AesKeyProvider(materials.symmetric_key, materials.description)
        if materials.public_key is not None or materials.private_key is not None:
            return RsaKeyProvider(
                materials.public_key, materials.private_key, materials.description
            )
        raise EncryptionError(f"the encryption materials provider gave no key for {path!r}", path)

    async def generate(self, suite: Suite, path: str) -> DataKey:
        materials = await _maybe_await(self.provider.encryption_materials(path))
        return await self._keyring(materials, path).generate(suite, path)

    async def decrypt(self, envelope: Envelope, path: str, *, allow_legacy: bool = False) -> bytes:
        materials = await _maybe_await(
            self.provider.decryption_materials(dict(envelope.context), path)
        )
        if materials is None:
            raise EncryptionError(
                f"the encryption materials provider has no key for the materials description "
                f"{dict(envelope.context)} of {path!r}",
                path,
            )
        return await self._keyring(materials, path).decrypt(
            envelope, path, allow_legacy=allow_legacy
        )


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def load_provider(
    options: CSEOptions, kms_client: Any = None, factory: Callable[[CSEOptions], Any] | None = None
) -> KeyProvider:
    """The :class:`KeyProvider` the options ask for.

    ``cse.materials_provider = "module:Class"`` (or ``module.Class``): a
    :class:`KeyProvider` or :class:`EncryptionMaterialsProvider` subclass,
    built with ``Class.from_options(cse_options)`` when it has that classmethod,
    else ``Class()``.  Without it, CSE-KMS with ``cse.kms_key_id``.
    """
    spec = options.materials_provider
    if not spec:
        return KmsKeyProvider(
            options.kms_key_id,
            kms_client,
            _json_object(options.encryption_context, "cse.encryption_context"),
        )
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot load cse.materials_provider {spec!r} ({exc}); give 'module:Class' of an "
            "importable KeyProvider or EncryptionMaterialsProvider",
            "cse.materials_provider",
        ) from exc
    maker = factory or getattr(cls, "from_options", None)
    instance = maker(options) if maker is not None else cls()
    if isinstance(instance, KeyProvider):
        return instance
    if isinstance(instance, EncryptionMaterialsProvider):
        return MaterialsKeyProvider(instance)
    raise ConfigurationError(
        f"cse.materials_provider {spec!r} is neither a KeyProvider nor an "
        "EncryptionMaterialsProvider",
        "cse.materials_provider",
    )

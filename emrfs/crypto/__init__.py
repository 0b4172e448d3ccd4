"""Encryption for emrfs: SSE request kwargs and client-side encryption (CSE).

The filesystem calls two things:

* :mod:`emrfs.crypto.sse` — pure functions from ``options.for_path(p).sse`` to
  boto kwargs;
* :class:`ContentCrypto` — CSE per path: a streaming encryptor for writes (with
  the metadata / instruction file to store), a streaming decryptor for reads,
  the plaintext length for ``info()``, and range reads (authenticated for the
  segmented format, unauthenticated CTR behind an opt-in for AWS formats).

Formats: AWS S3 Encryption Client v2 (0x72) and v3 (0x73, key-committing, the
default), legacy v1 decrypt behind ``cse.allow_legacy``, and the emrfs
segmented format (``cse.format = "segmented"``, ``docs/cse-segmented-format.md``).
Only this package touches ``cryptography``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import CSEOptions, Options
from ..errors import ConfigurationError, EncryptionError
from . import segmented
from .content import (
    V3_AAD,
    V3_IV,
    CbcDecryptor,
    GcmDecryptor,
    GcmEncryptor,
    content_parameters,
    derive_v3,
)
from .envelope import (
    Envelope,
    Suite,
    instruction_file_required,
    is_encrypted,
    needs_instruction_file,
    parse,
    parse_instruction,
)
from .keys import AesKeyProvider, KeyProvider, KmsKeyProvider, RsaKeyProvider
from .materials import EncryptionMaterialsProvider, Materials, load_provider
from .ranges import CtrPlan, ctr_decrypt, ctr_plan
from .stream import (
    ContentDecryptor,
    ContentEncryptor,
    averified_chunks,
    plaintext_length,
    verified_chunks,
)

__all__ = [
    "ContentCrypto",
    "ContentEncryptor",
    "ContentDecryptor",
    "RangeReader",
    "Envelope",
    "Suite",
    "KeyProvider",
    "KmsKeyProvider",
    "AesKeyProvider",
    "RsaKeyProvider",
    "EncryptionMaterialsProvider",
    "Materials",
    "plaintext_length",
    "is_encrypted",
    "needs_instruction_file",
    "parse_instruction",
    "verified_chunks",
    "averified_chunks",
]

POLICIES = (
    "FORBID_ENCRYPT_ALLOW_DECRYPT",
    "REQUIRE_ENCRYPT_ALLOW_DECRYPT",
    "REQUIRE_ENCRYPT_REQUIRE_DECRYPT",
)
_FORMATS = {"v2": Suite.V2_GCM, "v3": Suite.V3_GCM_COMMIT, "segmented": Suite.SEGMENTED}


@dataclass(frozen=True)
class RangeReader:
    """Ranged reads of one object: ``plan`` says what to fetch, ``decrypt`` returns the bytes.

    ``authenticated`` is True for the segmented format (every fetched segment
    verifies) and False for the CTR reading of AWS formats.
    """

    path: str
    stored_length: int
    authenticated: bool
    _segments: segmented.SegmentedKey | None = None
    _ctr: tuple[bytes, bytes] | None = None

    @property
    def plaintext_length(self) -> int:
        if self._segments is not None:
            return segmented.plaintext_length(
                self.stored_length, self._segments.segment_size, self.path
            )
        return max(0, self.stored_length - 16)

    def plan(self, start: int, end: int) -> segmented.SegmentPlan | CtrPlan:
        """Ciphertext ``[plan.fetch_start, plan.fetch_end)`` to fetch for plaintext
        ``[start, end)`` (clipped to the object)."""
        if self._segments is not None:
            return segmented.plan(
                start, end, self.stored_length, self._segments.segment_size, self.path
            )
        return ctr_plan(start, end, self.stored_length)

    def decrypt(self, plan: segmented.SegmentPlan | CtrPlan, data: bytes | memoryview) -> bytes:
        """The plaintext of ``plan`` from the fetched bytes (verified when ``authenticated``)."""
        if plan.fetch_end == plan.fetch_start:
            return b""
        if isinstance(plan, segmented.SegmentPlan):
            assert self._segments is not None
            return self._segments.decrypt_plan(plan, data)
        assert self._ctr is not None
        if len(data) != plan.fetch_end - plan.fetch_start:
            raise EncryptionError(
                f"fetched {len(data)} bytes of {self.path!r} where "
                f"{plan.fetch_end - plan.fetch_start} were asked for",
                self.path,
            )
        return ctr_decrypt(self._ctr[0], self._ctr[1], plan, data)


OptionsLike = Options | CSEOptions


class ContentCrypto:
    """Client-side encryption per path, as the filesystem uses it.

    Parameters
    ----------
    options:
        The whole :class:`~emrfs.config.Options` (per-bucket/prefix ``cse``
        overrides are resolved per path) or one :class:`CSEOptions`.
    kms_client:
        An aiobotocore KMS client (``generate_data_key``/``decrypt``
        coroutines), or a zero-argument callable returning one or an
        awaitable of one; used only for CSE-KMS, made on first use.
    providers:
        Optional ``{CSEOptions: KeyProvider}`` to use instead of building one
        from the options (tests, embedding applications).
    """

    def __init__(
        self,
        options: OptionsLike,
        kms_client: Any = None,
        *,
        providers: Mapping[CSEOptions, KeyProvider] | None = None,
    ):
        self._options = options
        self._kms_client = kms_client
        self._providers: dict[CSEOptions, KeyProvider] = dict(providers or {})

    @classmethod
    def from_options(cls, options: OptionsLike, kms_client: Any = None) -> ContentCrypto:
        return cls(options, kms_client)

    # --- options ------------------------------------------------------------------
    def cse_options(self, path: str) -> CSEOptions:
        if isinstance(self._options, Options):
            return self._options.for_path(path).cse
        return self._options

    def enabled(self, path: str) -> bool:
        """True when new objects at ``path`` are written encrypted."""
        return self.cse_options(path).enabled

    def instruction_key(self, path: str) -> str:
        """Where the instruction file of ``path`` lives (``path + cse.instruction_suffix``)."""
        return path + self.cse_options(path).instruction_suffix

    def uses_instruction_file(self, path: str) -> bool:
        return self.cse_options(path).storage_mode == "InstructionFile"

    def should_fetch_instruction(self, path: str, metadata: Mapping[str, str] | None) -> bool:
        """Whether to GET :meth:`instruction_key` before :meth:`decryptor`.

        Always for v3/segmented content names without a key on the object;
        for an object with no envelope names at all (plaintext, or a v1/v2
        object whose envelope is all in an instruction file, which AWS's
        layout does not mark) only when ``cse.enabled`` and
        ``cse.storage_mode = InstructionFile`` at ``path``; then a 404 means
        plaintext.
        """
        if instruction_file_required(metadata):
            return True
        if is_encrypted(metadata):
            return False
        options = self.cse_options(path)
        return options.enabled and options.storage_mode == "InstructionFile"

    def narrowed(self, options: CSEOptions) -> ContentCrypto:
        """This facade for the paths of one resolved :class:`CSEOptions` (no per-path
        lookup), sharing its key providers and KMS client."""
        narrow = ContentCrypto(options, self._kms_client)
        narrow._providers = self._providers  # one provider per CSE options, not two
        return narrow

    def provider(self, path: str) -> KeyProvider:
        options = self.cse_options(path)
        provider = self._providers.get(options)
        if provider is None:
            provider = self._providers[options] = load_provider(options, self._kms_client)
        return provider

    # --- writes ----------------------------------------------------------------------
    async def new_encryptor(
        self, path: str, *, _iv: bytes | None = None, _message_id: bytes | None = None
    ) -> ContentEncryptor:
        """A fresh data key and encryptor for a new object at ``path``.

        Store ``encryptor.metadata`` as the object's user metadata and, when
        ``encryptor.instruction`` is not None, PUT it at
        :meth:`instruction_key` with ``encryptor.instruction_metadata``.
        ``_iv`` / ``_message_id`` fix the randomness (tests only).
        """
        options = self.cse_options(path)
        suite = write_suite(options)
        data_key = await self.provider(path).generate(suite, path)
        return encryptor_from_parts(
            suite,
            data_key.plaintext,
            data_key.wrapped,
            data_key.wrap_algorithm,
            data_key.context,
            instruction_file=options.storage_mode == "InstructionFile",
            segment_size=options.segment_size,
            path=path,
            iv=_iv,
            message_id=_message_id,
        )

    # --- reads -------------------------------------------------------------------------
    async def open_envelope(
        self,
        path: str,
        metadata: Mapping[str, str] | None,
        instruction: bytes | Mapping[str, str] | None = None,
    ) -> tuple[Envelope, bytes]:
        """Parse and check the envelope against policy; unwrap the data key."""
        options = self.cse_options(path)
        if isinstance(instruction, (bytes, bytearray, memoryview)):
            instruction = parse_instruction(bytes(instruction), path)
        envelope = parse(metadata, path, instruction)
        check_read_policy(envelope, options, path)
        key = await self.provider(path).decrypt(envelope, path, allow_legacy=options.allow_legacy)
        return envelope, key

    async def decryptor(
        self,
        path: str,
        metadata: Mapping[str, str] | None,
        instruction: bytes | Mapping[str, str] | None = None,
    ) -> ContentDecryptor:
        """A streaming decryptor for the body of ``path``.

        ``instruction`` is the instruction file's body (or its parsed JSON)
        when :func:`needs_instruction_file` says the metadata is not enough.
        """
        envelope, data_key = await self.open_envelope(path, metadata, instruction)
        return decryptor_from_parts(envelope, data_key, path)

    async def range_reader(
        self,
        path: str,
        metadata: Mapping[str, str] | None,
        stored_length: int,
        instruction: bytes | Mapping[str, str] | None = None,
    ) -> RangeReader:
        """Ranged reads of ``path``: authenticated for the segmented format; for
        AWS formats only with ``cse.unauthenticated_range_reads`` (else
        :class:`EncryptionError`: read the whole object, verify, then serve
        ranges from the cache)."""
        options = self.cse_options(path)
        envelope, data_key = await self.open_envelope(path, metadata, instruction)
        if envelope.suite is Suite.SEGMENTED:
            assert envelope.header is not None
            segment_key = segmented.SegmentedKey(
                data_key, segmented.Header.from_bytes(envelope.header, path), path
            )
            return RangeReader(path, stored_length, True, _segments=segment_key)
        if envelope.suite is Suite.V1_CBC:
            raise EncryptionError(
                f"{path!r} is a legacy CBC object; it can only be read whole", path
            )
        if not options.unauthenticated_range_reads:
            raise EncryptionError(
                f"{path!r} is in an AWS CSE format, whose ranges cannot be authenticated; read "
                "it whole (it is verified, then served from the cache), or set "
                "cse.unauthenticated_range_reads (fs.s3.cse.unauthenticatedRangeReads) to "
                "accept unverified ranges",
                path,
            )
        key, iv, _ = content_parameters(envelope, data_key, path)
        return RangeReader(path, stored_length, False, _ctr=(key, iv))

    # --- pure helpers re-exported for the filesystem ------------------------------------
    plaintext_length = staticmethod(plaintext_length)
    is_encrypted = staticmethod(is_encrypted)
    needs_instruction_file = staticmethod(needs_instruction_file)


def write_suite(options: CSEOptions) -> Suite:
    """The suite new objects get, checked against ``cse.commitment_policy``."""
    policy = options.commitment_policy
    if policy not in POLICIES:
        raise ConfigurationError(
            f"cse.commitment_policy is {policy!r}; use one of {', '.join(POLICIES)}",
            "cse.commitment_policy",
        )
    suite = _FORMATS.get(options.format)
    if suite is None:
        raise ConfigurationError(
            f"cse.format is {options.format!r}; use 'v3', 'v2' or 'segmented'", "cse.format"
        )
    if suite is Suite.V2_GCM and policy != "FORBID_ENCRYPT_ALLOW_DECRYPT":
        raise ConfigurationError(
            f"conflicting options: cse.format='v2' writes objects without key commitment, "
            f"which cse.commitment_policy={policy!r} forbids; set the policy to "
            "FORBID_ENCRYPT_ALLOW_DECRYPT or write v3",
            "cse.format",
        )
    if suite.committing and policy == "FORBID_ENCRYPT_ALLOW_DECRYPT":
        raise ConfigurationError(
            f"conflicting options: cse.commitment_policy=FORBID_ENCRYPT_ALLOW_DECRYPT writes "
            f"v2 only, but cse.format={options.format!r}; set cse.format='v2'",
            "cse.format",
        )
    return suite


def check_read_policy(envelope: Envelope, options: CSEOptions, path: str) -> None:
    """Refuse legacy objects without ``cse.allow_legacy`` and non-committing ones
    under ``REQUIRE_ENCRYPT_REQUIRE_DECRYPT``."""
    if envelope.suite.legacy and not options.allow_legacy:
        raise EncryptionError(
            f"{path!r} is a legacy v1 (AES-CBC, unauthenticated) object; set "
            "cse.allow_legacy (fs.s3.cse.allowLegacy) to read it",
            path,
        )
    if (
        not envelope.suite.committing
        and options.commitment_policy == "REQUIRE_ENCRYPT_REQUIRE_DECRYPT"
    ):
        raise EncryptionError(
            f"{path!r} is a {envelope.suite.name} object without key commitment, which "
            "cse.commitment_policy=REQUIRE_ENCRYPT_REQUIRE_DECRYPT refuses; set it to "
            "REQUIRE_ENCRYPT_ALLOW_DECRYPT to read older objects",
            path,
        )


def encryptor_from_parts(
    suite: Suite,
    data_key: bytes,
    wrapped: bytes,
    wrap_algorithm: str,
    context: Mapping[str, str],
    *,
    instruction_file: bool = False,
    segment_size: int = 64 * 1024,
    path: str = "",
    iv: bytes | None = None,
    message_id: bytes | None = None,
    salt: bytes | None = None,
    nonce_prefix: bytes | None = None,
) -> ContentEncryptor:
    """An encryptor from explicit parts (randomness injectable, as ``encrypt_at_time``)."""
    if suite is Suite.V2_GCM:
        iv = os.urandom(12) if iv is None else iv
        envelope = Envelope(suite, wrap_algorithm, wrapped, dict(context), iv=iv)
        return ContentEncryptor(envelope, GcmEncryptor(data_key, iv), instruction_file, path)
    if suite is Suite.V3_GCM_COMMIT:
        message_id = os.urandom(28) if message_id is None else message_id
        dek, commitment = derive_v3(data_key, message_id)
        envelope = Envelope(
            suite,
            wrap_algorithm,
            wrapped,
            dict(context),
            message_id=message_id,
            commitment=commitment,
        )
        return ContentEncryptor(envelope, GcmEncryptor(dek, V3_IV, V3_AAD), instruction_file, path)
    if suite is Suite.SEGMENTED:
        key = segmented.SegmentedKey.new(
            data_key, segment_size, salt=salt, nonce_prefix=nonce_prefix, path=path
        )
        envelope = Envelope(
            suite, wrap_algorithm, wrapped, dict(context), header=key.header.to_bytes()
        )
        return ContentEncryptor(envelope, key.encryptor(), instruction_file, path)
    raise EncryptionError(f"emrfs does not write {suite.name} objects", path)


def decryptor_from_parts(envelope: Envelope, data_key: bytes, path: str = "") -> ContentDecryptor:
    """A decryptor for ``envelope`` with its unwrapped ``data_key`` (commitment checked)."""
    if envelope.suite is Suite.SEGMENTED:
        assert envelope.header is not None
        key = segmented.SegmentedKey(
            data_key, segmented.Header.from_bytes(envelope.header, path), path
        )
        return ContentDecryptor(envelope, key.decryptor(), path)
    key_bytes, iv, aad = content_parameters(envelope, data_key, path)
    if envelope.suite is Suite.V1_CBC:
        return ContentDecryptor(envelope, CbcDecryptor(key_bytes, iv, path), path)
    return ContentDecryptor(envelope, GcmDecryptor(key_bytes, iv, aad, path), path)

"""The envelope: which suite, which wrapped key, which context — and where it is stored.

Pure (no cryptography here): parsing and writing the metadata names of the AWS
S3 Encryption Client formats (v1 read-only, v2, v3) and of the emrfs
segmented format, in object metadata or split with an instruction file.
``../shared/notes/cse-format.md`` and ``docs/cse-segmented-format.md`` list
the names.  Metadata dicts here use the names *without* ``x-amz-meta-``
(boto's ``Metadata`` argument and response field), lower case.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import EncryptionError

__all__ = [
    "Suite",
    "Envelope",
    "KMS_CONTEXT_ALGORITHM_KEY",
    "INSTRUCTION_MARKER",
    "V1_DEFAULT_WRAP",
    "is_encrypted",
    "without_envelope",
    "envelope_names",
    "instruction_fits",
    "needs_instruction_file",
    "instruction_file_required",
    "parse",
    "parse_instruction",
]

#: The reserved encryption-context key naming the content cipher (KMS wrapping).
KMS_CONTEXT_ALGORITHM_KEY = "aws:x-amz-cek-alg"
#: User metadata of an instruction file object.
INSTRUCTION_MARKER = "x-amz-crypto-instr-file"
#: Wrap algorithm of v1 objects that name none: AES/ECB or RSA/PKCS#1 v1.5 by key type.
V1_DEFAULT_WRAP = "v1-default"


class Suite(enum.Enum):
    """Content-encryption suites; the value is the suite id."""

    V1_CBC = 0x70  # AES-256-CBC, legacy: decrypt only, behind cse.allow_legacy
    V2_GCM = 0x72  # AES-256-GCM, 12-byte random IV
    V3_GCM_COMMIT = 0x73  # AES-256-GCM, HKDF-SHA512 derived key, key commitment
    SEGMENTED = 0x4553  # emrfs segmented streaming AEAD ("ES"), docs/cse-segmented-format.md

    @property
    def wrap_aad(self) -> bytes:
        """The cipher name the key wrap binds (AES/GCM AAD, RSA pseudo-key, KMS context)."""
        return _WRAP_AAD[self]

    @property
    def committing(self) -> bool:
        return self in (Suite.V3_GCM_COMMIT, Suite.SEGMENTED)

    @property
    def legacy(self) -> bool:
        return self is Suite.V1_CBC


_WRAP_AAD = {
    Suite.V1_CBC: b"AES/CBC/PKCS5Padding",
    Suite.V2_GCM: b"AES/GCM/NoPadding",
    Suite.V3_GCM_COMMIT: b"115",
    Suite.SEGMENTED: b"emrfs-seg1",
}

# v3 wrap-algorithm codes (x-amz-w) <-> the names v1/v2 spell out.
_V3_WRAP_CODES = {"02": "AES/GCM", "12": "kms+context", "22": "RSA-OAEP-SHA1"}
_V3_WRAP_NAMES = {v: k for k, v in _V3_WRAP_CODES.items()}

# Names per format.  "content" names stay in the object's metadata when an
# instruction file holds the rest ("key" names), as AWS's v3 clients do.
_V2 = dict(
    key="x-amz-key-v2",
    wrap="x-amz-wrap-alg",
    context="x-amz-matdesc",
    iv="x-amz-iv",
    cek="x-amz-cek-alg",
    tag="x-amz-tag-len",
)
_V1 = dict(
    key="x-amz-key",
    wrap="x-amz-wrap-alg",
    context="x-amz-matdesc",
    iv="x-amz-iv",
    cek="x-amz-cek-alg",
)
_V3 = dict(
    cek="x-amz-c",
    wrap="x-amz-w",
    key="x-amz-3",
    message_id="x-amz-i",
    commitment="x-amz-d",
    kms_context="x-amz-t",
    matdesc="x-amz-m",
)
_SEG = dict(
    cek="x-emrfs-c",
    wrap="x-emrfs-w",
    key="x-emrfs-k",
    header="x-emrfs-h",
    kms_context="x-emrfs-t",
    matdesc="x-emrfs-m",
)
_SEG_ID = "seg1"

_V3_CONTENT = ("x-amz-c", "x-amz-i", "x-amz-d")
_SEG_CONTENT = ("x-emrfs-c", "x-emrfs-h")
_ALL_NAMES = frozenset(
    [
        *_V1.values(),
        *_V2.values(),
        *_V3.values(),
        *_SEG.values(),
        "x-amz-unencrypted-content-length",
        INSTRUCTION_MARKER,
    ]
)


@dataclass(frozen=True)
class Envelope:
    """Everything but the data key itself that decrypting an object needs.

    ``context`` is the KMS encryption context (``kms+context``, ``kms``) or the
    materials description (AES, RSA) as stored.  ``iv`` is set for v1/v2,
    ``message_id`` and ``commitment`` for v3, ``header`` for the segmented
    format.
    """

    suite: Suite
    wrap_algorithm: str
    wrapped_key: bytes
    context: Mapping[str, str] = field(default_factory=dict)
    iv: bytes | None = None
    message_id: bytes | None = None
    commitment: bytes | None = None
    header: bytes | None = None

    def to_metadata(
        self, instruction_file: bool = False
    ) -> tuple[dict[str, str], dict[str, str] | None]:
        """``(object metadata, instruction-file JSON dict or None)``.

        With ``instruction_file``, v2 puts every name in the instruction file
        (AWS's v2 layout); v3 and segmented keep the content names (suite,
        message id, commitment / header) on the object and move the key names.
        """
        names, content = self._names()
        if not instruction_file:
            return names, None
        meta = {k: v for k, v in names.items() if k in content}
        instr = {k: v for k, v in names.items() if k not in content}
        return meta, instr

    def _names(self) -> tuple[dict[str, str], tuple[str, ...]]:
        ctx = json.dumps(dict(self.context), separators=(",", ":"), sort_keys=True)
        if self.suite is Suite.V2_GCM:
            assert self.iv is not None
            return {
                _V2["key"]: _b64(self.wrapped_key),
                _V2["wrap"]: self.wrap_algorithm,
                _V2["context"]: ctx,
                _V2["iv"]: _b64(self.iv),
                _V2["cek"]: "AES/GCM/NoPadding",
                _V2["tag"]: "128",
            }, ()
        if self.suite is Suite.V3_GCM_COMMIT:
            assert self.message_id is not None and self.commitment is not None
            code = _V3_WRAP_NAMES.get(self.wrap_algorithm)
            if code is None:
                raise EncryptionError(
                    f"wrap algorithm {self.wrap_algorithm!r} has no v3 code; v3 objects take "
                    "kms+context, AES/GCM or RSA-OAEP-SHA1"
                )
            names = {
                _V3["cek"]: "115",
                _V3["wrap"]: code,
                _V3["key"]: _b64(self.wrapped_key),
                _V3["message_id"]: _b64(self.message_id),
                _V3["commitment"]: _b64(self.commitment),
            }
            names[_V3["kms_context"] if code == "12" else _V3["matdesc"]] = ctx
            return names, _V3_CONTENT
        if self.suite is Suite.SEGMENTED:
            assert self.header is not None
            names = {
                _SEG["cek"]: _SEG_ID,
                _SEG["wrap"]: self.wrap_algorithm,
                _SEG["key"]: _b64(self.wrapped_key),
                _SEG["header"]: _b64(self.header),
            }
            names[
                _SEG["kms_context"] if self.wrap_algorithm == "kms+context" else _SEG["matdesc"]
            ] = ctx
            return names, _SEG_CONTENT
        raise EncryptionError(f"emrfs does not write {self.suite.name} objects")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _lower(metadata: Mapping[str, str] | None) -> dict[str, str]:
    return {str(k).lower(): v for k, v in (metadata or {}).items()}


def is_encrypted(metadata: Mapping[str, str] | None) -> bool:
    """True when the object metadata carries any CSE name (AWS or emrfs).

    A v1/v2 object whose envelope is all in an instruction file carries none:
    AWS's layout gives no sign of it on the object itself.
    """
    meta = _lower(metadata)
    return any(name in meta for name in _ALL_NAMES if name != INSTRUCTION_MARKER)


def without_envelope(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """The user's own metadata: ``metadata`` (lower-case names) less every envelope name."""
    return {k: v for k, v in _lower(metadata).items() if k not in _ALL_NAMES}


def envelope_names(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Only the envelope names of ``metadata`` (lower case): what a copy must keep."""
    return {k: v for k, v in _lower(metadata).items() if k in _ALL_NAMES}


def instruction_fits(metadata: Mapping[str, str] | None, instruction: Mapping[str, str]) -> bool:
    """False when ``instruction`` holds a v3 or segmented key but the object lacks that
    format's content names, which the format keeps on the object: the file was left by
    an encrypted object since overwritten by a plaintext one."""
    meta, names = _lower(metadata), _lower(instruction)
    if _V3["key"] in names:
        return all(n in meta for n in _V3_CONTENT)
    if _SEG["key"] in names:
        return all(n in meta for n in _SEG_CONTENT)
    return True


def needs_instruction_file(metadata: Mapping[str, str] | None) -> bool:
    """True when the envelope is (partly) in ``<key><suffix>``: v3/segmented
    content names without the key, or no key name at all."""
    meta = _lower(metadata)
    has_key = any(n in meta for n in (_V1["key"], _V2["key"], _V3["key"], _SEG["key"]))
    return not has_key


def instruction_file_required(metadata: Mapping[str, str] | None) -> bool:
    """True when the object certainly has an instruction file: v3 or segmented
    content names without the wrapped key."""
    meta = _lower(metadata)
    return needs_instruction_file(meta) and any(n in meta for n in _V3_CONTENT + _SEG_CONTENT)


def parse_instruction(body: bytes, path: str) -> dict[str, str]:
    """The JSON object of an instruction file, checked to hold only envelope names."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EncryptionError(
            f"instruction file of {path!r} is not valid JSON; it may have been altered", path
        ) from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise EncryptionError(f"instruction file of {path!r} is not a JSON object of strings", path)
    unknown = set(map(str.lower, data)) - _ALL_NAMES
    if unknown:
        raise EncryptionError(
            f"instruction file of {path!r} holds names that are not envelope names: "
            f"{sorted(unknown)}; it may have been altered",
            path,
        )
    return _lower(data)


def parse(
    metadata: Mapping[str, str] | None, path: str, instruction: Mapping[str, str] | None = None
) -> Envelope:
    """The :class:`Envelope` of an object from its metadata (and instruction file JSON).

    Raises :class:`EncryptionError` naming ``path`` for a missing, mixed,
    malformed or unknown envelope.
    """
    meta = _lower(metadata)
    if instruction is not None:
        meta = _with_instruction(meta, _lower(instruction), path)
    version = _format_of(meta, path, instruction_read=instruction is not None)
    try:
        if version == _V3["key"]:
            return _parse_v3(meta, path)
        if version == _SEG["key"]:
            return _parse_segmented(meta, path)
        return _parse_v1_v2(meta, path, legacy=version == _V1["key"])
    except (KeyError, binascii.Error, ValueError, TypeError) as exc:
        raise EncryptionError(
            f"the encryption envelope of {path!r} is malformed ({type(exc).__name__}: {exc}); "
            "it may have been altered",
            path,
        ) from exc


def _with_instruction(meta: dict[str, str], instr: dict[str, str], path: str) -> dict[str, str]:
    """The object's envelope names with its instruction file's, refusing any mix that
    an altered object or instruction file would show."""
    clash = set(instr) & set(_V3_CONTENT + _SEG_CONTENT)
    if clash:
        raise EncryptionError(
            f"instruction file of {path!r} holds object-only names {sorted(clash)}; "
            "it may have been altered",
            path,
        )
    if any(n in meta for n in (_V2["key"], _V1["key"], _V2["iv"], _V2["wrap"], _V2["cek"])):
        raise EncryptionError(
            f"{path!r} carries v1/v2 envelope names on the object and an instruction "
            "file as well; refusing the mix (it may have been altered)",
            path,
        )
    overlap = set(instr) & set(meta) - {INSTRUCTION_MARKER}
    if overlap:
        raise EncryptionError(
            f"{path!r}: names {sorted(overlap)} are both on the object and in its "
            "instruction file; refusing the mix",
            path,
        )
    return {**instr, **meta}


def _format_of(meta: Mapping[str, str], path: str, *, instruction_read: bool) -> str:
    """The one envelope format's key name ``meta`` carries (none or several: refused)."""
    versions = [n for n in (_V1["key"], _V2["key"], _V3["key"], _SEG["key"]) if n in meta]
    if not versions:
        if not instruction_read and needs_instruction_file(meta) and is_encrypted(meta):
            raise EncryptionError(
                f"the envelope of {path!r} is in an instruction file that was not read; "
                "fetch it (cse.instruction_suffix) and pass it in",
                path,
            )
        raise EncryptionError(
            f"{path!r} has no client-side encryption envelope (no x-amz-key-v2 / x-amz-3 "
            "metadata and no instruction file); it is not CSE-encrypted, or its "
            "metadata was lost in a copy",
            path,
        )
    if len(versions) > 1:
        raise EncryptionError(
            f"{path!r} carries envelope names of several formats ({versions}); "
            "it may have been altered",
            path,
        )
    return versions[0]


def _context(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("the encryption context / materials description is not a JSON object")
    return {str(k): str(v) for k, v in value.items()}


def _need(meta: Mapping[str, str], name: str, path: str) -> str:
    if name not in meta:
        raise EncryptionError(
            f"the encryption envelope of {path!r} lacks {name!r}; it may have been altered", path
        )
    return meta[name]


def _parse_v1_v2(meta: Mapping[str, str], path: str, legacy: bool) -> Envelope:
    if any(n in meta for n in _V3_CONTENT + _SEG_CONTENT):
        raise EncryptionError(
            f"{path!r} mixes v1/v2 and v3 envelope names; it may have been altered", path
        )
    names = _V1 if legacy else _V2
    cek = meta.get(_V2["cek"]) or ("AES/CBC/PKCS5Padding" if legacy else None)
    suite = {"AES/GCM/NoPadding": Suite.V2_GCM, "AES/CBC/PKCS5Padding": Suite.V1_CBC}.get(cek or "")
    if suite is None:
        raise EncryptionError(
            f"{path!r} was encrypted with content algorithm {cek!r}, which emrfs does not "
            "know (AES/GCM/NoPadding, or AES/CBC/PKCS5Padding with cse.allow_legacy)",
            path,
        )
    if suite is Suite.V2_GCM and meta.get(_V2["tag"], "128") != "128":
        raise EncryptionError(
            f"{path!r} has a GCM tag length of {meta.get(_V2['tag'])!r}; only 128 is supported",
            path,
        )
    wrap = meta.get(_V2["wrap"]) or (V1_DEFAULT_WRAP if legacy else None)
    if wrap is None:
        raise EncryptionError(f"the envelope of {path!r} lacks x-amz-wrap-alg", path)
    iv = base64.b64decode(_need(meta, names["iv"], path), validate=True)
    if len(iv) != (16 if suite is Suite.V1_CBC else 12):
        raise EncryptionError(
            f"the IV of {path!r} has {len(iv)} bytes; it may have been altered", path
        )
    return Envelope(
        suite,
        wrap,
        base64.b64decode(_need(meta, names["key"], path), validate=True),
        _context(meta.get(names["context"])),
        iv=iv,
    )


def _parse_v3(meta: Mapping[str, str], path: str) -> Envelope:
    if any(n in meta for n in (_V2["iv"], _V2["cek"], _V2["wrap"], _V2["context"])):
        raise EncryptionError(
            f"{path!r} mixes v3 and v1/v2 envelope names; it may have been altered", path
        )
    cek = _need(meta, _V3["cek"], path)
    if cek != "115":
        raise EncryptionError(
            f"{path!r} was encrypted with content suite {cek!r}, which emrfs does not know "
            "(v3 objects use 115)",
            path,
        )
    code = _need(meta, _V3["wrap"], path)
    wrap = _V3_WRAP_CODES.get(code)
    if wrap is None:
        raise EncryptionError(
            f"{path!r} names wrap algorithm code {code!r}; known codes are "
            f"{sorted(_V3_WRAP_CODES)}",
            path,
        )
    context_name = _V3["kms_context"] if wrap == "kms+context" else _V3["matdesc"]
    message_id = base64.b64decode(_need(meta, _V3["message_id"], path), validate=True)
    commitment = base64.b64decode(_need(meta, _V3["commitment"], path), validate=True)
    if len(message_id) != 28 or len(commitment) != 28:
        raise EncryptionError(
            f"the v3 message id / key commitment of {path!r} is not 28 bytes; it may have "
            "been altered",
            path,
        )
    return Envelope(
        Suite.V3_GCM_COMMIT,
        wrap,
        base64.b64decode(_need(meta, _V3["key"], path), validate=True),
        _context(meta.get(context_name)),
        message_id=message_id,
        commitment=commitment,
    )


def _parse_segmented(meta: Mapping[str, str], path: str) -> Envelope:
    cek = _need(meta, _SEG["cek"], path)
    if cek != _SEG_ID:
        raise EncryptionError(
            f"{path!r} was written in emrfs segmented format {cek!r}; this emrfs reads "
            f"{_SEG_ID!r} only (upgrade emrfs)",
            path,
        )
    wrap = _need(meta, _SEG["wrap"], path)
    context_name = _SEG["kms_context"] if wrap == "kms+context" else _SEG["matdesc"]
    return Envelope(
        Suite.SEGMENTED,
        wrap,
        base64.b64decode(_need(meta, _SEG["key"], path), validate=True),
        _context(meta.get(context_name)),
        header=base64.b64decode(_need(meta, _SEG["header"], path), validate=True),
    )


def caller_metadata(path: str, metadata: Mapping[str, str] | None) -> dict[str, str]:
    """The caller's metadata, lower case; envelope names are this layer's alone."""
    lowered = {k.lower(): v for k, v in (metadata or {}).items()}
    taken = sorted(envelope_names(lowered))
    if taken:
        raise ValueError(
            f"metadata of {path!r} names {taken}, reserved for the client-side encryption "
            "envelope; rename them"
        )
    return lowered

"""Combinations of options that contradict each other: each :class:`Conflict` names
every option involved and what to do; :func:`validate` checks a whole tree."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..errors import ConfigurationError
from .sections import (
    SECTIONS,
    CacheOptions,
    ConsistencyOptions,
    CSEOptions,
    EphemeralOptions,
    S3Options,
    SSEOptions,
)


class Options(Protocol):
    """What a conflict reads: the sections of :class:`emrfs.config.options.Options`
    (a protocol, so this module needs not import the tree, which imports it)."""

    @property
    def s3(self) -> S3Options: ...
    @property
    def consistency(self) -> ConsistencyOptions: ...
    @property
    def sse(self) -> SSEOptions: ...
    @property
    def cse(self) -> CSEOptions: ...
    @property
    def cache(self) -> CacheOptions: ...
    @property
    def ephemeral(self) -> EphemeralOptions: ...


@dataclass(frozen=True)
class Conflict:
    keys: tuple[str, ...]  # the options involved, in the order the message names them
    clash: Callable[[Options], bool]
    advice: str


def _plain_http(url: str | None) -> bool:
    return url is not None and url.lower().startswith("http://")


_COMMITTING_FORMATS = ("v3", "segmented")
CONFLICTS: tuple[Conflict, ...] = (
    Conflict(
        ("sse.enabled", "cse.enabled"),
        lambda o: o.sse.enabled and o.cse.enabled,
        "EMRFS allows one of them; turn one off",
    ),
    Conflict(
        ("sse.kms_key_id", "sse.algorithm"),
        lambda o: bool(o.sse.kms_key_id) and o.sse.algorithm == "SSE-C",
        "SSE-C encrypts with sse.customer_key, not a KMS key; drop one",
    ),
    Conflict(
        ("sse.algorithm", "sse.customer_key"),
        lambda o: o.sse.enabled and o.sse.algorithm == "SSE-C" and not o.sse.customer_key,
        "SSE-C needs sse.customer_key (base64 of a 256-bit key)",
    ),
    Conflict(
        ("cse.kms_key_id", "cse.materials_provider"),
        lambda o: bool(o.cse.kms_key_id and o.cse.materials_provider),
        "CSE-KMS wraps keys with the KMS key, a materials provider brings its own: pick one",
    ),
    Conflict(
        ("cse.format", "cse.commitment_policy"),
        lambda o: (
            o.cse.format == "v2" and o.cse.commitment_policy != "FORBID_ENCRYPT_ALLOW_DECRYPT"
        ),
        "v2 objects carry no key commitment, which the policy forbids; set the policy to "
        "FORBID_ENCRYPT_ALLOW_DECRYPT or write v3",
    ),
    Conflict(
        ("cse.format", "cse.commitment_policy"),
        lambda o: (
            o.cse.format in _COMMITTING_FORMATS
            and o.cse.commitment_policy == "FORBID_ENCRYPT_ALLOW_DECRYPT"
        ),
        "FORBID_ENCRYPT_ALLOW_DECRYPT writes v2 only; set cse.format='v2'",
    ),
    Conflict(
        ("s3.require_tls", "s3.endpoint_url"),
        lambda o: o.s3.require_tls and _plain_http(o.s3.endpoint_url),
        "use an https:// endpoint",
    ),
    Conflict(
        ("s3.require_tls", "consistency.dynamodb_endpoint"),
        lambda o: o.s3.require_tls and _plain_http(o.consistency.dynamodb_endpoint),
        "use an https:// endpoint",
    ),
    Conflict(
        ("s3.require_tls", "cse.kms_endpoint_url"),
        lambda o: o.s3.require_tls and _plain_http(o.cse.kms_endpoint_url),
        "use an https:// endpoint",
    ),
    Conflict(
        ("s3.retry_base_seconds", "s3.retry_max_seconds"),
        lambda o: o.s3.retry_base_seconds > o.s3.retry_max_seconds,
        "the first backoff cannot exceed the longest one",
    ),
    Conflict(
        ("ephemeral.task_commit", "consistency.enabled"),
        lambda o: o.ephemeral.task_commit == "staged" and not o.consistency.enabled,
        "'staged' records staged uploads in the metadata table: turn the consistent view "
        "on, or use ephemeral.task_commit='local' on a single machine",
    ),
)


def _describe(options: Options, key: str) -> str:
    section, _, name = key.partition(".")
    aliases = next(
        f.metadata["aliases"] for f in dataclasses.fields(SECTIONS[section]) if f.name == name
    )
    emrfs_name = next((a for a in aliases if a.startswith("fs.")), None)
    spelled = f"{key} ({emrfs_name})" if emrfs_name else key
    rule = next(f.metadata["rule"] for f in dataclasses.fields(SECTIONS[section]) if f.name == name)
    value = getattr(getattr(options, section), name)
    return f"{spelled}={rule.shown(value) if rule else repr(value)}"


def validate(options: Options) -> None:
    """Check the combination (each value was checked on its own by :func:`coerce`)."""
    for conflict in CONFLICTS:
        if conflict.clash(options):
            raise ConfigurationError(
                "conflicting options: "
                + " and ".join(_describe(options, k) for k in conflict.keys)
                + f"; {conflict.advice}",
                conflict.keys[0],
            )

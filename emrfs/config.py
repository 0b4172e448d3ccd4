"""One frozen options tree, built from four sources in rising priority:

1. defaults (the dataclass defaults below),
2. an ``emrfs-site`` file: JSON (``{"fs.s3.consistent": "true"}``), Hadoop XML
   (``<configuration><property><name>…``) or EMR's configuration-classification
   JSON (``[{"Classification": "emrfs-site", "Properties": {...}}]``); named by
   the ``site=`` option or ``EMRFS_SITE``,
3. ``EMRFS_*`` environment variables (``EMRFS_ENDPOINT_URL``,
   ``EMRFS_CONSISTENCY_RETRY_COUNT``: ``EMRFS_`` + section + name, upper case;
   the ``s3`` section has no section part),
4. storage options (keyword arguments of :class:`~emrfs.EmrFileSystem`).

Every option has a canonical name ``section.name`` (``consistency.retry_count``)
and may have aliases: EMRFS's property name (``fs.s3.consistent.retryCount``),
a short Python name (``consistent``) and the s3fs spelling (``key``,
``secret``).  In storage options a whole section may also be given as a dict
(``consistency={"retry_count": 3}``).  Per-bucket and per-prefix overrides use
``fs.s3.bucket.NAME.<property>`` (as S3A's ``fs.s3a.bucket.NAME.*``) or
``overrides={"bucket/prefix": {...}}``; see :meth:`Options.for_path`.

Each option declares its type (the annotation) and the values it allows
(``rule=``: a range, choices or a format) beside its default, in the dataclasses
below: that is the one table.  An unknown key, a value of the wrong type or out
of range, two spellings of one option in one source with different values, or a
combination in :data:`CONFLICTS` fail at construction with a
:class:`~emrfs.errors.ConfigurationError` naming the key(s), the value and what
is allowed.  EMR's and S3A's Java class names and algorithms are translated by
:mod:`emrfs.hadoop_compat`; ``docs/configuration.md`` is generated from both
(:mod:`emrfs.config_reference`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from . import hadoop_compat
from .errors import ConfigurationError

MiB = 1024 * 1024
GiB = 1024 * MiB


# --- what each option allows: declared with the option, checked at construction ----

@dataclass(frozen=True)
class Rule:
    """The values one option allows; ``allowed`` is how errors and docs describe them."""

    allowed: str
    test: Callable[[Any], bool]


def _quantity(number: float, unit: str) -> str:
    if unit == " bytes" and number >= 1024:
        for name, size in (("TiB", 1024 * GiB), ("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
            if number % size == 0:
                return f"{number // size} {name}"
    return "1 byte" if unit == " bytes" and number == 1 else f"{number:g}{unit}"


def between(low: float, high: float, unit: str = "") -> Rule:
    """A number from ``low`` to ``high`` inclusive (finite: NaN and infinity are refused)."""
    text = (f"from {_quantity(low, unit)} to {_quantity(high, unit)}" if unit == " bytes"
            else f"from {low:g} to {high:g}{unit}")
    return Rule(text,
                lambda v: math.isfinite(v) and low <= v <= high)


def one_of(*choices: str) -> Rule:
    return Rule("one of " + ", ".join(repr(c) for c in choices), lambda v: v in choices)


def _is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_base64_key(value: str) -> bool:
    try:
        return len(base64.b64decode(value.strip(), validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _is_json_object(value: str) -> bool:
    try:
        data = json.loads(value)
    except ValueError:
        return False
    return isinstance(data, dict) and all(
        isinstance(k, str) and isinstance(v, str) and k.isascii() and v.isascii()
        for k, v in data.items())


TEXT = Rule("a non-empty string", lambda v: bool(v.strip()))
URL = Rule("an http:// or https:// URL with a host", _is_url)
REGION = Rule("an AWS region name such as 'us-east-1' (a-z, 0-9, '-')",
              lambda v: re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", v) is not None)
DYNAMODB_TABLE = Rule("a DynamoDB table name: 3 to 255 of a-z A-Z 0-9 _ - .",
                      lambda v: re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", v) is not None)
BASE64_256_BIT_KEY = Rule("base64 of a 256-bit (32-byte) key, e.g. from `openssl rand -base64 32`",
                          _is_base64_key)
JSON_OBJECT = Rule("a JSON object of ASCII strings", _is_json_object)
READABLE_FILE = Rule("the path of a readable file",
                     lambda v: os.path.isfile(v) and os.access(v, os.R_OK))
PYTHON_CLASS = Rule("'module:Class' of a Python KeyProvider or EncryptionMaterialsProvider",
                    lambda v: re.fullmatch(r"[A-Za-z_][\w.]*[:.][A-Za-z_]\w*", v) is not None)


def opt(default: Any, *aliases: str, doc: str = "", rule: Rule | None = None,
        convert: Callable[[Any], Any] | None = None) -> Any:
    """A dataclass field carrying its aliases, one line of documentation, the values it
    allows (``rule``; its type is the annotation) and ``convert``, which maps a foreign
    spelling of a value (an EMR Java class name) to the emrfs one before the checks."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples / frozen values for defaults")
    return field(default=default,
                 metadata={"aliases": aliases, "doc": doc, "rule": rule, "convert": convert})


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None = opt(None, "fs.s3.endpoint", "client_kwargs.endpoint_url",
                                   doc="S3 endpoint URL; None means AWS",
                                   rule=URL)
    region: str | None = opt(None, "region_name", "fs.s3.region", "fs.s3a.endpoint.region",
                             doc="AWS region", rule=REGION)
    access_key_id: str | None = opt(None, "key", "aws_access_key_id", "fs.s3a.access.key",
                                    doc="access key id", rule=TEXT)
    secret_access_key: str | None = opt(None, "secret", "aws_secret_access_key",
                                        "fs.s3a.secret.key",
                                        doc="secret access key",
                                        rule=TEXT)
    session_token: str | None = opt(None, "token", "aws_session_token", "fs.s3a.session.token",
                                    doc="session token", rule=TEXT)
    profile: str | None = opt(None, "profile_name", doc="AWS profile name",
                              rule=TEXT)
    anon: bool = opt(False, doc="unsigned requests (public buckets)")
    max_attempts: int = opt(10, "fs.s3.maxRetries", "retries",
                            doc="attempts per request for throttling, 5xx and dropped connections",
                            rule=between(1, 100))
    retry_base_seconds: float = opt(0.1, doc="first backoff delay; doubles each retry, jittered",
                                    rule=between(0, 60, " seconds"))
    retry_max_seconds: float = opt(20.0, doc="longest single backoff delay",
                                   rule=between(0, 3600, " seconds"))
    connect_timeout: float = opt(10.0, doc="seconds to connect",
                                 rule=between(0.001, 3600, " seconds"))
    read_timeout: float = opt(60.0, doc="seconds without a byte before a read is retried",
                              rule=between(0.001, 86400, " seconds"))
    max_pool_connections: int = opt(64, "fs.s3.maxConnections", doc="HTTP connection pool size",
                                    rule=between(1, 10_000))
    max_concurrency: int = opt(16, doc="requests in flight for one bulk operation",
                               rule=between(1, 10_000))
    read_block_size: int = opt(32 * MiB, "block_size", "default_block_size",
                               doc="most bytes one sequential read-ahead GET fetches",
                               rule=between(1, 5 * GiB, " bytes"))
    part_size: int = opt(32 * MiB, "fs.s3.multipart.part.size", "multipart.part_size",
                         doc="multipart upload part size (5 MiB to 5 GiB)",
                         rule=between(5 * MiB, 5 * GiB, " bytes"))
    multipart_threshold: int = opt(256 * MiB, "fs.s3.multipart.threshold",
                                   doc="data already in memory or on local disk up to this size"
                                       " goes up in one PUT (S3 allows 5 GiB)",
                                   rule=between(0, 5 * GiB, " bytes"))
    upload_concurrency: int = opt(4, doc="parts of one file uploaded at once",
                                  rule=between(1, 1000))
    copy_threshold: int = opt(5 * GiB, "fs.s3.multipart.copy.threshold",
                              doc="objects larger than this are copied with UploadPartCopy",
                              rule=between(0, 5 * GiB, " bytes"))
    copy_part_size: int = opt(512 * MiB, doc="part size for UploadPartCopy",
                              rule=between(5 * MiB, 5 * GiB, " bytes"))
    fs_block_size: int = opt(128 * MiB, "fs.s3.block.size",
                             doc="block size reported in Hadoop file status",
                             rule=between(1, 1024 * GiB, " bytes"))
    owner: str | None = opt(None, doc="owner reported in file status; default: the OS user",
                            rule=TEXT)
    group: str | None = opt(None, doc="group reported in file status; default: the owner",
                            rule=TEXT)
    require_tls: bool = opt(False, "fs.s3.requireTls", doc="refuse plain-HTTP endpoints")
    ca_bundle: str | None = opt(None, "verify", doc="CA bundle file for HTTPS endpoints",
                                rule=READABLE_FILE)
    addressing_style: str = opt("auto", doc="'auto', 'path' or 'virtual'",
                                rule=one_of("auto", "path", "virtual"))
    create_checks: bool = opt(True, "fs.s3.create.checks",
                              doc="before a write, refuse a path that is a directory (one LIST);"
                                  " off trades that check for speed, as S3A's create.performance")


@dataclass(frozen=True)
class ConsistencyOptions:
    enabled: bool = opt(False, "fs.s3.consistent", "consistent", doc="turn the consistent view on")
    retry_policy_type: str = opt("exponential", "fs.s3.consistent.retryPolicyType",
                                 doc="'exponential', 'fixed' or 'none'",
                                 rule=one_of("exponential", "fixed", "none"))
    retry_count: int = opt(5, "fs.s3.consistent.retryCount", doc="retries before giving up",
                           rule=between(0, 1000))
    retry_period_seconds: float = opt(10.0, "fs.s3.consistent.retryPeriodSeconds",
                                      doc="base retry period",
                                      rule=between(0, 3600, " seconds"))
    throw_exception_on_inconsistency: bool = opt(
        True, "fs.s3.consistent.throwExceptionOnInconsistency",
        doc="raise ConsistencyError (True) or log and return what S3 shows (False)")
    table_name: str = opt("EmrFSMetadata", "fs.s3.consistent.metadata.tableName",
                          doc="DynamoDB table",
                          rule=DYNAMODB_TABLE)
    auto_create: bool = opt(True, "fs.s3.consistent.metadata.autoCreate",
                            doc="create the table on first use")
    read_capacity: int = opt(500, "fs.s3.consistent.metadata.read.capacity",
                             doc="provisioned read capacity (0: on demand)",
                             rule=between(0, 40_000))
    write_capacity: int = opt(100, "fs.s3.consistent.metadata.write.capacity",
                              doc="provisioned write capacity (0: on demand)",
                              rule=between(0, 40_000))
    etag_verification: bool = opt(True, "fs.s3.consistent.metadata.etag.verification.enabled",
                                  doc="compare ETags on read to catch stale overwrites")
    fast_list: bool = opt(True, "fs.s3.consistent.fastList",
                          doc="list authoritative directories from DynamoDB alone")
    tombstone_ttl_seconds: int = opt(86400, "fs.s3.consistent.tombstoneTtlSeconds",
                                     doc="how long delete tombstones live",
                                     rule=between(1, 10 * 365 * 86400, " seconds"))
    dynamodb_endpoint: str | None = opt(None, "fs.s3.consistent.dynamodb.endpoint",
                                        doc="DynamoDB endpoint; default: the S3 endpoint",
                                        rule=URL)
    dynamodb_max_retries: int = opt(9, "fs.s3.consistent.dynamodb.maxRetries",
                                    doc="retries of a throttled DynamoDB call (as S3Guard's 9)",
                                    rule=between(0, 100))
    dynamodb_retry_base_seconds: float = opt(0.1, "fs.s3.consistent.dynamodb.retryBaseSeconds",
                                             doc="first throttling backoff; doubles, jittered",
                                             rule=between(0, 60, " seconds"))


@dataclass(frozen=True)
class SSEOptions:
    enabled: bool = opt(False, "fs.s3.enableServerSideEncryption",
                        doc="server-side encryption on every write")
    algorithm: str = opt("AES256", "fs.s3.serverSideEncryption.algorithm",
                         doc="'AES256' (SSE-S3), 'aws:kms' (SSE-KMS) or 'SSE-C'",
                         rule=one_of("AES256", "aws:kms", "aws:kms:dsse", "SSE-C"))
    kms_key_id: str | None = opt(None, "fs.s3.serverSideEncryption.kms.keyId",
                                 doc="KMS key for SSE-KMS (implies algorithm aws:kms)",
                                 rule=TEXT)
    bucket_key_enabled: bool = opt(False, "fs.s3.serverSideEncryption.bucketKeyEnabled",
                                   doc="S3 Bucket Keys for SSE-KMS")
    customer_key: str | None = opt(None, "fs.s3.serverSideEncryption.customerKey",
                                   doc="base64 of the 256-bit SSE-C key",
                                   rule=BASE64_256_BIT_KEY)


@dataclass(frozen=True)
class CSEOptions:
    enabled: bool = opt(False, "fs.s3.cse.enabled", doc="client-side encryption on")
    kms_key_id: str | None = opt(None, "fs.s3.cse.kms.keyId", doc="KMS key for CSE-KMS",
                                 rule=TEXT)
    materials_provider: str | None = opt(
        None, "fs.s3.cse.encryptionMaterialsProvider",
        doc="'module:Class' of a key provider for CSE-Custom; EMR's KMS provider class means "
            "CSE-KMS (fs.s3.cse.kms.keyId)",
        rule=PYTHON_CLASS, convert=hadoop_compat.materials_provider)
    storage_mode: str = opt("ObjectMetadata", "fs.s3.cse.cryptoStorageMode",
                            doc="'ObjectMetadata' or 'InstructionFile'",
                            rule=one_of("ObjectMetadata", "InstructionFile"))
    instruction_suffix: str = opt(".instruction", "fs.s3.cse.instructionFileSuffix",
                                  doc="suffix of instruction files",
                                  rule=TEXT)
    format: str = opt("v3", "fs.s3.cse.format", doc="'v3' (key-committing), 'v2' or 'segmented'",
                      rule=one_of("v3", "v2", "segmented"))
    commitment_policy: str = opt("REQUIRE_ENCRYPT_REQUIRE_DECRYPT", "fs.s3.cse.commitmentPolicy",
                                 doc="AWS key-commitment policy",
                                 rule=one_of("REQUIRE_ENCRYPT_REQUIRE_DECRYPT",
                                             "REQUIRE_ENCRYPT_ALLOW_DECRYPT",
                                             "FORBID_ENCRYPT_ALLOW_DECRYPT"))
    allow_legacy: bool = opt(False, "fs.s3.cse.allowLegacy", doc="decrypt v1 objects")
    unauthenticated_range_reads: bool = opt(
        False, "fs.s3.cse.unauthenticatedRangeReads",
        doc="serve ranges of AWS-format objects by CTR without checking the tag")
    encryption_context: str | None = opt(
        None, "fs.s3.cse.kms.encryptionContext",
        doc="JSON object of extra KMS encryption context for CSE-KMS (ASCII strings)",
        rule=JSON_OBJECT)
    aes_key: str | None = opt(
        None, "fs.s3.cse.aesKey",
        doc="base64 of a 256-bit master key for emrfs.crypto.keys:AesKeyProvider",
        rule=BASE64_256_BIT_KEY)
    rsa_public_key_file: str | None = opt(
        None, "fs.s3.cse.rsaPublicKeyFile",
        doc="PEM public key (writes) for emrfs.crypto.keys:RsaKeyProvider",
        rule=READABLE_FILE)
    rsa_private_key_file: str | None = opt(
        None, "fs.s3.cse.rsaPrivateKeyFile",
        doc="PEM private key (reads) for emrfs.crypto.keys:RsaKeyProvider",
        rule=READABLE_FILE)
    materials_description: str | None = opt(
        None, "fs.s3.cse.materialsDescription",
        doc="JSON object stored as the materials description of AES/RSA-wrapped keys",
        rule=JSON_OBJECT)
    segment_size: int = opt(
        64 * 1024, "fs.s3.cse.segmentSize",
        doc="plaintext bytes per segment of the 'segmented' format (4 KiB to 8 MiB)",
        rule=between(4096, 8 * MiB, " bytes"))
    listing_lengths: str = opt(
        "head", "fs.s3.cse.listingLengths",
        doc="how listings under a CSE prefix get plaintext lengths: 'head' (exact, one HEAD "
            "per file) or 'adjust' (stored length minus the configured format's overhead)",
        rule=one_of("head", "adjust"))
    kms_endpoint_url: str | None = opt(
        None, "fs.s3.cse.kms.endpoint",
        doc="KMS endpoint for CSE-KMS; default: the S3 endpoint (local servers serve both)",
        rule=URL)


@dataclass(frozen=True)
class CacheOptions:
    enabled: bool = opt(False, "fs.s3.cache.enabled", doc="local block cache on")
    directories: tuple[str, ...] = opt((), "fs.s3.cache.dirs", doc="cache directories",
                                       rule=TEXT)
    block_size: int = opt(8 * MiB, "fs.s3.cache.blockSize", doc="cache block size",
                          rule=between(64 * 1024, 1 * GiB, " bytes"))
    capacity_bytes: int = opt(10 * GiB, "fs.s3.cache.capacity", doc="most bytes kept",
                              rule=between(1, 1024 ** 5, " bytes"))
    free_space_floor: float = opt(0.1, "fs.s3.cache.freeSpaceRatio",
                                  doc="fraction of each disk kept free",
                                  rule=between(0, 0.99))
    encrypt: bool = opt(False, "fs.s3.cache.encrypt", doc="encrypt blocks at rest")
    prefetch_blocks: int = opt(8, "fs.s3.cache.prefetch",
                               doc="blocks read ahead sequentially (refilled half a window "
                                   "at a time)",
                               rule=between(0, 1024))
    verify: str = opt("open", "fs.s3.cache.verify",
                      doc="'open': checksum a chunk on its first read per process (warm "
                          "reads near local-file speed); 'always': on every read",
                      rule=one_of("open", "always"))
    key_file: str | None = opt(None, "fs.s3.cache.keyFile",
                               doc="0600 key file of an encrypted cache; default: "
                                   "~/.config/emrfs/cache-<hash of the directories>.key",
                               rule=TEXT)


@dataclass(frozen=True)
class EphemeralOptions:
    enabled: bool = opt(True, "fs.s3.ephemeral.enabled",
                        doc="keep ephemeral paths in local blocks (needs a cache)")
    patterns: tuple[str, ...] = opt(("_temporary", ".spark-staging-*"),
                                    "fs.s3.ephemeral.patterns",
                                    doc="path segments (globs) that make a path ephemeral",
                                    rule=TEXT)
    prefixes: tuple[str, ...] = opt((), "fs.s3.ephemeral.prefixes",
                                    doc="extra bucket/prefix roots that are ephemeral",
                                    rule=TEXT)
    replication: int = opt(1, "fs.s3.ephemeral.replication", doc="copies across cache dirs",
                           rule=between(1, 16))
    lifetime_seconds: float = opt(0.0, "fs.s3.ephemeral.lifetime",
                                  doc="remove the tier after this long (0: at process exit)",
                                  rule=between(0, 10 * 365 * 86400, " seconds"))
    task_commit: str = opt("auto", "fs.s3.ephemeral.taskCommit",
                           doc="'staged': a task commit uploads the task's files as multipart "
                               "uploads left open and records them in the metadata table, so "
                               "any machine's job commit completes them (needs "
                               "consistency.enabled); 'local': task output stays on this "
                               "machine until job commit (one machine only); 'auto': staged "
                               "where the consistent view is on",
                           rule=one_of("auto", "staged", "local"))


SECTIONS: dict[str, type] = {
    "s3": S3Options,
    "consistency": ConsistencyOptions,
    "sse": SSEOptions,
    "cse": CSEOptions,
    "cache": CacheOptions,
    "ephemeral": EphemeralOptions,
}
#: Sections a per-bucket / per-prefix override may change.
OVERRIDABLE = ("consistency", "sse", "cse", "cache")

#: Properties of EMRFS/Hadoop site files that emrfs reads past without effect.
IGNORED_PROPERTIES = frozenset({
    "fs.s3.impl", "fs.s3n.impl", "fs.s3a.impl", "fs.AbstractFileSystem.s3.impl",
    "fs.s3.buffer.dir", "fs.s3.consistent.notification.CloudWatch",
    "fs.s3.consistent.notification.SQS", "fs.s3.consistent.fastList.prefetchMetadata",
})
#: Environment variables with the EMRFS_ prefix that are not options.
RESERVED_ENV = frozenset({"EMRFS_SITE", "EMRFS_TEST_LOCALSTACK", "EMRFS_BENCH_ROUNDS",
                          "EMRFS_REGISTER_PROTOCOLS"})


@dataclass(frozen=True)
class Options:
    """The whole tree.  Build it with :func:`load`; never mutate it."""

    s3: S3Options = field(default_factory=S3Options)
    consistency: ConsistencyOptions = field(default_factory=ConsistencyOptions)
    sse: SSEOptions = field(default_factory=SSEOptions)
    cse: CSEOptions = field(default_factory=CSEOptions)
    cache: CacheOptions = field(default_factory=CacheOptions)
    ephemeral: EphemeralOptions = field(default_factory=EphemeralOptions)
    #: (bucket or bucket/prefix, {canonical key: value}) longest prefix last
    overrides: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()

    def for_path(self, path: str) -> Options:
        """The options in force for ``path``: overrides of the longest matching prefix win."""
        if not self.overrides:
            return self
        return _resolve_override(self, _matching_prefixes(self.overrides, path))

    def flat(self) -> dict[str, Any]:
        """``{"section.name": value}`` for every option (for ``describe`` output)."""
        return {f"{s}.{f.name}": getattr(getattr(self, s), f.name)
                for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)}


def _matching_prefixes(overrides, path: str) -> tuple[str, ...]:
    from .paths import is_within, strip_protocol

    path = strip_protocol(path)
    return tuple(prefix for prefix, _ in overrides if is_within(path, prefix))


@lru_cache(maxsize=256)
def _resolve_override(options: Options, prefixes: tuple[str, ...]) -> Options:
    if not prefixes:
        return options
    values: dict[str, Any] = {}
    for prefix, items in options.overrides:
        if prefix in prefixes:
            values.update(items)
    return _apply(options, values)


# --- the registry, derived from the dataclasses ----------------------------------

@dataclass(frozen=True)
class OptionSpec:
    section: str
    name: str
    type: Any
    default: Any
    aliases: tuple[str, ...]
    doc: str
    rule: Rule | None = None
    convert: Callable[[Any], Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        middle = self.name if self.section == "s3" else f"{self.section}_{self.name}"
        return "EMRFS_" + middle.upper()

    @property
    def optional(self) -> bool:
        return type(None) in getattr(self.type, "__args__", ())

    @property
    def base(self) -> type:
        """bool, int, float, str or tuple (of str)."""
        kind = self.type
        if getattr(kind, "__origin__", None) is not tuple:
            kind = next((t for t in getattr(kind, "__args__", (kind,)) if t is not type(None)), str)
        return getattr(kind, "__origin__", kind)

    @property
    def allowed(self) -> str:
        """The values this option takes, in words (errors and docs/configuration.md)."""
        what = {bool: "true or false", int: "an integer", float: "a number",
                str: "a string", tuple: "a comma-separated list or a list of strings"}[self.base]
        if self.rule is not None and self.base in (int, float):
            what = f"{what} {self.rule.allowed}"
        elif self.rule is not None:
            what = self.rule.allowed if self.base is not tuple else f"{what}, each {self.rule.allowed}"
        return what + (", or unset" if self.optional else "")


def _build_registry() -> tuple[dict[str, OptionSpec], dict[str, OptionSpec]]:
    by_key: dict[str, OptionSpec] = {}
    by_alias: dict[str, OptionSpec] = {}
    for section, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            spec = OptionSpec(section, f.name, hints[f.name], f.default,
                              tuple(f.metadata.get("aliases", ())), f.metadata.get("doc", ""),
                              f.metadata.get("rule"), f.metadata.get("convert"))
            by_key[spec.key] = spec
            names = [spec.key, *spec.aliases]
            if section == "s3":
                names.append(f.name)
            for name in names:
                if name in by_alias:
                    raise AssertionError(f"alias {name} used twice")
                by_alias[name] = spec
    return by_key, by_alias


REGISTRY, ALIASES = _build_registry()


def lookup(name: str, source: str = "storage options") -> OptionSpec:
    spec = ALIASES.get(name)
    if spec is None:
        close = sorted(k for k in ALIASES if name.split(".")[-1].lower() in k.lower())[:5]
        hint = f"; did you mean one of {close}?" if close else ""
        raise ConfigurationError(
            f"unknown emrfs option {name!r} in {source}{hint} "
            "(see docs/configuration.md for every option and its aliases)", name)
    return spec


def coerce(spec: OptionSpec, value: Any, name: str, source: str) -> Any:
    """Parse ``value`` (often a string from XML/env) into the option's type and check it
    against the option's rule; a :class:`ConfigurationError` names the option, the value
    and what the option allows."""
    given = value
    if spec.convert is not None:
        value = spec.convert(value)
    if spec.optional and (value is None or (isinstance(value, str) and not value.strip())):
        return None  # an empty Hadoop <value/> leaves an optional option unset
    try:
        value = _parse(spec.base, value)
        ok = spec.rule is None or (all(spec.rule.test(v) for v in value)
                                   if spec.base is tuple else spec.rule.test(value))
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        spelled = repr(name) if name == spec.key else f"{name!r} ({spec.key})"
        raise ConfigurationError(
            f"option {spelled} in {source} is {given!r}; it takes {spec.allowed}", name)
    return value


def _parse(base: type, value: Any) -> Any:
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (str, int)):
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
        raise ValueError(value)
    if base is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)  # True is not 1 request; 1.5 is not a count
        if not isinstance(value, (int, float, str)):
            raise TypeError(value)
        return _size(value)
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(value)
        return float(value)
    if base is tuple:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise TypeError(value)
        return tuple(value)
    if not isinstance(value, str):
        raise TypeError(value)  # a number where a name or URL belongs is a mistake
    return value


def _size(value: Any) -> int:
    if isinstance(value, str):
        text = value.strip().lower()
        units = {"k": 1024, "m": MiB, "g": GiB, "t": 1024 * GiB}
        for suffix in ("ib", "b"):
            if text.endswith(suffix) and text[:-len(suffix)][-1:] in units:
                text = text[: -len(suffix)]
        if text and text[-1] in units:
            number = float(text[:-1]) * units[text[-1]]
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        return int(text)
    return int(value)


# --- sources -----------------------------------------------------------------------

def read_site_file(path: str) -> dict[str, str]:
    """Properties of an emrfs-site file (JSON, Hadoop XML or EMR classification JSON)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read emrfs-site file {path!r}: {exc.strerror or exc}; fix the path "
            "given by site= or EMRFS_SITE", path) from exc
    text = raw.decode("utf-8", "replace").lstrip()
    try:
        if text.startswith("<"):
            root = ET.fromstring(text)
            props = {}
            for prop in root.iter("property"):
                name = (prop.findtext("name") or "").strip()
                if name:
                    props[name] = (prop.findtext("value") or "").strip()
            return props
        data = json.loads(text)
    except (ET.ParseError, json.JSONDecodeError) as exc:
        raise ConfigurationError(
            f"emrfs-site file {path!r} is neither valid JSON nor Hadoop XML: {exc}", path) from exc
    return _classification_properties(data, path)


def _classification_properties(data: Any, path: str) -> dict[str, Any]:
    if isinstance(data, dict) and "Classification" not in data and "Configurations" not in data:
        return dict(data)
    items = data if isinstance(data, list) else data.get("Configurations", [data])
    props: dict[str, Any] = {}
    for item in items:
        if isinstance(item, dict) and item.get("Classification") == "emrfs-site":
            props.update(item.get("Properties", {}))
    if not props and not any(isinstance(i, dict) and i.get("Classification") for i in items):
        raise ConfigurationError(
            f"emrfs-site file {path!r} has no emrfs-site classification", path)
    return props


def _flatten(options: Mapping[str, Any], source: str) -> list[tuple[str, Any]]:
    """Storage-option spelling -> [(name as given, value)]; section dicts expanded."""
    out: list[tuple[str, Any]] = []
    for name, value in options.items():
        if name in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigurationError(
                    f"option {name!r} in {source} is {value!r}; it takes a dict of {name} "
                    f"options, e.g. {name}={{{next(iter(_section_names(name)))!r}: ...}}", name)
            out.extend((f"{name}.{k}", v) for k, v in value.items())
        elif name == "client_kwargs" and isinstance(value, Mapping):
            out.extend((f"client_kwargs.{k}" if k == "endpoint_url" else k, v)
                       for k, v in value.items())
        else:
            out.append((name, value))
    return out


def _section_names(section: str) -> list[str]:
    return [f.name for f in dataclasses.fields(SECTIONS[section])]


def _collect(pairs: list[tuple[str, Any]], source: str,
             names: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list]:
    """Map names to canonical keys; same option twice with different values is a conflict.

    ``names`` maps a name in ``pairs`` to the option it sets where the two differ
    (``EMRFS_*`` variables); EMRFS/S3A properties with Java class names or S3A
    algorithms go through :func:`emrfs.hadoop_compat.translate` first.
    """
    values: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    overrides: list[tuple[str, str, Any]] = []
    kept = [(n, v) for n, v in pairs if n not in IGNORED_PROPERTIES]
    for given, name, raw in hadoop_compat.translate(kept):
        if name.startswith("fs.s3.bucket."):
            bucket, _, prop = name[len("fs.s3.bucket."):].partition(".fs.s3.")
            if not prop:
                raise ConfigurationError(
                    f"per-bucket key {name!r} in {source} must look like "
                    "fs.s3.bucket.NAME.fs.s3.<property>", name)
            overrides.append((bucket, "fs.s3." + prop, raw))
            continue
        spec = lookup((names or {}).get(name, name), source)
        value = coerce(spec, raw, given, source)
        if spec.key in values and values[spec.key] != value:
            raise ConfigurationError(
                f"conflicting options in {source}: {given_as[spec.key]!r}={values[spec.key]!r} "
                f"and {given!r}={value!r} set the same thing; keep one", given)
        values[spec.key] = value
        given_as[spec.key] = given
    return values, overrides


def load(storage_options: Mapping[str, Any] | None = None, *,
         environ: Mapping[str, str] | None = None) -> Options:
    """Build the options tree from defaults, site file, environment, storage options.

    Every value is typed and checked against its option's rule here, and the
    combination against :data:`CONFLICTS`: nothing out of range reaches first use.
    """
    if storage_options is not None and not isinstance(storage_options, Mapping):
        raise ConfigurationError(
            f"storage options are {storage_options!r}; give a dict of option names to values",
            "storage_options")
    storage_options = dict(storage_options or {})
    environ = os.environ if environ is None else environ
    layers: list[dict[str, Any]] = []
    overrides: list[tuple[str, str, Any]] = []

    site = storage_options.pop("site", None) or environ.get("EMRFS_SITE")
    if site:
        if not isinstance(site, (str, os.PathLike)):
            raise ConfigurationError(
                f"option 'site' is {site!r}; it takes the path of an emrfs-site file", "site")
        site = os.fspath(site)
        values, ov = _collect(list(read_site_file(site).items()), f"emrfs-site file {site!r}")
        layers.append(values)
        overrides += ov

    env_pairs, env_names = [], {}
    env_index = {spec.env: spec for spec in REGISTRY.values()}
    for name, raw in environ.items():
        if not name.startswith("EMRFS_") or name in RESERVED_ENV or name.startswith("EMRFS_TEST_"):
            continue
        spec = env_index.get(name)
        if spec is None:
            raise ConfigurationError(
                f"unknown environment variable {name!r}: EMRFS_* variables name options "
                "(e.g. EMRFS_ENDPOINT_URL, EMRFS_CONSISTENCY_ENABLED); unset it or fix the name",
                name)
        env_pairs.append((name, raw))
        env_names[name] = spec.key
    values, ov = _collect(env_pairs, "the environment", env_names)
    layers.append(values)

    explicit_overrides = _override_table(storage_options.pop("overrides", None))
    values, ov = _collect(_flatten(storage_options, "storage options"), "storage options")
    layers.append(values)
    overrides += ov

    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    options = _apply(Options(), merged)

    grouped: dict[str, dict[str, Any]] = {}
    for prefix, name, raw in overrides:
        spec = lookup(name, f"override for {prefix!r}")
        grouped.setdefault(prefix, {})[spec.key] = coerce(spec, raw, name,
                                                          f"override for {prefix!r}")
    for prefix, mapping in explicit_overrides.items():
        values, _ = _collect(_flatten(mapping, f"overrides[{prefix!r}]"), f"overrides[{prefix!r}]")
        grouped.setdefault(prefix.strip("/"), {}).update(values)
    for prefix, mapping in grouped.items():
        for key in mapping:
            if key.split(".")[0] not in OVERRIDABLE:
                raise ConfigurationError(
                    f"option {key!r} cannot be overridden per bucket or prefix ({prefix!r}); "
                    f"only {', '.join(OVERRIDABLE)} options can", key)
        _apply(options, mapping)  # validate the combination now, not on first use
    ordered = sorted(grouped.items(), key=lambda kv: len(kv[0]))
    options = dataclasses.replace(
        options, overrides=tuple((p, tuple(sorted(m.items()))) for p, m in ordered))
    return options


def _override_table(value: Any) -> Mapping[str, Mapping[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
            isinstance(prefix, str) and prefix.strip("/") and isinstance(mapping, Mapping)
            for prefix, mapping in value.items()):
        raise ConfigurationError(
            f"option 'overrides' in storage options is {value!r}; it takes a dict of "
            "'bucket' or 'bucket/prefix' to a dict of options, e.g. "
            "overrides={'logs': {'consistent': True}}", "overrides")
    return value


def _apply(options: Options, values: Mapping[str, Any]) -> Options:
    sections: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, _, name = key.partition(".")
        sections.setdefault(section, {})[name] = value
    changed = {s: dataclasses.replace(getattr(options, s), **v) for s, v in sections.items()}
    new = dataclasses.replace(options, **changed)
    validate(new)
    return new


# --- combinations: each names every option involved ----------------------------------

@dataclass(frozen=True)
class Conflict:
    keys: tuple[str, ...]            # the options involved, in the order the message names them
    clash: Callable[[Options], bool]
    advice: str


def _plain_http(url: str | None) -> bool:
    return bool(url) and url.lower().startswith("http://")


_COMMITTING_FORMATS = ("v3", "segmented")
CONFLICTS: tuple[Conflict, ...] = (
    Conflict(("sse.enabled", "cse.enabled"), lambda o: o.sse.enabled and o.cse.enabled,
             "EMRFS allows one of them; turn one off"),
    Conflict(("sse.kms_key_id", "sse.algorithm"),
             lambda o: bool(o.sse.kms_key_id) and o.sse.algorithm == "SSE-C",
             "SSE-C encrypts with sse.customer_key, not a KMS key; drop one"),
    Conflict(("sse.algorithm", "sse.customer_key"),
             lambda o: o.sse.enabled and o.sse.algorithm == "SSE-C" and not o.sse.customer_key,
             "SSE-C needs sse.customer_key (base64 of a 256-bit key)"),
    Conflict(("cse.kms_key_id", "cse.materials_provider"),
             lambda o: bool(o.cse.kms_key_id and o.cse.materials_provider),
             "CSE-KMS wraps keys with the KMS key, a materials provider brings its own: pick one"),
    Conflict(("cse.format", "cse.commitment_policy"),
             lambda o: o.cse.format == "v2"
             and o.cse.commitment_policy != "FORBID_ENCRYPT_ALLOW_DECRYPT",
             "v2 objects carry no key commitment, which the policy forbids; set the policy to "
             "FORBID_ENCRYPT_ALLOW_DECRYPT or write v3"),
    Conflict(("cse.format", "cse.commitment_policy"),
             lambda o: o.cse.format in _COMMITTING_FORMATS
             and o.cse.commitment_policy == "FORBID_ENCRYPT_ALLOW_DECRYPT",
             "FORBID_ENCRYPT_ALLOW_DECRYPT writes v2 only; set cse.format='v2'"),
    Conflict(("s3.require_tls", "s3.endpoint_url"),
             lambda o: o.s3.require_tls and _plain_http(o.s3.endpoint_url),
             "use an https:// endpoint"),
    Conflict(("s3.require_tls", "consistency.dynamodb_endpoint"),
             lambda o: o.s3.require_tls and _plain_http(o.consistency.dynamodb_endpoint),
             "use an https:// endpoint"),
    Conflict(("s3.require_tls", "cse.kms_endpoint_url"),
             lambda o: o.s3.require_tls and _plain_http(o.cse.kms_endpoint_url),
             "use an https:// endpoint"),
    Conflict(("s3.retry_base_seconds", "s3.retry_max_seconds"),
             lambda o: o.s3.retry_base_seconds > o.s3.retry_max_seconds,
             "the first backoff cannot exceed the longest one"),
    Conflict(("ephemeral.task_commit", "consistency.enabled"),
             lambda o: o.ephemeral.task_commit == "staged" and not o.consistency.enabled,
             "'staged' records staged uploads in the metadata table: turn the consistent view "
             "on, or use ephemeral.task_commit='local' on a single machine"),
)


def _describe(options: Options, key: str) -> str:
    section, _, name = key.partition(".")
    emrfs_name = next((a for a in REGISTRY[key].aliases if a.startswith("fs.")), None)
    spelled = f"{key} ({emrfs_name})" if emrfs_name else key
    return f"{spelled}={getattr(getattr(options, section), name)!r}"


def validate(options: Options) -> None:
    """Check the combination (each value was checked on its own by :func:`coerce`)."""
    for conflict in CONFLICTS:
        if conflict.clash(options):
            raise ConfigurationError(
                "conflicting options: " + " and ".join(_describe(options, k) for k in conflict.keys)
                + f"; {conflict.advice}", conflict.keys[0])

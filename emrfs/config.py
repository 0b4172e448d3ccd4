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

An unknown key, a value of the wrong type, or two spellings of one option in
one source with different values fail at construction with a
:class:`~emrfs.errors.ConfigurationError` naming the key(s).
"""

from __future__ import annotations

import dataclasses
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, get_type_hints

from .errors import ConfigurationError

MiB = 1024 * 1024
GiB = 1024 * MiB


def opt(default: Any, *aliases: str, doc: str = "") -> Any:
    """A dataclass field carrying its aliases and one line of documentation."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples / frozen values for defaults")
    return field(default=default, metadata={"aliases": aliases, "doc": doc})


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None = opt(None, "fs.s3.endpoint", "client_kwargs.endpoint_url",
                                   doc="S3 endpoint URL; None means AWS")
    region: str | None = opt(None, "region_name", "fs.s3.region", doc="AWS region")
    access_key_id: str | None = opt(None, "key", "aws_access_key_id", doc="access key id")
    secret_access_key: str | None = opt(None, "secret", "aws_secret_access_key",
                                        doc="secret access key")
    session_token: str | None = opt(None, "token", "aws_session_token", doc="session token")
    profile: str | None = opt(None, "profile_name", doc="AWS profile name")
    anon: bool = opt(False, doc="unsigned requests (public buckets)")
    max_attempts: int = opt(10, "fs.s3.maxRetries", "retries",
                            doc="attempts per request for throttling, 5xx and dropped connections")
    retry_base_seconds: float = opt(0.1, doc="first backoff delay; doubles each retry, jittered")
    retry_max_seconds: float = opt(20.0, doc="longest single backoff delay")
    connect_timeout: float = opt(10.0, doc="seconds to connect")
    read_timeout: float = opt(60.0, doc="seconds without a byte before a read is retried")
    max_pool_connections: int = opt(64, "fs.s3.maxConnections", doc="HTTP connection pool size")
    max_concurrency: int = opt(16, doc="requests in flight for one bulk operation")
    read_block_size: int = opt(32 * MiB, "block_size", "default_block_size",
                               doc="most bytes one sequential read-ahead GET fetches")
    part_size: int = opt(32 * MiB, "fs.s3.multipart.part.size", "multipart.part_size",
                         doc="multipart upload part size (5 MiB to 5 GiB)")
    multipart_threshold: int = opt(256 * MiB, "fs.s3.multipart.threshold",
                                   doc="data already in memory or on local disk up to this size"
                                       " goes up in one PUT (S3 allows 5 GiB)")
    upload_concurrency: int = opt(4, doc="parts of one file uploaded at once")
    multipart_purge: bool = opt(
        False, "fs.s3a.multipart.purge", "fs.s3.multipart.purge",
        doc="the first multipart write into a bucket aborts every abandoned upload in it "
            "(as S3A's purge at start-up; off by default because it reaches other tools' "
            "uploads too); abandoned uploads of the key being written go either way")
    multipart_purge_age: float = opt(
        86400.0, "fs.s3a.multipart.purge.age", "fs.s3.multipart.purge.age",
        doc="seconds after which an open multipart upload counts as abandoned (S3A's default, "
            "24 h); uploads the staged task commit still needs are never aborted")
    copy_threshold: int = opt(5 * GiB, "fs.s3.multipart.copy.threshold",
                              doc="objects larger than this are copied with UploadPartCopy")
    copy_part_size: int = opt(512 * MiB, doc="part size for UploadPartCopy")
    fs_block_size: int = opt(128 * MiB, "fs.s3.block.size",
                             doc="block size reported in Hadoop file status")
    owner: str | None = opt(None, doc="owner reported in file status; default: the OS user")
    group: str | None = opt(None, doc="group reported in file status; default: the owner")
    require_tls: bool = opt(False, "fs.s3.requireTls", doc="refuse plain-HTTP endpoints")
    ca_bundle: str | None = opt(None, "verify", doc="CA bundle file for HTTPS endpoints")
    addressing_style: str = opt("auto", doc="'auto', 'path' or 'virtual'")
    create_checks: bool = opt(True, "fs.s3.create.checks",
                              doc="before a write, refuse a path that is a directory (one LIST);"
                                  " off trades that check for speed, as S3A's create.performance")


@dataclass(frozen=True)
class ConsistencyOptions:
    enabled: bool = opt(False, "fs.s3.consistent", "consistent", doc="turn the consistent view on")
    retry_policy_type: str = opt("exponential", "fs.s3.consistent.retryPolicyType",
                                 doc="'exponential', 'fixed' or 'none'")
    retry_count: int = opt(5, "fs.s3.consistent.retryCount", doc="retries before giving up")
    retry_period_seconds: float = opt(10.0, "fs.s3.consistent.retryPeriodSeconds",
                                      doc="base retry period")
    throw_exception_on_inconsistency: bool = opt(
        True, "fs.s3.consistent.throwExceptionOnInconsistency",
        doc="raise ConsistencyError (True) or log and return what S3 shows (False)")
    table_name: str = opt("EmrFSMetadata", "fs.s3.consistent.metadata.tableName",
                          doc="DynamoDB table")
    auto_create: bool = opt(True, "fs.s3.consistent.metadata.autoCreate",
                            doc="create the table on first use")
    read_capacity: int = opt(500, "fs.s3.consistent.metadata.read.capacity",
                             doc="provisioned read capacity (0: on demand)")
    write_capacity: int = opt(100, "fs.s3.consistent.metadata.write.capacity",
                              doc="provisioned write capacity (0: on demand)")
    etag_verification: bool = opt(True, "fs.s3.consistent.metadata.etag.verification.enabled",
                                  doc="compare ETags on read to catch stale overwrites")
    fast_list: bool = opt(True, "fs.s3.consistent.fastList",
                          doc="list authoritative directories from DynamoDB alone")
    tombstone_ttl_seconds: int = opt(86400, "fs.s3.consistent.tombstoneTtlSeconds",
                                     doc="how long delete tombstones live")
    dynamodb_endpoint: str | None = opt(None, "fs.s3.consistent.dynamodb.endpoint",
                                        doc="DynamoDB endpoint; default: the S3 endpoint")
    dynamodb_max_retries: int = opt(9, "fs.s3.consistent.dynamodb.maxRetries",
                                    doc="retries of a throttled DynamoDB call (as S3Guard's 9)")
    dynamodb_retry_base_seconds: float = opt(0.1, "fs.s3.consistent.dynamodb.retryBaseSeconds",
                                             doc="first throttling backoff; doubles, jittered")


@dataclass(frozen=True)
class SSEOptions:
    enabled: bool = opt(False, "fs.s3.enableServerSideEncryption",
                        doc="server-side encryption on every write")
    algorithm: str = opt("AES256", "fs.s3.serverSideEncryption.algorithm",
                         doc="'AES256' (SSE-S3), 'aws:kms' (SSE-KMS) or 'SSE-C'")
    kms_key_id: str | None = opt(None, "fs.s3.serverSideEncryption.kms.keyId",
                                 doc="KMS key for SSE-KMS (implies algorithm aws:kms)")
    bucket_key_enabled: bool = opt(False, "fs.s3.serverSideEncryption.bucketKeyEnabled",
                                   doc="S3 Bucket Keys for SSE-KMS")
    customer_key: str | None = opt(None, "fs.s3.serverSideEncryption.customerKey",
                                   doc="base64 of the 256-bit SSE-C key")


@dataclass(frozen=True)
class CSEOptions:
    enabled: bool = opt(False, "fs.s3.cse.enabled", doc="client-side encryption on")
    kms_key_id: str | None = opt(None, "fs.s3.cse.kms.keyId", doc="KMS key for CSE-KMS")
    materials_provider: str | None = opt(
        None, "fs.s3.cse.encryptionMaterialsProvider",
        doc="'module:Class' of a key provider for CSE-Custom")
    storage_mode: str = opt("ObjectMetadata", "fs.s3.cse.cryptoStorageMode",
                            doc="'ObjectMetadata' or 'InstructionFile'")
    instruction_suffix: str = opt(".instruction", "fs.s3.cse.instructionFileSuffix",
                                  doc="suffix of instruction files")
    format: str = opt("v3", "fs.s3.cse.format", doc="'v3' (key-committing), 'v2' or 'segmented'")
    commitment_policy: str = opt("REQUIRE_ENCRYPT_REQUIRE_DECRYPT", "fs.s3.cse.commitmentPolicy",
                                 doc="AWS key-commitment policy")
    allow_legacy: bool = opt(False, "fs.s3.cse.allowLegacy", doc="decrypt v1 objects")
    unauthenticated_range_reads: bool = opt(
        False, "fs.s3.cse.unauthenticatedRangeReads",
        doc="serve ranges of AWS-format objects by CTR without checking the tag")
    encryption_context: str | None = opt(
        None, "fs.s3.cse.kms.encryptionContext",
        doc="JSON object of extra KMS encryption context for CSE-KMS (ASCII strings)")
    aes_key: str | None = opt(
        None, "fs.s3.cse.aesKey",
        doc="base64 of a 256-bit master key for emrfs.crypto.keys:AesKeyProvider")
    rsa_public_key_file: str | None = opt(
        None, "fs.s3.cse.rsaPublicKeyFile",
        doc="PEM public key (writes) for emrfs.crypto.keys:RsaKeyProvider")
    rsa_private_key_file: str | None = opt(
        None, "fs.s3.cse.rsaPrivateKeyFile",
        doc="PEM private key (reads) for emrfs.crypto.keys:RsaKeyProvider")
    materials_description: str | None = opt(
        None, "fs.s3.cse.materialsDescription",
        doc="JSON object stored as the materials description of AES/RSA-wrapped keys")
    segment_size: int = opt(
        64 * 1024, "fs.s3.cse.segmentSize",
        doc="plaintext bytes per segment of the 'segmented' format (4 KiB to 8 MiB)")
    listing_lengths: str = opt(
        "head", "fs.s3.cse.listingLengths",
        doc="how listings under a CSE prefix get plaintext lengths: 'head' (exact, one HEAD "
            "per file) or 'adjust' (stored length minus the configured format's overhead)")
    kms_endpoint_url: str | None = opt(
        None, "fs.s3.cse.kms.endpoint",
        doc="KMS endpoint for CSE-KMS; default: the S3 endpoint (local servers serve both)")


@dataclass(frozen=True)
class CacheOptions:
    enabled: bool = opt(False, "fs.s3.cache.enabled", doc="local block cache on")
    directories: tuple[str, ...] = opt((), "fs.s3.cache.dirs", doc="cache directories")
    block_size: int = opt(8 * MiB, "fs.s3.cache.blockSize", doc="cache block size")
    capacity_bytes: int = opt(10 * GiB, "fs.s3.cache.capacity", doc="most bytes kept")
    free_space_floor: float = opt(0.1, "fs.s3.cache.freeSpaceRatio",
                                  doc="fraction of each disk kept free")
    encrypt: bool = opt(False, "fs.s3.cache.encrypt", doc="encrypt blocks at rest")
    prefetch_blocks: int = opt(8, "fs.s3.cache.prefetch",
                               doc="blocks read ahead sequentially (refilled half a window "
                                   "at a time)")
    verify: str = opt("open", "fs.s3.cache.verify",
                      doc="'open': checksum a chunk on its first read per process (warm "
                          "reads near local-file speed); 'always': on every read")
    key_file: str | None = opt(None, "fs.s3.cache.keyFile",
                               doc="0600 key file of an encrypted cache; default: "
                                   "~/.config/emrfs/cache-<hash of the directories>.key")


@dataclass(frozen=True)
class EphemeralOptions:
    enabled: bool = opt(True, "fs.s3.ephemeral.enabled",
                        doc="keep ephemeral paths in local blocks (needs a cache)")
    patterns: tuple[str, ...] = opt(("_temporary", ".spark-staging-*"),
                                    "fs.s3.ephemeral.patterns",
                                    doc="path segments (globs) that make a path ephemeral")
    prefixes: tuple[str, ...] = opt((), "fs.s3.ephemeral.prefixes",
                                    doc="extra bucket/prefix roots that are ephemeral")
    replication: int = opt(1, "fs.s3.ephemeral.replication", doc="copies across cache dirs")
    lifetime_seconds: float = opt(0.0, "fs.s3.ephemeral.lifetime",
                                  doc="remove the tier after this long (0: at process exit)")
    task_commit: str = opt("auto", "fs.s3.ephemeral.taskCommit",
                           doc="'staged': a task commit uploads the task's files as multipart "
                               "uploads left open and records them in the metadata table, so "
                               "any machine's job commit completes them (needs "
                               "consistency.enabled); 'local': task output stays on this "
                               "machine until job commit (one machine only); 'auto': staged "
                               "where the consistent view is on")


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
    "fs.s3.buffer.dir", "fs.s3.customAWSCredentialsProvider", "fs.s3.consistent.notification.CloudWatch",
    "fs.s3.consistent.notification.SQS", "fs.s3.consistent.fastList.prefetchMetadata",
})
#: Environment variables with the EMRFS_ prefix that are not options.
RESERVED_ENV = frozenset({"EMRFS_SITE", "EMRFS_TEST_LOCALSTACK", "EMRFS_BENCH_ROUNDS"})


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

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        middle = self.name if self.section == "s3" else f"{self.section}_{self.name}"
        return "EMRFS_" + middle.upper()


def _build_registry() -> tuple[dict[str, OptionSpec], dict[str, OptionSpec]]:
    by_key: dict[str, OptionSpec] = {}
    by_alias: dict[str, OptionSpec] = {}
    for section, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            spec = OptionSpec(section, f.name, hints[f.name], f.default,
                              tuple(f.metadata.get("aliases", ())), f.metadata.get("doc", ""))
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
            "(see emrfs.config for every option and its aliases)", name)
    return spec


def coerce(spec: OptionSpec, value: Any, name: str, source: str) -> Any:
    """Parse ``value`` (often a string from XML/env) into the option's type."""
    kind = spec.type
    allowed = (kind,) if getattr(kind, "__origin__", None) is tuple else \
        getattr(kind, "__args__", (kind,))
    if value is None and type(None) in allowed:
        return None
    base = next((t for t in allowed if t is not type(None)), str)
    base = getattr(base, "__origin__", base)
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ValueError(value)
        if base is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(_size(value))
        if base is float:
            return float(value)
        if base is tuple:
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
        if not isinstance(value, (str, int, float)):
            raise ValueError(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"option {name!r} in {source} has value {value!r}, which is not a "
            f"{base.__name__}", name) from None


def _size(value: Any) -> int:
    if isinstance(value, str):
        text = value.strip().lower()
        units = {"k": 1024, "m": MiB, "g": GiB, "t": 1024 * GiB}
        for suffix in ("ib", "b"):
            if text.endswith(suffix) and text[:-len(suffix)][-1:] in units:
                text = text[: -len(suffix)]
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
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
        if name in SECTIONS and isinstance(value, Mapping):
            out.extend((f"{name}.{k}", v) for k, v in value.items())
        elif name == "client_kwargs" and isinstance(value, Mapping):
            out.extend((f"client_kwargs.{k}" if k == "endpoint_url" else k, v)
                       for k, v in value.items())
        else:
            out.append((name, value))
    return out


def _collect(pairs: list[tuple[str, Any]], source: str) -> tuple[dict[str, Any], list]:
    """Map names to canonical keys; same option twice with different values is a conflict."""
    values: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    overrides: list[tuple[str, str, Any]] = []
    for name, raw in pairs:
        if name in IGNORED_PROPERTIES:
            continue
        if name.startswith("fs.s3.bucket."):
            bucket, _, prop = name[len("fs.s3.bucket."):].partition(".fs.s3.")
            if not prop:
                raise ConfigurationError(
                    f"per-bucket key {name!r} in {source} must look like "
                    "fs.s3.bucket.NAME.fs.s3.<property>", name)
            overrides.append((bucket, "fs.s3." + prop, raw))
            continue
        spec = lookup(name, source)
        value = coerce(spec, raw, name, source)
        if spec.key in values and values[spec.key] != value:
            raise ConfigurationError(
                f"conflicting options in {source}: {given_as[spec.key]!r}={values[spec.key]!r} "
                f"and {name!r}={value!r} set the same thing; keep one", name)
        values[spec.key] = value
        given_as[spec.key] = name
    return values, overrides


def load(storage_options: Mapping[str, Any] | None = None, *,
         environ: Mapping[str, str] | None = None) -> Options:
    """Build the options tree from defaults, site file, environment, storage options."""
    storage_options = dict(storage_options or {})
    environ = os.environ if environ is None else environ
    layers: list[dict[str, Any]] = []
    overrides: list[tuple[str, str, Any]] = []

    site = storage_options.pop("site", None) or environ.get("EMRFS_SITE")
    if site:
        values, ov = _collect(list(read_site_file(site).items()), f"emrfs-site file {site!r}")
        layers.append(values)
        overrides += ov

    env_pairs = []
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
        env_pairs.append((spec.key, raw))
    values, ov = _collect(env_pairs, "the environment")
    layers.append(values)

    explicit_overrides = storage_options.pop("overrides", None) or {}
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
        grouped.setdefault(prefix, {})[spec.key] = coerce(spec, raw, name, f"override for {prefix!r}")
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


def _apply(options: Options, values: Mapping[str, Any]) -> Options:
    sections: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, _, name = key.partition(".")
        sections.setdefault(section, {})[name] = value
    changed = {s: dataclasses.replace(getattr(options, s), **v) for s, v in sections.items()}
    new = dataclasses.replace(options, **changed)
    validate(new)
    return new


def validate(options: Options) -> None:
    """Cross-option checks; each names both options involved."""
    s3, sse, cse, cons = options.s3, options.sse, options.cse, options.consistency
    if sse.enabled and cse.enabled:
        raise ConfigurationError(
            "conflicting options: fs.s3.enableServerSideEncryption (sse.enabled) and "
            "fs.s3.cse.enabled (cse.enabled) are both on; EMRFS allows one of them", "sse.enabled")
    if sse.algorithm not in ("AES256", "aws:kms", "aws:kms:dsse", "SSE-C"):
        raise ConfigurationError(
            f"sse.algorithm is {sse.algorithm!r}; use 'AES256', 'aws:kms' or 'SSE-C'", "sse.algorithm")
    if sse.kms_key_id and sse.algorithm in ("AES256", "SSE-C") and sse.algorithm != "AES256":
        raise ConfigurationError(
            "conflicting options: sse.kms_key_id and sse.algorithm='SSE-C'", "sse.kms_key_id")
    if sse.algorithm == "SSE-C" and sse.enabled and not sse.customer_key:
        raise ConfigurationError(
            "sse.algorithm='SSE-C' needs sse.customer_key (base64 of a 256-bit key)",
            "sse.customer_key")
    if cse.kms_key_id and cse.materials_provider:
        raise ConfigurationError(
            "conflicting options: fs.s3.cse.kms.keyId (cse.kms_key_id) and "
            "fs.s3.cse.encryptionMaterialsProvider (cse.materials_provider); pick one",
            "cse.kms_key_id")
    if cse.storage_mode not in ("ObjectMetadata", "InstructionFile"):
        raise ConfigurationError(
            f"cse.storage_mode is {cse.storage_mode!r}; use 'ObjectMetadata' or 'InstructionFile'",
            "cse.storage_mode")
    if cse.listing_lengths not in ("head", "adjust"):
        raise ConfigurationError(
            f"cse.listing_lengths is {cse.listing_lengths!r}; use 'head' or 'adjust'",
            "cse.listing_lengths")
    if cons.retry_policy_type not in ("exponential", "fixed", "none"):
        raise ConfigurationError(
            f"consistency.retry_policy_type is {cons.retry_policy_type!r}; use 'exponential', "
            "'fixed' or 'none'", "consistency.retry_policy_type")
    if not 5 * MiB <= s3.part_size <= 5 * GiB:
        raise ConfigurationError(
            f"s3.part_size is {s3.part_size}; S3 parts are 5 MiB to 5 GiB", "s3.part_size")
    if s3.copy_part_size < 5 * MiB:
        raise ConfigurationError("s3.copy_part_size must be at least 5 MiB", "s3.copy_part_size")
    if s3.max_attempts < 1:
        raise ConfigurationError("s3.max_attempts must be at least 1", "s3.max_attempts")
    if s3.addressing_style not in ("auto", "path", "virtual"):
        raise ConfigurationError(
            f"s3.addressing_style is {s3.addressing_style!r}; use 'auto', 'path' or 'virtual'",
            "s3.addressing_style")
    if s3.require_tls and s3.endpoint_url and s3.endpoint_url.lower().startswith("http://"):
        raise ConfigurationError(
            f"conflicting options: s3.require_tls is on but s3.endpoint_url is "
            f"{s3.endpoint_url!r} (plain HTTP); use an https:// endpoint", "s3.endpoint_url")
    if options.ephemeral.task_commit not in ("auto", "staged", "local"):
        raise ConfigurationError(
            f"ephemeral.task_commit is {options.ephemeral.task_commit!r}; use 'auto', 'staged' "
            "or 'local'", "ephemeral.task_commit")
    if options.ephemeral.task_commit == "staged" and not cons.enabled:
        raise ConfigurationError(
            "conflicting options: ephemeral.task_commit='staged' records staged uploads in the "
            "metadata table, but consistency.enabled (fs.s3.consistent) is off; turn the "
            "consistent view on, or use ephemeral.task_commit='local' on a single machine",
            "ephemeral.task_commit")
    if options.cache.block_size < 64 * 1024:
        raise ConfigurationError("cache.block_size must be at least 64 KiB", "cache.block_size")

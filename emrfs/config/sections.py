"""The option sections: one frozen dataclass per section, each field an option.

This is the option table: every field declares its type (the annotation), its
default, its aliases (EMRFS / S3A property names, short and s3fs spellings), one
line of documentation and the values it allows (``rule=``).  The tree of all
sections, and its per-path overrides, is :class:`emrfs.config.options.Options`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import hadoop_compat
from .rules import (
    BASE64_256_BIT_KEY,
    DYNAMODB_TABLE,
    JSON_OBJECT,
    PYTHON_CLASS,
    READABLE_FILE,
    REGION,
    RETRY_POLICY,
    SECRET,
    TEXT,
    URL,
    GiB,
    MiB,
    between,
    one_of,
    opt,
)


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None = opt(
        None,
        "fs.s3.endpoint",
        "client_kwargs.endpoint_url",
        doc="S3 endpoint URL; None means AWS",
        rule=URL,
    )
    region: str | None = opt(
        None, "region_name", "fs.s3.region", "fs.s3a.endpoint.region", doc="AWS region", rule=REGION
    )
    access_key_id: str | None = opt(
        None, "key", "aws_access_key_id", "fs.s3a.access.key", doc="access key id", rule=TEXT
    )
    secret_access_key: str | None = opt(
        None,
        "secret",
        "aws_secret_access_key",
        "fs.s3a.secret.key",
        doc="secret access key",
        rule=SECRET,
    )
    session_token: str | None = opt(
        None, "token", "aws_session_token", "fs.s3a.session.token", doc="session token", rule=SECRET
    )
    profile: str | None = opt(None, "profile_name", doc="AWS profile name", rule=TEXT)
    anon: bool = opt(False, doc="unsigned requests (public buckets)")
    max_attempts: int = opt(
        10,
        "fs.s3.maxRetries",
        "retries",
        doc="attempts per request for throttling, 5xx and dropped connections",
        rule=between(1, 100),
    )
    retry_base_seconds: float = opt(
        0.1,
        doc="first backoff delay; doubles each retry, jittered",
        rule=between(0, 60, " seconds"),
    )
    retry_max_seconds: float = opt(
        20.0, doc="longest single backoff delay", rule=between(0, 3600, " seconds")
    )
    connect_timeout: float = opt(
        10.0, doc="seconds to connect", rule=between(0.001, 3600, " seconds")
    )
    read_timeout: float = opt(
        60.0,
        doc="seconds without a byte before a read is retried",
        rule=between(0.001, 86400, " seconds"),
    )
    max_pool_connections: int = opt(
        64, "fs.s3.maxConnections", doc="HTTP connection pool size", rule=between(1, 10_000)
    )
    max_concurrency: int = opt(
        16, doc="requests in flight for one bulk operation", rule=between(1, 10_000)
    )
    read_block_size: int = opt(
        32 * MiB,
        "block_size",
        "default_block_size",
        doc="how far an open file scanning sequentially reads ahead (in GETs of a quarter"
        " of it, at least 1 MiB, fetched while it reads)",
        rule=between(1, 5 * GiB, " bytes"),
    )
    part_size: int = opt(
        32 * MiB,
        "fs.s3.multipart.part.size",
        "multipart.part_size",
        doc="multipart upload part size (5 MiB to 5 GiB)",
        rule=between(5 * MiB, 5 * GiB, " bytes"),
    )
    multipart_threshold: int = opt(
        256 * MiB,
        "fs.s3.multipart.threshold",
        doc="data already in memory or on local disk up to this size"
        " goes up in one PUT (S3 allows 5 GiB)",
        rule=between(0, 5 * GiB, " bytes"),
    )
    upload_concurrency: int = opt(
        4, doc="parts of one file uploaded at once", rule=between(1, 1000)
    )
    multipart_purge: bool = opt(
        False,
        "fs.s3a.multipart.purge",
        "fs.s3.multipart.purge",
        doc="the first multipart write into a bucket aborts every abandoned upload in it "
        "(as S3A's purge at start-up; off by default because it reaches other tools' "
        "uploads too); abandoned uploads of the key being written go either way",
    )
    multipart_purge_age: float = opt(
        86400.0,
        "fs.s3a.multipart.purge.age",
        "fs.s3.multipart.purge.age",
        doc="seconds after which an open multipart upload counts as abandoned (S3A's default, "
        "24 h); uploads the staged task commit still needs are never aborted",
        rule=between(0, 365 * 86400, " seconds"),
    )
    copy_threshold: int = opt(
        5 * GiB,
        "fs.s3.multipart.copy.threshold",
        doc="objects larger than this are copied with UploadPartCopy",
        rule=between(0, 5 * GiB, " bytes"),
    )
    copy_part_size: int = opt(
        512 * MiB, doc="part size for UploadPartCopy", rule=between(5 * MiB, 5 * GiB, " bytes")
    )
    fs_block_size: int = opt(
        128 * MiB,
        "fs.s3.block.size",
        doc="block size reported in Hadoop file status",
        rule=between(1, 1024 * GiB, " bytes"),
    )
    owner: str | None = opt(
        None, doc="owner reported in file status; default: the OS user", rule=TEXT
    )
    group: str | None = opt(
        None, doc="group reported in file status; default: the owner", rule=TEXT
    )
    require_tls: bool = opt(False, "fs.s3.requireTls", doc="refuse plain-HTTP endpoints")
    ca_bundle: str | None = opt(
        None, "verify", doc="CA bundle file for HTTPS endpoints", rule=READABLE_FILE
    )
    addressing_style: str = opt(
        "auto", doc="'auto', 'path' or 'virtual'", rule=one_of("auto", "path", "virtual")
    )
    create_checks: bool = opt(
        True,
        "fs.s3.create.checks",
        doc="before a write, refuse a path that is a directory (one LIST);"
        " off trades that check for speed, as S3A's create.performance",
    )
    status_tail_bytes: int = opt(
        64 * 1024,
        doc="info() of a plaintext file is one GET of its last this many bytes (size,"
        " ETag and the Parquet/ORC footer, which the next read reuses) instead of"
        " a HEAD; 0: a HEAD",
        rule=between(0, 16 * MiB, " bytes"),
    )
    status_reuse_seconds: float = opt(
        15.0,
        doc="a file status seen by info() or a listing serves isfile() and open() this"
        " long with no HEAD (reads stay pinned to its ETag); 0: every open asks",
        rule=between(0, 3600, " seconds"),
    )
    transport: str = opt(
        "auto",
        "fs.s3.transport",
        doc="S3 client under the stack: 'obstore' (Rust object_store, several "
        "times less CPU per request), 'botocore' (aiobotocore), or 'auto': "
        "obstore unless it is not installed, the process was forked from one "
        "that used it, or a setting it cannot honour is on (SSE-C key with "
        "sse.enabled off); multipart-by-id, large copies and bucket "
        "administration always go through botocore",
        rule=one_of("auto", "obstore", "botocore"),
    )


@dataclass(frozen=True)
class ConsistencyOptions:
    enabled: bool = opt(False, "fs.s3.consistent", "consistent", doc="turn the consistent view on")
    retry_policy_type: str = opt(
        "exponential",
        "fs.s3.consistent.retryPolicyType",
        doc="'exponential', 'fixed' or 'none'",
        rule=RETRY_POLICY,
    )
    retry_count: int = opt(
        5, "fs.s3.consistent.retryCount", doc="retries before giving up", rule=between(0, 1000)
    )
    retry_period_seconds: float = opt(
        10.0,
        "fs.s3.consistent.retryPeriodSeconds",
        doc="base retry period",
        rule=between(0, 3600, " seconds"),
    )
    throw_exception_on_inconsistency: bool = opt(
        True,
        "fs.s3.consistent.throwExceptionOnInconsistency",
        doc="raise ConsistencyError (True) or log and return what S3 shows (False)",
    )
    table_name: str = opt(
        "EmrFSMetadata",
        "fs.s3.consistent.metadata.tableName",
        doc="DynamoDB table",
        rule=DYNAMODB_TABLE,
    )
    auto_create: bool = opt(
        True, "fs.s3.consistent.metadata.autoCreate", doc="create the table on first use"
    )
    read_capacity: int = opt(
        500,
        "fs.s3.consistent.metadata.read.capacity",
        doc="provisioned read capacity (0: on demand)",
        rule=between(0, 40_000),
    )
    write_capacity: int = opt(
        100,
        "fs.s3.consistent.metadata.write.capacity",
        doc="provisioned write capacity (0: on demand)",
        rule=between(0, 40_000),
    )
    etag_verification: bool = opt(
        True,
        "fs.s3.consistent.metadata.etag.verification.enabled",
        doc="compare ETags on read to catch stale overwrites",
    )
    fast_list: bool = opt(
        True, "fs.s3.consistent.fastList", doc="list authoritative directories from DynamoDB alone"
    )
    tombstone_ttl_seconds: int = opt(
        86400,
        "fs.s3.consistent.tombstoneTtlSeconds",
        doc="how long delete tombstones live",
        rule=between(1, 10 * 365 * 86400, " seconds"),
    )
    dynamodb_endpoint: str | None = opt(
        None,
        "fs.s3.consistent.dynamodb.endpoint",
        doc="DynamoDB endpoint; default: the S3 endpoint",
        rule=URL,
    )
    dynamodb_max_retries: int = opt(
        9,
        "fs.s3.consistent.dynamodb.maxRetries",
        doc="retries of a throttled DynamoDB call (as S3Guard's 9)",
        rule=between(0, 100),
    )
    dynamodb_retry_base_seconds: float = opt(
        0.1,
        "fs.s3.consistent.dynamodb.retryBaseSeconds",
        doc="first throttling backoff; doubles, jittered",
        rule=between(0, 60, " seconds"),
    )


@dataclass(frozen=True)
class SSEOptions:
    enabled: bool = opt(
        False, "fs.s3.enableServerSideEncryption", doc="server-side encryption on every write"
    )
    algorithm: str = opt(
        "AES256",
        "fs.s3.serverSideEncryption.algorithm",
        doc="'AES256' (SSE-S3), 'aws:kms' (SSE-KMS) or 'SSE-C'",
        rule=one_of("AES256", "aws:kms", "aws:kms:dsse", "SSE-C"),
    )
    kms_key_id: str | None = opt(
        None,
        "fs.s3.serverSideEncryption.kms.keyId",
        doc="KMS key for SSE-KMS (implies algorithm aws:kms)",
        rule=TEXT,
    )
    bucket_key_enabled: bool = opt(
        False, "fs.s3.serverSideEncryption.bucketKeyEnabled", doc="S3 Bucket Keys for SSE-KMS"
    )
    customer_key: str | None = opt(
        None,
        "fs.s3.serverSideEncryption.customerKey",
        doc="base64 of the 256-bit SSE-C key",
        rule=BASE64_256_BIT_KEY,
    )


@dataclass(frozen=True)
class CSEOptions:
    enabled: bool = opt(False, "fs.s3.cse.enabled", doc="client-side encryption on")
    kms_key_id: str | None = opt(None, "fs.s3.cse.kms.keyId", doc="KMS key for CSE-KMS", rule=TEXT)
    materials_provider: str | None = opt(
        None,
        "fs.s3.cse.encryptionMaterialsProvider",
        doc="'module:Class' of a key provider for CSE-Custom; EMR's KMS provider class means "
        "CSE-KMS (fs.s3.cse.kms.keyId)",
        rule=PYTHON_CLASS,
        convert=hadoop_compat.materials_provider,
    )
    storage_mode: str = opt(
        "ObjectMetadata",
        "fs.s3.cse.cryptoStorageMode",
        doc="'ObjectMetadata' or 'InstructionFile'",
        rule=one_of("ObjectMetadata", "InstructionFile"),
    )
    instruction_suffix: str = opt(
        ".instruction",
        "fs.s3.cse.instructionFileSuffix",
        doc="suffix of instruction files",
        rule=TEXT,
    )
    format: str = opt(
        "v3",
        "fs.s3.cse.format",
        doc="'v3' (key-committing), 'v2' or 'segmented'",
        rule=one_of("v3", "v2", "segmented"),
    )
    commitment_policy: str = opt(
        "REQUIRE_ENCRYPT_REQUIRE_DECRYPT",
        "fs.s3.cse.commitmentPolicy",
        doc="AWS key-commitment policy",
        rule=one_of(
            "REQUIRE_ENCRYPT_REQUIRE_DECRYPT",
            "REQUIRE_ENCRYPT_ALLOW_DECRYPT",
            "FORBID_ENCRYPT_ALLOW_DECRYPT",
        ),
    )
    allow_legacy: bool = opt(False, "fs.s3.cse.allowLegacy", doc="decrypt v1 objects")
    unauthenticated_range_reads: bool = opt(
        False,
        "fs.s3.cse.unauthenticatedRangeReads",
        doc="serve ranges of AWS-format objects by CTR without checking the tag",
    )
    encryption_context: str | None = opt(
        None,
        "fs.s3.cse.kms.encryptionContext",
        doc="JSON object of extra KMS encryption context for CSE-KMS (ASCII strings)",
        rule=JSON_OBJECT,
    )
    aes_key: str | None = opt(
        None,
        "fs.s3.cse.aesKey",
        doc="base64 of a 256-bit master key for emrfs.crypto.keys:AesKeyProvider",
        rule=BASE64_256_BIT_KEY,
    )
    rsa_public_key_file: str | None = opt(
        None,
        "fs.s3.cse.rsaPublicKeyFile",
        doc="PEM public key (writes) for emrfs.crypto.keys:RsaKeyProvider",
        rule=READABLE_FILE,
    )
    rsa_private_key_file: str | None = opt(
        None,
        "fs.s3.cse.rsaPrivateKeyFile",
        doc="PEM private key (reads) for emrfs.crypto.keys:RsaKeyProvider",
        rule=READABLE_FILE,
    )
    materials_description: str | None = opt(
        None,
        "fs.s3.cse.materialsDescription",
        doc="JSON object stored as the materials description of AES/RSA-wrapped keys",
        rule=JSON_OBJECT,
    )
    segment_size: int = opt(
        64 * 1024,
        "fs.s3.cse.segmentSize",
        doc="plaintext bytes per segment of the 'segmented' format (4 KiB to 8 MiB)",
        rule=between(4096, 8 * MiB, " bytes"),
    )
    listing_lengths: str = opt(
        "head",
        "fs.s3.cse.listingLengths",
        doc="how listings under a CSE prefix get plaintext lengths: 'head' (exact, one HEAD "
        "per file) or 'adjust' (stored length minus the configured format's overhead)",
        rule=one_of("head", "adjust"),
    )
    kms_endpoint_url: str | None = opt(
        None,
        "fs.s3.cse.kms.endpoint",
        doc="KMS endpoint for CSE-KMS; default: the S3 endpoint (local servers serve both)",
        rule=URL,
    )


@dataclass(frozen=True)
class CacheOptions:
    enabled: bool = opt(False, "fs.s3.cache.enabled", doc="local block cache on")
    directories: tuple[str, ...] = opt((), "fs.s3.cache.dirs", doc="cache directories", rule=TEXT)
    block_size: int = opt(
        8 * MiB,
        "fs.s3.cache.blockSize",
        doc="cache block size",
        rule=between(64 * 1024, 1 * GiB, " bytes"),
    )
    capacity_bytes: int = opt(
        10 * GiB, "fs.s3.cache.capacity", doc="most bytes kept", rule=between(1, 1024**5, " bytes")
    )
    free_space_floor: float = opt(
        0.1,
        "fs.s3.cache.freeSpaceRatio",
        doc="fraction of each disk kept free",
        rule=between(0, 0.99),
    )
    encrypt: bool = opt(False, "fs.s3.cache.encrypt", doc="encrypt blocks at rest")
    prefetch_blocks: int = opt(
        8,
        "fs.s3.cache.prefetch",
        doc="blocks read ahead sequentially (refilled half a window at a time)",
        rule=between(0, 1024),
    )
    verify: str = opt(
        "open",
        "fs.s3.cache.verify",
        doc="'open': checksum a chunk on its first read per process (warm "
        "reads near local-file speed); 'always': on every read",
        rule=one_of("open", "always"),
    )
    key_file: str | None = opt(
        None,
        "fs.s3.cache.keyFile",
        doc="0600 key file of an encrypted cache; default: "
        "~/.config/emrfs/cache-<hash of the directories>.key",
        rule=TEXT,
    )


@dataclass(frozen=True)
class EphemeralOptions:
    enabled: bool = opt(
        True, "fs.s3.ephemeral.enabled", doc="keep ephemeral paths in local blocks (needs a cache)"
    )
    patterns: tuple[str, ...] = opt(
        ("_temporary", ".spark-staging-*"),
        "fs.s3.ephemeral.patterns",
        doc="path segments (globs) that make a path ephemeral",
        rule=TEXT,
    )
    prefixes: tuple[str, ...] = opt(
        (),
        "fs.s3.ephemeral.prefixes",
        doc="extra bucket/prefix roots that are ephemeral",
        rule=TEXT,
    )
    replication: int = opt(
        1, "fs.s3.ephemeral.replication", doc="copies across cache dirs", rule=between(1, 16)
    )
    lifetime_seconds: float = opt(
        0.0,
        "fs.s3.ephemeral.lifetime",
        doc="remove the tier after this long (0: at process exit)",
        rule=between(0, 10 * 365 * 86400, " seconds"),
    )
    task_commit: str = opt(
        "auto",
        "fs.s3.ephemeral.taskCommit",
        doc="'staged': a task commit uploads the task's files as multipart "
        "uploads left open and records them in the metadata table, so "
        "any machine's job commit completes them (needs "
        "consistency.enabled); 'local': task output stays on this "
        "machine until job commit (one machine only); 'auto': staged "
        "where the consistent view is on",
        rule=one_of("auto", "staged", "local"),
    )


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

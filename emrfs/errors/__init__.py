"""The emrfs error hierarchy, and the one place provider errors are translated.

Built-in ``OSError`` subclasses are raised wherever Python has one, so callers
can keep writing ``except FileNotFoundError``.  What Python has no class for is
an :class:`EmrfsError`::

    OSError
     ├── FileNotFoundError            NoSuchKey, NoSuchBucket, 404
     ├── FileExistsError              PreconditionFailed on create, BucketAlreadyOwnedByYou
     ├── PermissionError              AccessDenied, InvalidAccessKeyId, 403
     ├── IsADirectoryError            opening a directory as a file
     ├── NotADirectoryError           a file where a directory is needed
     └── EmrfsError                   everything else emrfs raises (carries the path)
          ├── InvalidPathError        (also a ValueError) a name S3 or HDFS cannot hold
          ├── ConfigurationError      (also a ValueError) unknown, malformed or conflicting options
          ├── ServiceError            the service answered with an error we do not map
          │    └── ThrottledError     SlowDown / 503 / throughput exceeded, after retries
          ├── TransportError          the connection dropped or timed out, after retries
          ├── ConsistencyError        metadata and S3 disagree after the retry policy ran out
          ├── IntegrityError          a checksum, tag or key commitment did not verify
          ├── ChangedError            a read pinned to one ETag met another version
          └── EncryptionError         a key or envelope is missing, wrong or unsupported

Translation happens once, at each AWS boundary (the S3 transports through
``map_s3_errors``, the DynamoDB store, the KMS key provider), through
:func:`translate_aws_error` and its one table, :data:`AWS_ERROR_TABLE`, keyed by
(service, code).  Both S3 clients feed the same table: botocore's ``ClientError``
carries the code; obstore's exceptions carry S3's status line and XML body in
their text, read by :func:`obstore_error_code`.  Every message names the path
and, where the user can do something about it, what to do.

The classes live in :mod:`emrfs.errors.hierarchy`, the table in
:mod:`emrfs.errors.table`, the reading and translation in
:mod:`emrfs.errors.translate`; everything is importable from here.
"""

from __future__ import annotations

from .hierarchy import (
    ChangedError,
    ConfigurationError,
    ConsistencyError,
    EmrfsError,
    EncryptionError,
    IntegrityError,
    InvalidPathError,
    ServiceError,
    ThrottledError,
    TransportError,
    exists,
    is_a_directory,
    missing_bucket,
    not_a_directory,
    not_empty,
    not_found,
    permission_denied,
)
from .table import (
    ANY,
    AWS_ERROR_TABLE,
    DEFAULT,
    DYNAMODB,
    KMS,
    NO_CREDENTIALS,
    S3,
    THROTTLED,
    THROTTLING_CODES,
    TRANSIENT_CODES,
    TRANSPORT,
    AwsFailure,
)
from .translate import (
    aws_error_code,
    error_chain,
    is_obstore_error,
    is_retryable,
    map_s3_errors,
    obstore_error_code,
    translate_aws_error,
    translate_s3_error,
)

__all__ = [
    "EmrfsError",
    "InvalidPathError",
    "ConfigurationError",
    "ServiceError",
    "ThrottledError",
    "TransportError",
    "ConsistencyError",
    "IntegrityError",
    "EncryptionError",
    "ChangedError",
    "AWS_ERROR_TABLE",
    "AwsFailure",
    "translate_aws_error",
    "translate_s3_error",
    "aws_error_code",
    "map_s3_errors",
    "not_found",
    "exists",
    "is_a_directory",
    "not_a_directory",
    "not_empty",
    "missing_bucket",
    "permission_denied",
    "error_chain",
    "is_retryable",
    "is_obstore_error",
    "obstore_error_code",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "S3",
    "DYNAMODB",
    "KMS",
    "ANY",
    "THROTTLED",
    "TRANSPORT",
    "NO_CREDENTIALS",
    "DEFAULT",
]

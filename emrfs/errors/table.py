"""The one table through which S3, DynamoDB and KMS errors are translated:
:data:`AWS_ERROR_TABLE`, keyed by (service, code), and the codes that mean
"retry" (:data:`THROTTLING_CODES`, :data:`TRANSIENT_CODES`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .hierarchy import (
    EmrfsError,
    EncryptionError,
    InvalidPathError,
    ServiceError,
    ThrottledError,
    TransportError,
    exists,
    missing_bucket,
    not_empty,
    not_found,
    permission_denied,
)

# --- the table ------------------------------------------------------------------

#: The services whose errors pass through :func:`translate_aws_error`.
S3, DYNAMODB, KMS = "s3", "dynamodb", "kms"
#: A row for every service.
ANY = "*"
#: Pseudo-codes for what is not an error code: the answer kept being "slow down"
#: after the boundary's retries, the connection failed, no credentials were found,
#: or the code has no row of its own (the service's default).
THROTTLED, TRANSPORT, NO_CREDENTIALS, DEFAULT = (
    "(throttled)",
    "(transport)",
    "(no credentials)",
    "(default)",
)

_SERVICE_NAMES = {S3: "S3", DYNAMODB: "DynamoDB", KMS: "KMS"}


@dataclass(frozen=True)
class AwsFailure:
    """What a boundary knows about one failed call; the table's rows build the message.

    ``operation`` is what was being done ("list children", "GenerateDataKey");
    ``resource`` describes what it was done on ("metadata table 't' at URL");
    ``name`` is the bare name hints refer to as ``{name}`` (table, key id);
    ``retries`` is None when the transport retried by itself ("all retries").
    """

    service: str
    path: str | None
    code: str
    status: int | None
    message: str
    operation: str = ""
    resource: str = ""
    name: str = ""
    retries: int | None = None
    elapsed: float | None = None

    @property
    def service_name(self) -> str:
        return _SERVICE_NAMES.get(self.service, self.service)

    def subject(self) -> str:
        """``for 'b/k' on the metadata table 't'``: whatever of path and resource is known."""
        parts = [f"for {self.path!r}"] if self.path else []
        if self.resource:
            parts.append(f"on the {self.resource}")
        return " ".join(parts)

    def after(self) -> str:
        if self.retries is None:
            return "after all retries"
        return f"after {self.retries} retries" + (
            f" over {self.elapsed:.1f} s" if self.elapsed is not None else ""
        )


_Make = Callable[[AwsFailure, str], BaseException]


def _builtin(factory: Callable[[str, str], OSError]) -> _Make:
    """A built-in ``OSError`` (errno, path as filename); the hint, else S3's message."""
    return lambda f, hint: factory(f.path or "", hint or f.message)


def _service(cls: type[EmrfsError]) -> _Make:
    """``cls`` with ``SERVICE OPERATION for PATH failed (CODE): message; hint``."""

    def make(f: AwsFailure, hint: str) -> BaseException:
        text = " ".join(x for x in (f.service_name, f.operation or "request", f.subject()) if x)
        reason = f" ({f.code or f.status})" if f.code or f.status else ""
        text += f" failed{reason}: {f.message}" + (f"; {hint}" if hint else "")
        if issubclass(cls, ServiceError):
            return cls(text, f.path, code=f.code or None, status=f.status)
        return cls(text, f.path, code=f.code or None)

    return make


def _throttled(f: AwsFailure, hint: str) -> BaseException:
    return ThrottledError(
        f"{f.service_name} kept throttling {f.operation or 'requests'} {f.subject()} "
        f"({f.code or f.status}) {f.after()}; {hint}",
        f.path,
        code=f.code or str(f.status or "Throttled"),
        status=f.status,
    )


def _transport(f: AwsFailure, hint: str) -> BaseException:
    return TransportError(
        f"connection to the {f.service_name} endpoint failed {f.subject()} {f.after()}: "
        f"{f.message}; {hint}",
        f.path,
    )


def _invalid_path(what: str) -> _Make:
    return lambda f, hint: InvalidPathError(f"{what} in {f.path!r}: {hint}", f.path)


_CREDENTIALS_HINT = "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile in use"
_NO_CREDENTIALS_HINT = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where an instance or task "
    "role provides them"
)
_KMS_KEY_HINT = (
    "the object was written with another KMS key or encryption context, or its envelope was altered"
)
_CAPACITY_HINT = (
    "raise its capacity (emrfs set-metadata-capacity -m {name} -r R -w W, or "
    "--on-demand) or consistency.dynamodb_max_retries"
)

#: (service, code) -> (make, hint): the one translation of S3, DynamoDB and KMS errors.
#: ``code`` is the provider's error code, an HTTP status ("404"), or a pseudo-code
#: (THROTTLED, TRANSPORT, NO_CREDENTIALS, DEFAULT); ``service`` ANY is every service.
#: Hints may name ``{name}`` (the table or key) and ``{path}``.
AWS_ERROR_TABLE: dict[tuple[str, str], tuple[_Make, str]] = {
    # S3: built-in OSErrors wherever Python has one
    (S3, "NoSuchKey"): (_builtin(not_found), ""),
    (S3, "NoSuchBucket"): (lambda f, h: missing_bucket(f.path or ""), ""),
    (S3, "NoSuchUpload"): (_builtin(not_found), "the multipart upload was aborted or completed"),
    (S3, "NoSuchVersion"): (_builtin(not_found), "that version id does not exist"),
    (S3, "404"): (_builtin(not_found), ""),
    (S3, "NotFound"): (_builtin(not_found), ""),
    (S3, "PreconditionFailed"): (
        _builtin(exists),
        "it already exists and overwrite was not allowed",
    ),
    (S3, "412"): (_builtin(exists), "it already exists and overwrite was not allowed"),
    (S3, "BucketAlreadyExists"): (_builtin(exists), "bucket names are global; pick another name"),
    (S3, "BucketAlreadyOwnedByYou"): (_builtin(exists), "you already own this bucket"),
    (S3, "AccessDenied"): (_builtin(permission_denied), "the credentials in use may not do this"),
    (S3, "AllAccessDisabled"): (
        _builtin(permission_denied),
        "all access to this object is disabled",
    ),
    (S3, "InvalidAccessKeyId"): (_builtin(permission_denied), _CREDENTIALS_HINT),
    (S3, "SignatureDoesNotMatch"): (_builtin(permission_denied), _CREDENTIALS_HINT),
    (S3, "ExpiredToken"): (
        _builtin(permission_denied),
        "the session token expired; refresh credentials",
    ),
    (S3, "403"): (_builtin(permission_denied), ""),
    (S3, "BucketNotEmpty"): (
        _builtin(not_empty),
        "delete its contents first, or use recursive=True",
    ),
    (S3, "InvalidBucketName"): (
        _invalid_path("invalid bucket name"),
        "bucket names are 3-63 characters of a-z, 0-9, '.' and '-'",
    ),
    (S3, "KeyTooLongError"): (_invalid_path("key too long"), "S3 keys are at most 1024 bytes"),
    (S3, "InvalidRange"): (
        lambda f, h: ServiceError(
            f"invalid range for {f.path!r}", f.path, code="InvalidRange", status=416
        ),
        "",
    ),
    (S3, THROTTLED): (_throttled, "lower the request rate or raise s3.max_attempts"),
    (S3, TRANSPORT): (_transport, "check that the endpoint is up and reachable"),
    (S3, DEFAULT): (_service(ServiceError), ""),
    # DynamoDB (the consistent view's table)
    (DYNAMODB, "ResourceNotFoundException"): (
        _service(ServiceError),
        (
            "it does not exist; create it with `emrfs create-metadata -m {name}` or turn on "
            "consistency.auto_create"
        ),
    ),
    (DYNAMODB, THROTTLED): (_throttled, _CAPACITY_HINT),
    (DYNAMODB, "Unprocessed"): (_throttled, _CAPACITY_HINT),  # batches left unprocessed
    (DYNAMODB, TRANSPORT): (
        _transport,
        ("check that the endpoint is up (consistency.dynamodb_endpoint / EMRFS_ENDPOINT_URL)"),
    ),
    (DYNAMODB, DEFAULT): (_service(ServiceError), ""),
    # KMS (CSE-KMS data keys): what the key service answers is a key problem
    (KMS, "InvalidCiphertextException"): (_service(EncryptionError), _KMS_KEY_HINT),
    (KMS, "IncorrectKeyException"): (_service(EncryptionError), _KMS_KEY_HINT),
    (KMS, "NotFoundException"): (
        _service(EncryptionError),
        "no KMS key {name!r} in this account and region (cse.kms_key_id)",
    ),
    (KMS, "DisabledException"): (_service(EncryptionError), "the KMS key is disabled; enable it"),
    (KMS, "KMSInvalidStateException"): (
        _service(EncryptionError),
        "the KMS key is pending deletion or not usable now",
    ),
    (KMS, "AccessDeniedException"): (
        _service(EncryptionError),
        "the credentials in use may not use this KMS key",
    ),
    (KMS, THROTTLED): (_throttled, "lower the request rate or raise the account's KMS quota"),
    (KMS, TRANSPORT): (
        _transport,
        ("check that the KMS endpoint is up (cse.kms_endpoint_url / EMRFS_ENDPOINT_URL)"),
    ),
    (KMS, DEFAULT): (_service(EncryptionError), ""),
    # every service
    (ANY, NO_CREDENTIALS): (lambda f, h: permission_denied(f.path or "", h), _NO_CREDENTIALS_HINT),
}

#: Codes that mean "slow down": retried with backoff, then ThrottledError.
THROTTLING_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "ServiceUnavailable",
        "503",
    }
)

#: Codes worth retrying besides throttling (server-side hiccups).
TRANSIENT_CODES = frozenset({"InternalError", "500", "502", "504", "RequestTimeout"})

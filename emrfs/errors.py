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
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

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
]


class EmrfsError(OSError):
    """Base of the errors emrfs raises where Python has no built-in class.

    ``path`` is the emrfs path the operation was about; ``code`` the provider's
    error code when one exists (``SlowDown``, ``InternalError``...).
    """

    def __init__(self, message: str, path: str | None = None, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.code = code

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # keep pickling (multiprocessing) working
        return (_rebuild, (type(self), self.message, self.path, self.code))


def _rebuild(cls, message, path, code):
    return cls(message, path, code=code)


class InvalidPathError(EmrfsError, ValueError):
    """A path S3 or HDFS semantics cannot hold (bad bucket name, ``..``, empty segment)."""


class ConfigurationError(EmrfsError, ValueError):
    """Unknown, malformed or conflicting options; ``path`` names the key or file."""


class ServiceError(EmrfsError):
    """The service answered with an error code emrfs does not map to a built-in."""

    def __init__(
        self,
        message: str,
        path: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
    ):
        super().__init__(message, path, code=code)
        self.status = status

    def __reduce__(self):
        return (_rebuild_service, (type(self), self.message, self.path, self.code, self.status))


def _rebuild_service(cls, message, path, code, status):
    return cls(message, path, code=code, status=status)


class ThrottledError(ServiceError):
    """The service kept throttling (``SlowDown``, 503) after every retry."""


class TransportError(EmrfsError):
    """The connection failed (refused, dropped mid-body, timed out) after every retry."""


class ConsistencyError(EmrfsError):
    """The consistent view's metadata and S3 disagree after the retry policy ran out.

    ``paths`` lists every path that disagreed; ``reason`` says how.
    """

    def __init__(
        self,
        message: str,
        path: str | None = None,
        *,
        paths: tuple[str, ...] = (),
        reason: str = "",
        code: str | None = None,
    ):
        super().__init__(message, path, code=code)
        self.paths = tuple(paths) or ((path,) if path else ())
        self.reason = reason

    def __reduce__(self):
        return (
            _rebuild_consistency,
            (type(self), self.message, self.path, self.paths, self.reason, self.code),
        )


def _rebuild_consistency(cls, message, path, paths, reason, code):
    return cls(message, path, paths=paths, reason=reason, code=code)


class IntegrityError(EmrfsError):
    """Bytes did not verify: a block checksum, a GCM tag, a key commitment."""


class EncryptionError(EmrfsError):
    """A key, envelope or algorithm is missing, wrong or not allowed by policy."""


class ChangedError(EmrfsError):
    """The object's ETag is not the one the read was for (overwritten, or a stale copy)."""

    def __init__(self, path: str, expected: str, got: str | None):
        super().__init__(
            f"{path!r} changed while it was read (expected ETag {expected}, S3 served "
            f"{got or 'another version'}); open it again",
            path,
            code="PreconditionFailed",
        )
        self.expected = expected
        self.got = got

    def __reduce__(self):
        return (type(self), (self.path, self.expected, self.got))


# --- errno-shaped built-ins, as adlfs raises them -----------------------------


def _oserror(cls: type[OSError], code: int, path: str, hint: str = "") -> OSError:
    message = os.strerror(code) + (f" ({hint})" if hint else "")
    return cls(code, message, path)


def not_found(path: str, hint: str = "") -> FileNotFoundError:
    return _oserror(FileNotFoundError, errno.ENOENT, path, hint)  # type: ignore[return-value]


def exists(path: str, hint: str = "") -> FileExistsError:
    return _oserror(FileExistsError, errno.EEXIST, path, hint)  # type: ignore[return-value]


def is_a_directory(path: str, hint: str = "") -> IsADirectoryError:
    return _oserror(IsADirectoryError, errno.EISDIR, path, hint)  # type: ignore[return-value]


def not_a_directory(path: str, hint: str = "") -> NotADirectoryError:
    return _oserror(NotADirectoryError, errno.ENOTDIR, path, hint)  # type: ignore[return-value]


def not_empty(path: str, hint: str = "") -> OSError:
    return _oserror(OSError, errno.ENOTEMPTY, path, hint)


def missing_bucket(path: str, bucket: str | None = None) -> FileNotFoundError:
    """A write or mkdir into a bucket that does not exist: emrfs creates buckets only
    when asked for one by name, so say how."""
    bucket = bucket or path.split("/", 1)[0]
    error = not_found(
        path,
        f"bucket {bucket!r} does not exist; emrfs creates a bucket only "
        f"when asked: `emrfs mb s3://{bucket}`, fs.mkdir({bucket!r}) or "
        f"`aws s3 mb s3://{bucket}`",
    )
    error.missing_bucket = bucket  # type: ignore[attr-defined]
    return error


def permission_denied(path: str, hint: str = "") -> PermissionError:
    return _oserror(PermissionError, errno.EACCES, path, hint)  # type: ignore[return-value]


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


def error_chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and what caused it (``__cause__``, or pynamodb's ``cause``), without loops."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "cause", None) or exc.__cause__


def aws_error_code(exc: BaseException) -> tuple[str, int | None]:
    """The provider's error code and HTTP status of the first ``ClientError`` (or obstore
    error) in the chain."""
    from botocore.exceptions import ClientError

    for item in error_chain(exc):
        if isinstance(item, ClientError):
            return (
                str((item.response.get("Error") or {}).get("Code", "") or ""),
                item.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            )
        if is_obstore_error(item):
            return obstore_error_code(item)
    return "", None


#: obstore (Rust object_store) reports S3's answer only in its message text.
_OBSTORE_STATUS = re.compile(r"Server returned non-2xx status code: (\d{3})")
_OBSTORE_CODE = re.compile(r"<Code>([^<]+)</Code>")
_OBSTORE_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_OBSTORE_TLS = re.compile(r"(\w*Certificate\w*)\(\s*(\w+)")
_OBSTORE_OS_MESSAGE = re.compile(r'message: "([^"]+)"')
#: reqwest's failure kinds that mean the connection, not the service, failed
_OBSTORE_TRANSPORT = re.compile(r"HTTP error: |kind: (Connect|Timeout|Request|Body|Decode)\b")
#: obstore's exception classes for what S3 said (the rest are built-ins it raises too)
_OBSTORE_PRECONDITION = {
    "AlreadyExistsError": "PreconditionFailed",
    "PreconditionError": "PreconditionFailed",
    "PermissionDeniedError": "AccessDenied",
    "UnauthenticatedError": "InvalidAccessKeyId",
}


def is_obstore_error(exc: BaseException) -> bool:
    """An exception raised by obstore: its own classes, or a built-in it raised (obstore
    raises ``FileNotFoundError`` itself, with its debug trace in the message)."""
    if type(exc).__module__.startswith("obstore"):
        return True
    return isinstance(exc, (FileNotFoundError, ValueError)) and "Debug source:" in str(exc)


def obstore_error_code(exc: BaseException) -> tuple[str, int | None]:
    """S3's error code and HTTP status read from an obstore exception's text (the XML
    body it quotes), or its class when the body has none (a HEAD's 404 has no body)."""
    text = str(exc)
    status_match = _OBSTORE_STATUS.search(text)
    status = int(status_match.group(1)) if status_match else None
    code_match = _OBSTORE_CODE.search(text)
    if code_match:
        return code_match.group(1), status
    code = _OBSTORE_PRECONDITION.get(type(exc).__name__, "")
    if not code and isinstance(exc, FileNotFoundError):
        code = "NotFound"
    return code, status


def _row_key(service: str, exc: BaseException, code: str, status: int | None) -> tuple[str, str]:
    for key in ((service, code), (ANY, code)):
        if code and key in AWS_ERROR_TABLE:
            return key
    if status is not None and (service, str(status)) in AWS_ERROR_TABLE:
        return service, str(status)
    if code in THROTTLING_CODES or status == 503:
        return service, THROTTLED
    if any(_is_missing_credentials(e) for e in error_chain(exc)):
        return ANY, NO_CREDENTIALS
    if not code and any(_is_transport_error(e) for e in error_chain(exc)):
        return service, TRANSPORT
    return service, DEFAULT


_OURS = (
    EmrfsError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def _already_translated(exc: BaseException) -> bool:
    """An error emrfs (or Python) already classified; obstore raises a bare
    ``FileNotFoundError`` of its own, which still needs the table."""
    return isinstance(exc, _OURS) and not is_obstore_error(exc)


def translate_aws_error(
    exc: BaseException,
    path: str | None,
    service: str = S3,
    *,
    code: str | None = None,
    operation: str = "",
    resource: str = "",
    name: str = "",
    retries: int | None = None,
    elapsed: float | None = None,
) -> BaseException:
    """The emrfs/built-in exception for what an AWS call about ``path`` raised.

    One lookup in :data:`AWS_ERROR_TABLE` by ``(service, code)``; ``code``
    overrides the one read from the exception (for conditions a boundary
    recognises itself).  Errors emrfs already raised, and exceptions that are
    neither an AWS answer nor a transport failure, come back unchanged.  The
    result has ``exc`` as its ``__cause__``.
    """
    if _already_translated(exc):
        return exc
    read_code, status = aws_error_code(exc)
    code = code if code is not None else read_code
    key = _row_key(service, exc, code, status)
    if key[1] == DEFAULT and not code and not _is_aws_error(exc):
        return exc  # not ours to translate (a bug, a cancellation...)
    make, hint = AWS_ERROR_TABLE[key]
    failure = AwsFailure(
        service,
        path,
        code,
        status,
        _provider_message(exc),
        operation,
        resource,
        name,
        retries,
        elapsed,
    )
    new = make(failure, hint.format(name=name, path=path) if hint else hint)
    new.__cause__ = exc
    return new


def translate_s3_error(exc: BaseException, path: str) -> BaseException:
    """:func:`translate_aws_error` for S3 (the transport's boundary)."""
    return translate_aws_error(exc, path, S3)


def _provider_message(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    for item in error_chain(exc):
        if isinstance(item, ClientError):
            return (item.response.get("Error") or {}).get("Message") or str(item)
        if is_obstore_error(item):  # S3's own <Message>, else obstore's first line
            text = str(item)
            found = _OBSTORE_XML_MESSAGE.search(text)
            if found:
                return found.group(1)
            # and the root cause its debug trace names (a refused connection, a TLS
            # certificate not trusted), which the first line leaves out
            cause = _OBSTORE_TLS.search(text) or _OBSTORE_OS_MESSAGE.search(text)
            first = text.split("\n", 1)[0]
            if cause is None:
                return first
            return f"{first} ({' '.join(g for g in cause.groups() if g)})"
    return str(exc)


def _is_aws_error(exc: BaseException) -> bool:
    """A botocore or pynamodb error anywhere in the chain (the service's, or the SDK's)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from pynamodb.exceptions import PynamoDBException

    return any(
        isinstance(e, (BotoCoreError, ClientError, PynamoDBException)) or is_obstore_error(e)
        for e in error_chain(exc)
    )


def _is_missing_credentials(exc: BaseException) -> bool:
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    return isinstance(exc, (NoCredentialsError, PartialCredentialsError))


def _is_transport_error(exc: BaseException) -> bool:
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
        HTTPClientError,
        ReadTimeoutError,
        ResponseStreamingError,
    )

    if is_obstore_error(exc):  # no S3 answer, and reqwest says the connection failed
        return (
            _OBSTORE_STATUS.search(str(exc)) is None
            and _OBSTORE_TRANSPORT.search(str(exc)) is not None
        )
    transport: tuple[type[BaseException], ...] = (
        BotoConnectionError,
        HTTPClientError,
        ReadTimeoutError,
        ResponseStreamingError,
        ConnectionError,
        TimeoutError,
    )
    try:
        import aiohttp

        transport = (*transport, aiohttp.ClientError)
    except ImportError:  # pragma: no cover - aiohttp comes with aiobotocore
        pass
    return isinstance(exc, transport)


def is_retryable(exc: BaseException) -> bool:
    """True for throttling, transient server errors and dropped connections."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {}) or {}
        code = str(error.get("Code", "") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in THROTTLING_CODES or code in TRANSIENT_CODES or status in (500, 502, 503, 504)
    return _is_transport_error(exc) or isinstance(exc, (ThrottledError, TransportError))


@contextlib.contextmanager
def map_s3_errors(path: str) -> Iterator[None]:
    """Translate what S3 raises inside the block into the emrfs hierarchy, once."""
    try:
        yield
    except Exception as exc:
        new = translate_s3_error(exc, path)  # errors already ours come back unchanged
        if new is exc:
            raise
        raise new from exc

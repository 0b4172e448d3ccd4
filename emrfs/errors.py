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
          └── EncryptionError         a key or envelope is missing, wrong or unsupported

Translation happens once, at the S3 boundary, through :data:`S3_ERROR_TABLE`
(``map_s3_errors`` below).  Every message names the path and, where the user
can do something about it, what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from typing import Any

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
    "S3_ERROR_TABLE",
    "translate_s3_error",
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

    def __init__(self, message: str, path: str | None = None, *, code: str | None = None,
                 status: int | None = None):
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

    def __init__(self, message: str, path: str | None = None, *, paths: tuple[str, ...] = (),
                 reason: str = "", code: str | None = None):
        super().__init__(message, path, code=code)
        self.paths = tuple(paths) or ((path,) if path else ())
        self.reason = reason

    def __reduce__(self):
        return (_rebuild_consistency,
                (type(self), self.message, self.path, self.paths, self.reason, self.code))


def _rebuild_consistency(cls, message, path, paths, reason, code):
    return cls(message, path, paths=paths, reason=reason, code=code)


class IntegrityError(EmrfsError):
    """Bytes did not verify: a block checksum, a GCM tag, a key commitment."""


class EncryptionError(EmrfsError):
    """A key, envelope or algorithm is missing, wrong or not allowed by policy."""


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
    error = not_found(path, f"bucket {bucket!r} does not exist; emrfs creates a bucket only "
                            f"when asked: `emrfs mb s3://{bucket}`, fs.mkdir({bucket!r}) or "
                            f"`aws s3 mb s3://{bucket}`")
    error.missing_bucket = bucket  # type: ignore[attr-defined]
    return error


def permission_denied(path: str, hint: str = "") -> PermissionError:
    return _oserror(PermissionError, errno.EACCES, path, hint)  # type: ignore[return-value]


# --- the table ------------------------------------------------------------------

_CREDENTIALS_HINT = "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile in use"

#: S3 error code -> (factory taking (path, code, message), hint).  One row per code.
S3_ERROR_TABLE: dict[str, tuple[Any, str]] = {
    "NoSuchKey": (not_found, ""),
    "NoSuchBucket": (lambda p, h: missing_bucket(p), ""),
    "NoSuchUpload": (not_found, "the multipart upload was aborted or completed"),
    "NoSuchVersion": (not_found, "that version id does not exist"),
    "404": (not_found, ""),
    "NotFound": (not_found, ""),
    "PreconditionFailed": (exists, "it already exists and overwrite was not allowed"),
    "412": (exists, "it already exists and overwrite was not allowed"),
    "BucketAlreadyExists": (exists, "bucket names are global; pick another name"),
    "BucketAlreadyOwnedByYou": (exists, "you already own this bucket"),
    "AccessDenied": (permission_denied, "the credentials in use may not do this"),
    "AllAccessDisabled": (permission_denied, "all access to this object is disabled"),
    "InvalidAccessKeyId": (permission_denied, _CREDENTIALS_HINT),
    "SignatureDoesNotMatch": (permission_denied, _CREDENTIALS_HINT),
    "ExpiredToken": (permission_denied, "the session token expired; refresh credentials"),
    "403": (permission_denied, ""),
    "BucketNotEmpty": (not_empty, "delete its contents first, or use recursive=True"),
    "InvalidBucketName": (lambda p, h: InvalidPathError(
        f"invalid bucket name in {p!r}: {h}", p), "bucket names are 3-63 characters of a-z, 0-9, '.' and '-'"),
    "KeyTooLongError": (lambda p, h: InvalidPathError(
        f"key too long in {p!r}: {h}", p), "S3 keys are at most 1024 bytes"),
    "InvalidRange": (lambda p, h: ServiceError(
        f"invalid range for {p!r}", p, code="InvalidRange", status=416), ""),
}

#: Codes that mean "slow down": retried with backoff, then ThrottledError.
THROTTLING_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "RequestThrottled", "ServiceUnavailable", "503",
})

#: Codes worth retrying besides throttling (server-side hiccups).
TRANSIENT_CODES = frozenset({"InternalError", "500", "502", "504", "RequestTimeout"})


def translate_s3_error(exc: BaseException, path: str) -> BaseException:
    """Return the emrfs/built-in exception for a botocore/aiohttp error about ``path``.

    The returned exception has ``exc`` as its ``__cause__``.
    """
    from botocore.exceptions import ClientError  # local: keep errors importable cheaply

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {}) or {}
        code = str(error.get("Code", "") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = error.get("Message") or str(exc)
        row = S3_ERROR_TABLE.get(code) or S3_ERROR_TABLE.get(str(status))
        if row is not None:
            factory, hint = row
            new = factory(path, hint or message)
        elif code in THROTTLING_CODES or status == 503:
            new = ThrottledError(
                f"S3 kept throttling requests for {path!r} ({code or status}) after all "
                "retries; lower the request rate or raise s3.max_attempts", path,
                code=code or str(status), status=status)
        else:
            new = ServiceError(f"S3 error {code or status} for {path!r}: {message}", path,
                               code=code or None, status=status)
    elif _is_missing_credentials(exc):
        new = permission_denied(path, "no AWS credentials found: set AWS_ACCESS_KEY_ID and "
                                      "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where an "
                                      "instance or task role provides them")
    elif _is_transport_error(exc):
        new = TransportError(
            f"connection to the S3 endpoint failed for {path!r} after all retries: {exc}; "
            "check that the endpoint is up and reachable", path)
    else:
        return exc
    new.__cause__ = exc
    return new


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

    transport = (BotoConnectionError, HTTPClientError, ReadTimeoutError,
                 ResponseStreamingError, ConnectionError, TimeoutError)
    try:
        import aiohttp

        transport = transport + (aiohttp.ClientError,)
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
    except (EmrfsError, FileNotFoundError, FileExistsError, PermissionError,
            IsADirectoryError, NotADirectoryError):
        raise
    except Exception as exc:
        new = translate_s3_error(exc, path)
        if new is exc:
            raise
        raise new from exc

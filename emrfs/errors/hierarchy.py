r"""The emrfs exception classes, and the built-in ``OSError``\ s shaped as adlfs raises them
(errno, message naming the path and what to do).  See :mod:`emrfs.errors`."""

from __future__ import annotations

import errno
import os


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

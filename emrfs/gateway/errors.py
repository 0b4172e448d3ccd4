"""Python exceptions -> WebHDFS ``RemoteException`` JSON, the inverse of fsspec's table.

Hadoop's client rebuilds the Java exception from ``javaClassName``; fsspec's
``webhdfs`` client reads ``exception`` for statuses 400/401/403/404/500 and maps
``IllegalArgumentException``/``UnsupportedOperationException`` -> ValueError,
``SecurityException``/``AccessControlException`` -> PermissionError,
``FileNotFoundException`` -> FileNotFoundError.  Statuses follow Hadoop's own
``ExceptionHandler``: a plain ``IOException`` is 403; server-side failures the
client may retry (S3 unreachable, throttled) are 500/503.
"""

from __future__ import annotations

import errno
import json
import logging

from ..errors import InvalidPathError, ServiceError, ThrottledError, TransportError

logger = logging.getLogger("emrfs.gateway")

__all__ = ["GatewayError", "remote_exception", "error_body"]

#: Java simple name -> (package, HTTP status)
JAVA_EXCEPTIONS: dict[str, tuple[str, int]] = {
    "IllegalArgumentException": ("java.lang", 400),
    "UnsupportedOperationException": ("java.lang", 400),
    "SecurityException": ("java.lang", 401),
    "AccessControlException": ("org.apache.hadoop.security", 403),
    "FileAlreadyExistsException": ("org.apache.hadoop.fs", 403),
    "ParentNotDirectoryException": ("org.apache.hadoop.fs", 403),
    "PathIsNotEmptyDirectoryException": ("org.apache.hadoop.fs", 403),
    "IOException": ("java.io", 403),
    "FileNotFoundException": ("java.io", 404),
    "RetriableException": ("org.apache.hadoop.ipc", 503),
    "RuntimeException": ("java.lang", 500),
}

#: errno -> Java exception for errno-shaped OSErrors (adlfs/emrfs style).
_ERRNO_TABLE = {
    errno.ENOENT: "FileNotFoundException",
    errno.EEXIST: "FileAlreadyExistsException",
    errno.EACCES: "AccessControlException",
    errno.EPERM: "AccessControlException",
    errno.ENOTDIR: "ParentNotDirectoryException",
    errno.ENOTEMPTY: "PathIsNotEmptyDirectoryException",
    errno.EINVAL: "IllegalArgumentException",
}


class GatewayError(Exception):
    """An error the gateway itself raises, already named in Hadoop's terms."""

    def __init__(self, exception: str, message: str, status: int | None = None):
        super().__init__(message)
        if exception not in JAVA_EXCEPTIONS:
            raise AssertionError(f"unknown Java exception {exception}")
        self.exception = exception
        self.message = message
        self.status = status or JAVA_EXCEPTIONS[exception][1]


def bad_request(message: str) -> GatewayError:
    return GatewayError("IllegalArgumentException", message)


def _classify(exc: BaseException) -> tuple[str, int | None]:
    """Pick the Java exception (and a status override) for a Python exception."""
    if isinstance(exc, GatewayError):
        return exc.exception, exc.status
    if isinstance(exc, ThrottledError):
        return "RetriableException", None
    if isinstance(exc, (ServiceError, TransportError)):
        return "IOException", 500
    if isinstance(exc, FileNotFoundError):
        return "FileNotFoundException", None
    if isinstance(exc, FileExistsError):
        return "FileAlreadyExistsException", None
    if isinstance(exc, PermissionError):
        return "AccessControlException", None
    if isinstance(exc, NotADirectoryError):
        return "ParentNotDirectoryException", None
    if isinstance(exc, IsADirectoryError):
        return "IOException", None
    if isinstance(exc, (InvalidPathError, ValueError)):
        return "IllegalArgumentException", None
    if isinstance(exc, NotImplementedError):
        return "UnsupportedOperationException", None
    if isinstance(exc, OSError):
        return _ERRNO_TABLE.get(exc.errno or 0, "IOException"), None
    return "RuntimeException", None


def _message(exc: BaseException) -> str:
    if isinstance(exc, GatewayError):
        return exc.message
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def remote_exception(exc: BaseException) -> tuple[int, dict]:
    """``(status, {"RemoteException": {...}})`` for ``exc``."""
    name, status = _classify(exc)
    package, default_status = JAVA_EXCEPTIONS[name]
    status = status or default_status
    if status >= 500:
        logger.warning("request failed: %r", exc, exc_info=exc)
    body = {
        "RemoteException": {
            "exception": name,
            "javaClassName": f"{package}.{name}",
            "message": _message(exc),
        }
    }
    return status, body


def error_body(exc: BaseException) -> tuple[int, bytes]:
    status, body = remote_exception(exc)
    return status, json.dumps(body).encode()

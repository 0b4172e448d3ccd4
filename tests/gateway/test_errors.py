"""The Python -> Hadoop exception table, checked against fsspec's client-side table."""

from __future__ import annotations

import errno

import pytest

from emrfs.errors import InvalidPathError, ServiceError, ThrottledError, not_empty
from emrfs.gateway.errors import GatewayError, remote_exception


@pytest.mark.parametrize(
    "exc, name, status",
    [
        (FileNotFoundError(errno.ENOENT, "No such file", "b/k"), "FileNotFoundException", 404),
        (FileExistsError("b/k"), "FileAlreadyExistsException", 403),
        (PermissionError("b/k"), "AccessControlException", 403),
        (NotADirectoryError("b/k"), "ParentNotDirectoryException", 403),
        (not_empty("b/d"), "PathIsNotEmptyDirectoryException", 403),
        (OSError(errno.EIO, "io"), "IOException", 403),
        (InvalidPathError("bad", "b/.."), "IllegalArgumentException", 400),
        (ValueError("bad"), "IllegalArgumentException", 400),
        (NotImplementedError(), "UnsupportedOperationException", 400),
        (ServiceError("s3 said no", "b/k", code="InternalError", status=500), "IOException", 500),
        (ThrottledError("slow down", "b/k"), "RetriableException", 503),
        (GatewayError("SecurityException", "no token"), "SecurityException", 401),
        (KeyError("boom"), "RuntimeException", 500),
    ],
)
def test_table(exc, name, status):
    got_status, body = remote_exception(exc)
    remote = body["RemoteException"]
    assert (remote["exception"], got_status) == (name, status)
    assert remote["javaClassName"].rsplit(".", 1)[1] == name and remote["message"]


@pytest.mark.parametrize(
    "exc, python",
    [
        (FileNotFoundError("x"), FileNotFoundError),
        (PermissionError("x"), PermissionError),
        (GatewayError("SecurityException", "x"), PermissionError),
        (ValueError("x"), ValueError),
        (NotImplementedError("x"), ValueError),
    ],
)
def test_fsspec_client_raises_the_same_python_class(exc, python):
    """The inverse of fsspec webhdfs's ``_call`` table holds for the names it knows."""
    fsspec_table = {
        "IllegalArgumentException": ValueError,
        "UnsupportedOperationException": ValueError,
        "SecurityException": PermissionError,
        "AccessControlException": PermissionError,
        "FileNotFoundException": FileNotFoundError,
    }
    _, body = remote_exception(exc)
    assert fsspec_table[body["RemoteException"]["exception"]] is python

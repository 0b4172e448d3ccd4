"""Malformed or unauthorised requests: the right status and a RemoteException body."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import fsspec
import pytest

from emrfs.gateway import serve_in_thread


def raw(url: str, method: str, target: str, headers: dict | None = None):
    """Send ``target`` byte for byte (no client-side ``..`` clean-up, unlike requests)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, target, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def remote(body: bytes) -> dict:
    return json.loads(body)["RemoteException"]


@pytest.mark.parametrize(
    "method, target, status, exception",
    [
        ("GET", "/webhdfs/v1/bucket?op=NOSUCHOP", 400, "IllegalArgumentException"),
        ("GET", "/webhdfs/v1/bucket", 400, "IllegalArgumentException"),
        ("PUT", "/webhdfs/v1/bucket?op=GETFILESTATUS", 400, "UnsupportedOperationException"),
        ("PUT", "/webhdfs/v1/bucket/a?op=RENAME", 400, "IllegalArgumentException"),
        (
            "PUT",
            "/webhdfs/v1/bucket/a?op=RENAME&destination=relative",
            400,
            "IllegalArgumentException",
        ),
        (
            "PUT",
            "/webhdfs/v1/bucket/a?op=RENAME&destination=/bucket/../x",
            400,
            "IllegalArgumentException",
        ),
        ("GET", "/webhdfs/v1/bucket/../../etc/passwd?op=OPEN", 400, "IllegalArgumentException"),
        (
            "GET",
            "/webhdfs/v1/bucket/%2e%2e/%2e%2e/etc?op=GETFILESTATUS",
            400,
            "IllegalArgumentException",
        ),
        ("GET", "/webhdfs/v1/bucket/a%2F..%2F..?op=GETFILESTATUS", 400, "IllegalArgumentException"),
        ("GET", "/webhdfs/v1/bucket?op=LISTSTATUS_BATCH&startAfter=&x=1", 200, None),
        ("GET", "/webhdfs/v1/bucket/f?op=OPEN&offset=-3", 400, "IllegalArgumentException"),
        ("DELETE", "/webhdfs/v1/bucket?op=DELETE&recursive=maybe", 400, "IllegalArgumentException"),
        ("GET", "/webhdfs/v1/bucket/missing?op=GETFILESTATUS", 404, "FileNotFoundException"),
        ("PUT", "/webhdfs/v1/bucket/f?op=CREATE", 403, "FileAlreadyExistsException"),
        ("GET", "/other/path", 400, "IllegalArgumentException"),
        ("GET", "/webhdfs/v1/bucket/f?op=OPEN&ticket=1.bad", 401, "SecurityException"),
    ],
)
def test_bad_request(plain, method, target, status, exception):
    gateway, root = plain
    got, headers, body = raw(gateway.url, method, target)
    assert got == status, body
    assert "Content-Type" not in headers  # JSON goes out bare: Spark's client needs that
    if exception:
        err = remote(body)
        assert err["exception"] == exception and err["javaClassName"].endswith(exception)
        assert err["message"]
    assert not (root / "etc").exists() and not (root.parent / "etc").exists()


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    root = tmp_path_factory.mktemp("plain")
    (root / "bucket").mkdir()
    (root / "bucket" / "f").write_bytes(b"x")
    fs = fsspec.implementations.dirfs.DirFileSystem(str(root), fs=fsspec.filesystem("file"))
    with serve_in_thread(fs) as gateway:
        yield gateway, root


@pytest.fixture
def guarded(tmp_path):
    (tmp_path / "bucket").mkdir()
    fs = fsspec.implementations.dirfs.DirFileSystem(str(tmp_path), fs=fsspec.filesystem("file"))
    with serve_in_thread(fs, token="s3cret") as gateway:
        yield gateway


@pytest.mark.parametrize(
    "query, headers, status",
    [
        ("", {}, 401),
        ("&delegation=wrong", {}, 401),
        ("", {"Authorization": "Bearer wrong"}, 401),
        ("&ticket=1.forged", {}, 401),  # only data URLs may carry a ticket instead
        ("&delegation=s3cret", {}, 200),
        ("", {"Authorization": "Bearer s3cret"}, 200),
    ],
)
def test_token(guarded, query, headers, status):
    got, _, body = raw(guarded.url, "GET", f"/webhdfs/v1/bucket?op=GETFILESTATUS{query}", headers)
    assert got == status, body
    if status == 401:
        assert remote(body)["exception"] == "SecurityException"


def test_token_with_fsspec_client_and_signed_data_urls(guarded):
    good = fsspec.filesystem(
        "webhdfs", host="127.0.0.1", port=guarded.port, token="s3cret", skip_instance_cache=True
    )
    good.pipe("/bucket/f.bin", b"payload")  # CREATE/APPEND data URLs carry a ticket
    assert good.cat("/bucket/f.bin") == b"payload"
    bad = fsspec.filesystem(
        "webhdfs", host="127.0.0.1", port=guarded.port, token="nope", skip_instance_cache=True
    )
    with pytest.raises(PermissionError):
        bad.ls("/bucket")
    # a ticket names one path and op: reusing it for another path is refused
    _status, headers, _ = raw(
        guarded.url, "GET", "/webhdfs/v1/bucket/f.bin?op=OPEN&delegation=s3cret"
    )
    location = urlsplit(headers["Location"])
    assert "s3cret" not in headers["Location"]
    other = f"/webhdfs/v1/bucket/other?{location.query}"
    got, _, body = raw(guarded.url, "GET", other)
    assert got == 401 and remote(body)["exception"] == "SecurityException"
    got, _, body = raw(guarded.url, "GET", f"{location.path}?{location.query}&offset=3")
    assert got == 200 and body == b"load"

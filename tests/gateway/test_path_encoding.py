"""Paths as Hadoop sends them: raw UTF-8 in the request line (``URI.getRawPath``
leaves non-ASCII as it is) or percent-encoded; spaces, ``+``, ``%``, ``=``, ``&``.
And every refusal, aiohttp's own included, is ``RemoteException`` JSON."""

from __future__ import annotations

import json
import socket
from urllib.parse import quote

import pytest

NAMES = ["zürich", "São Paulo", "a+b", "100%", "k=v&x", "日本語 データ"]


def _raw(port: int, method: str, target: bytes, body: bytes = b"") -> tuple[int, dict, bytes]:
    """One request with ``target`` sent byte for byte; (status, headers, body)."""
    head = (
        method.encode()
        + b" "
        + target
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    top, _, payload = answer.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, payload


def _target(path: str, query: str, raw_utf8: bool) -> bytes:
    # Hadoop's form: reserved characters percent-encoded, non-ASCII raw (or encoded)
    encoded = quote(path, safe="/" + ("".join(c for c in path if ord(c) > 127) if raw_utf8 else ""))
    return f"/webhdfs/v1{encoded}?{query}".encode()


@pytest.mark.parametrize("raw_utf8", [True, False], ids=["raw-utf8", "percent-encoded"])
def test_every_verb_on_non_ascii_and_reserved_names(served, gateway, raw_utf8):
    bucket = served.bucket
    for name in NAMES:
        directory = f"/{bucket}/d-{name}"
        status, _, body = _raw(gateway.port, "PUT", _target(directory, "op=MKDIRS", raw_utf8))
        assert (status, json.loads(body)) == (200, {"boolean": True}), (name, body)
        file_path = f"{directory}/f {name}.txt"
        data = f"content of {name}".encode()
        status, headers, body = _raw(gateway.port, "PUT", _target(file_path, "op=CREATE", raw_utf8))
        assert status == 307, (name, body)
        location = headers["Location"].split("127.0.0.1", 1)[1].split("/", 1)[1]
        status, _, body = _raw(gateway.port, "PUT", b"/" + location.encode(), data)
        assert status == 201, (name, body)
        # the side channel: the key S3 (or the directory) holds is the decoded name
        assert served.read_raw(file_path.lstrip("/")) == data
        status, _, body = _raw(
            gateway.port, "GET", _target(file_path, "op=GETFILESTATUS", raw_utf8)
        )
        assert status == 200 and json.loads(body)["FileStatus"]["length"] == len(data)
        status, _, body = _raw(gateway.port, "GET", _target(directory, "op=LISTSTATUS", raw_utf8))
        listed = [s["pathSuffix"] for s in json.loads(body)["FileStatuses"]["FileStatus"]]
        assert status == 200 and listed == [f"f {name}.txt"], (name, body)
        status, _, body = _raw(
            gateway.port, "GET", _target(file_path, "op=OPEN&noredirect=true", raw_utf8)
        )
        data_url = json.loads(body)["Location"].split("127.0.0.1", 1)[1].split("/", 1)[1]
        status, _, body = _raw(gateway.port, "GET", b"/" + data_url.encode())
        assert (status, body) == (200, data), name
        renamed = f"/{bucket}/d-{name}/g={name}"
        query = "op=RENAME&destination=" + quote(renamed, safe="/")
        status, _, body = _raw(gateway.port, "PUT", _target(file_path, query, raw_utf8))
        assert (status, json.loads(body)) == (200, {"boolean": True}), (name, body)
        assert served.read_raw(renamed.lstrip("/")) == data
        status, _, body = _raw(
            gateway.port, "DELETE", _target(directory, "op=DELETE&recursive=true", raw_utf8)
        )
        assert (status, json.loads(body)) == (200, {"boolean": True}), (name, body)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /webhdfs/v1/x?op=LISTSTATUS HTTP/1.1\r\nNoColonHeader\r\n\r\n",
        b"GET /webhdfs/v1/x\x01y?op=LISTSTATUS HTTP/1.1\r\nHost: a\r\n\r\n",
    ],
    ids=["request-line", "header", "control-char"],
)
def test_requests_aiohttp_refuses_are_remote_exceptions(served, gateway, request_bytes):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    top, _, payload = answer.partition(b"\r\n\r\n")
    assert top.split()[1] == b"400", answer
    assert b"content-type" not in top.lower()  # as every JSON answer (Spark breaks on one)
    exception = json.loads(payload)["RemoteException"]
    assert exception["exception"] == "IllegalArgumentException"
    assert exception["javaClassName"] == "java.lang.IllegalArgumentException"

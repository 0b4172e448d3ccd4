"""fsspec's own ``webhdfs`` client against the gateway: every verb it has."""

from __future__ import annotations

import os
import uuid

import pytest
import requests


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_ls_info_and_owner(served, client):
    root = client.ls("/", detail=False)
    assert f"/{served.bucket}" in root
    client.pipe(f"/{served.bucket}/d/f.txt", b"hello")
    info = client.info(f"/{served.bucket}/d/f.txt")
    assert info["type"] == "file" and info["size"] == 5
    assert info["owner"] == "alice"  # user.name is reported as the owner
    assert int(info["permission"], 8) > 0 and info["blockSize"] > 0
    assert client.info(f"/{served.bucket}/d")["type"] == "directory"
    listing = client.ls(f"/{served.bucket}/d", detail=True)
    assert [(e["name"], e["size"]) for e in listing] == [(f"/{served.bucket}/d/f.txt", 5)]
    assert client.ls(f"/{served.bucket}/d/f.txt", detail=False) == [f"/{served.bucket}/d/f.txt/"]
    with pytest.raises(FileNotFoundError):
        client.info(f"/{served.bucket}/missing")


def test_write_with_create_and_append_then_ranged_reads(served, client):
    data = os.urandom(9 * 1024 * 1024 + 123)  # several APPENDs of the client's 4 MiB blocks
    path = f"/{served.bucket}/{unique()}/blob.bin"
    with client.open(path, "wb") as f:
        f.write(data[:100])
        f.write(data[100:])
    assert client.info(path)["size"] == len(data)
    assert served.read_raw(path.lstrip("/")) == data
    with client.open(path, "rb", block_size=1024 * 1024) as f:
        f.seek(5_000_000)
        assert f.read(4096) == data[5_000_000:5_004_096]
        f.seek(len(data) - 10)
        assert f.read() == data[-10:]
    assert client.cat_file(path, start=7, end=70) == data[7:70]


def test_append_to_an_existing_file_keeps_its_bytes(served, client, gateway):
    # fsspec's "ab" mode never sets its upload URL, so APPEND goes over raw HTTP here.
    path = f"/{served.bucket}/{unique()}.log"
    client.pipe(path, b"first|")
    for piece in (b"second|", b"third"):
        step = requests.post(
            f"{gateway.url}/webhdfs/v1{path}?op=APPEND&user.name=alice", allow_redirects=False
        )
        assert step.status_code == 307, step.text
        done = requests.post(step.headers["Location"], data=piece)
        assert done.status_code == 200, done.text
    assert client.cat(path) == b"first|second|third"
    assert served.read_raw(path.lstrip("/")) == b"first|second|third"


def test_mv_file_and_directory_and_rm(served, client):
    base = f"/{served.bucket}/{unique()}"
    client.pipe(f"{base}/src/a.txt", b"a")
    client.pipe(f"{base}/src/sub/b.txt", b"bb")
    client.mv(f"{base}/src", f"{base}/dst")
    assert not client.exists(f"{base}/src")
    assert client.cat(f"{base}/dst/sub/b.txt") == b"bb"
    client.mv(f"{base}/dst/a.txt", f"{base}/a2.txt")
    assert client.cat(f"{base}/a2.txt") == b"a"
    assert served.read_raw(f"{base}/a2.txt".lstrip("/")) == b"a"
    client.rm(f"{base}/a2.txt")
    assert not client.exists(f"{base}/a2.txt")
    with pytest.raises(RuntimeError, match="non empty"):
        client.rm(f"{base}/dst")
    client.rm(f"{base}/dst", recursive=True)
    assert client.ls(base, detail=False) == []


def test_mkdir_summary_checksum_home(served, client):
    base = f"/{served.bucket}/{unique()}"
    client.mkdir(f"{base}/x/y")
    assert client.info(f"{base}/x/y")["type"] == "directory"
    client.pipe(f"{base}/x/f1", b"12345")
    client.pipe(f"{base}/x/y/f2", b"678")
    summary = client.content_summary(f"{base}/x")
    assert (summary["length"], summary["fileCount"], summary["directoryCount"]) == (8, 2, 2)
    checksum = client.ukey(f"{base}/x/f1")
    assert checksum["algorithm"] == "MD5-of-0MD5-of-512CRC32" and checksum["length"] == 28
    assert client.ukey(f"{base}/x/y/f2") != checksum
    assert client.home_directory() == "/user/alice"
    client.chmod(f"{base}/x/f1", "600")  # accepted, S3 keeps no modes
    client.set_replication(f"{base}/x/f1", 2)

"""Bounded reads when a client leaves early, append sessions, paged listings, tickets."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import fsspec
import pytest
import requests
from fsspec.implementations.dirfs import DirFileSystem

from emrfs.gateway import serve_in_thread
from emrfs.gateway.auth import Authenticator
from emrfs.gateway.errors import GatewayError
from tests.helpers import get_headers_then_drop


def wait_for(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class CountingDirFS(DirFileSystem):
    """A local directory that counts the bytes the gateway reads from it, and its listings."""

    bytes_read = 0
    listings = 0

    def cat_file(self, path, start=None, end=None, **kwargs):
        data = super().cat_file(path, start=start, end=end, **kwargs)
        type(self).bytes_read += len(data)
        return data

    def ls(self, path, detail=True, **kwargs):
        type(self).listings += 1
        return super().ls(path, detail=detail, **kwargs)


@pytest.fixture
def counting(tmp_path):
    (tmp_path / "bucket").mkdir()
    CountingDirFS.bytes_read = 0
    CountingDirFS.listings = 0
    fs = CountingDirFS(str(tmp_path), fs=fsspec.filesystem("file"))
    with serve_in_thread(
        fs, append_idle_seconds=0.3, list_page_size=2, read_chunk_max=2 * 1024 * 1024, read_ahead=2
    ) as gateway:
        yield gateway, tmp_path


def test_open_without_length_reads_only_ahead_of_a_client_that_leaves(counting):
    gateway, root = counting
    (root / "bucket" / "big.bin").write_bytes(b"\1" * (64 * 1024 * 1024))
    step = requests.get(
        f"{gateway.url}/webhdfs/v1/bucket/big.bin?op=OPEN&offset=1000", allow_redirects=False
    )
    assert step.status_code == 307
    # Hadoop's way: no length, read a little, drop the connection
    head = get_headers_then_drop(step.headers["Location"])
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 67107864" in head
    time.sleep(0.5)
    # what the reads ahead (2 x 2 MiB) and the socket buffers hold, not the 64 MiB
    assert CountingDirFS.bytes_read < 24 * 1024 * 1024
    # the same data URL serves any other offset
    again = requests.get(f"{step.headers['Location'].split('&offset=')[0]}&offset=67108860")
    assert again.content == b"\1" * 4


def test_append_session_commits_when_idle_or_touched(counting):
    gateway, root = counting
    url = f"{gateway.url}/webhdfs/v1/bucket/log.txt"
    assert requests.put(f"{url}?op=CREATE&overwrite=true").status_code == 201
    for piece in (b"a", b"b", b"c"):
        assert requests.post(f"{url}?op=APPEND", data=piece).status_code == 200
    assert (root / "bucket" / "log.txt").read_bytes() == b""  # still an open upload
    time.sleep(1.0)  # idle commit
    assert (root / "bucket" / "log.txt").read_bytes() == b"abc"
    assert requests.post(f"{url}?op=APPEND", data=b"d").status_code == 200
    status = requests.get(f"{url}?op=GETFILESTATUS").json()  # touching it commits first
    assert status["FileStatus"]["length"] == 4
    with pytest.raises(FileNotFoundError):
        fsspec.filesystem(
            "webhdfs", host="127.0.0.1", port=gateway.port, skip_instance_cache=True
        ).info("/bucket/nothing")
    missing = requests.post(f"{gateway.url}/webhdfs/v1/bucket/nothing?op=APPEND", data=b"x")
    assert missing.status_code == 404


def test_liststatus_batch_pages(counting):
    gateway, root = counting
    CountingDirFS.listings = 0
    for name in "abcde":
        (root / "bucket" / name).write_bytes(name.encode())
    seen, start_after = [], ""
    while True:
        page = requests.get(
            f"{gateway.url}/webhdfs/v1/bucket?op=LISTSTATUS_BATCH&startAfter={start_after}"
        ).json()["DirectoryListing"]
        names = [s["pathSuffix"] for s in page["partialListing"]["FileStatuses"]["FileStatus"]]
        assert len(names) <= 2
        seen += names
        if not page["remainingEntries"]:
            break
        start_after = names[-1]
    assert seen == list("abcde")
    assert CountingDirFS.listings == 1  # the pages after the first are cut from its listing


def test_rename_answers_like_hdfs(counting):
    gateway, root = counting
    (root / "bucket" / "d").mkdir()
    (root / "bucket" / "f").write_bytes(b"f")
    (root / "bucket" / "g").write_bytes(b"g")

    def rename(src, dst, extra=""):
        r = requests.put(f"{gateway.url}/webhdfs/v1{src}?op=RENAME&destination={dst}{extra}")
        return r.status_code, r.json()

    assert rename("/bucket/missing", "/bucket/x") == (200, {"boolean": False})
    assert rename("/bucket/f", "/bucket/g") == (200, {"boolean": False})  # file exists
    assert rename("/bucket/f", "/bucket/no/parent") == (200, {"boolean": False})
    assert rename("/bucket/d", "/bucket/d/inside") == (200, {"boolean": False})
    assert rename("/bucket/f", "/bucket/d") == (200, {"boolean": True})  # into the dir
    assert (root / "bucket" / "d" / "f").read_bytes() == b"f"
    assert rename("/bucket/d/f", "/bucket/g", "&renameoptions=OVERWRITE") == (
        200,
        {"boolean": True},
    )
    assert (root / "bucket" / "g").read_bytes() == b"f"


def test_tickets_expire_and_bind_op_and_path():
    now = [1000.0]
    auth = Authenticator("k", ticket_ttl=60, clock=lambda: now[0])
    ticket = auth.ticket("OPEN", "/b/f")
    auth.verify_ticket(ticket, "OPEN", "/b/f")
    for op, path in (("CREATE", "/b/f"), ("OPEN", "/b/g")):
        with pytest.raises(GatewayError):
            auth.verify_ticket(ticket, op, path)
    now[0] += 61
    with pytest.raises(GatewayError, match="expired"):
        auth.verify_ticket(ticket, "OPEN", "/b/f")
    other = Authenticator("other-secret", clock=lambda: 1000.0)
    with pytest.raises(GatewayError):
        other.verify_ticket(ticket, "OPEN", "/b/f")


def test_create_cut_off_mid_body_leaves_nothing(served, gateway):
    path = f"/{served.bucket}/cut/off.bin"
    step = requests.put(f"{gateway.url}/webhdfs/v1{path}?op=CREATE", allow_redirects=False)
    location = urlsplit(step.headers["Location"])
    with socket.create_connection((location.hostname, location.port)) as sock:
        sock.sendall(
            f"PUT {location.path}?{location.query} HTTP/1.1\r\n"
            f"Host: {location.netloc}\r\nContent-Length: {48 * 1024 * 1024}\r\n\r\n".encode()
        )
        for _ in range(36):  # 36 MiB of the promised 48: past emrfs's first 32 MiB part
            sock.sendall(b"\0" * (1024 * 1024))
        if served.kind == "emrfs":  # hang up only once the multipart upload has begun
            assert wait_for(lambda: served.pending_uploads())
        else:
            time.sleep(0.5)
    assert wait_for(lambda: not served.pending_uploads())  # aborted, not completed
    status = requests.get(f"{gateway.url}/webhdfs/v1{path}?op=GETFILESTATUS")
    assert status.status_code == 404

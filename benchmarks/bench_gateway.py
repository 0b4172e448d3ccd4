"""Gateway throughput against the filesystem used directly.

    python -m benchmarks.bench_gateway                 # 32 MiB on emrfs over local moto
    python -m benchmarks.bench_gateway --size-mib 256  # the issue's size
    python -m benchmarks.bench_gateway --local         # a local directory instead

The gateway runs as its own process (``emrfs gateway``), as it does beside a
Spark executor, so the client's work does not share its interpreter.
Writes go through the gateway as Hadoop sends them (CREATE, then the body
chunked to the 307 data URL); reads as Hadoop reads (OPEN with no length,
streamed).  fsspec's own client writes with CREATE + APPEND (the gateway's
append sessions) and is timed too.  Prints MiB/s for each path and
gateway/direct as a ratio (the issue aims at 0.7 or better): medians over
``--rounds``, with the per-round ratios' range.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
ROOT = Path(__file__).resolve().parents[1]

MiB = 1024 * 1024


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def chunks(data: bytes, size: int = 4 * MiB):
    view = memoryview(data)
    for i in range(0, len(view), size):
        yield bytes(view[i : i + size])


def gateway_write(url: str, path: str, data: bytes) -> None:
    step = requests.put(f"{url}/webhdfs/v1/{path}?op=CREATE&overwrite=true", allow_redirects=False)
    step.raise_for_status()
    done = requests.put(step.headers["Location"], data=chunks(data))  # chunked, like Hadoop
    done.raise_for_status()


def gateway_read(url: str, path: str, size: int) -> None:
    got = 0
    with requests.get(f"{url}/webhdfs/v1/{path}?op=OPEN&offset=0", stream=True) as r:
        r.raise_for_status()
        for piece in r.iter_content(1 * MiB):
            got += len(piece)
    assert got == size, (got, size)


def fsspec_client_write(url: str, path: str, data: bytes) -> None:
    """fsspec's webhdfs client: CREATE (empty) then one APPEND per 4 MiB block."""
    import fsspec

    host, port = url.split("://")[1].split(":")
    client = fsspec.filesystem("webhdfs", host=host, port=int(port), skip_instance_cache=True)
    with client.open(f"/{path}", "wb") as f:
        for piece in chunks(data):
            f.write(piece)
    assert client.info(f"/{path}")["size"] == len(data)  # commits the append session


def direct_write(fs, path: str, data: bytes) -> None:
    with fs.open(path, "wb") as f:
        for piece in chunks(data):
            f.write(piece)


def direct_read(fs, path: str, size: int) -> None:
    got = 0
    with fs.open(path, "rb") as f:
        while piece := f.read(4 * MiB):
            got += len(piece)
    assert got == size


def direct_cat(fs, path: str, size: int) -> None:
    """The whole object in one GET: the reference that pays moto's per-GET copy once,
    as the gateway's streamed OPEN does."""
    assert len(fs.cat_file(path)) == size


def make_fs(local: bool):
    """(filesystem, bucket, local servers or None, ``emrfs gateway`` arguments)."""
    if local:
        import fsspec
        from fsspec.implementations.dirfs import DirFileSystem

        root = tempfile.mkdtemp(prefix="bench-gateway-")
        Path(root, "bench").mkdir()
        fs = DirFileSystem(root, fs=fsspec.filesystem("file"))
        return fs, "bench", None, ["--serve", f"file://{root}"]
    import boto3

    from emrfs.filesystem import EmrFileSystem
    from emrfs.testing import LocalServers

    servers = LocalServers()
    endpoint = servers.start()
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    fs = EmrFileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    return fs, bucket, servers, ["--endpoint-url", endpoint]


def start_gateway(extra: list[str]) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from emrfs.cli import main; sys.exit(main())",
            "--json",
            "gateway",
            "--port",
            "0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("emrfs gateway did not start")
    return proc, json.loads(line)["url"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--local", action="store_true", help="serve a local directory")
    parser.add_argument(
        "--gateway-arg",
        action="append",
        default=[],
        help="extra emrfs gateway argument, e.g. --gateway-arg=--read-ahead=4",
    )
    args = parser.parse_args(argv)
    size = args.size_mib * MiB
    data = os.urandom(size)
    fs, bucket, servers, gateway_args = make_fs(args.local)
    gateway, url = start_gateway(gateway_args + args.gateway_arg)
    try:
        runs: dict[str, list[float]] = {}
        for _ in range(args.rounds):  # interleaved: each round times every path once
            results = {
                "direct write": timed(lambda: direct_write(fs, f"{bucket}/direct.bin", data)),
                "gateway write": timed(lambda: gateway_write(url, f"{bucket}/gw.bin", data)),
                "append write": timed(
                    lambda: fsspec_client_write(url, f"{bucket}/appended.bin", data)
                ),
                "direct read": timed(lambda: direct_read(fs, f"{bucket}/direct.bin", size)),
                "direct cat": timed(lambda: direct_cat(fs, f"{bucket}/direct.bin", size)),
                "gateway read": timed(lambda: gateway_read(url, f"{bucket}/gw.bin", size)),
            }
            for name, secs in results.items():
                runs.setdefault(name, []).append(secs)
        print(
            f"{args.size_mib} MiB on {'a local directory' if args.local else 'emrfs (moto)'}, "
            f"{args.rounds} round(s), medians"
        )
        for name, secs in runs.items():
            mid = statistics.median(secs)
            print(f"  {name:14s} {args.size_mib / mid:8.1f} MiB/s  ({mid:.2f} s)")
        for label, slow, fast in (
            ("write ratio gateway/direct", "gateway write", "direct write"),
            ("read ratio gateway/direct", "gateway read", "direct read"),
            ("read ratio gateway/direct cat_file (one GET each)", "gateway read", "direct cat"),
            ("fsspec client (CREATE+APPEND) write ratio", "append write", "direct write"),
        ):
            ratios = [f / s for f, s in zip(runs[fast], runs[slow], strict=False)]  # per round
            print(
                f"  {label}: {statistics.median(ratios):.2f} "
                f"(rounds {min(ratios):.2f}-{max(ratios):.2f})"
            )
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=30)
        if servers is not None:
            servers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CSE through the filesystem against plaintext emrfs, on the same local server.

    python -m benchmarks.bench_cse                       # 32 MiB objects, 3 rounds, 64 MiB large
    python -m benchmarks.bench_cse --size 256 --rounds 5 --large 1024

Prints write and read throughput (MB/s, median of interleaved rounds) of
plaintext, CSE v3 (AWS format) and CSE segmented, with the ratio to
plaintext; then the bytes and GETs a 1 MiB ranged read of a large object
costs in each mode, counted by :class:`emrfs.testing.FaultProxy`:
plaintext, AWS authenticated (the whole object is verified once, then ranges
come from the sealed spool), AWS CTR (``cse.unauthenticated_range_reads``) and
segmented.  Keys come from a raw AES master key (no KMS round trip per object),
so the figures are of the data path.  ``EMRFS_ENDPOINT_URL`` names another server.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import time
import uuid

import boto3

from emrfs import EmrFileSystem
from emrfs.testing import FaultProxy, LocalServers

MiB = 1024 * 1024
AES = {
    "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
    "aes_key": base64.b64encode(os.urandom(32)).decode(),
}
MODES = {
    "plaintext": None,
    "cse-v3": {"enabled": True, **AES},
    "cse-segmented": {"enabled": True, "format": "segmented", **AES},
}


def make_fs(endpoint: str, cse: dict | None, **extra) -> EmrFileSystem:
    options = dict(endpoint_url=endpoint, skip_instance_cache=True, **extra)
    if cse:
        options["cse"] = cse
    return EmrFileSystem(**options)


def throughput(endpoint: str, bucket: str, size: int, rounds: int) -> None:
    data = os.urandom(size)
    systems = {name: make_fs(endpoint, cse) for name, cse in MODES.items()}
    writes: dict[str, list[float]] = {n: [] for n in systems}
    reads: dict[str, list[float]] = {n: [] for n in systems}
    names = list(systems)
    for r in range(rounds):
        # interleaved, and the order rotates: load drifts and "who goes first" hit every mode alike
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fs = systems[name]
            path = f"{bucket}/tp/{name}"
            t = time.perf_counter()
            fs.pipe_file(path, data)
            writes[name].append(size / (time.perf_counter() - t) / 1e6)
            t = time.perf_counter()
            got = fs.cat_file(path)
            reads[name].append(size / (time.perf_counter() - t) / 1e6)
            assert got == data
    base_w, base_r = statistics.median(writes["plaintext"]), statistics.median(reads["plaintext"])
    print(f"\nthroughput, {size // MiB} MiB objects, median of {rounds} interleaved rounds")
    print(f"{'mode':<16}{'write MB/s':>12}{'ratio':>8}{'read MB/s':>12}{'ratio':>8}")
    for name in systems:
        w, r = statistics.median(writes[name]), statistics.median(reads[name])
        print(f"{name:<16}{w:>12.0f}{w / base_w:>8.2f}{r:>12.0f}{r / base_r:>8.2f}")


def ranged(endpoint: str, bucket: str, size: int) -> None:
    data = os.urandom(size)
    start = size // 2 + 12345
    rows = [
        ("plaintext", None),
        ("aws-authenticated", MODES["cse-v3"]),
        ("aws-ctr", {**MODES["cse-v3"], "unauthenticated_range_reads": True}),
        ("segmented", MODES["cse-segmented"]),
    ]
    print(f"\n1 MiB ranged read at offset {start} of a {size // MiB} MiB object")
    print(f"{'mode':<20}{'GETs':>6}{'bytes fetched':>16}{'x 1 MiB':>9}{'2nd read bytes':>16}")
    with FaultProxy(endpoint) as proxy:
        for name, cse in rows:
            fs = make_fs(proxy.url, cse)
            path = f"{bucket}/ranged/{name}"
            fs.pipe_file(path, data)
            proxy.reset_counters()
            assert fs.cat_file(path, start, start + MiB) == data[start : start + MiB]
            first = proxy.counters()
            proxy.reset_counters()
            assert fs.cat_file(path, 100, 100 + MiB) == data[100 : 100 + MiB]
            second = proxy.counters()
            gets = first.operations.get("GetObject", 0)
            print(
                f"{name:<20}{gets:>6}{first.response_bytes:>16,}"
                f"{first.response_bytes / MiB:>9.2f}{second.response_bytes:>16,}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="MiB per throughput object (32)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument(
        "--large",
        type=int,
        default=64,
        help="MiB of the object read by range (64; 1024 for the 1 GiB case)",
    )
    args = parser.parse_args()
    with LocalServers() as servers:
        endpoint = servers.endpoint_url
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        bucket = f"bench-cse-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=bucket)
        throughput(endpoint, bucket, args.size * MiB, args.rounds)
        ranged(endpoint, bucket, args.large * MiB)


if __name__ == "__main__":
    main()

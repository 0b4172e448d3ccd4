"""Block cache over S3: emrfs's cache vs fsspec's caches over s3fs vs a local file.

    python -m benchmarks.bench_cache_s3                  # 256 MiB, 1 round
    python -m benchmarks.bench_cache_s3 --rounds 3       # interleaved rounds, medians
    python -m benchmarks.bench_cache_s3 --size 64 --skip-cold-random   # a quick look

One run starts the embedded moto server (``emrfs.testing.LocalServers``), puts
one object, and reads it with 1 MiB ``read()`` calls - a sequential pass and
100 random 1 MiB reads, cold (empty cache) and warm - through:

* ``emrfs cache``: ``EmrFileSystem`` with ``cache.enabled`` (8 MiB blocks), warm
  cells with ``cache.verify`` = ``always`` and ``open``;
* ``emrfs uncached``: the same filesystem with the cache off (cold only);
* fsspec ``simplecache`` / ``blockcache`` (8,000,000-byte blocks: fsspec's
  blockcache fails when the block size divides the object size) / ``filecache``
  over s3fs;
* ``local open()``: the object as a local file (the physical limit; cold cells
  drop it from the page cache first).

Every S3 request goes through the fault proxy (injecting nothing) so each cell
also reports the requests and bytes the server sent; moto reads the whole
object for every ranged GET, so cold random reads measure moto more than the
caches (see notes/perf-anchors.md).  Variants are interleaved, their order
rotated each round; cells give the median MB/s, the spread and the ratio to the
local file in the same mode.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.bench_cache import drop_cache

MiB = 1024 * 1024
READ = MiB
KEY = "bench/object.bin"


def seq_read(f) -> int:
    f.seek(0)
    n = 0
    while b := f.read(READ):
        n += len(b)
    return n


def rnd_read(f, offsets: list[int]) -> int:
    n = 0
    for off in offsets:
        f.seek(off)
        n += len(f.read(READ))
    return n


class S3Bench:
    """The object in S3 and on local disk, and one factory per variant."""

    def __init__(self, endpoint: str, proxy, size_mib: int, work: str, seed: int = 1):
        import boto3

        self.endpoint, self.proxy, self.work = endpoint, proxy, work
        self.size = size_mib * MiB
        self.bucket = f"bench-cache-{os.getpid()}"
        rng = random.Random(seed)
        self.local = os.path.join(work, "object.bin")
        with open(self.local, "wb") as f:
            for _ in range(size_mib):
                f.write(rng.randbytes(MiB))
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket=self.bucket)
        s3.upload_file(self.local, self.bucket, KEY)
        self.path = f"{self.bucket}/{KEY}"
        self.offsets = [rng.randrange(0, self.size - READ) for _ in range(100)]

    def fresh_dir(self, name: str) -> str:
        return tempfile.mkdtemp(prefix=f"{name}-", dir=self.work)

    def emrfs(self, cache_dir: str | None, verify: str = "always", prefetch: int = 8):
        from emrfs import EmrFileSystem

        cache = {"enabled": cache_dir is not None}
        if cache_dir:
            cache.update(
                directories=[cache_dir],
                verify=verify,
                prefetch_blocks=prefetch,
                capacity_bytes=4 * self.size,
                free_space_floor=0.0,
            )
        return EmrFileSystem(endpoint_url=self.proxy.url, skip_instance_cache=True, cache=cache)

    def fsspec(self, kind: str, cache_dir: str):
        import fsspec

        return fsspec.filesystem(
            kind,
            target_protocol="s3",
            cache_storage=cache_dir,
            target_options={"endpoint_url": self.proxy.url, "skip_instance_cache": True},
            skip_instance_cache=True,
        )


class Cells:
    """MB/s, requests and MiB served per cell name, over rounds."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.speed: dict[str, list[float]] = {}
        self.requests: dict[str, list[int]] = {}
        self.served: dict[str, list[float]] = {}

    def time(self, name: str, fn: Callable[[], int]) -> None:
        self.proxy.reset_counters()
        t = time.perf_counter()
        n = fn()
        dt = time.perf_counter() - t
        c = self.proxy.counters()
        self.speed.setdefault(name, []).append(n / dt / 1e6)
        self.requests.setdefault(name, []).append(c.services.get("s3", 0))
        self.served.setdefault(name, []).append(c.response_bytes / MiB)

    def table(self) -> str:
        def base(name: str) -> list[float] | None:
            mode = ("seq" if " seq " in name else "rnd") + (" cold" if "cold" in name else " warm")
            return self.speed.get(f"local open() {mode}")

        lines = [
            f"{'cell':44} {'MB/s':>8} {'spread':>7} {'x local':>8} {'reqs':>5} {'MiB served':>10}"
        ]
        for name, vals in self.speed.items():
            med = statistics.median(vals)
            spread = (max(vals) - min(vals)) / med if len(vals) > 1 and med else 0.0
            ref = base(name)
            ratio = f"{med / statistics.median(ref):8.2f}" if ref else f"{'':8}"
            lines.append(
                f"{name:44} {med:8.0f} {spread:7.0%} {ratio} "
                f"{statistics.median(self.requests[name]):5.0f} "
                f"{statistics.median(self.served[name]):10.1f}"
            )
        return "\n".join(lines)


def variants(b: S3Bench, cells: Cells, cold_random: bool) -> list[Callable[[], None]]:
    """One closure per variant; each times its own cells."""

    def local() -> None:
        drop_cache(b.local)
        with open(b.local, "rb") as f:
            cells.time("local open() seq cold", lambda: seq_read(f))
            cells.time("local open() seq warm", lambda: seq_read(f))
            cells.time("local open() rnd warm", lambda: rnd_read(f, b.offsets))
        drop_cache(b.local)
        with open(b.local, "rb") as f:
            cells.time("local open() rnd cold", lambda: rnd_read(f, b.offsets))

    def emrfs_cache() -> None:
        d = b.fresh_dir("emrfs")
        fs = b.emrfs(d)
        with fs.open(b.path, "rb") as f:
            cells.time("emrfs cache seq cold", lambda: seq_read(f))
        fs._cached.local.store.close()  # queued block writes finish, untimed
        for verify in ("always", "open"):
            fs = b.emrfs(d, verify=verify)
            with fs.open(b.path, "rb") as f:
                if verify == "open":
                    seq_read(f)  # each chunk checked once by this process
                cells.time(f"emrfs cache seq warm, verify={verify}", lambda: seq_read(f))
                cells.time(f"emrfs cache rnd warm, verify={verify}", lambda: rnd_read(f, b.offsets))
        shutil.rmtree(d, ignore_errors=True)
        if cold_random:
            d = b.fresh_dir("emrfs")
            fs = b.emrfs(d, prefetch=0)
            with fs.open(b.path, "rb") as f:
                cells.time("emrfs cache rnd cold", lambda: rnd_read(f, b.offsets))
            fs._cached.local.store.close()
            shutil.rmtree(d, ignore_errors=True)

    def emrfs_plain() -> None:
        fs = b.emrfs(None)
        with fs.open(b.path, "rb") as f:
            cells.time("emrfs uncached seq cold", lambda: seq_read(f))
        if cold_random:
            with fs.open(b.path, "rb") as f:
                cells.time("emrfs uncached rnd cold", lambda: rnd_read(f, b.offsets))

    def fsspec_kind(kind: str) -> Callable[[], None]:
        # blockcache's blocks are the file's block size (8,000,000 bytes, see above)
        kw = {"block_size": 8_000_000} if kind == "blockcache" else {}

        def closed(fs, read: Callable) -> int:
            # closing records blockcache's blocks for the next open (the warm cells)
            with fs.open(b.path, "rb", **kw) as f:
                return read(f)

        def run() -> None:
            d = b.fresh_dir(kind)
            fs = b.fsspec(kind, d)
            # open() is timed: simplecache and filecache download the whole object there
            cells.time(f"fsspec {kind} seq cold", lambda: closed(fs, seq_read))
            with fs.open(b.path, "rb", **kw) as f:
                cells.time(f"fsspec {kind} seq warm", lambda: seq_read(f))
                cells.time(f"fsspec {kind} rnd warm", lambda: rnd_read(f, b.offsets))
            shutil.rmtree(d, ignore_errors=True)
            if cold_random:
                d = b.fresh_dir(kind)
                fs = b.fsspec(kind, d)
                cells.time(
                    f"fsspec {kind} rnd cold", lambda: closed(fs, lambda f: rnd_read(f, b.offsets))
                )
                shutil.rmtree(d, ignore_errors=True)

        return run

    return [local, emrfs_cache, emrfs_plain] + [
        fsspec_kind(k) for k in ("simplecache", "blockcache", "filecache")
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256, help="object size in MiB")
    p.add_argument("--rounds", type=int, default=int(os.environ.get("EMRFS_BENCH_ROUNDS", 1)))
    p.add_argument(
        "--skip-cold-random",
        action="store_true",
        help="leave out cold random reads (moto reads the whole object per GET)",
    )
    args = p.parse_args(argv)
    from emrfs.testing import FaultProxy, LocalServers

    work = tempfile.mkdtemp(prefix="emrfs-bench-cache-s3-")
    try:
        with LocalServers() as servers, FaultProxy(servers.endpoint_url) as proxy:
            b = S3Bench(servers.endpoint_url, proxy, args.size, work)
            cells = Cells(proxy)
            runs = variants(b, cells, not args.skip_cold_random)
            for r in range(args.rounds):
                k = r % len(runs)
                for run in runs[k:] + runs[:k]:
                    run()
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
            print(
                f"object {args.size} MiB on moto (through the fault proxy), emrfs blocks "
                f"8 MiB, {args.rounds} round(s), 1 MiB reads, 100 random"
            )
            print(cells.table())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

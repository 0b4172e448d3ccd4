"""A configuration's whole run: seeded segments on fresh buckets, each distinct
failure shrunk, the report and the summary table."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .checks import Divergence, run
from .environment import CONFIGS, Config, Environment
from .generate import generate
from .ops import Op, ops_to_json
from .shrink import shrink


@dataclass
class Finding:
    """One distinct divergence (by operation and check), with its shortest sequence."""

    seed: int  # of the segment that found it
    segment_ops: int  # that segment's length
    divergence: Divergence
    shrunk: list[Op] | None = None
    shrunk_divergence: Divergence | None = None
    occurrences: int = 1


@dataclass
class Report:
    """A configuration's run: ``segments`` sequences of seeded operations, each on a
    fresh bucket (after a divergence, the rest of its segment runs on another fresh
    bucket against a fresh model)."""

    config: str
    seed: int
    operations: int = 0  # operations run (a segment stops at its divergence)
    segments: int = 0
    divergences: int = 0  # runs that diverged (one per divergence)
    findings: list[Finding] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.divergences == 0

    @property
    def faults_total(self) -> int:
        return sum(self.faults.values())

    def describe(self) -> str:
        head = (
            f"[{self.config}] seed {self.seed}: {self.operations} operations in "
            f"{self.segments} segments, {self.divergences} divergences"
        )
        lines = [head]
        for f in self.findings:
            d = f.divergence
            lines.append(
                f"  - {' / '.join(filter(None, d.signature))} ({f.occurrences} "
                "time(s)); first in "
                f"segment seed {f.seed}: {d}"
            )
            if f.shrunk is not None:
                lines.append(
                    f"    shortest failing sequence ({len(f.shrunk)} of {d.index + 1} operations):"
                )
                lines += [f"      {i}. {op}" for i, op in enumerate(f.shrunk)]
                if f.shrunk_divergence is not None:
                    lines.append(f"    which gives: {f.shrunk_divergence}")
                lines.append("    replay: " + replay_command(self.config, f.shrunk))
            lines.append(
                f"    the segment again: python -m benchmarks.model_workload --config "
                f"{self.config} --seed {f.seed} --ops {f.segment_ops} --segment "
                f"{f.segment_ops}"
            )
        return "\n".join(lines)


def replay_command(config: str, ops: Sequence[Op]) -> str:
    text = ops_to_json(ops).replace("'", "'\\''")
    return f"python -m benchmarks.model_workload --config {config} --replay '{text}'"


def segment_seed(seed: int, index: int) -> int:
    """The seed of segment ``index`` of a run seeded ``seed`` (segment 0 uses ``seed``)."""
    return seed if index == 0 else random.Random(seed * 1_000_003 + index).randrange(1 << 31)


def run_workload(
    config: str | Config,
    seed: int,
    n_ops: int,
    endpoint: str,
    *,
    segment: int = 200,
    verify: bool = True,
    shrink_seconds: float = 60.0,
    shrink_limit: int | None = None,
    ops: Sequence[Op] | None = None,
    log: Callable[[str], None] | None = None,
) -> Report:
    """Run ``n_ops`` operations on ``config`` in segments of ``segment`` (each from its
    own seed, on a fresh bucket), or replay ``ops``; shrink the first failure of each
    distinct kind (``shrink_seconds`` each, the first ``shrink_limit`` kinds)."""
    cfg = CONFIGS[config] if isinstance(config, str) else config
    started = time.monotonic()
    env = Environment(cfg, endpoint, seed=seed)
    report = Report(cfg.name, seed)
    try:
        for s, sequence in _plan(seed, n_ops, segment, ops):
            report.segments += 1
            _run_segment(env, report, s, sequence, verify, shrink_seconds, shrink_limit, log)
        report.faults = env.fault_counts()
        report.seconds = time.monotonic() - started
        return report
    finally:
        env.close()


def _plan(
    seed: int, n_ops: int, segment: int, ops: Sequence[Op] | None
) -> list[tuple[int, list[Op]]]:
    """(seed, operations) of each segment: ``ops`` replayed, else generated."""
    if ops is not None:
        return [(seed, list(ops))]
    plan = []
    left, index = n_ops, 0
    while left > 0:
        s = segment_seed(seed, index)
        plan.append((s, generate(s, min(segment, left))))
        left -= segment
        index += 1
    return plan


def _run_segment(
    env: Environment,
    report: Report,
    s: int,
    sequence: list[Op],
    verify: bool,
    shrink_seconds: float,
    shrink_limit: int | None,
    log: Callable[[str], None] | None,
) -> None:
    """One segment: a divergence ends a run; the rest of the segment starts again on a
    fresh bucket, so one frequent defect does not hide the others.  The first failure of
    each kind is recorded (and shrunk)."""
    pos = 0
    while pos < len(sequence):
        rest = sequence[pos:]
        divergence = run(env, rest, verify=verify)
        if divergence is None:
            report.operations += len(rest)
            return
        report.operations += divergence.index + 1
        report.divergences += 1
        self_check = rest[: divergence.index + 1]
        pos += divergence.index + 1
        known = next(
            (f for f in report.findings if f.divergence.signature == divergence.signature),
            None,
        )
        if known is not None:
            known.occurrences += 1
            continue
        finding = Finding(s, len(sequence), divergence)
        report.findings.append(finding)
        if log is not None:
            log(f"[{env.config.name}] segment seed {s}: {divergence}")
        if shrink_seconds > 0 and (shrink_limit is None or len(report.findings) <= shrink_limit):
            _shrink_finding(env, self_check, finding, verify, shrink_seconds)


def _shrink_finding(
    env: Environment, sequence: Sequence[Op], finding: Finding, verify: bool, seconds: float
) -> None:
    divergence = finding.divergence
    prefix = list(sequence[: divergence.index + 1])
    # a wrong result needs no side channel to show: replays without it are faster
    verify = verify and divergence.check != "result"

    def fails(candidate: Sequence[Op]) -> bool:
        found = run(env, candidate, verify=verify)
        return found is not None and found.signature == divergence.signature

    finding.shrunk = shrink(prefix, fails, budget_seconds=seconds)
    finding.shrunk_divergence = run(env, finding.shrunk, verify=verify)


def format_table(reports: Iterable[Report]) -> str:
    """The ``--long`` summary: configuration, operations, faults injected, divergences."""
    rows = [("configuration", "operations", "faults injected", "divergences", "kinds", "seconds")]
    for r in reports:
        kinds = ", ".join("/".join(filter(None, f.divergence.signature)) for f in r.findings)
        rows.append(
            (
                r.config,
                str(r.operations),
                str(r.faults_total),
                str(r.divergences),
                kinds or "-",
                f"{r.seconds:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )

"""The model-based random workload, long: every configuration against the model.

    python -m benchmarks.model_workload --ops 3000 --config every --seed 7
    python -m benchmarks.model_workload --config sse --seed 7 --ops 200 --segment 200
    python -m benchmarks.model_workload --config sse --replay '[{"name": "pipe", ...}]'

Runs ``--ops`` operations per configuration (``emrfs.testing.workload``: CONFIGS
names, comma-separated, or ``every``) in segments of ``--segment``, each on a
fresh bucket, comparing every result and error with the model and the bucket
(and metadata table) with it through a side channel after every mutation;
shrinks the first failure of each kind; prints each finding with its shortest
sequence and the command that replays it, then a table: configuration,
operations, faults injected (FaultProxy counters), divergences.  Exit status 1
when anything diverged.  Embedded moto unless ``EMRFS_ENDPOINT_URL`` is set.
"""

from __future__ import annotations

import argparse
import json
import sys

from emrfs.testing.workload import (
    CONFIGS,
    format_table,
    ops_from_json,
    resolve_configs,
    run_workload,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.model_workload", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--config",
        default="every",
        help=f"configurations: {', '.join(CONFIGS)}, comma-separated, or 'every' (default)",
    )
    parser.add_argument(
        "--ops", type=int, default=3000, help="operations per configuration (default 3000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the first segment")
    parser.add_argument(
        "--segment", type=int, default=200, help="operations per fresh bucket (default 200)"
    )
    parser.add_argument(
        "--replay",
        metavar="JSON",
        help="run this operation list (as a failure report printed it), or "
        "@FILE holding it, instead of generating",
    )
    parser.add_argument(
        "--shrink-seconds",
        type=float,
        default=60.0,
        help="time to shrink each distinct failure (0: do not shrink)",
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the side-channel checks after mutations"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the reports as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        configs = resolve_configs(args.config)
        replay = None
        if args.replay:
            text = args.replay
            if text.startswith("@"):
                with open(text[1:], encoding="utf-8") as f:
                    text = f.read()
            replay = ops_from_json(text)
    except (ValueError, OSError) as exc:
        print(f"model_workload: {exc}", file=sys.stderr)
        return 2
    from emrfs.testing import LocalServers

    reports = []
    with LocalServers() as servers:
        for config in configs:
            report = run_workload(
                config,
                args.seed,
                args.ops,
                servers.endpoint_url,
                segment=args.segment,
                verify=not args.no_verify,
                shrink_seconds=args.shrink_seconds,
                ops=replay,
                log=lambda line: print(line, flush=True),
            )
            print(report.describe(), flush=True)
            reports.append(report)
    print()
    print(format_table(reports))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                [
                    {
                        "config": r.config,
                        "seed": r.seed,
                        "operations": r.operations,
                        "segments": r.segments,
                        "divergences": r.divergences,
                        "faults": r.faults,
                        "seconds": round(r.seconds, 1),
                        "findings": [
                            {
                                "op": f.divergence.op.name,
                                "check": f.divergence.check,
                                "occurrences": f.occurrences,
                                "first": str(f.divergence),
                                "shrunk": [o.as_json() for o in f.shrunk or []],
                            }
                            for f in r.findings
                        ],
                    }
                    for r in reports
                ],
                f,
                indent=1,
                ensure_ascii=False,
            )
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())

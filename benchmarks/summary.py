"""One table from one or more runs' JSON: emrfs against each peer library, per case.

    python -m benchmarks.summary results.json [more.json ...]

For each case: the best emrfs variant (and its forked-child twin, when the run
had ``--fork``), the best variant of each peer library (obstore, pyarrow,
boto3, aiobotocore, s3fs), and emrfs's ratio to the fastest of them (>1 is
faster).  Cases of emrfs alone (CSE, the consistent view) list each variant's
ratio to the case's reference instead.  Markdown on stdout; ``--details`` adds
each case's full table.
"""

from __future__ import annotations

import argparse
import json

PEERS = ("obstore", "pyarrow", "boto3", "aiobotocore", "s3fs")


def _better(unit: str):
    return min if unit == "s" else max


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return text + (" s" if unit == "s" else "")


def _best(rows: list[dict], unit: str) -> dict | None:
    rows = [r for r in rows if "median" in r]
    return _better(unit)(rows, key=lambda r: r["median"]) if rows else None


def _ratio(unit: str, value: float, ref: float) -> float:
    return ref / value if unit == "s" else value / ref


def _emrfs_cell(row: dict | None, unit: str) -> str:
    if row is None:
        return "-"
    rss = f"; peak RSS {row['peak_rss_mib']:.0f} MiB" if "peak_rss_mib" in row else ""
    return f"{_fmt(row['median'], unit)} ({row['variant'][6:]}{rss})"


def peer_table(cases: list[dict]) -> list[str]:
    """The emrfs-against-peers table (cases that have peers)."""
    head = [
        "case",
        "unit",
        "emrfs (best variant)",
        "emrfs forked child",
        *PEERS,
        "emrfs / fastest peer",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case in cases:
        unit, rows = case["unit"], case.get("variants", [])
        own = [r for r in rows if r["variant"].startswith("emrfs")]
        emrfs = _best([r for r in own if "(forked child)" not in r["variant"]], unit)
        forked = _best([r for r in own if "(forked child)" in r["variant"]], unit)
        peers = {p: _best([r for r in rows if r["variant"].split()[0] == p], unit) for p in PEERS}
        measured = [r for r in peers.values() if r is not None]
        if not measured:
            continue
        fastest = _best(measured, unit)
        cells = [
            case["case"],
            unit,
            _emrfs_cell(emrfs, unit),
            _fmt(forked["median"], unit) if forked else "-",
        ]
        cells += [_fmt(r["median"], unit) if r else "-" for r in peers.values()]
        cells.append(
            f"{_ratio(unit, emrfs['median'], fastest['median']):.2f}× ({fastest['variant']})"
            if emrfs and fastest
            else "-"
        )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def feature_table(cases: list[dict]) -> list[str]:
    """emrfs against itself (cases without peers): each variant's ratio to the reference."""
    lines = [
        "| case | variant | median | ratio to reference | forked child |",
        "|---|---|---|---|---|",
    ]
    for case in cases:
        unit, rows = case["unit"], case.get("variants", [])
        if any(not r["variant"].startswith("emrfs") for r in rows):
            continue
        by_name = {r["variant"]: r for r in rows}
        for r in rows:
            if "(forked child)" in r["variant"]:
                continue
            twin = by_name.get(f"{r['variant']} (forked child)", {})
            ratio = f"{r['ratio']:.2f}×" if "ratio" in r else r.get("reason", "")
            lines.append(
                f"| {case['case']} | {r['variant']} | {_fmt(r.get('median'), unit)} "
                f"{unit if unit != 's' else ''} | {ratio} | "
                f"{_fmt(twin.get('median'), unit)} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.summary", description=__doc__.splitlines()[0]
    )
    parser.add_argument("reports", nargs="+", help="JSON files written by --json")
    parser.add_argument(
        "--details", action="store_true", help="then every case's full table, as the run printed it"
    )
    args = parser.parse_args(argv)
    cases: list[dict] = []
    for path in args.reports:
        with open(path) as f:
            cases += [c for c in json.load(f)["cases"] if "error" not in c]
    print("\n".join(peer_table(cases)))
    print()
    print("\n".join(feature_table(cases)))
    if args.details:
        from .harness import format_case

        for case in cases:
            print()
            print(format_case(case))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

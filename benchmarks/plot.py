"""A PNG of one run's ratios: each emrfs variant against the fastest peer of its case.

Written beside the tables (``--plot PATH``, or the ``--json`` path with ``.png``).
One bar per emrfs variant (forked-child twins included), grouped by case;
1.0 is level with the fastest peer measured in the same run (in cases of
emrfs alone, with the case's reference: plaintext, no consistent view),
right of it is faster.  Needs matplotlib (the ``bench`` extra); without it the run still
writes its tables and says why there is no plot.
"""

from __future__ import annotations

import sys


def rows_to_plot(report: dict) -> list[tuple[str, str, float]]:
    """``(case, variant, ratio)`` of every measured emrfs variant: to the case's best
    peer, or, in cases of emrfs alone (CSE, consistent view), to the case's reference
    (emrfs without the feature)."""
    out = []
    for case in report.get("cases", []):
        best = case.get("best_peer")
        for row in case.get("variants", []):
            name = row["variant"]
            if not name.startswith("emrfs"):
                continue
            if best is not None and "vs_best_peer" in row:
                out.append((case["case"], name, row["vs_best_peer"]))
            elif best is None and "ratio" in row and name != case.get("reference"):
                out.append((case["case"], f"{name} / {case['reference']}", row["ratio"]))
    return out


def plot_ratios(report: dict, path: str) -> bool:
    """Write the PNG; False (and a note on stderr) when there is nothing to plot or no
    matplotlib."""
    rows = rows_to_plot(report)
    if not rows:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no plot: matplotlib is not installed (pip install 'emrfs[bench]')", file=sys.stderr)
        return False
    labels = [f"{case}: {variant}" for case, variant, _ in rows]
    ratios = [ratio for _, _, ratio in rows]
    height = max(3.0, 0.32 * len(rows) + 1.4)
    fig, ax = plt.subplots(figsize=(10, height))
    colours = ["#2e7d32" if r >= 0.9 else "#f9a825" if r >= 0.7 else "#c62828" for r in ratios]
    y = list(range(len(rows)))[::-1]
    ax.barh(y, ratios, color=colours)
    ax.set_yticks(y, labels, fontsize=8)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.axvline(0.9, color="grey", linewidth=0.8, linestyle="--")
    for yi, r in zip(y, ratios, strict=True):
        ax.text(r, yi, f" {r:.2f}×", va="center", fontsize=7)
    server = report.get("server", {}).get("kind", "?")
    ax.set_xlabel("emrfs / fastest peer in the same run (>1 is faster; dashed: 0.9)")
    ax.set_title(f"emrfs against the fastest peer, {server}, {report.get('date', '')}", fontsize=10)
    ax.set_xlim(0, max(1.2, max(ratios) * 1.15))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

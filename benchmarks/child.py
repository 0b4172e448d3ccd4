"""Run one benchmark variant in a child process, so its peak RSS is its own.

Protocol on stdin/stdout (one line each): the parent starts
``python -m benchmarks.child '<spec json>'``; the child imports the variant's
``prepare`` function, builds its clients, prints ``READY``, waits for ``GO``
(the parent samples the server's CPU in between), runs the operation and
prints ``RESULT <json>`` with wall time, its CPU time and RSS figures.
"""

from __future__ import annotations

import importlib
import json
import sys
import time


def _status_mib(field: str) -> float:
    """A ``/proc/self/status`` memory field in MiB.

    VmHWM (peak RSS) rather than ``ru_maxrss``: Linux carries ``ru_maxrss``
    over ``exec`` from the forked copy of the parent, so a child of a big
    parent would report the parent's size.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].startswith("{"):
        # not meant to be run by hand: the harness passes one JSON spec
        sys.exit(
            "usage: python -m benchmarks.child '<JSON spec>' (started by the harness "
            "for variants marked child=True; see benchmarks/README.md)"
        )
    spec = json.loads(sys.argv[1])
    from benchmarks.clients import Clients
    from benchmarks.harness import Env

    module, _, qualname = spec["prepare"].partition(":")
    prepare = getattr(importlib.import_module(module), qualname)
    env = Env(Clients(spec["endpoint_url"]), spec["bucket"], spec["data"])
    op = prepare(env)
    base = _status_mib("VmRSS")
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "GO":
        return
    c0, t0 = time.process_time(), time.perf_counter()
    op()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _status_mib("VmHWM")
    print(
        "RESULT "
        + json.dumps(
            {"seconds": seconds, "client_cpu": cpu, "base_rss_mib": base, "peak_rss_mib": peak}
        ),
        flush=True,
    )
    env.clients.close()


if __name__ == "__main__":
    main()

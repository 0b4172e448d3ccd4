"""Every benchmark runs the way benchmarks/README.md shows: ``python -m benchmarks.<name>``.

Fast: ``--help`` only (no server, no timing), plus a scan of every import in
the package, so a sibling imported as a top-level module (``import bench_x``,
which works only as ``python benchmarks/x.py``) is caught even inside a
function that ``--help`` never reaches.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "benchmarks"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
RUNNABLE = [
    name for name in MODULES if 'if __name__ == "__main__":' in (PACKAGE / f"{name}.py").read_text()
]
# child.py is started by the harness with a JSON spec; by hand it prints its usage and exits 1
COMMANDS = [name for name in RUNNABLE if name != "child"]


def _run_module(name: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_benchmarks_are_found():
    assert {"bench_s3", "bench_cache", "bench_cache_s3", "bench_spark"} <= set(COMMANDS)


@pytest.mark.parametrize("name", MODULES)
def test_imports_as_part_of_the_package(name):
    module = importlib.import_module(f"benchmarks.{name}")
    assert Path(module.__file__).resolve() == PACKAGE / f"{name}.py"


@pytest.mark.parametrize("name", COMMANDS)
def test_runs_as_a_module(name):
    done = _run_module(name, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage:"), done.stdout[:500]


def test_child_without_a_spec_prints_its_usage():
    done = _run_module("child")
    assert done.returncode == 1 and "usage: python -m benchmarks.child" in done.stderr


@pytest.mark.parametrize("name", MODULES)
def test_siblings_are_imported_through_the_package(name):
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    bare = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bare += [a.name for a in node.names if a.name.split(".")[0] in MODULES]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and node.module.split(".")[0] in MODULES
        ):
            bare.append(node.module)
    assert not bare, (
        f"benchmarks/{name}.py imports {bare} as top-level modules: "
        "use `from benchmarks import x` or `from .x import ...`"
    )

"""The code stays as pyproject.toml's [tool.ruff] and [tool.mypy] say: lint, format, types.

Each check runs the tool from this interpreter (``python -m ruff``, ``python -m mypy``), as a
developer would from the repository root, and fails with the tool's own report.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: every Python file of the repository (ruff reads its excludes from pyproject.toml)
PATHS = ["emrfs", "tests", "benchmarks", "localstack"]


def _run(tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(tool) is None:
        pytest.skip(f"{tool} is not installed: pip install -e '.[test]' installs it")
    return subprocess.run(
        [sys.executable, "-m", tool, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _report(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


def test_ruff_lint_is_clean():
    done = _run("ruff", "check", "--no-cache", *PATHS)
    assert done.returncode == 0, (
        "ruff check " + " ".join(PATHS) + " --fix fixes some\n" + _report(done)
    )


def test_ruff_format_is_applied():
    done = _run("ruff", "format", "--check", "--no-cache", *PATHS)
    assert done.returncode == 0, "ruff format " + " ".join(PATHS) + " applies it\n" + _report(done)


@pytest.mark.slow  # ~25 s: mypy checks every module from scratch
def test_mypy_is_clean(tmp_path):
    # the files and the per-module settings come from [tool.mypy]; a cache of its own, so
    # parallel runs never share one
    done = _run("mypy", "--cache-dir", str(tmp_path / "mypy"), timeout=600)
    assert done.returncode == 0, _report(done)

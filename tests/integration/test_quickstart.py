"""README's command 1: ``python -m emrfs.quickstart`` shows each part of the mission and cleans up.

It runs as a user runs it (a subprocess), here against the session's server
(``EMRFS_ENDPOINT_URL``) so that what it leaves behind can be checked with raw
boto3 afterwards.  The quickstart checks its own claims (ciphertext on S3,
the inconsistency caught and mended, the warm read served locally...) and
exits 1 when one does not hold.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]

#: what the output must mention, part by part (the README promises each)
PARTS = {
    "directories": [
        "== 1. Directories",
        "an empty directory: type='directory'",
        "archive/2026-11/day=01/part-0.csv",
        "jobs/ is still a directory",
    ],
    "consistent view": [
        "== 2. Consistent view",
        "behind emrfs's back (raw boto3)",
        "ConsistencyError:",
        "$ emrfs diff",
        "METADATA ONLY",
        "S3 ONLY",
        "$ emrfs sync",
        "changed: added 1, updated 0, removed 1",
        "mended (diff is clean)",
    ],
    "client-side encryption": [
        "== 3. Client-side encryption",
        "raw boto3 GET:",
        "plaintext on S3? False",
        "through emrfs: b'patient,diagnosis\\nA-17,flu\\n'",
    ],
    "cache": ["== 4. Block cache", "cold read:", "warm read:", "(cache misses: 0)", "x faster"],
    "dataframes": ["== 5. DataFrames", "identical: True"],
    "next steps": ["== Next", "docs/recipes.md", "docs/gateway.md", "emrfs local up"],
}


@pytest.mark.slow  # ~10 s: five demonstrations and two child processes
def test_quickstart_shows_each_part_and_leaves_nothing(emrfs_endpoint):
    env = dict(
        os.environ,
        EMRFS_ENDPOINT_URL=emrfs_endpoint,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    caches_before = set(Path(tempfile.gettempdir()).glob("emrfs-quickstart-cache-*"))
    # `python -m emrfs.quickstart`, where pytest cannot be imported: the quickstart extra
    # does not install it (a helper from emrfs.testing.pytest_plugin once crashed there)
    run_as_main = (
        "import runpy, sys; sys.modules['pytest'] = None; "
        "runpy.run_module('emrfs.quickstart', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", run_as_main],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard only: its speed is README's claim, not a timed test
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    missing = {
        part: [text for text in texts if text not in done.stdout] for part, texts in PARTS.items()
    }
    assert not any(missing.values()), (missing, done.stdout)

    # side channel: its bucket and its metadata table are gone
    bucket = re.search(r"created bucket emrfs://(quickstart-[0-9a-f]+)", done.stdout)[1]
    s3 = boto3.client("s3", endpoint_url=emrfs_endpoint)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    dynamodb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint)
    assert f"{bucket}-metadata" not in dynamodb.list_tables()["TableNames"]
    assert set(Path(tempfile.gettempdir()).glob("emrfs-quickstart-cache-*")) <= caches_before


def test_quickstart_without_pandas_says_what_to_install():
    # a `sitecustomize`-free way to hide pandas: a module named pandas that fails to import
    code = (
        "import sys; sys.modules['pandas'] = None; from emrfs.quickstart import main; "
        "sys.exit(main())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert done.returncode == 2
    assert "pip install 'emrfs[quickstart]'" in done.stderr

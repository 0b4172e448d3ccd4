"""Many concurrent copies between S3 and the ephemeral tier, with the consistent view and
the block cache on, finish: no worker thread waits on the event loop for work queued
to the pool it holds.

Each copy runs in a worker thread that opens files (``fs.open`` -> ``sync`` on the
filesystem's loop); the consistent view's store calls and the block cache's fills
once used the same default pool, and 48 copies at once hung for good.  The copies run
in a subprocess, so a hang fails the test instead of hanging the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from fsspec.asyn import sync
    from emrfs.filesystem import EmrFileSystem

    endpoint, bucket, cache_dir = sys.argv[1:4]
    fs = EmrFileSystem(endpoint_url=endpoint, skip_instance_cache=True, consistent=True,
                       consistency={"table_name": f"{bucket}-meta"},
                       cache={"enabled": True, "directories": [cache_dir]},
                       ephemeral={"enabled": True})
    files = [(i, j) for i in range(8) for j in range(6)]
    for i, j in files:
        fs.pipe_file(f"{bucket}/src/t{i}/f{j}", bytes([i, j]) * 50_000)

    async def copies_into_the_tier():
        await asyncio.gather(*(fs._cp_file(f"{bucket}/src/t{i}/f{j}",
                                           f"{bucket}/out/_temporary/0/t{i}/f{j}")
                               for i, j in files))

    async def renames_out_of_the_tier():
        await asyncio.gather(*(fs._mv(f"{bucket}/out/_temporary/0/t{i}", f"{bucket}/out/t{i}",
                                      recursive=True) for i in range(8)))

    sync(fs.loop, copies_into_the_tier)
    for i, j in files:  # the tier's copies, read through emrfs
        assert fs.cat_file(f"{bucket}/out/_temporary/0/t{i}/f{j}") == bytes([i, j]) * 50_000
    sync(fs.loop, renames_out_of_the_tier)
    fs._cached.local.tier.terminate()
    print("done", flush=True)
""")


def test_concurrent_tier_copies_and_renames_finish(
    emrfs_endpoint, emrfs_s3, emrfs_bucket, tmp_path
):
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, emrfs_endpoint, emrfs_bucket, str(tmp_path / "cache")],
            capture_output=True,
            text=True,
            env=env,
            timeout=90,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("concurrent tier copies and renames hung (worker pool starved)")
    finally:
        import boto3

        dynamodb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint)
        if f"{emrfs_bucket}-meta" in dynamodb.list_tables()["TableNames"]:
            dynamodb.delete_table(TableName=f"{emrfs_bucket}-meta")
    assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr[-3000:]
    # the side channel: every renamed file is in S3 with its bytes, nothing of _temporary
    keys = {
        o["Key"]
        for o in emrfs_s3.list_objects_v2(Bucket=emrfs_bucket, Prefix="out/").get("Contents", [])
    }
    assert keys == {f"out/t{i}/f{j}" for i in range(8) for j in range(6)}
    body = emrfs_s3.get_object(Bucket=emrfs_bucket, Key="out/t3/f4")["Body"].read()
    assert body == bytes([3, 4]) * 50_000

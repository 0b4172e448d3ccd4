"""The consistent view through the filesystem, proven with the fault-injection proxy.

For each kind of inconsistency the proxy injects: without the consistent view the
caller sees it (the proxy works); with it the caller does not, or gets
ConsistencyError after the configured retries.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap

import boto3
import pytest

from emrfs import EmrFileSystem
from emrfs.cli import main as cli
from emrfs.errors import ConsistencyError
from emrfs.testing import FaultPolicy, FaultProxy
from emrfs.testing.faults import Inconsistency
from tests.helpers import record_s3_calls


def consistent_fs(endpoint, table, **extra):
    options = {
        "consistent": True,
        "consistency.table_name": table,
        "consistency.retry_policy_type": "fixed",
        "consistency.retry_period_seconds": 0.4,
        "consistency.retry_count": 12,
    }
    options.update(extra)
    return EmrFileSystem(endpoint_url=endpoint, skip_instance_cache=True, **options)


def plain_fs(endpoint):
    return EmrFileSystem(endpoint_url=endpoint, skip_instance_cache=True)


def proxy_for(endpoint, **kinds):
    flags = {"list_delay": False, "lingering_deletes": False, "stale_reads": False}
    flags.update(kinds)
    return FaultProxy(endpoint, FaultPolicy(inconsistency=Inconsistency(delay=2.0, **flags)))


def rows(endpoint, table):
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    return ddb.scan(TableName=table)["Items"]


def test_mutations_are_recorded_in_dynamodb(emrfs_endpoint, bucket, table):
    fs = consistent_fs(emrfs_endpoint, table)
    fs.pipe_file(f"{bucket}/d/f", b"12345")
    fs.mkdir(f"{bucket}/e")
    fs.mv(f"{bucket}/d/f", f"{bucket}/e/g")
    children = {
        (r["parent"]["S"], r["child"]["S"]): r
        for r in rows(emrfs_endpoint, table)
        if "parent" in r and "child" in r
    }
    assert (f"{bucket}/e", "g") in children
    g = children[(f"{bucket}/e", "g")]
    assert not g.get("is_deleted", {}).get("BOOL", False)
    f = children[(f"{bucket}/d", "f")]
    assert f.get("is_deleted", {}).get("BOOL") is True  # a tombstone, with a TTL
    assert "ttl" in f
    assert fs.cat_file(f"{bucket}/e/g") == b"12345"


def test_list_delay_hidden_without_and_shown_with_the_view(emrfs_endpoint, bucket, table):
    with proxy_for(emrfs_endpoint, list_delay=True) as proxy:
        plain = plain_fs(proxy.url)
        plain.pipe_file(f"{bucket}/a/new1", b"1")
        assert plain.find(bucket) == []  # the proxy hides it from LIST
        fs = consistent_fs(proxy.url, table)
        fs.pipe_file(f"{bucket}/b/new2", b"2")
        assert fs.ls(f"{bucket}/b", detail=False) == [f"{bucket}/b/new2"]
        assert proxy.counters().fault("list_hidden") >= 1


def test_lingering_delete_listed_without_and_hidden_with_the_view(emrfs_endpoint, bucket, table):
    raw = plain_fs(emrfs_endpoint)
    raw.pipe({f"{bucket}/a/keep": b"k", f"{bucket}/a/gone": b"g"})
    with proxy_for(emrfs_endpoint, lingering_deletes=True) as proxy:
        plain = plain_fs(proxy.url)
        plain.rm(f"{bucket}/a/gone")
        assert f"{bucket}/a/gone" in plain.ls(f"{bucket}/a", detail=False)
        proxy.clear_inconsistency()
        fs = consistent_fs(proxy.url, table)
        fs.pipe({f"{bucket}/b/keep": b"k", f"{bucket}/b/gone": b"g"})
        fs.rm(f"{bucket}/b/gone")
        assert fs.ls(f"{bucket}/b", detail=False) == [f"{bucket}/b/keep"]


def test_stale_read_without_and_fresh_read_with_the_view(emrfs_endpoint, bucket, table):
    with proxy_for(emrfs_endpoint, stale_reads=True) as proxy:
        plain = plain_fs(proxy.url)
        plain.pipe_file(f"{bucket}/p", b"old")
        plain.pipe_file(f"{bucket}/p", b"new")
        assert plain.cat_file(f"{bucket}/p") == b"old"  # the proxy serves the old version
        fs = consistent_fs(proxy.url, table)
        fs.pipe_file(f"{bucket}/q", b"old")
        fs.pipe_file(f"{bucket}/q", b"new")
        assert fs.cat_file(f"{bucket}/q") == b"new"
        with fs.open(f"{bucket}/q", "rb") as f:
            assert f.read() == b"new"


def test_consistency_error_after_retries_and_log_mode(emrfs_endpoint, bucket, table):
    policy = FaultPolicy(
        inconsistency=Inconsistency(
            delay=60, list_delay=True, lingering_deletes=False, stale_reads=False
        )
    )
    with FaultProxy(emrfs_endpoint, policy) as proxy:
        fs = consistent_fs(
            proxy.url,
            table,
            **{"consistency.retry_count": 2, "consistency.retry_period_seconds": 0.05},
        )
        fs.pipe_file(f"{bucket}/c/hidden", b"1")
        with pytest.raises(ConsistencyError) as info:
            fs.ls(f"{bucket}/c")
        assert f"{bucket}/c/hidden" in str(info.value)
        lenient = consistent_fs(
            proxy.url,
            table,
            **{
                "consistency.retry_count": 1,
                "consistency.retry_period_seconds": 0.05,
                "fs.s3.consistent.throwExceptionOnInconsistency": "false",
            },
        )
        assert lenient.ls(f"{bucket}/c", detail=False) == []  # what S3 shows, logged


def test_fast_list_answers_from_the_table(emrfs_endpoint, bucket, table):
    fs = consistent_fs(emrfs_endpoint, table)
    fs.pipe({f"{bucket}/fl/{i}": b"x" for i in range(5)})
    first = fs.ls(f"{bucket}/fl", detail=False)
    calls = record_s3_calls(fs)
    assert fs.ls(f"{bucket}/fl", detail=False) == first
    assert "list_objects_v2" not in calls
    info = fs.ls(f"{bucket}/fl")[0]
    assert info["permission"] == "666" and info["size"] == 1


CRASH = textwrap.dedent("""
    import os, sys
    from emrfs import EmrFileSystem
    from emrfs.consistency.view import ConsistentView

    async def die(*args, **kwargs):
        os._exit(17)  # killed between the S3 write and the metadata write

    ConsistentView.record_file = die
    fs = EmrFileSystem(endpoint_url=sys.argv[1], consistent=True,
                       **{"consistency.table_name": sys.argv[2]})
    fs.pipe_file(sys.argv[3], b"precious bytes")
""")


def test_crash_between_s3_and_metadata_is_found_by_diff_and_mended_by_sync(
    emrfs_endpoint, bucket, table, capsys
):
    fs = consistent_fs(emrfs_endpoint, table)
    fs.pipe_file(f"{bucket}/c/first", b"tracked")
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, emrfs_endpoint, table, f"{bucket}/c/crashed"],
        env=dict(os.environ),
        timeout=120,
    )
    assert proc.returncode == 17
    common = ["-m", table, "--endpoint-url", emrfs_endpoint]
    assert cli(["--json", "diff", f"s3://{bucket}/c", *common]) == 1
    report = json.loads(capsys.readouterr().out)
    assert f"{bucket}/c/crashed" in json.dumps(report)
    assert cli(["--json", "sync", f"s3://{bucket}/c", *common]) == 0
    capsys.readouterr()
    assert cli(["--json", "diff", f"s3://{bucket}/c", *common]) == 0
    assert fs.cat_file(f"{bucket}/c/crashed") == b"precious bytes"


def _writer(args):
    endpoint, table, bucket, worker = args
    fs = consistent_fs(endpoint, table)
    for i in range(6):
        fs.pipe_file(f"{bucket}/shared/w{worker}-{i}", f"{worker}-{i}".encode())
    for i in range(0, 6, 2):
        fs.rm(f"{bucket}/shared/w{worker}-{i}")
    return worker


def test_several_processes_share_one_table(emrfs_endpoint, bucket, table):
    consistent_fs(emrfs_endpoint, table).mkdir(f"{bucket}/shared")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        assert sorted(
            pool.map(_writer, [(emrfs_endpoint, table, bucket, w) for w in range(3)])
        ) == [0, 1, 2]
    fs = consistent_fs(emrfs_endpoint, table)
    expected = sorted(f"{bucket}/shared/w{w}-{i}" for w in range(3) for i in (1, 3, 5))
    assert fs.ls(f"{bucket}/shared", detail=False) == expected
    assert (
        cli(["diff", f"s3://{bucket}/shared", "-m", table, "--endpoint-url", emrfs_endpoint]) == 0
    )


def test_find_and_glob_are_checked_against_the_metadata(emrfs_endpoint, bucket, table):
    """Dataset discovery (pyarrow, dask) lists recursively: a file S3's LIST does not show
    yet is waited for, and one deleted but still listed is dropped."""
    with proxy_for(emrfs_endpoint, list_delay=True) as proxy:
        plain = plain_fs(proxy.url)
        plain.pipe_file(f"{bucket}/a/day=1/p0", b"1")
        assert plain.find(f"{bucket}/a") == []  # the proxy hides it from LIST
        fs = consistent_fs(proxy.url, table)
        fs.pipe({f"{bucket}/t/day=1/p0": b"1", f"{bucket}/t/day=2/p0": b"2"})
        assert fs.find(f"{bucket}/t") == [f"{bucket}/t/day=1/p0", f"{bucket}/t/day=2/p0"]
        assert fs.glob(f"{bucket}/t/day=*/p0") == [f"{bucket}/t/day=1/p0", f"{bucket}/t/day=2/p0"]
        assert fs.find(f"{bucket}/t", maxdepth=1, withdirs=True) == [
            f"{bucket}/t",
            f"{bucket}/t/day=1",
            f"{bucket}/t/day=2",
        ]
        hidden = proxy.counters().fault("list_hidden")
        assert hidden >= 1
    with proxy_for(emrfs_endpoint, lingering_deletes=True) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs.rm(f"{bucket}/t/day=2/p0")
        assert fs.find(f"{bucket}/t") == [f"{bucket}/t/day=1/p0"]

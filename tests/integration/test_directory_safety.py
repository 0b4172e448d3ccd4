"""Directory operations never lose data: rename onto itself, delayed listings under the
consistent view, renames cut short, and names with glob characters.

Every outcome is checked through a side channel: raw boto3 against moto (not through
the proxy) and a scan of the metadata table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import boto3
import pytest

from emrfs import EmrFileSystem
from emrfs.errors import ConsistencyError
from emrfs.testing import FaultPolicy, FaultProxy
from emrfs.testing.faults import Inconsistency


def keys(s3, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def table_rows(endpoint: str, table: str) -> dict[str, bool]:
    """path -> deleted, from a raw DynamoDB scan."""
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    out = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for r in page["Items"]:
            parent, child = r["parent"]["S"], r["child"]["S"]
            if parent.startswith(".."):
                continue
            path = child if parent == "/" else f"{parent}/{child}"
            out[path] = r.get("is_deleted", {}).get("BOOL", False)
    return out


def consistent_fs(endpoint: str, table: str, **extra) -> EmrFileSystem:
    options = {
        "consistent": True,
        "consistency.table_name": table,
        "consistency.retry_policy_type": "fixed",
        "consistency.retry_period_seconds": 0.4,
        "consistency.retry_count": 12,
    }
    options.update(extra)
    return EmrFileSystem(endpoint_url=endpoint, skip_instance_cache=True, **options)


def delayed_listings(endpoint: str, delay: float = 2.0) -> FaultProxy:
    return FaultProxy(
        endpoint,
        FaultPolicy(
            inconsistency=Inconsistency(
                delay=delay, list_delay=True, lingering_deletes=False, stale_reads=False
            )
        ),
    )


# --- 1. rename onto itself ------------------------------------------------------------


@pytest.mark.parametrize("sse", [True, False])
def test_mv_file_into_the_directory_holding_it_keeps_it(emrfs_endpoint, bucket, emrfs_s3, sse):
    options = {"fs.s3.enableServerSideEncryption": True} if sse else {}
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True, **options)
    fs.pipe(f"{bucket}/d/f", b"x")
    fs.mv(f"{bucket}/d/f", f"{bucket}/d")
    fs.mv(f"{bucket}/d/f", f"{bucket}/d/f")
    fs.mv(f"{bucket}/d", f"{bucket}/d")
    fs.mv(f"{bucket}/d", bucket)  # a directory into the bucket that holds it
    assert keys(emrfs_s3, bucket) == ["d/f"]
    assert emrfs_s3.get_object(Bucket=bucket, Key="d/f")["Body"].read() == b"x"


def test_mv_of_a_missing_source_names_it(fs, bucket, emrfs_s3):
    fs.pipe(f"{bucket}/other", b"o")
    for dst in (f"{bucket}/nope", f"{bucket}/elsewhere"):
        with pytest.raises(FileNotFoundError, match=f"{bucket}/nope"):
            fs.mv(f"{bucket}/nope", dst)
    assert keys(emrfs_s3, bucket) == ["other"]


def test_mv_of_a_directory_into_itself_or_below_is_refused(fs, bucket, emrfs_s3):
    fs.pipe({f"{bucket}/d/f": b"1", f"{bucket}/d/sub/g": b"2"})
    for dst in (f"{bucket}/d/sub", f"{bucket}/d/new", f"{bucket}/d/sub/deeper"):
        with pytest.raises(OSError, match="into itself"):
            fs.mv(f"{bucket}/d", dst)
    assert keys(emrfs_s3, bucket) == ["d/f", "d/sub/g"]


# --- 2. delayed listings under the consistent view ----------------------------------------


def test_rmdir_waits_for_a_delayed_listing_and_refuses_a_non_empty_directory(
    emrfs_endpoint, bucket, emrfs_s3, table
):
    with delayed_listings(emrfs_endpoint) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs.mkdir(f"{bucket}/r1/a")
        fs.pipe(f"{bucket}/r1/a/f", b"data")
        with pytest.raises(OSError, match="empty"):
            fs.rmdir(f"{bucket}/r1/a")
        assert fs.cat(f"{bucket}/r1/a/f") == b"data"
    assert keys(emrfs_s3, bucket) == ["r1/a/f"]
    assert table_rows(emrfs_endpoint, table)[f"{bucket}/r1/a/f"] is False


def test_rm_of_a_directory_deletes_what_a_delayed_listing_hides(
    emrfs_endpoint, bucket, emrfs_s3, table
):
    with delayed_listings(emrfs_endpoint) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs.pipe({f"{bucket}/t/f": b"1", f"{bucket}/t/sub/g": b"2", f"{bucket}/keep": b"k"})
        with pytest.raises(IsADirectoryError):
            fs.rm(f"{bucket}/t")
        assert keys(emrfs_s3, bucket, "t/") == ["t/f", "t/sub/g"]
        assert table_rows(emrfs_endpoint, table)[f"{bucket}/t/f"] is False
        fs.rm(f"{bucket}/t", recursive=True)
    assert keys(emrfs_s3, bucket) == ["keep"]
    rows = table_rows(emrfs_endpoint, table)
    assert rows[f"{bucket}/t/f"] and rows[f"{bucket}/t/sub/g"] and rows[f"{bucket}/t"]
    assert rows[f"{bucket}/keep"] is False


def test_rm_raises_consistency_error_and_deletes_nothing_when_the_policy_runs_out(
    emrfs_endpoint, bucket, emrfs_s3, table
):
    with delayed_listings(emrfs_endpoint, delay=60) as proxy:
        fs = consistent_fs(
            proxy.url,
            table,
            **{"consistency.retry_count": 2, "consistency.retry_period_seconds": 0.05},
        )
        fs.pipe(f"{bucket}/t/f", b"1")
        with pytest.raises(ConsistencyError, match=f"{bucket}/t/f"):
            fs.rm(f"{bucket}/t", recursive=True)
    assert keys(emrfs_s3, bucket) == ["t/f"]
    assert table_rows(emrfs_endpoint, table)[f"{bucket}/t/f"] is False


def test_rm_proceeds_with_the_merged_listing_when_told_not_to_throw(
    emrfs_endpoint, bucket, emrfs_s3, table
):
    with delayed_listings(emrfs_endpoint, delay=60) as proxy:
        fs = consistent_fs(
            proxy.url,
            table,
            **{
                "consistency.retry_count": 1,
                "consistency.retry_period_seconds": 0.05,
                "fs.s3.consistent.throwExceptionOnInconsistency": "false",
            },
        )
        fs.pipe(f"{bucket}/t/f", b"1")
        fs.rm(f"{bucket}/t", recursive=True)  # S3 never lists t/f: the table's row counts
    assert keys(emrfs_s3, bucket) == []
    assert table_rows(emrfs_endpoint, table)[f"{bucket}/t/f"] is True


def test_rename_of_a_directory_moves_what_a_delayed_listing_hides(
    emrfs_endpoint, bucket, emrfs_s3, table
):
    with delayed_listings(emrfs_endpoint) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs.pipe({f"{bucket}/src/f": b"1", f"{bucket}/src/sub/g": b"2"})
        fs.mkdir(f"{bucket}/src/empty")
        fs.mv(f"{bucket}/src", f"{bucket}/dst", recursive=True)
        assert fs.cat(f"{bucket}/dst/f") == b"1"
        assert fs.cat(f"{bucket}/dst/sub/g") == b"2"
    assert keys(emrfs_s3, bucket) == ["dst/empty/", "dst/f", "dst/sub/g"]
    rows = table_rows(emrfs_endpoint, table)
    assert not rows[f"{bucket}/dst/f"] and not rows[f"{bucket}/dst/sub/g"]
    assert rows[f"{bucket}/src/f"] and rows[f"{bucket}/src/sub/g"]
    assert not rows[f"{bucket}/dst/empty"]


def test_rename_of_a_directory_skips_a_deleted_file_s3_still_lists(
    emrfs_endpoint, bucket, emrfs_s3, table
):
    fs = consistent_fs(emrfs_endpoint, table)
    fs.pipe({f"{bucket}/src/keep": b"k", f"{bucket}/src/gone": b"g"})
    policy = FaultPolicy(
        inconsistency=Inconsistency(
            delay=2.0, list_delay=False, lingering_deletes=True, stale_reads=False
        )
    )
    with FaultProxy(emrfs_endpoint, policy) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs.rm(f"{bucket}/src/gone")
        fs.mv(f"{bucket}/src", f"{bucket}/dst")
        assert fs.ls(f"{bucket}/dst", detail=False) == [f"{bucket}/dst/keep"]
    assert keys(emrfs_s3, bucket) == ["dst/keep"]


# --- 6. a directory rename cut short --------------------------------------------------------

KILLED_RENAME = textwrap.dedent("""
    import os, sys
    from emrfs import EmrFileSystem
    from emrfs.namespace.rename import Renames

    endpoint, src, dst, after, table = sys.argv[1:6]
    original = Renames.copy_key
    done = [0]

    async def copy_then_die(self, *args, **kwargs):
        result = await original(self, *args, **kwargs)
        done[0] += 1
        if done[0] >= int(after):
            os._exit(17)  # killed mid-rename
        return result

    Renames.copy_key = copy_then_die
    options = {"consistent": True, "consistency.table_name": table} if table != "-" else {}
    fs = EmrFileSystem(endpoint_url=endpoint, max_concurrency=4, **options)
    fs.mv(src, dst, recursive=True)
""")


def kill_rename_after(endpoint: str, src: str, dst: str, copies: int, table: str = "-") -> None:
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_RENAME, endpoint, src, dst, str(copies), table],
        env=dict(os.environ),
        timeout=120,
    )
    assert proc.returncode == 17


@pytest.mark.parametrize("consistent", [False, True])
def test_rerunning_a_killed_directory_rename_finishes_it(
    emrfs_endpoint, bucket, emrfs_s3, table, consistent
):
    files = {f"{bucket}/src/part-{i:03d}": f"row {i}".encode() for i in range(60)}
    fs = (
        consistent_fs(emrfs_endpoint, table)
        if consistent
        else EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    )
    fs.pipe(files)
    kill_rename_after(
        emrfs_endpoint, f"{bucket}/src", f"{bucket}/dst", 20, table if consistent else "-"
    )
    at_dst = keys(emrfs_s3, bucket, "dst/")
    assert 20 <= len(at_dst) < 60 and len(keys(emrfs_s3, bucket, "src/")) == 60
    fs.mv(f"{bucket}/src", f"{bucket}/dst", recursive=True)  # the same call again
    expected = sorted(k.replace(f"{bucket}/src/", "dst/") for k in files)
    assert keys(emrfs_s3, bucket) == expected  # no dst/src/..., no journal, no source
    for path, data in files.items():
        key = path.replace(f"{bucket}/src/", "dst/")
        assert emrfs_s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    if consistent:
        rows = table_rows(emrfs_endpoint, table)
        assert all(not rows[f"{bucket}/{k}"] for k in expected)
        assert all(rows[p] for p in files)
        assert fs.ls(f"{bucket}/dst", detail=False) == [f"{bucket}/{k}" for k in expected]


def test_a_killed_rename_must_be_finished_before_its_source_moves_elsewhere(
    emrfs_endpoint, bucket, emrfs_s3, fs
):
    fs.pipe({f"{bucket}/src/f{i}": b"x" for i in range(10)})
    fs.mkdir(f"{bucket}/into")
    kill_rename_after(emrfs_endpoint, f"{bucket}/src", f"{bucket}/into", 3)  # into/src
    with pytest.raises(FileExistsError, match="unfinished rename"):
        fs.mv(f"{bucket}/src", f"{bucket}/other")
    fs.mv(f"{bucket}/src", f"{bucket}/into")  # the same call again: into/src, not into/src/src
    assert keys(emrfs_s3, bucket) == [f"into/src/f{i}" for i in range(10)]


def test_fsck_reports_and_fix_finishes_a_killed_rename(
    emrfs_endpoint, bucket, emrfs_s3, table, capsys
):
    from emrfs.cli import main

    fs = consistent_fs(emrfs_endpoint, table)
    files = {f"{bucket}/job/out/part-{i}": f"{i}".encode() for i in range(12)}
    fs.pipe(files)
    kill_rename_after(emrfs_endpoint, f"{bucket}/job/out", f"{bucket}/final", 5, table)
    common = ["-m", table, "--endpoint-url", emrfs_endpoint]
    capsys.readouterr()
    assert main(["--json", "fsck", f"s3://{bucket}/job", *common]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(p["kind"], p["path"]) for p in report["problems"]] == [
        ("unfinished_rename", f"{bucket}/job/out")
    ]
    assert main(["--json", "fsck", f"s3://{bucket}/job", "--fix", *common]) == 0
    assert json.loads(capsys.readouterr().out)["fixed"] == 1
    assert keys(emrfs_s3, bucket) == sorted([f"final/part-{i}" for i in range(12)] + ["job/"])
    rows = table_rows(emrfs_endpoint, table)
    assert all(not rows[p.replace("job/out", "final")] and rows[p] for p in files)
    assert main(["--json", "fsck", f"s3://{bucket}", *common]) == 0


# --- 9. names with glob characters -------------------------------------------------------------


@pytest.mark.parametrize("name,sibling", [("q?x", "qax"), ("a*b", "aXYb"), ("[ab]", "a")])
def test_a_path_that_exists_as_written_means_itself(fs, bucket, emrfs_s3, name, sibling):
    fs.pipe({f"{bucket}/d/{name}": b"literal", f"{bucket}/d/{sibling}": b"sibling"})
    fs.cp(f"{bucket}/d/{name}", f"{bucket}/c/copy")
    assert keys(emrfs_s3, bucket, "c/") == ["c/copy"]
    fs.mv(f"{bucket}/d/{name}", f"{bucket}/m/{name}")
    assert keys(emrfs_s3, bucket, "d/") == [f"d/{sibling}"]
    fs.rm(f"{bucket}/m/{name}")
    fs.pipe(f"{bucket}/d/{name}", b"literal")
    fs.rm(f"{bucket}/d/{name}")
    assert keys(emrfs_s3, bucket) == ["c/copy", f"d/{sibling}", "m/"]  # m stays, empty
    assert emrfs_s3.get_object(Bucket=bucket, Key=f"d/{sibling}")["Body"].read() == b"sibling"


def test_a_pattern_that_names_nothing_literally_still_globs(fs, bucket, emrfs_s3):
    fs.pipe({f"{bucket}/d/qax": b"1", f"{bucket}/d/qbx": b"2", f"{bucket}/d/keep": b"3"})
    fs.mv(f"{bucket}/d/qb?", f"{bucket}/e/")
    assert keys(emrfs_s3, bucket) == ["d/keep", "d/qax", "e/qbx"]
    fs.rm(f"{bucket}/d/q?x")
    assert keys(emrfs_s3, bucket) == ["d/keep", "e/qbx"]


def test_rm_whose_delete_batch_fails_records_every_delete_s3_confirmed(
    emrfs_endpoint, bucket, emrfs_s3, table, monkeypatch
):
    """One DeleteObjects batch refused (a 503 past the retries) while the others succeed:
    the table tombstones every key S3 confirmed, none stays a live row without its
    object (the others' confirmations used to arrive after the error was raised)."""
    from emrfs.errors import ThrottledError
    from emrfs.testing.faults import Failure

    # batches of two keys: the 503 answers at once, the other batches take moto's time
    monkeypatch.setattr("emrfs.namespace.tree.DELETE_BATCH", 2)
    with FaultProxy(emrfs_endpoint) as proxy:
        fs = consistent_fs(proxy.url, table, max_attempts=1)
        fs.pipe({f"{bucket}/t/{n}": n.encode() for n in "abcdef"})
        # two refusals, not one: obstore's HTTP client may resend a refused request once on
        # a fresh connection (seen: 1 run in 3 then raised nothing); with two, some batch
        # is refused whatever is resent, and the others still succeed
        proxy.set_policy(FaultPolicy(slow_down=Failure(1.0, limit=2, operations={"DeleteObjects"})))
        with pytest.raises(ThrottledError):
            fs.rm(f"{bucket}/t", recursive=True)
    left = set(keys(emrfs_s3, bucket, "t/"))
    assert 0 < len(left) < 6, left  # one batch refused, the others done
    rows = table_rows(emrfs_endpoint, table)
    for n in "abcdef":
        path = f"{bucket}/t/{n}"
        if f"t/{n}" not in left:
            assert rows[path] is True, f"{path} is gone from S3 but its row is live"
        else:
            assert rows[path] is False, f"{path} is in S3 but tombstoned"

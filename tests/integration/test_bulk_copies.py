"""``copy`` of many files: each source's status is asked once, each target's directory
is checked once (not every target name probed), the copies land whole, and the rules of
where they land stay fsspec's (checked through raw boto3 and a DynamoDB scan)."""

from __future__ import annotations

import boto3
import pytest

from emrfs import EmrFileSystem

pytestmark = pytest.mark.integration

FILES = 24


def _keys(s3, bucket: str, prefix: str = "") -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def _consistent(endpoint: str, table: str) -> EmrFileSystem:
    return EmrFileSystem(
        endpoint_url=endpoint,
        skip_instance_cache=True,
        consistent=True,
        **{"consistency.table_name": table},
    )


def test_a_tree_copy_asks_a_few_requests_per_file_not_a_probe_per_name(
    emrfs_fault_proxy, emrfs_s3, bucket, table
):
    fs = _consistent(emrfs_fault_proxy.url, table)
    fs.pipe({f"{bucket}/src/{d}/f{i:02d}": b"%d" % i for d in ("a", "b") for i in range(FILES)})
    emrfs_fault_proxy.reset_counters()
    fs.copy(f"{bucket}/src", f"{bucket}/dst", recursive=True)
    counted = emrfs_fault_proxy.counters()

    files = 2 * FILES
    expected = sorted(f"dst/{d}/f{i:02d}" for d in ("a", "b") for i in range(FILES))
    assert _keys(emrfs_s3, bucket, "dst/") == expected
    assert emrfs_s3.get_object(Bucket=bucket, Key="dst/b/f07")["Body"].read() == b"7"
    ddb = boto3.client("dynamodb", endpoint_url=emrfs_fault_proxy.url, region_name="us-east-1")
    recorded = {
        item["parent"]["S"] + "/" + item["child"]["S"]
        for item in ddb.scan(TableName=table)["Items"]
        if not item.get("is_deleted", {}).get("BOOL")
    }
    assert {f"{bucket}/{k}" for k in expected} <= recorded
    # per file: its status (a row read and a GET) and its copy; the target names are
    # checked by a listing per directory, not each by its own row reads and listings
    # (8d365ac: 239 DynamoDB requests and 56 listings for these 48 files)
    assert counted.services.get("dynamodb", 0) < 2.5 * files, counted.operations
    assert counted.operations.get("ListObjectsV2", 0) < files // 4, counted.operations


def test_copy_refuses_a_target_that_is_a_directory_before_copying_anything(
    emrfs_endpoint, emrfs_s3, bucket
):
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    fs.pipe({f"{bucket}/src/{n}": n.encode() for n in ("a", "b", "c")})
    fs.makedirs(f"{bucket}/dst/b")
    fs.pipe_file(f"{bucket}/dst/b/keep", b"kept")
    with pytest.raises(IsADirectoryError, match=f"{bucket}/dst/b"):
        fs.copy([f"{bucket}/src/a", f"{bucket}/src/b"], [f"{bucket}/dst/a", f"{bucket}/dst/b"])
    assert "dst/a" not in _keys(emrfs_s3, bucket, "dst/")  # refused before any copy
    assert emrfs_s3.get_object(Bucket=bucket, Key="dst/b/keep")["Body"].read() == b"kept"


def test_lists_of_different_lengths_are_refused_naming_both(emrfs_endpoint, bucket):
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    fs.pipe_file(f"{bucket}/a", b"1")
    with pytest.raises(ValueError, match="1 sources to 2 destinations"):
        fs.copy([f"{bucket}/a"], [f"{bucket}/x", f"{bucket}/y"])


def test_a_missing_source_in_a_recursive_copy_is_skipped_and_otherwise_raised(
    emrfs_endpoint, emrfs_s3, bucket
):
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    fs.pipe_file(f"{bucket}/src/a", b"1")
    with pytest.raises(FileNotFoundError, match="nothing"):
        fs.copy([f"{bucket}/src/a", f"{bucket}/src/nothing"], [f"{bucket}/d/a", f"{bucket}/d/n"])
    assert emrfs_s3.get_object(Bucket=bucket, Key="d/a")["Body"].read() == b"1"
    fs.copy(
        [f"{bucket}/src/a", f"{bucket}/src/nothing"],
        [f"{bucket}/e/a", f"{bucket}/e/n"],
        on_error="ignore",
    )
    assert _keys(emrfs_s3, bucket, "e/") == ["e/a"]

"""``pipe`` of many files: the checks every write needs are made once per parent
directory before any write, and a write that fails does not stop the others
(checked through raw boto3)."""

from __future__ import annotations

import pytest

from emrfs import EmrFileSystem
from emrfs.namespace.markers import Markers

pytestmark = pytest.mark.integration


def _keys(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_parents_are_checked_once_per_directory_not_once_per_write(
    emrfs_endpoint, emrfs_s3, bucket, monkeypatch
):
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    asked: list[tuple] = []  # each time a write asked whether an ancestor is a file
    once = Markers.once

    async def counted(self, key, make):
        if key[0] == "is_file":
            asked.append(key)
        return await once(self, key, make)

    monkeypatch.setattr(Markers, "once", counted)
    fs.pipe({f"{bucket}/{d}/f{i:02d}": b"x" for d in ("a", "b/c") for i in range(30)})
    assert len(_keys(emrfs_s3, bucket)) == 60
    # a, b and b/c, each asked once before the writes (not by each of 60 writes at once)
    assert sorted(k[1].split("/", 1)[1] for k in asked) == ["a", "b", "b/c"]


def test_below_a_file_nothing_is_written(emrfs_endpoint, emrfs_s3, bucket):
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    fs.pipe_file(f"{bucket}/f", b"file")
    with pytest.raises(NotADirectoryError, match=f"{bucket}/f"):
        fs.pipe({f"{bucket}/ok/x": b"1", f"{bucket}/f/y": b"2", f"{bucket}/f/z": b"3"})
    assert _keys(emrfs_s3, bucket) == ["f"]


def test_a_failed_write_is_raised_after_the_others_landed(emrfs_endpoint, emrfs_s3, bucket):
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    fs.pipe_file(f"{bucket}/d/taken", b"old")
    targets = {f"{bucket}/d/n{i}": b"new" for i in range(10)}
    with pytest.raises(FileExistsError, match="taken"):
        fs.pipe({**targets, f"{bucket}/d/taken": b"new"}, mode="create")
    assert _keys(emrfs_s3, bucket) == sorted(["d/taken", *(f"d/n{i}" for i in range(10))])
    assert emrfs_s3.get_object(Bucket=bucket, Key="d/taken")["Body"].read() == b"old"


def test_a_consistent_bulk_write_records_its_rows_in_whole_requests(
    emrfs_endpoint, emrfs_s3, bucket, table, monkeypatch
):
    """pipe() through the consistent view: the rows go to DynamoDB 25 to a request, the
    ancestors read once for the whole write; a scan shows every file live at its ETag."""
    import boto3
    import pynamodb.connection.base as pynamodb_base

    from emrfs.consistency import batching

    monkeypatch.setattr(batching, "LINGER_SECONDS", 3600.0)  # no timing: wait for all
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        consistent=True,
        **{"consistency.table_name": table},
    )
    fs.makedirs(f"{bucket}/warm", exist_ok=True)  # the table made before counting
    sent: list[tuple[str, int]] = []  # (operation, rows or keys) of each DynamoDB request
    make_call = pynamodb_base.Connection._make_api_call

    def counted(self, operation, data, *args, **kwargs):
        items = data.get("RequestItems", {}).get(table)
        if operation == "BatchWriteItem":
            sent.append((operation, len(items)))
        elif operation == "BatchGetItem":
            sent.append((operation, len(items["Keys"])))
        return make_call(self, operation, data, *args, **kwargs)

    monkeypatch.setattr(pynamodb_base.Connection, "_make_api_call", counted)
    fs.pipe({f"{bucket}/bulk/f{i:02d}": f"body {i}".encode() for i in range(60)})
    assert sorted(n for op, n in sent if op == "BatchWriteItem") == [10, 25, 25]
    assert [n for op, n in sent if op == "BatchGetItem"] == [2]  # bucket and bulk, once

    ddb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    items = [
        i for page in ddb.get_paginator("scan").paginate(TableName=table) for i in page["Items"]
    ]
    live = {
        i["child"]["S"]: i["etag"]["S"]
        for i in items
        if i["parent"]["S"] == f"{bucket}/bulk" and not i["is_deleted"]["BOOL"]
    }
    on_s3 = {
        o["Key"].rpartition("/")[2]: o["ETag"].strip('"')
        for o in emrfs_s3.list_objects_v2(Bucket=bucket, Prefix="bulk/")["Contents"]
    }
    assert len(on_s3) == 60 and live == on_s3


def test_each_ancestor_marker_is_deleted_once_by_writes_into_new_subdirectories(
    emrfs_endpoint, emrfs_s3, bucket, monkeypatch
):
    """Writes into 20 new subdirectories of a new directory ask S3 to delete the shared
    ancestor's markers once, not once per subdirectory at the same time (an object store
    may serve concurrent deletes of one key in turn: SeaweedFS took 1-4 s for each)."""
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    fs.makedirs(f"{bucket}/top/kept", exist_ok=True)  # a marker below top: it must stay
    deleted: list[str] = []
    delete_keys = Markers.delete_keys

    async def counted(self, path, bucket_name, keys, *args, **kwargs):
        deleted.extend(keys)
        return await delete_keys(self, path, bucket_name, keys, *args, **kwargs)

    monkeypatch.setattr(Markers, "delete_keys", counted)
    fs.pipe({f"{bucket}/top/d{d:02d}/f{i}": b"x" for d in range(20) for i in range(10)})
    # top's markers went when top/kept was made; each new subdirectory's, once each
    assert sorted(deleted) == sorted(
        k for d in range(20) for k in (f"top/d{d:02d}/", f"top/d{d:02d}_$folder$")
    )
    keys = _keys(emrfs_s3, bucket)
    assert "top/kept/" in keys and len(keys) == 201
    # a write into a directory already cleared asks nothing; a new one, its own markers
    fs.pipe({f"{bucket}/top/d00/g": b"y", f"{bucket}/top/new/h": b"z"})
    assert sorted(deleted[40:]) == ["top/new/", "top/new_$folder$"]
    del deleted[:]  # a new directory's 20 new subdirectories: the new directory's markers once
    fs.pipe({f"{bucket}/fresh/d{d:02d}/f{i}": b"x" for d in range(20) for i in range(5)})
    assert sorted(deleted) == sorted(
        k
        for d in ["fresh", *(f"fresh/d{d:02d}" for d in range(20))]
        for k in (d + "/", d + "_$folder$")
    )

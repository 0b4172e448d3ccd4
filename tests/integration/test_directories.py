"""HDFS-like directory semantics, markers of both kinds, rename, Hadoop file status."""

from __future__ import annotations

import concurrent.futures
import threading

import pytest

from emrfs import EmrFileSystem
from tests.helpers import record_s3_calls


def test_mkdir_makes_an_empty_directory_that_lists_and_stats(fs, bucket, emrfs_s3):
    fs.mkdir(f"{bucket}/a/b")
    assert fs.isdir(f"{bucket}/a/b")
    assert fs.ls(f"{bucket}/a/b") == []
    assert fs.ls(f"{bucket}/a", detail=False) == [f"{bucket}/a/b"]
    keys = [o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["a/b/"]  # emrfs writes dir/ markers only, and only the leaf's


def test_mkdir_without_parents_needs_the_parent(fs, bucket):
    with pytest.raises(FileNotFoundError, match="parent"):
        fs.mkdir(f"{bucket}/x/y", create_parents=False)
    fs.mkdir(f"{bucket}/x", create_parents=False)
    fs.mkdir(f"{bucket}/x/y", create_parents=False)
    assert fs.isdir(f"{bucket}/x/y")


def test_mkdir_existing_raises_and_makedirs_exist_ok(fs, bucket):
    fs.mkdir(f"{bucket}/d")
    with pytest.raises(FileExistsError):
        fs.mkdir(f"{bucket}/d")
    fs.makedirs(f"{bucket}/d", exist_ok=True)
    with pytest.raises(FileExistsError):
        fs.makedirs(f"{bucket}/d", exist_ok=False)


def test_first_child_removes_parent_marker_and_last_child_restores_it(fs, bucket, emrfs_s3):
    fs.mkdir(f"{bucket}/d")
    fs.pipe_file(f"{bucket}/d/f", b"1")
    keys = [o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["d/f"]
    fs.rm(f"{bucket}/d/f")
    assert fs.isdir(f"{bucket}/d")
    keys = [o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["d/"]


def test_rmdir_refuses_non_empty_and_removes_empty(fs, bucket):
    fs.pipe_file(f"{bucket}/d/f", b"1")
    with pytest.raises(OSError, match=r"not empty|Directory not empty"):
        fs.rmdir(f"{bucket}/d")
    fs.rm(f"{bucket}/d/f")
    fs.rmdir(f"{bucket}/d")
    assert not fs.exists(f"{bucket}/d")
    with pytest.raises(NotADirectoryError):
        fs.pipe_file(f"{bucket}/g", b"1")
        fs.rmdir(f"{bucket}/g")


def test_markers_written_by_emrfs_and_s3a_are_read(fs, bucket, emrfs_s3):
    emrfs_s3.put_object(Bucket=bucket, Key="emr_$folder$", Body=b"")
    emrfs_s3.put_object(Bucket=bucket, Key="s3a/", Body=b"")
    emrfs_s3.put_object(Bucket=bucket, Key="both/x_$folder$", Body=b"")
    assert fs.info(f"{bucket}/emr")["type"] == "directory"
    assert fs.info(f"{bucket}/s3a")["type"] == "directory"
    assert fs.ls(f"{bucket}/emr") == []
    assert sorted(fs.ls(bucket, detail=False)) == [f"{bucket}/{d}" for d in ("both", "emr", "s3a")]
    assert fs.ls(f"{bucket}/both", detail=False) == [f"{bucket}/both/x"]
    assert fs.isdir(f"{bucket}/both/x")
    assert fs.find(bucket) == []  # markers are never files
    fs.pipe_file(f"{bucket}/emr/child", b"c")  # first child removes the EMRFS marker too
    keys = {o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert "emr_$folder$" not in keys and "emr/child" in keys


def test_rename_tree_of_200_files(fs, bucket, emrfs_s3):
    data = {f"{bucket}/src/d{i % 7}/f{i:03d}": str(i).encode() for i in range(200)}
    fs.pipe(data)
    fs.mkdir(f"{bucket}/src/empty")
    fs.mv(f"{bucket}/src", f"{bucket}/dst", recursive=True)
    assert not fs.exists(f"{bucket}/src")
    assert fs.isdir(f"{bucket}/dst/empty")
    got = fs.cat(fs.find(f"{bucket}/dst"))
    assert {k.replace("/dst/", "/src/", 1): v for k, v in got.items()} == data
    # side channel: no source object is left
    listed = emrfs_s3.list_objects_v2(Bucket=bucket, Prefix="src")
    assert listed.get("KeyCount", 0) == 0


def test_rename_into_existing_directory_and_file_rename(fs, bucket):
    fs.pipe_file(f"{bucket}/a/f", b"1")
    fs.mkdir(f"{bucket}/into")
    fs.mv(f"{bucket}/a", f"{bucket}/into")
    assert fs.cat_file(f"{bucket}/into/a/f") == b"1"
    fs.mv(f"{bucket}/into/a/f", f"{bucket}/g")
    assert fs.cat_file(f"{bucket}/g") == b"1"
    assert fs.isdir(f"{bucket}/into/a")  # the emptied parent remains
    with pytest.raises(FileNotFoundError):
        fs.mv(f"{bucket}/missing", f"{bucket}/other")
    with pytest.raises(ValueError, match="into itself"):
        fs.mv(f"{bucket}/into", f"{bucket}/into/sub")


def test_recursive_rm_du_find_glob(fs, bucket):
    fs.pipe(
        {
            f"{bucket}/t/a/1.csv": b"12",
            f"{bucket}/t/a/2.txt": b"123",
            f"{bucket}/t/b/3.csv": b"1234",
        }
    )
    assert fs.du(f"{bucket}/t") == 9
    assert fs.find(f"{bucket}/t") == [
        f"{bucket}/t/a/1.csv",
        f"{bucket}/t/a/2.txt",
        f"{bucket}/t/b/3.csv",
    ]
    assert fs.glob(f"{bucket}/t/*/*.csv") == [f"{bucket}/t/a/1.csv", f"{bucket}/t/b/3.csv"]
    assert fs.glob(f"{bucket}/t/a/1*") == [f"{bucket}/t/a/1.csv"]
    with pytest.raises(IsADirectoryError):
        fs.rm(f"{bucket}/t")
    fs.rm(f"{bucket}/t", recursive=True)
    assert not fs.exists(f"{bucket}/t")


def test_glob_sends_the_literal_prefix_to_s3(fs, bucket):
    fs.pipe({f"{bucket}/logs/2026-01-{d:02d}.log": b"x" for d in range(1, 11)})
    fs.pipe({f"{bucket}/logs/other-{i}.log": b"x" for i in range(20)})
    calls = record_s3_calls(fs, methods_only=False)
    assert len(fs.glob(f"{bucket}/logs/2026-01-0*.log")) == 9
    prefixes = [kw.get("Prefix") for method, kw in calls if method == "list_objects_v2"]
    assert "logs/2026-01-0" in prefixes


def test_hadoop_file_status_fields(fs, bucket):
    fs.pipe_file(f"{bucket}/f", b"12345")
    info = fs.info(f"{bucket}/f")
    assert info["length"] == info["size"] == 5
    assert info["type"] == "file"
    assert info["replication"] == 1
    assert info["blockSize"] == 128 * 1024 * 1024
    assert info["permission"] == "666"
    assert info["owner"] and info["group"]
    assert abs(info["modificationTime"] / 1000 - info["LastModified"].timestamp()) < 1
    fs.mkdir(f"{bucket}/d")
    dinfo = fs.info(f"{bucket}/d")
    assert dinfo["type"] == "directory" and dinfo["permission"] == "777" and dinfo["length"] == 0
    custom = EmrFileSystem(
        endpoint_url=fs.options.s3.endpoint_url,
        skip_instance_cache=True,
        **{"fs.s3.block.size": "64m", "owner": "hadoop"},
    )
    cinfo = custom.info(f"{bucket}/f")
    assert cinfo["blockSize"] == 64 * 1024 * 1024 and cinfo["owner"] == "hadoop"


def test_exclusive_create_two_concurrent_writers_exactly_one_wins(fs, bucket):
    path = f"{bucket}/race"
    barrier = threading.Barrier(2)

    def writer(payload: bytes):
        try:
            with fs.open(path, "xb") as f:
                f.write(payload)
                barrier.wait(timeout=10)  # both are past the open() check now
            return "won"
        except FileExistsError:
            return "lost"

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(writer, [b"one", b"two"]))
    assert sorted(results) == ["lost", "won"]
    assert fs.cat_file(path) in (b"one", b"two")


def test_exclusive_create_is_a_conditional_write_for_multipart(fs, bucket, emrfs_endpoint):
    small_parts = EmrFileSystem(
        endpoint_url=emrfs_endpoint, part_size="5MiB", skip_instance_cache=True
    )
    path = f"{bucket}/big"
    f = small_parts.open(path, "xb")
    f.write(b"a" * (6 * 1024 * 1024))  # a multipart upload is now under way
    small_parts.pipe_file(path, b"someone else")  # the other writer lands first
    with pytest.raises(FileExistsError):
        f.close()
    assert small_parts.cat_file(path) == b"someone else"


def test_find_with_dirs_never_lists_the_bucket_itself(fs, bucket):
    """A bucket is the root of its listing: find(bucket, withdirs=True) names what is in it,
    empty or not (an empty bucket listed itself; found by the model workload)."""
    assert fs.find(bucket, withdirs=True) == []
    fs.mkdir(f"{bucket}/a")
    assert fs.find(bucket, withdirs=True) == [f"{bucket}/a"]
    assert fs.find(f"{bucket}/a", withdirs=True) == [f"{bucket}/a"]

"""The ephemeral tier wired into the filesystem: ``_temporary`` paths live in local
blocks only, in every verb; a rename to a persistent path is the one upload.

"Nothing in S3" is checked with raw boto3 ``list_objects_v2`` (the side channel);
requests are counted on the wire by the fault proxy (it injects nothing here).
"""

from __future__ import annotations

import os
import shutil

import pytest

from emrfs import EmrFileSystem

KiB = 1024
MiB = 1024 * KiB


def make_fs(endpoint, tmp_path, replication=1, **extra):
    dirs = [str(tmp_path / f"c{i}") for i in range(max(2, replication))]
    return EmrFileSystem(
        endpoint_url=endpoint,
        skip_instance_cache=True,
        cache={"enabled": True, "directories": dirs, "block_size": 64 * KiB},
        ephemeral={"replication": replication},
        **extra,
    )


@pytest.fixture
def tiered(emrfs_fault_proxy, tmp_path):
    fs = make_fs(emrfs_fault_proxy.url, tmp_path)
    yield fs, emrfs_fault_proxy
    fs._cached.local.tier.terminate()


def s3_keys(s3, bucket) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_spark_style_commit_reaches_s3_only_at_the_final_rename(tiered, bucket, emrfs_s3):
    fs, proxy = tiered
    out = f"{bucket}/out"
    attempt = f"{out}/_temporary/0/_temporary/attempt_1"
    data = os.urandom(300 * KiB)
    proxy.reset_counters()
    fs.makedirs(f"{out}/_temporary/0", exist_ok=True)  # what the job setup does
    with fs.open(f"{attempt}/part-0", "wb") as f:  # the task writes
        f.write(data)
    fs.pipe_file(f"{attempt}/part-1", b"second")
    assert s3_keys(emrfs_s3, bucket) == []
    assert fs.isdir(out) and fs.exists(f"{attempt}/part-0")
    assert fs.ls(out, detail=False) == [f"{out}/_temporary"]

    fs.mv(attempt, f"{out}/_temporary/0/task_1")  # task commit: a local rename
    assert s3_keys(emrfs_s3, bucket) == []
    assert fs.cat_file(f"{out}/_temporary/0/task_1/part-0") == data
    assert not fs.exists(attempt)

    for name in ("part-0", "part-1"):  # job commit: one upload per file
        fs.mv(f"{out}/_temporary/0/task_1/{name}", f"{out}/{name}")
    assert sorted(s3_keys(emrfs_s3, bucket)) == ["out/part-0", "out/part-1"]
    fs.rm(f"{out}/_temporary", recursive=True)
    fs.pipe_file(f"{out}/_SUCCESS", b"")
    commit = proxy.counters()
    print(
        f"\nS3 requests of the whole commit: {commit.services.get('s3', 0)} "
        f"{dict(commit.operations)}"
    )

    assert sorted(s3_keys(emrfs_s3, bucket)) == ["out/_SUCCESS", "out/part-0", "out/part-1"]
    assert emrfs_s3.get_object(Bucket=bucket, Key="out/part-0")["Body"].read() == data
    assert fs.ls(out, detail=False) == [f"{out}/_SUCCESS", f"{out}/part-0", f"{out}/part-1"]
    # no upload, copy or delete of S3 objects other than the three files
    assert commit.operations.get("PutObject", 0) == 3
    assert commit.operations.get("CopyObject", 0) == 0
    assert commit.services.get("s3", 0) <= 25


def test_every_verb_on_ephemeral_paths(tiered, bucket, emrfs_s3, tmp_path):
    fs, _ = tiered
    base = f"{bucket}/job/_temporary"
    fs.pipe_file(f"{bucket}/job/kept", b"persistent")
    fs.mkdir(base, create_parents=False)  # its parent is persistent (S3)
    fs.mkdir(f"{base}/0", create_parents=False)
    with pytest.raises(FileNotFoundError):
        fs.mkdir(f"{bucket}/nowhere/_temporary", create_parents=False)
    with pytest.raises(FileExistsError):
        fs.makedirs(f"{base}/0")
    fs.pipe_file(f"{base}/0/a", b"alpha")
    with pytest.raises(FileExistsError):
        fs.pipe_file(f"{base}/0/a", b"again", mode="create")
    local = tmp_path / "local.bin"
    local.write_bytes(b"from disk" * 1000)
    fs.put_file(str(local), f"{base}/0/b")
    with fs.open(f"{base}/0/c", "wb") as f:
        f.write(b"x" * (200 * KiB))
    with fs.open(f"{base}/0/c", "ab") as f:
        f.write(b"tail")
    assert s3_keys(emrfs_s3, bucket) == ["job/kept"]

    info = fs.info(f"{base}/0/a")
    assert info["type"] == "file" and info["size"] == 5 and info["ephemeral"]
    assert fs.info(base)["type"] == "directory"
    assert fs.ls(f"{bucket}/job", detail=False) == [
        f"{bucket}/job/_temporary",
        f"{bucket}/job/kept",
    ]
    assert fs.ls(f"{base}/0", detail=False) == [f"{base}/0/a", f"{base}/0/b", f"{base}/0/c"]
    assert fs.find(f"{bucket}/job") == [
        f"{base}/0/a",
        f"{base}/0/b",
        f"{base}/0/c",
        f"{bucket}/job/kept",
    ]
    assert f"{base}/0" in fs.find(f"{bucket}/job", withdirs=True)
    assert fs.glob(f"{bucket}/job/_temporary/*/[ab]") == [f"{base}/0/a", f"{base}/0/b"]
    assert fs.cat_file(f"{base}/0/a", 1, 3) == b"lp" and fs.cat_file(f"{base}/0/a", -2) == b"ha"
    assert fs.cat_file(f"{base}/0/c") == b"x" * (200 * KiB) + b"tail"
    with fs.open(f"{base}/0/c", "rb") as f:
        f.seek(200 * KiB)
        assert f.read() == b"tail"
    fs.get_file(f"{base}/0/b", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()
    assert fs.du(f"{bucket}/job") == 5 + 9000 + 200 * KiB + 4 + len(b"persistent")

    fs.cp_file(f"{bucket}/job/kept", f"{base}/0/copied")  # a download into the tier
    assert fs.cat_file(f"{base}/0/copied") == b"persistent"
    with pytest.raises(PermissionError, match="ephemeral tier"):
        fs.mv(f"{bucket}/job/kept", f"{base}/0/moved")
    fs.mv(f"{base}/0/a", f"{base}/0/renamed")
    assert fs.cat_file(f"{base}/0/renamed") == b"alpha" and not fs.exists(f"{base}/0/a")
    with pytest.raises(OSError):
        fs.rmdir(f"{base}/0")  # not empty
    fs.rm(f"{base}/0/renamed")
    fs.mkdir(f"{base}/empty")
    fs.rmdir(f"{base}/empty")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{base}/empty")
    with pytest.raises(IsADirectoryError):
        fs.rm(f"{bucket}/job")  # persistent, with ephemeral children, not recursive
    fs.rm(f"{bucket}/job", recursive=True)
    assert not fs.exists(f"{bucket}/job") and not fs.exists(f"{base}/0/b")
    assert s3_keys(emrfs_s3, bucket) == []


def test_directory_commit_multipart_and_cache_off(emrfs_endpoint, bucket, emrfs_s3, tmp_path):
    fs = make_fs(emrfs_endpoint, tmp_path, part_size="5MiB", multipart_threshold="5MiB")
    big = os.urandom(11 * MiB + 7)
    try:
        with fs.open(f"{bucket}/t/_temporary/task/big", "wb") as f:
            for i in range(0, len(big), MiB):
                f.write(big[i : i + MiB])
        fs.pipe_file(f"{bucket}/t/_temporary/task/sub/small", b"s")
        assert s3_keys(emrfs_s3, bucket) == []
        fs.mv(f"{bucket}/t/_temporary/task", f"{bucket}/t/final")  # a directory leaves
        head = emrfs_s3.head_object(Bucket=bucket, Key="t/final/big")
        assert head["ContentLength"] == len(big) and head["ETag"].strip('"').endswith("-3")
        assert fs.cat_file(f"{bucket}/t/final/big") == big
        assert fs.cat_file(f"{bucket}/t/final/sub/small") == b"s"
        assert not fs.exists(f"{bucket}/t/_temporary/task")
    finally:
        fs._cached.local.tier.terminate()
    # with the cache off the tier is off too: _temporary is an ordinary S3 path
    plain = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    plain.pipe_file(f"{bucket}/u/_temporary/x", b"1")
    assert "u/_temporary/x" in s3_keys(emrfs_s3, bucket)


def test_lost_cache_directory_with_replication_two(emrfs_endpoint, bucket, emrfs_s3, tmp_path):
    fs = make_fs(emrfs_endpoint, tmp_path, replication=2)
    data = os.urandom(640 * KiB)
    path = f"{bucket}/r/_temporary/0/part-0"
    try:
        with fs.open(path, "wb", block_size=64 * KiB) as f:
            f.write(data[: 320 * KiB])
            f.flush()
            shutil.rmtree(tmp_path / "c0")  # a disk goes in the middle of the write
            f.write(data[320 * KiB :])
        assert fs.cat_file(path) == data
        assert fs.ls(f"{bucket}/r/_temporary/0", detail=False) == [path]
        fs.mv(path, f"{bucket}/r/part-0")
        assert emrfs_s3.get_object(Bucket=bucket, Key="r/part-0")["Body"].read() == data
    finally:
        fs._cached.local.tier.terminate()


def test_commit_with_the_consistent_view_records_only_what_reaches_s3(
    emrfs_fault_proxy, bucket, emrfs_s3, tmp_path
):
    import uuid

    import boto3

    table = f"emrfs-meta-{uuid.uuid4().hex[:12]}"
    fs = make_fs(
        emrfs_fault_proxy.url, tmp_path, consistent=True, **{"consistency.table_name": table}
    )
    try:
        fs.pipe_file(f"{bucket}/cv/_temporary/0/part-0", b"abc" * 1000)
        fs.mv(f"{bucket}/cv/_temporary/0/part-0", f"{bucket}/cv/part-0")
        ddb = boto3.client("dynamodb", endpoint_url=emrfs_fault_proxy.url, region_name="us-east-1")
        recorded = str(ddb.scan(TableName=table)["Items"])
        assert "part-0" in recorded and "_temporary" not in recorded
        assert fs.cat_file(f"{bucket}/cv/part-0", 1, 4) == b"bca"  # fills the cache
        emrfs_fault_proxy.reset_counters()
        assert fs.cat_file(f"{bucket}/cv/part-0", 2, 5) == b"cab"
        services = emrfs_fault_proxy.counters().services
        assert services.get("s3", 0) == 0, "a warm read under the consistent view went to S3"
    finally:
        fs._cached.local.tier.terminate()


def test_renaming_a_directory_takes_its_ephemeral_children(tiered, bucket, emrfs_s3):
    """HDFS moves a whole subtree: out/_temporary (local blocks only) goes with out."""
    fs, _ = tiered
    fs.pipe_file(f"{bucket}/out/kept", b"persistent")
    fs.pipe_file(f"{bucket}/out/_temporary/0/_temporary/attempt_1/part-0", b"pending")
    fs.mv(f"{bucket}/out", f"{bucket}/moved", recursive=True)
    assert fs.cat_file(f"{bucket}/moved/_temporary/0/_temporary/attempt_1/part-0") == b"pending"
    assert fs.cat_file(f"{bucket}/moved/kept") == b"persistent"
    assert not fs.exists(f"{bucket}/out")
    assert s3_keys(emrfs_s3, bucket) == ["moved/kept"]

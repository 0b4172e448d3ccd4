"""The ephemeral tier and the persistent namespace form one HDFS tree: nothing can be
created below a file (whichever side holds the file), a persistent write cannot replace
a directory that only the tier holds, and listings show tier files under every ancestor
(also under CSE, whose listing pass HEADs S3 objects).

Found by the model workload (emrfs.testing.workload, configurations ``cache`` and
``all``); S3 is checked through raw boto3 (the side channel).
"""

from __future__ import annotations

import base64

import pytest

from emrfs import EmrFileSystem

KiB = 1024
AES_KEY = base64.b64encode(bytes(range(32))).decode()


def make_fs(endpoint, tmp_path, **extra) -> EmrFileSystem:
    return EmrFileSystem(
        endpoint_url=endpoint,
        skip_instance_cache=True,
        cache={"enabled": True, "directories": [str(tmp_path / "c0")], "block_size": 64 * KiB},
        **extra,
    )


@pytest.fixture
def tiered(emrfs_endpoint, tmp_path):
    fs = make_fs(emrfs_endpoint, tmp_path)
    yield fs
    fs._cached.local.tier.terminate()


@pytest.fixture
def tiered_cse(emrfs_endpoint, tmp_path):
    fs = make_fs(
        emrfs_endpoint,
        tmp_path,
        cse={
            "enabled": True,
            "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
            "aes_key": AES_KEY,
        },
    )
    yield fs
    fs._cached.local.tier.terminate()


def s3_keys(s3, bucket) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_nothing_is_created_in_the_tier_below_a_persistent_file(tiered, bucket, emrfs_s3):
    fs = tiered
    fs.pipe_file(f"{bucket}/out", b"a file")
    for create in (
        lambda p: fs.pipe_file(p, b""),
        lambda p: fs.open(p, "wb").close(),
        lambda p: fs.makedirs(p),
        lambda p: fs.mkdir(p),
    ):
        for target in (f"{bucket}/out/_temporary", f"{bucket}/out/_temporary/0/x"):
            with pytest.raises(NotADirectoryError, match="out"):
                create(target)
    assert not fs._cached.local.tier.exists(f"{bucket}/out/_temporary")
    assert fs.info(f"{bucket}/out")["type"] == "file"
    assert s3_keys(emrfs_s3, bucket) == ["out"]


def test_below_a_tier_file_is_not_a_directory_not_file_exists(tiered, bucket):
    fs = tiered
    fs.pipe_file(f"{bucket}/out/_temporary/0", b"", mode="create")
    with pytest.raises(NotADirectoryError, match="_temporary/0"):
        fs.pipe_file(f"{bucket}/out/_temporary/0/x", b"data")
    with pytest.raises(NotADirectoryError):
        fs.makedirs(f"{bucket}/out/_temporary/0/task/x")
    fs.pipe_file(f"{bucket}/out/_temporary/1/y", b"y")
    with pytest.raises(NotADirectoryError):
        fs.mv(f"{bucket}/out/_temporary/1/y", f"{bucket}/out/_temporary/0/y")
    assert fs.cat_file(f"{bucket}/out/_temporary/1/y") == b"y"
    assert fs.info(f"{bucket}/out/_temporary/0")["type"] == "file"


def test_a_persistent_write_cannot_replace_a_directory_of_tier_paths(tiered, bucket, emrfs_s3):
    fs = tiered
    fs.pipe_file(f"{bucket}/out/_temporary/0/task/y z", b"pending")
    with pytest.raises(IsADirectoryError, match="out"):
        fs.pipe_file(f"{bucket}/out", b"x", mode="create")
    with pytest.raises(IsADirectoryError, match="out"):
        fs.pipe_file(f"{bucket}/out", b"x")
    # the multipart writer's path
    with pytest.raises(IsADirectoryError, match="out"), fs.open(f"{bucket}/out", "wb") as f:
        f.write(b"x" * (6 * 1024 * KiB))
    assert s3_keys(emrfs_s3, bucket) == []
    assert fs.isdir(f"{bucket}/out")


def test_find_and_ls_show_tier_files_under_cse(tiered_cse, bucket, emrfs_s3):
    fs = tiered_cse
    fs.pipe_file(f"{bucket}/out/ü", b"persistent")
    fs.pipe_file(f"{bucket}/out/_temporary/0/task/y z", b"pending")
    assert fs.find(f"{bucket}/out") == [f"{bucket}/out/_temporary/0/task/y z", f"{bucket}/out/ü"]
    sizes = {e["name"]: e["size"] for e in fs.find(f"{bucket}/out", detail=True).values()}
    assert sizes == {f"{bucket}/out/_temporary/0/task/y z": 7, f"{bucket}/out/ü": 10}
    assert fs.ls(f"{bucket}/out", detail=False) == [f"{bucket}/out/_temporary", f"{bucket}/out/ü"]
    fs.rm(f"{bucket}/out/ü")
    assert fs.find(f"{bucket}/out") == [f"{bucket}/out/_temporary/0/task/y z"]
    assert [k for k in s3_keys(emrfs_s3, bucket) if "_temporary" in k] == []


@pytest.mark.parametrize("leave", ["job commit", "rm", "rmdir", "rename in the tier"])
def test_a_persistent_parent_emptied_by_the_tier_stays_a_directory(tiered, bucket, emrfs_s3, leave):
    """HDFS: out/ was made (mkdir -p) by writing out/_temporary/...; it stays once that goes."""
    fs = tiered
    if leave == "rmdir":
        fs.makedirs(f"{bucket}/out/_temporary")
    else:
        fs.pipe_file(f"{bucket}/out/_temporary/0/task/x", b"data")
    if leave == "job commit":
        fs.mv(f"{bucket}/out/_temporary", f"{bucket}/done")
    elif leave == "rm":
        fs.rm(f"{bucket}/out/_temporary", recursive=True)
    elif leave == "rmdir":
        fs.rmdir(f"{bucket}/out/_temporary")
    else:
        fs.mv(f"{bucket}/out/_temporary", f"{bucket}/elsewhere/_temporary")
    assert "out/" in s3_keys(emrfs_s3, bucket)  # its marker, seen by every machine
    assert fs.isdir(f"{bucket}/out")
    assert fs.ls(f"{bucket}/out", detail=False) == []


def test_the_job_commit_of_a_directory_keeps_its_empty_subdirectories(tiered, bucket, emrfs_s3):
    fs = tiered
    fs.makedirs(f"{bucket}/out/_temporary/0/task/empty")
    fs.pipe_file(f"{bucket}/out/_temporary/0/task/part-0", b"p")
    fs.mv(f"{bucket}/out/_temporary/0/task", f"{bucket}/result")
    assert fs.isdir(f"{bucket}/result/empty")
    assert sorted(s3_keys(emrfs_s3, bucket)) == ["result/empty/", "result/part-0"]


def test_tier_verbs_raise_what_persistent_paths_raise(tiered, bucket):
    fs = tiered
    task = f"{bucket}/out/_temporary/0/task"
    fs.pipe_file(f"{task}/y z", b"pending")
    with pytest.raises(IsADirectoryError, match="_temporary"):  # rm(1), not ENOTEMPTY
        fs.rm(f"{bucket}/out/_temporary")
    fs.mv(task, f"{bucket}/out/_temporary/0")  # into the directory holding it: nothing
    fs.mv(task, task)
    assert fs.cat_file(f"{task}/y z") == b"pending"
    with pytest.raises(IsADirectoryError, match="out"):  # a directory of tier paths only
        fs.cat_file(f"{bucket}/out")


def test_a_refused_tier_writer_leaves_nothing_to_flush(tiered, bucket):
    import gc
    import sys

    fs = tiered
    fs.pipe_file(f"{bucket}/out/_temporary/0", b"a file")
    failures = []
    previous, sys.unraisablehook = sys.unraisablehook, failures.append
    try:
        with pytest.raises(NotADirectoryError):
            fs.open(f"{bucket}/out/_temporary/0/x", "wb")
        gc.collect()  # the half-made file object's __del__ runs here
    finally:
        sys.unraisablehook = previous
    assert [f.exc_value for f in failures] == []


def test_rmdir_of_a_recorded_tier_directory_removes_it_everywhere(emrfs_endpoint, bucket, tmp_path):
    """With the consistent view the job set-up's OUT/_temporary/N is recorded in the
    table (other machines see it); rmdir must remove the row too."""
    import uuid

    fs = make_fs(
        emrfs_endpoint,
        tmp_path,
        consistent=True,
        **{"consistency.table_name": f"emrfs-meta-{uuid.uuid4().hex[:12]}"},
    )
    try:
        fs.makedirs(f"{bucket}/out/_temporary/0/task")
        fs.rmdir(f"{bucket}/out/_temporary/0/task")
        assert not fs.exists(f"{bucket}/out/_temporary/0/task")
        assert fs.ls(f"{bucket}/out/_temporary/0", detail=False) == []
    finally:
        fs._cached.local.tier.terminate()


def test_rmdir_refuses_a_directory_holding_tier_paths(tiered, bucket):
    fs = tiered
    fs.pipe_file(f"{bucket}/out/_temporary/0", b"pending")
    with pytest.raises(OSError, match="out") as raised:
        fs.rmdir(f"{bucket}/out")
    assert raised.value.errno == 39  # ENOTEMPTY, as for a directory with S3 children
    assert fs.cat_file(f"{bucket}/out/_temporary/0") == b"pending"


def test_a_tier_file_renamed_below_itself_is_not_a_directory(tiered, bucket):
    fs = tiered
    fs.pipe_file(f"{bucket}/out/_temporary/0", b"f")
    with pytest.raises(NotADirectoryError):
        fs.mv(f"{bucket}/out/_temporary/0", f"{bucket}/out/_temporary/0/x")
    assert fs.cat_file(f"{bucket}/out/_temporary/0") == b"f"


def test_find_of_a_bucket_with_tier_paths_never_lists_the_bucket(tiered, bucket):
    """With tier paths in it, find(bucket, withdirs=True) names what is in the bucket,
    not the bucket itself (found by the model workload, cache configuration)."""
    tiered.pipe(f"{bucket}/out/_temporary/0/part-0", b"x")
    found = tiered.find(bucket, withdirs=True)
    assert bucket not in found
    assert f"{bucket}/out/_temporary/0/part-0" in found and f"{bucket}/out" in found


def _staged_rows(endpoint: str, table: str, bucket: str) -> list[str]:
    """Side channel: the live staged rows (``.emrfs-staged/<bucket>/...``) of ``bucket``
    in the metadata table, by a raw DynamoDB scan."""
    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    rows = []
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for item in page.get("Items", ()):
            full = f"{item['parent']['S']}/{item['child']['S']}"
            if full.startswith(f".emrfs-staged/{bucket}/") and not item.get("is_deleted", {}).get(
                "BOOL"
            ):
                rows.append(full)
    return sorted(rows)


@pytest.mark.parametrize("remover", ["same machine", "other machine"])
def test_rm_r_of_a_persistent_directory_removes_its_recorded_tier_directories(
    emrfs_endpoint, bucket, tmp_path, remover
):
    """rm(OUT, recursive=True) removes what the tier holds below OUT everywhere: the
    local directories and the rows the job set-up recorded for OUT/_temporary/N (other
    machines see those); before, the rows survived and OUT/_temporary was still there
    for every machine (found by the model workload, configuration ``all``).  A machine
    whose disk holds none of it (only the rows) removes it the same way (for itself and
    in the table; the first machine's local directories are out of its reach)."""
    import uuid

    table = f"emrfs-meta-{uuid.uuid4().hex[:12]}"
    opts = {"consistent": True, "consistency.table_name": table}
    fs = make_fs(emrfs_endpoint, tmp_path, **opts)
    other = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        cache={"enabled": True, "directories": [str(tmp_path / "c1")], "block_size": 64 * KiB},
        **opts,
    )
    try:
        fs.makedirs(f"{bucket}/out/_temporary/0")
        assert _staged_rows(emrfs_endpoint, table, bucket)  # recorded: others see it
        remover_fs = fs if remover == "same machine" else other
        remover_fs.rm(f"{bucket}/out", recursive=True)
        for viewer in {id(v): v for v in (remover_fs, other)}.values():
            assert not viewer.exists(f"{bucket}/out/_temporary")
            assert not viewer.exists(f"{bucket}/out")
            with pytest.raises(FileNotFoundError):
                viewer.mv(f"{bucket}/out/_temporary", f"{bucket}/elsewhere")
        assert _staged_rows(emrfs_endpoint, table, bucket) == []
    finally:
        fs._cached.local.tier.terminate()
        other._cached.local.tier.terminate()

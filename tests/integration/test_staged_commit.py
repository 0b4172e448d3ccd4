"""Staged task commit across machines: two filesystems with their own local tiers
(two nodes) and one metadata table.

Node A runs the task and its commit; node B runs the job commit or the abort,
with no access to A's disk.  What S3 holds is checked with raw boto3 (objects
and ``list_multipart_uploads``), the table's staged rows with raw DynamoDB.
"""

from __future__ import annotations

import base64
import os

import boto3
import pytest

from emrfs import EmrFileSystem
from emrfs.errors import ConfigurationError

pytestmark = pytest.mark.integration

KiB = 1024
MiB = 1024 * KiB
AES_KEY = base64.b64encode(bytes(range(32))).decode()


def node(endpoint, tmp_path, name, table, **extra):
    dirs = [str(tmp_path / name / f"c{i}") for i in range(2)]
    return EmrFileSystem(
        endpoint_url=endpoint,
        skip_instance_cache=True,
        consistent=True,
        part_size=5 * MiB,
        consistency={"table_name": table},
        cache={"enabled": True, "directories": dirs, "block_size": 64 * KiB},
        **extra,
    )


@pytest.fixture
def nodes(emrfs_endpoint, tmp_path, table):
    a = node(emrfs_endpoint, tmp_path, "a", table)
    b = node(emrfs_endpoint, tmp_path, "b", table)
    yield a, b
    for fs in (a, b):
        fs._cached.local.tier.terminate()


def objects(s3, bucket) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def uploads(s3, bucket) -> list[str]:
    return sorted(u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def staged_rows(endpoint, table, bucket, with_dirs=False) -> list[str]:
    """Staged file rows (and with ``with_dirs`` their directories below the bucket's row)."""
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    items = ddb.scan(TableName=table)["Items"]
    return sorted(
        f"{i['parent']['S']}/{i['child']['S']}"
        for i in items
        if ("staged" in i or with_dirs) and i["parent"]["S"].startswith(f".emrfs-staged/{bucket}")
    )


def table_row(endpoint, table, parent, child) -> dict:
    """The metadata table's row of ``parent/child`` (raw DynamoDB)."""
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    for item in ddb.scan(TableName=table)["Items"]:
        if item["parent"]["S"] == parent and item["child"]["S"] == child:
            return item
    raise AssertionError(f"no row for {parent}/{child}")


FILES = {
    "part-00000": os.urandom(300 * KiB),
    "day=1/part-00000": b"small",
    "day=2/part-00000": os.urandom(12 * MiB),
    "empty": b"",
}


def run_task(fs, out, attempt="attempt_1", task="task_1", files=FILES):
    """A task: write below its attempt directory, then the task commit (a rename)."""
    base = f"{out}/_temporary/0/_temporary/{attempt}"
    for rel, data in files.items():
        with fs.open(f"{base}/{rel}", "wb") as f:
            f.write(data)
    fs.mv(base, f"{out}/_temporary/0/{task}")


def merge(fs, src, dst):
    """FileOutputCommitter.mergePaths: files and absent directories move whole."""
    for entry in fs.ls(src, detail=True):
        name = entry["name"].rsplit("/", 1)[1]
        target = f"{dst}/{name}"
        if entry["type"] == "file" or not fs.exists(target):
            fs.mv(entry["name"], target)
        else:
            merge(fs, entry["name"], target)


def commit_job(fs, out):
    for task in fs.ls(f"{out}/_temporary/0", detail=False):
        if not task.endswith("/_temporary"):
            merge(fs, task, out)
    fs.pipe_file(f"{out}/_SUCCESS", b"")
    if fs.exists(f"{out}/_temporary"):  # cleanupJob: gone already once the last row went
        fs.rm(f"{out}/_temporary", recursive=True)


def test_task_on_one_node_job_commit_on_another(nodes, bucket, emrfs_s3, emrfs_endpoint, table):
    a, b = nodes
    out = f"{bucket}/out"
    b.makedirs(f"{out}/_temporary/0", exist_ok=True)  # setupJob, on the driver's node
    run_task(a, out)

    # staged: nothing visible, the data is in open uploads, A's disk is free of it
    assert objects(emrfs_s3, bucket) == []
    assert uploads(emrfs_s3, bucket) == sorted(f"out/{rel}" for rel in FILES)
    assert not a._cached.local.tier.exists(f"{out}/_temporary")  # nothing left on A's disk
    assert len(staged_rows(emrfs_endpoint, table, bucket)) == len(FILES)
    # every node sees the committed task, from the table
    for fs in (a, b):
        tasks = [
            p for p in fs.ls(f"{out}/_temporary/0", detail=False) if not p.endswith("/_temporary")
        ]  # the committer's filter
        assert tasks == [f"{out}/_temporary/0/task_1"]
        assert fs.info(f"{out}/_temporary/0/task_1/day=2/part-00000")["size"] == 12 * MiB
        assert sorted(fs.find(f"{out}/_temporary/0/task_1")) == sorted(
            f"{out}/_temporary/0/task_1/{rel}" for rel in FILES
        )
    with pytest.raises(PermissionError, match="staged for the job commit"):
        b.cat_file(f"{out}/_temporary/0/task_1/part-00000")

    commit_job(b, out)

    assert objects(emrfs_s3, bucket) == sorted(["out/_SUCCESS", *(f"out/{r}" for r in FILES)])
    for rel, data in FILES.items():
        assert emrfs_s3.get_object(Bucket=bucket, Key=f"out/{rel}")["Body"].read() == data
        assert a.cat_file(f"{out}/{rel}") == data
    assert uploads(emrfs_s3, bucket) == []
    assert staged_rows(emrfs_endpoint, table, bucket, with_dirs=True) == []
    for fs in (a, b):  # the job's end, run on B, is seen on A too
        assert not fs.exists(f"{out}/_temporary")
        assert f"{out}/_temporary" not in fs.ls(out, detail=False)
    # the consistent view recorded the committed files
    assert a._view(out).store.get(f"{out}/day=2/part-00000").size == 12 * MiB


def test_aborted_job_leaves_nothing(nodes, bucket, emrfs_s3, emrfs_endpoint, table):
    a, b = nodes
    out = f"{bucket}/out"
    run_task(a, out, "attempt_1", "task_1")
    run_task(a, out, "attempt_2", "task_2", {"part-00001": b"two"})
    assert len(uploads(emrfs_s3, bucket)) == len(FILES) + 1
    with pytest.raises(IsADirectoryError):
        b.rm(f"{out}/_temporary", recursive=False)
    b.rm(f"{out}/_temporary", recursive=True)  # abortJob, on another node
    # no data: only the output directory the job set-up made stays, as in HDFS (its marker)
    assert objects(emrfs_s3, bucket) == ["out/"]
    assert uploads(emrfs_s3, bucket) == []
    assert staged_rows(emrfs_endpoint, table, bucket, with_dirs=True) == []
    assert not a.exists(f"{out}/_temporary") and not b.exists(f"{out}/_temporary")


def test_the_job_attempt_directory_is_seen_everywhere(nodes, bucket):
    """The job set-up's directory, made on the driver's node, lists on every node even
    after a task attempt aborted and the task node pruned its empty directories."""
    a, b = nodes
    out = f"{bucket}/out"
    b.makedirs(f"{out}/_temporary/0", exist_ok=True)  # setupJob, on B
    a.pipe_file(f"{out}/_temporary/0/_temporary/attempt_1/p", b"x")
    a.rm(f"{out}/_temporary/0/_temporary/attempt_1", recursive=True)  # abortTask, on A
    assert not a._cached.local.tier.exists(f"{out}/_temporary")
    for fs in (a, b):
        assert fs.isdir(f"{out}/_temporary/0")
        listed = fs.ls(f"{out}/_temporary/0", detail=False)
        assert listed in ([], [f"{out}/_temporary/0/_temporary"])


def test_rename_elsewhere_and_within_the_tier(nodes, bucket, emrfs_s3):
    a, b = nodes
    out = f"{bucket}/out"
    run_task(a, out, files={"p": b"payload"})
    # a rename inside the tier moves the rows; the upload stays where it was staged
    b.mv(f"{out}/_temporary/0/task_1", f"{out}/_temporary/0/task_9")
    assert f"{out}/_temporary/0/task_9" in b.ls(f"{out}/_temporary/0", detail=False)
    assert not b.exists(f"{out}/_temporary/0/task_1")
    # a destination other than the predicted one still works (complete, then copy)
    b.mv(f"{out}/_temporary/0/task_9/p", f"{bucket}/elsewhere/p")
    # (the copy's source goes, and out/ keeps a directory marker, as after any last child)
    assert objects(emrfs_s3, bucket) == ["elsewhere/p", "out/"]
    assert b.cat_file(f"{bucket}/elsewhere/p") == b"payload"
    assert uploads(emrfs_s3, bucket) == []


def test_a_repeated_job_commit_finds_the_object_there(nodes, bucket, emrfs_s3):
    a, b = nodes
    out = f"{bucket}/out"
    run_task(a, out, files={"p": b"payload"})
    staging = b._tiers.staging
    [(path, upload)] = b.loop and __import__("fsspec").asyn.sync(
        b.loop, staging.files, f"{out}/_temporary/0/task_1"
    )
    __import__("fsspec").asyn.sync(b.loop, staging._complete, upload)  # a first attempt died
    b.mv(path, f"{out}/p")  # the retry completes nothing twice, and carries on
    assert objects(emrfs_s3, bucket) == ["out/p"]
    assert not b.exists(path)


@pytest.mark.parametrize("storage", ["ObjectMetadata", "InstructionFile"])
def test_staged_uploads_are_encrypted(emrfs_endpoint, tmp_path, table, bucket, emrfs_s3, storage):
    cse = {
        "enabled": True,
        "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
        "aes_key": AES_KEY,
        "storage_mode": storage,
    }
    a = node(emrfs_endpoint, tmp_path, "a", table, cse=cse)
    b = node(emrfs_endpoint, tmp_path, "b", table, cse=cse)
    out = f"{bucket}/out"
    data = os.urandom(6 * MiB + 5)
    run_task(a, out, files={"part-0": data, "small": b"tiny"})
    assert objects(emrfs_s3, bucket) == []  # not even the instruction file yet
    commit_job(b, out)
    stored = emrfs_s3.get_object(Bucket=bucket, Key="out/part-0")["Body"].read()
    assert data[:64] not in stored and len(stored) == len(data) + 16
    assert b.cat_file(f"{out}/part-0") == data and a.cat_file(f"{out}/small") == b"tiny"
    assert b.info(f"{out}/part-0")["size"] == len(data)
    if storage == "InstructionFile":
        assert "out/part-0.instruction" in objects(emrfs_s3, bucket)
    assert uploads(emrfs_s3, bucket) == []
    # the view recorded what S3 holds, at the plaintext size (raw DynamoDB)
    row = table_row(emrfs_endpoint, table, f"{bucket}/out", "part-0")
    head = emrfs_s3.head_object(Bucket=bucket, Key="out/part-0")
    assert (row["etag"]["S"], int(row["length"]["N"])) == (head["ETag"].strip('"'), len(data))
    for fs in (a, b):
        fs._cached.local.tier.terminate()


def test_a_repeated_job_commit_restores_the_instruction_file_and_the_record(
    emrfs_endpoint, tmp_path, table, bucket, emrfs_s3
):
    """A first job commit completed the upload and died before its instruction file and
    the view's record: the retry finds the object there and writes both."""
    from fsspec.asyn import sync

    cse = {
        "enabled": True,
        "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
        "aes_key": AES_KEY,
        "storage_mode": "InstructionFile",
    }
    a = node(emrfs_endpoint, tmp_path, "a", table, cse=cse)
    b = node(emrfs_endpoint, tmp_path, "b", table, cse=cse)
    out = f"{bucket}/out"
    run_task(a, out, files={"p": b"payload"})
    staging = b._tiers.staging
    [(_path, upload)] = sync(b.loop, staging.files, f"{out}/_temporary/0/task_1")
    parts = [{"PartNumber": n, "ETag": e} for n, e in enumerate(upload.etags, 1)]
    emrfs_s3.complete_multipart_upload(  # the first attempt: S3 published it, then it died
        Bucket=bucket, Key="out/p", UploadId=upload.upload_id, MultipartUpload={"Parts": parts}
    )
    sync(b.loop, staging._complete, upload)  # the retry (the job commit's per-file step)
    assert objects(emrfs_s3, bucket) == ["out/p", "out/p.instruction"]
    row = table_row(emrfs_endpoint, table, f"{bucket}/out", "p")
    head = emrfs_s3.head_object(Bucket=bucket, Key="out/p")
    assert (row["etag"]["S"], int(row["length"]["N"])) == (head["ETag"].strip('"'), 7)
    assert b.cat_file(f"{out}/p") == b"payload"
    for fs in (a, b):
        fs._cached.local.tier.terminate()


def test_local_mode_and_the_conflicting_option(emrfs_endpoint, tmp_path, table, bucket, emrfs_s3):
    with pytest.raises(ConfigurationError, match=r"consistency\.enabled"):
        EmrFileSystem(
            endpoint_url=emrfs_endpoint,
            skip_instance_cache=True,
            ephemeral={"task_commit": "staged"},
        )
    fs = node(emrfs_endpoint, tmp_path, "a", table, ephemeral={"task_commit": "local"})
    out = f"{bucket}/out"
    run_task(fs, out, files={"p": b"x"})
    assert uploads(emrfs_s3, bucket) == []  # the task's output stayed on this node
    commit_job(fs, out)
    assert objects(emrfs_s3, bucket) == ["out/_SUCCESS", "out/p"]
    fs._cached.local.tier.terminate()


def test_cli_lists_and_aborts_what_a_dead_driver_left(
    nodes, bucket, emrfs_s3, emrfs_endpoint, table, capsys
):
    import json

    from emrfs.cli import main as cli

    a, _ = nodes
    out = f"{bucket}/out"
    run_task(a, out, files={"p": b"x", "q": b"y"})
    # a task commit that died after uploading, before recording: an orphan upload
    orphan = emrfs_s3.create_multipart_upload(Bucket=bucket, Key="out/lost")["UploadId"]
    base = ["--json", "staged", f"s3://{out}", "--endpoint-url", emrfs_endpoint, "-m", table]

    assert cli(base) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(s["target"] for s in listed["staged"]) == [f"{out}/p", f"{out}/q"]
    assert listed["orphans"] == []
    assert cli([*base, "--older-than", "1h", "--orphans"]) == 0  # too young to touch
    assert json.loads(capsys.readouterr().out)["staged"] == []

    assert cli([*base, "--orphans", "--abort"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert [o["upload_id"] for o in done["orphans"]] == [orphan]
    assert uploads(emrfs_s3, bucket) == [] and objects(emrfs_s3, bucket) == []
    assert staged_rows(emrfs_endpoint, table, bucket) == []


def test_a_task_commit_that_cannot_record_keeps_its_output(
    emrfs_endpoint, tmp_path, table, bucket, emrfs_s3
):
    """DynamoDB refuses the staged rows (throttled past every retry): the uploads are
    aborted and the task's files stay on its node, so the task commit can be retried."""
    from emrfs.testing import Failure, FaultPolicy, FaultProxy

    throttle = FaultPolicy(dynamodb_throttle=Failure(1.0, key_substring=".emrfs-staged"))
    with FaultProxy(emrfs_endpoint) as proxy:
        a = node(
            proxy.url,
            tmp_path,
            "a",
            table,
            **{
                "consistency.dynamodb_max_retries": 1,
                "consistency.dynamodb_retry_base_seconds": 0.01,
            },
        )
        out = f"{bucket}/out"
        attempt = f"{out}/_temporary/0/_temporary/attempt_1"
        a.pipe_file(f"{attempt}/p", b"payload")
        proxy.set_policy(throttle)
        with pytest.raises(OSError):
            a.mv(attempt, f"{out}/_temporary/0/task_1")
        assert uploads(emrfs_s3, bucket) == [] and objects(emrfs_s3, bucket) == []
        assert a.cat_file(f"{attempt}/p") == b"payload"  # still on the node
        proxy.set_policy(FaultPolicy())
        a.mv(attempt, f"{out}/_temporary/0/task_1")  # the retry
        commit_job(a, out)
        assert emrfs_s3.get_object(Bucket=bucket, Key="out/p")["Body"].read() == b"payload"
        a._cached.local.tier.terminate()


def test_a_task_commit_whose_upload_fails_leaves_no_upload_behind(
    emrfs_endpoint, tmp_path, table, bucket, emrfs_s3
):
    """One file's parts are refused (503 past every retry): the other files' staged
    uploads are aborted too, and the task's files stay on its node for the retry."""
    from emrfs.testing import Failure, FaultPolicy, FaultProxy

    with FaultProxy(emrfs_endpoint) as proxy:
        a = node(proxy.url, tmp_path, "a", table, max_attempts=1)
        out = f"{bucket}/out"
        attempt = f"{out}/_temporary/0/_temporary/attempt_1"
        files = {f"good-{i}": os.urandom(1000) for i in range(6)} | {"bad": b"refused"}
        for rel, data in files.items():
            a.pipe_file(f"{attempt}/{rel}", data)
        proxy.set_policy(
            FaultPolicy(slow_down=Failure(1.0, key_substring="out/bad", operations={"UploadPart"}))
        )
        with pytest.raises(OSError):
            a.mv(attempt, f"{out}/_temporary/0/task_1")
        assert uploads(emrfs_s3, bucket) == [] and objects(emrfs_s3, bucket) == []
        assert sorted(a.ls(attempt, detail=False)) == sorted(f"{attempt}/{r}" for r in files)
        a._cached.local.tier.terminate()


def test_staged_output_makes_its_parents_directories_on_every_node(nodes, bucket, emrfs_s3):
    """Once a task commit staged its output and pruned the local tier, the output
    directory is a directory on every node: listed, found, not writable as a file."""
    a, b = nodes
    out = f"{bucket}/out"
    b.makedirs(f"{out}/_temporary/0", exist_ok=True)  # setupJob, on B
    run_task(a, out)  # on A: staged, then A's local copy goes
    staged = sorted(f"{out}/_temporary/0/task_1/{rel}" for rel in FILES)
    for fs in (a, b):
        assert fs.info(out)["type"] == "directory"
        assert fs.ls(out, detail=False) == [f"{out}/_temporary"]
        assert fs.find(out) == staged
        with pytest.raises(IsADirectoryError):
            fs.pipe_file(out, b"x")
        with pytest.raises(OSError, match="out"):
            fs.rmdir(out)
    assert objects(emrfs_s3, bucket) == []

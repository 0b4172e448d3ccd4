"""Abandoned multipart uploads are aborted (``s3.multipart_purge``, S3A's
``fs.s3a.multipart.purge``): of the key being written, on every multipart write;
of the whole bucket, once, with the option on; never one the staged task
commit still needs.  What S3 holds is checked with raw boto3
(``list_multipart_uploads``).

moto reports every upload as initiated at one fixed moment
(:data:`MOTO_INITIATED`, in 2010), so every upload there is older than any
age; a test that needs a young upload moves the purge's clock instead.
"""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import uuid

import pytest

from emrfs import EmrFileSystem, config as _config

pytestmark = pytest.mark.integration

KiB = 1024
MiB = 1024 * KiB
MOTO_INITIATED = datetime.datetime(
    2010, 11, 10, 20, 48, 33, tzinfo=datetime.timezone.utc
).timestamp()

WRITER = r"""
import os, sys, time
from emrfs import EmrFileSystem
fs = EmrFileSystem(endpoint_url=sys.argv[1], skip_instance_cache=True, part_size=5 * 2**20)
f = fs.open(sys.argv[2], "wb")
f.write(os.urandom(6 * 2**20))
f.flush()  # the upload starts and its first part goes up
print("open", flush=True)
time.sleep(600)  # killed here, mid-upload
"""


def uploads(s3, bucket) -> list[tuple[str, str]]:
    return sorted(
        (u["Key"], u["UploadId"])
        for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    )


def killed_writer(endpoint: str, path: str, s3) -> str:
    """Start a writer in a subprocess, kill it (SIGKILL) once its upload is open; the
    upload's id, as S3 lists it."""
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, endpoint, path], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout.readline().strip() == "open", "the writer did not start its upload"
        bucket, key = path.split("/", 1)
        (upload_id,) = [u for k, u in uploads(s3, bucket) if k == key]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    return upload_id


def make_fs(endpoint, **extra):
    return EmrFileSystem(
        endpoint_url=endpoint,
        skip_instance_cache=True,
        part_size=5 * MiB,
        multipart_threshold=5 * MiB,
        **extra,
    )


def test_a_killed_writers_upload_is_aborted_by_the_next_write_of_the_key(
    emrfs_endpoint, bucket, emrfs_s3
):
    path = f"{bucket}/out/part-0"
    dead = killed_writer(emrfs_endpoint, path, emrfs_s3)
    assert uploads(emrfs_s3, bucket) == [("out/part-0", dead)]
    other = emrfs_s3.create_multipart_upload(Bucket=bucket, Key="out/other")["UploadId"]
    fs = make_fs(emrfs_endpoint)  # the defaults: 24 h, whole-bucket purge off
    data = os.urandom(6 * MiB)
    with fs.open(path, "wb") as f:  # a multipart write of the same key
        f.write(data)
    # the abandoned upload of the key went; another key's stays (whole-bucket purge off)
    assert uploads(emrfs_s3, bucket) == [("out/other", other)]
    assert emrfs_s3.get_object(Bucket=bucket, Key="out/part-0")["Body"].read() == data
    fs.pipe(path, b"small")  # one PUT: no listing, nothing else changes
    assert uploads(emrfs_s3, bucket) == [("out/other", other)]


def test_an_upload_younger_than_the_age_stays(emrfs_endpoint, bucket, emrfs_s3):
    path = f"{bucket}/k"
    live = emrfs_s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    fs = make_fs(emrfs_endpoint, **{"fs.s3a.multipart.purge.age": "3600"})
    assert fs.options.s3.multipart_purge is False
    fs._purge.clock = lambda: MOTO_INITIATED + 3000  # it started 50 minutes ago
    fs.pipe(path, os.urandom(6 * MiB))  # multipart
    with fs.open(path, "wb") as f:
        f.write(os.urandom(6 * MiB))
    assert uploads(emrfs_s3, bucket) == [("k", live)]  # maybe a live writer: left alone
    fs._purge.clock = lambda: MOTO_INITIATED + 3601
    fs.pipe(path, os.urandom(6 * MiB))
    assert uploads(emrfs_s3, bucket) == []


def test_purge_on_aborts_abandoned_uploads_of_the_whole_bucket_once(
    emrfs_endpoint, bucket, emrfs_s3
):
    for k in ("a/x", "b/y"):
        emrfs_s3.create_multipart_upload(Bucket=bucket, Key=k)
    fs = make_fs(emrfs_endpoint, **{"fs.s3a.multipart.purge": "true"})
    assert len(uploads(emrfs_s3, bucket)) == 2
    fs.pipe(f"{bucket}/c/z", os.urandom(6 * MiB))  # multipart: the first write into the bucket
    assert uploads(emrfs_s3, bucket) == []
    later = emrfs_s3.create_multipart_upload(Bucket=bucket, Key="a/x")["UploadId"]
    fs.pipe(f"{bucket}/c/z2", os.urandom(6 * MiB))  # once per bucket: other keys are left
    assert uploads(emrfs_s3, bucket) == [("a/x", later)]


def test_uploads_staged_for_a_job_commit_are_never_purged(
    emrfs_endpoint, tmp_path, bucket, emrfs_s3
):
    table = f"emrfs-meta-{uuid.uuid4().hex[:12]}"
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        consistent=True,
        part_size=5 * MiB,
        multipart_threshold=5 * MiB,
        consistency={"table_name": table},
        cache={"enabled": True, "directories": [str(tmp_path / "c")]},
        ephemeral={"task_commit": "staged"},
        **{"fs.s3a.multipart.purge": True},
    )
    try:
        out = f"{bucket}/out"
        fs.makedirs(f"{out}/_temporary/0", exist_ok=True)
        data = os.urandom(6 * MiB)
        attempt = f"{out}/_temporary/0/_temporary/attempt_1"
        with fs.open(f"{attempt}/part-0", "wb") as f:
            f.write(data)
        fs.mv(attempt, f"{out}/_temporary/0/task_1")  # task commit: staged, not completed
        staged = uploads(emrfs_s3, bucket)
        assert [k for k, _ in staged] == ["out/part-0"]
        abandoned = emrfs_s3.create_multipart_upload(Bucket=bucket, Key="out/part-0")["UploadId"]
        # another multipart write of the staged target, and one elsewhere (whole bucket)
        fs.pipe(f"{bucket}/elsewhere", os.urandom(6 * MiB))
        fs.pipe(f"{out}/part-0", os.urandom(6 * MiB))
        assert uploads(emrfs_s3, bucket) == staged  # the staged upload survived both
        assert abandoned not in dict(uploads(emrfs_s3, bucket)).values()
        fs.mv(f"{out}/_temporary/0/task_1/part-0", f"{out}/part-0")  # the job commit
        assert emrfs_s3.get_object(Bucket=bucket, Key="out/part-0")["Body"].read() == data
        assert uploads(emrfs_s3, bucket) == []
    finally:
        fs._cached.local.tier.terminate()


@pytest.mark.parametrize(
    "names",
    [
        {"fs.s3a.multipart.purge": "true", "fs.s3a.multipart.purge.age": "3600"},
        {"fs.s3.multipart.purge": "true", "fs.s3.multipart.purge.age": "3600"},
        {"s3": {"multipart_purge": True, "multipart_purge_age": 3600}},
        {"multipart_purge": True, "multipart_purge_age": 3600.0},
    ],
)
def test_s3a_and_emrfs_spellings(names):
    options = _config.load(names)
    assert options.s3.multipart_purge is True and options.s3.multipart_purge_age == 3600


def test_a_negative_age_is_refused_naming_the_option(emrfs_endpoint):
    with pytest.raises(ValueError, match="multipart_purge_age"):
        make_fs(emrfs_endpoint, **{"fs.s3a.multipart.purge.age": "-1"})


def test_the_purge_costs_one_listing_per_multipart_write_and_never_fails_it(
    emrfs_fault_proxy, bucket, emrfs_s3
):
    from emrfs.testing.faults import Failure, FaultPolicy

    proxy = emrfs_fault_proxy
    fs = make_fs(proxy.url, max_attempts=2, retry_base_seconds=0.01)
    proxy.reset_counters()
    fs.pipe(f"{bucket}/small", b"x")
    fs.pipe(f"{bucket}/big", os.urandom(6 * MiB))
    assert proxy.counters().operations["ListMultipartUploads"] == 1  # the big one only
    left = emrfs_s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    proxy.set_policy(FaultPolicy(slow_down=Failure(1.0, operations={"ListMultipartUploads"})))
    data = os.urandom(6 * MiB)
    fs.pipe(f"{bucket}/big", data)  # the purge cannot list: the write goes on regardless
    assert proxy.counters().fault("slow_down") >= 1
    assert emrfs_s3.get_object(Bucket=bucket, Key="big")["Body"].read() == data
    assert uploads(emrfs_s3, bucket) == [("big", left)]

"""diff / sync / import / delete / fsck against moto, with raw boto3 making S3 differ."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from emrfs import config
from emrfs.config import S3Options
from emrfs.consistency import sync as S
from emrfs.consistency.dynamodb import DynamoDBMetadataStore
from emrfs.consistency.model import TableSpec
from emrfs.consistency.store import Entry

pytestmark = pytest.mark.integration


@pytest.fixture
def store(emrfs_endpoint):
    s = DynamoDBMetadataStore(
        TableSpec(f"emrfs-test-{uuid.uuid4().hex[:12]}", host=emrfs_endpoint),
        read_capacity=50,
        write_capacity=50,
    )
    yield s
    s.delete_table(wait=False)


@pytest.fixture
def walker(emrfs_endpoint):
    return S.AioS3Walker(S3Options(endpoint_url=emrfs_endpoint, region="us-east-1"))


def put(s3, bucket, key, body=b"x"):
    """Write through the side channel and return the entry emrfs would have recorded."""
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
    return Entry.file(f"{bucket}/{key}", len(body), etag)


def statuses(report):
    return {i.path: i.status for i in report.differences}


def test_crash_between_s3_write_and_metadata_is_found_and_mended(
    store, walker, emrfs_s3, emrfs_bucket
):
    b = emrfs_bucket
    store.put_many([put(emrfs_s3, b, "d/a"), put(emrfs_s3, b, "d/sub/b")])
    put(emrfs_s3, b, "d/crash/lost.bin", b"written, metadata never recorded")
    report = asyncio.run(S.diff(store, walker, f"s3://{b}/d"))
    assert statuses(report) == {f"{b}/d/crash": "s3_only", f"{b}/d/crash/lost.bin": "s3_only"}
    assert report.counts()["same"] == 4  # d, d/a, d/sub, d/sub/b
    result = asyncio.run(S.sync(store, walker, f"{b}/d"))
    assert sorted(result.added) == [f"{b}/d/crash", f"{b}/d/crash/lost.bin"]
    assert store.get(f"{b}/d/crash/lost.bin").size == 32
    assert asyncio.run(S.diff(store, walker, f"{b}/d")).clean


def test_out_of_band_delete_overwrite_and_lingering_tombstone(
    store, walker, emrfs_s3, emrfs_bucket
):
    b = emrfs_bucket
    store.put_many([put(emrfs_s3, b, k) for k in ("gone", "over", "back", "same")])
    emrfs_s3.delete_object(Bucket=b, Key="gone")  # deleted outside emrfs
    put(emrfs_s3, b, "over", b"a longer body")  # overwritten outside emrfs
    store.delete(f"{b}/back")  # crash after tombstone, S3 kept it
    emrfs_s3.put_object(Bucket=b, Key="empty/", Body=b"")  # a folder marker
    report = asyncio.run(S.diff(store, walker, b))
    assert statuses(report) == {
        f"{b}/gone": "metadata_only",
        f"{b}/over": "differs",
        f"{b}/back": "tombstone_in_s3",
        f"{b}/empty": "s3_only",
    }
    over = next(i for i in report.items if i.path == f"{b}/over")
    assert over.differences[0] == "size: 1, S3 13".replace("size: ", "size: metadata ")
    assert over.differences[1].startswith("etag: metadata")

    dry = asyncio.run(S.sync(store, walker, b, dry_run=True))
    assert dry.changed and store.get(f"{b}/gone").live  # nothing written
    done = asyncio.run(S.sync(store, walker, b))
    assert (sorted(done.added), done.updated, done.removed) == (
        [f"{b}/back", f"{b}/empty"],
        [f"{b}/over"],
        [f"{b}/gone"],
    )
    assert store.get(f"{b}/gone").deleted and store.get(f"{b}/empty").is_dir
    assert store.get(f"{b}/over").size == 13
    assert asyncio.run(S.diff(store, walker, b)).clean


def test_import_adds_only_what_the_table_lacks(store, walker, emrfs_s3, emrfs_bucket):
    b = emrfs_bucket
    store.put(put(emrfs_s3, b, "p/known"))
    put(emrfs_s3, b, "p/known", b"changed")
    put(emrfs_s3, b, "p/new/x")
    put(emrfs_s3, b, "other/y")
    result = asyncio.run(S.import_(store, walker, f"{b}/p"))
    assert sorted(result.added) == [f"{b}/p/new", f"{b}/p/new/x"]
    assert store.get(f"{b}/p/known").size == 1  # left alone
    assert store.get(f"{b}/other/y") is None  # outside the path


def test_walk_of_a_prefix_does_not_take_siblings_sharing_its_name(walker, emrfs_s3, emrfs_bucket):
    b = emrfs_bucket
    for key in ("dir/a", "dir2/b", "dir_$folder$", "dir/sub_$folder$"):
        emrfs_s3.put_object(Bucket=b, Key=key, Body=b"")

    async def names():
        return {p: i["type"] async for p, i in walker.walk(f"{b}/dir")}

    assert asyncio.run(names()) == {
        f"{b}/dir": "directory",
        f"{b}/dir/a": "file",
        f"{b}/dir/sub": "directory",
    }


def test_delete_with_age_removes_rows_not_objects(store, emrfs_s3, emrfs_bucket):
    b = emrfs_bucket
    clock = [1000.0]
    store.clock = lambda: clock[0]
    store.put(put(emrfs_s3, b, "q/old"))
    clock[0] += 3600
    store.put(put(emrfs_s3, b, "q/new"))
    assert S.delete(store, f"{b}/q", older_than_seconds=1800) == 2  # q/old and q
    assert store.get(f"{b}/q/old") is None and store.get(f"{b}/q/new").live
    assert emrfs_s3.head_object(Bucket=b, Key="q/old")["ContentLength"] == 1


def test_fsck_finds_and_fixes_invariant_breaks(store, emrfs_endpoint):
    store.put_many([Entry.file("bk/ok/f", 1), Entry.file("bk/file", 1)])
    now = store.now_ms()
    raw = [
        Entry("bk/orphan/deep/x", size=1, last_updated_ms=now),  # no parent rows
        Entry("bk/deadparent", is_dir=True, deleted=True, ttl=9, last_updated_ms=now),
        Entry("bk/deadparent/y", size=1, last_updated_ms=now),  # live under tombstone
        Entry("bk/stone", deleted=True, authoritative=True, ttl=9, last_updated_ms=now),
        Entry("bk/nottl", deleted=True, last_updated_ms=now),
        Entry("bk/auth", size=1, authoritative=True, last_updated_ms=now),
        Entry("bk/file/child", size=1, last_updated_ms=now),  # under a file
    ]
    store._write_rows(raw)  # bypass the store's invariants, as a crash or old client might
    report = S.fsck(store, "s3://bk")
    kinds = {(p.path, p.kind) for p in report.problems}
    assert kinds == {
        ("bk/orphan/deep/x", "orphan"),
        ("bk/deadparent/y", "parent_deleted"),
        ("bk/stone", "authoritative_tombstone"),
        ("bk/nottl", "tombstone_without_ttl"),
        ("bk/auth", "authoritative_file"),
        ("bk/file/child", "parent_is_file"),
    }
    fixed = S.fsck(store, "bk", fix=True)
    assert len(fixed.fixed) == 5
    again = S.fsck(store, "bk")
    assert [(p.path, p.kind) for p in again.problems] == [("bk/file/child", "parent_is_file")]
    assert store.get("bk/orphan/deep").is_dir and store.get("bk/deadparent").live
    assert store.get("bk/nottl").ttl is not None


def test_walker_follows_the_transport_retry_policy_and_error_table(
    store, emrfs_fault_proxy, emrfs_s3, emrfs_bucket
):
    """Throttled LISTs are retried s3.max_attempts times, then one ThrottledError naming
    the path; a missing bucket is a FileNotFoundError.  (The walker used to run its own
    client: botocore's default retries, raw ClientErrors.)"""
    from emrfs.errors import ThrottledError
    from emrfs.testing.faults import Failure, FaultPolicy

    b = emrfs_bucket
    put(emrfs_s3, b, "t/a")
    walker = S.AioS3Walker.from_options(
        config.load(
            {"endpoint_url": emrfs_fault_proxy.url, "region": "us-east-1", "max_attempts": 1}
        )
    )
    emrfs_fault_proxy.set_policy(
        FaultPolicy(slow_down=Failure(1.0, limit=1, operations={"ListObjectsV2"}))
    )
    report = asyncio.run(S.diff(store, walker, f"{b}/t"))  # a 503, then the listing
    assert statuses(report) == {f"{b}/t": "s3_only", f"{b}/t/a": "s3_only"}
    assert emrfs_fault_proxy.counters().fault("slow_down") == 1

    emrfs_fault_proxy.set_policy(FaultPolicy(slow_down=Failure(1.0, operations={"ListObjectsV2"})))
    emrfs_fault_proxy.reset_counters()
    with pytest.raises(ThrottledError, match=f"{b}/t") as info:
        asyncio.run(S.sync(store, walker, f"{b}/t"))
    assert info.value.code == "SlowDown"
    # the first try and s3.max_attempts (Hadoop's fs.s3.maxRetries) retries, no more
    assert emrfs_fault_proxy.counters().fault("slow_down") == 2
    assert store.get(f"{b}/t/a") is None  # nothing recorded from a listing that failed

    emrfs_fault_proxy.set_policy(FaultPolicy())
    missing = f"emrfs-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(FileNotFoundError, match=missing):
        asyncio.run(S.diff(store, walker, missing))

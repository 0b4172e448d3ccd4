"""``info`` through the path's stack while S3's listings lag (the consistent view on):
a directory whose files were deleted is gone at once, though S3 still lists them; one
written below a directory S3 does not list yet is there.  Checked through raw boto3
against moto (not through the proxy)."""

from __future__ import annotations

import time
import uuid

import pytest

from emrfs import EmrFileSystem
from emrfs.testing import FaultPolicy, FaultProxy
from emrfs.testing.faults import Inconsistency

pytestmark = pytest.mark.integration


def _lagging(endpoint: str, **lags: bool) -> FaultProxy:
    return FaultProxy(
        endpoint,
        FaultPolicy(
            inconsistency=Inconsistency(
                **{"delay": 30.0, "list_delay": False, "stale_reads": False, **lags}
            )
        ),
    )


def _consistent_fs(endpoint: str, retry_period: float = 0.2) -> EmrFileSystem:
    return EmrFileSystem(
        endpoint_url=endpoint,
        skip_instance_cache=True,
        consistent=True,
        **{
            "consistency.table_name": f"emrfs-meta-{uuid.uuid4().hex[:12]}",
            "consistency.retry_policy_type": "fixed",
            "consistency.retry_period_seconds": retry_period,
            "consistency.retry_count": 20,
        },
    )


def _keys(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    )


def test_a_deleted_directory_is_gone_while_s3_still_lists_its_files(
    emrfs_endpoint, emrfs_s3, bucket
):
    with _lagging(emrfs_endpoint, lingering_deletes=True) as proxy:
        # a policy that would wait a minute: far from what these calls take on any load
        fs = _consistent_fs(proxy.url, retry_period=3.0)
        fs.pipe({f"{bucket}/d/a": b"1", f"{bucket}/d/e/b": b"2", f"{bucket}/keep": b"k"})
        fs.rm(f"{bucket}/d", recursive=True)
        assert _keys(emrfs_s3, bucket, "d") == []  # gone from S3 itself
        started = time.monotonic()
        # the view's tombstones say what S3's listing (through the proxy) still shows is gone:
        # not a directory, and no wait for S3 to agree (no ConsistencyError at the end)
        assert not fs.exists(f"{bucket}/d")
        assert not fs.isdir(f"{bucket}/d/e")
        with pytest.raises(FileNotFoundError):
            fs.info(f"{bucket}/d")
        assert time.monotonic() - started < 30  # not the policy's 60 s wait
        assert fs.info(f"{bucket}/keep")["size"] == 1


def test_a_directory_whose_files_s3_does_not_list_yet_is_one(emrfs_endpoint, emrfs_s3, bucket):
    with _lagging(emrfs_endpoint, list_delay=True) as proxy:
        fs = _consistent_fs(proxy.url)
        fs.pipe(f"{bucket}/w/x/f", b"data")
        assert _keys(emrfs_s3, bucket, "w/") == ["w/x/f"]  # in S3; its listing lags
        info = fs.info(f"{bucket}/w/x")
        assert info["type"] == "directory"
        assert fs.info(f"{bucket}/w/x/f")["size"] == 4


# --- ls and find through the stack: what the table says ------------------------------------


def test_a_directory_listed_once_is_listed_again_from_the_table(emrfs_endpoint, bucket):
    """fast_list through the consistent layer: a whole directory's checked listing marks
    it authoritative, so the next ls needs no LIST; markers read as directories."""
    with FaultProxy(emrfs_endpoint, FaultPolicy()) as proxy:
        fs = _consistent_fs(proxy.url)
        fs.pipe({f"{bucket}/t/a": b"1", f"{bucket}/t/b": b"22"})
        fs.mkdir(f"{bucket}/t/empty")
        first = fs.ls(f"{bucket}/t")
        proxy.reset_counters()
        again = fs.ls(f"{bucket}/t")
        assert proxy.counters().operations.get("ListObjectsV2", 0) == 0
    names = [f"{bucket}/t/a", f"{bucket}/t/b", f"{bucket}/t/empty"]
    for listed in (first, again):
        assert [e["name"] for e in listed] == names
        assert [e["type"] for e in listed] == ["file", "file", "directory"]
        assert [e["size"] for e in listed[:2]] == [1, 2]


def test_find_shows_directories_the_table_knows_and_hides_deleted_ones(
    emrfs_endpoint, emrfs_s3, bucket
):
    """A directory made while S3's listing lags is found (its row); one deleted while S3
    still lists its marker is not, and is not waited for (fails on 6248453: the
    tombstone of a directory the table had no row for was a ConsistencyError)."""
    with _lagging(emrfs_endpoint, list_delay=True, lingering_deletes=True) as proxy:
        fs = _consistent_fs(proxy.url)
        fs.mkdir(f"{bucket}/f/new")  # S3 does not list its marker yet
        emrfs_s3.put_object(Bucket=bucket, Key="f/old/", Body=b"")  # listed at once (raw)
        emrfs_s3.put_object(Bucket=bucket, Key="f/file", Body=b"x")
        fs.rmdir(f"{bucket}/f/old")  # S3 still lists the marker a while
        assert _keys(emrfs_s3, bucket, "f/") == ["f/file", "f/new/"]
        found = fs.find(f"{bucket}/f", withdirs=True, detail=True)
        assert sorted(found) == [f"{bucket}/f", f"{bucket}/f/file", f"{bucket}/f/new"]
        assert found[f"{bucket}/f/new"]["type"] == "directory"
        assert fs.find(f"{bucket}/f") == [f"{bucket}/f/file"]

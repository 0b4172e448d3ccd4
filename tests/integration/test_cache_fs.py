"""The block cache wired into the filesystem: warm reads never reach S3; an overwrite
through emrfs, or from outside once emrfs has seen it, is never served stale.

Requests are counted on the wire by the fault proxy (it injects nothing here).
"""

from __future__ import annotations

import os

import pytest

from emrfs import EmrFileSystem

KiB = 1024
BLOCK = 64 * KiB


@pytest.fixture
def cached(emrfs_fault_proxy, tmp_path):
    fs = EmrFileSystem(
        endpoint_url=emrfs_fault_proxy.url,
        skip_instance_cache=True,
        cache={
            "enabled": True,
            "directories": [str(tmp_path / "c0")],
            "block_size": BLOCK,
            "prefetch_blocks": 0,
        },
    )
    yield fs, emrfs_fault_proxy
    fs._cached.close()


def s3_requests(proxy) -> int:
    return proxy.counters().services.get("s3", 0)


def test_warm_reads_do_not_touch_s3(cached, bucket):
    fs, proxy = cached
    data = os.urandom(5 * BLOCK + 123)
    fs.pipe_file(f"{bucket}/obj", data)
    with fs.open(f"{bucket}/obj", "rb") as f:  # cold: fills the blocks it reads
        assert f.read() == data
    with fs.open(f"{bucket}/obj", "rb") as f:
        before = s3_requests(proxy)
        f.seek(3 * BLOCK + 7)
        assert f.read(BLOCK) == data[3 * BLOCK + 7 : 4 * BLOCK + 7]
        f.seek(0)
        assert f.read() == data
        assert s3_requests(proxy) == before, "a warm read went to S3"
    before = s3_requests(proxy)
    assert fs.cat_file(f"{bucket}/obj", 10, 2 * BLOCK) == data[10 : 2 * BLOCK]
    assert fs.cat_file(f"{bucket}/obj", -100) == data[-100:]
    assert fs.cat_file(f"{bucket}/obj") == data
    assert s3_requests(proxy) == before, "warm cat_file went to S3"
    m = fs.cache_metrics()
    assert m["hits"] > 0 and m["misses"] > 0


def test_random_cold_reads_fetch_only_touched_blocks(cached, bucket, emrfs_s3):
    fs, proxy = cached
    data = os.urandom(16 * BLOCK)
    emrfs_s3.put_object(Bucket=bucket, Key="cols", Body=data)
    proxy.reset_counters()
    assert (
        fs.cat_file(f"{bucket}/cols", 9 * BLOCK + 5, 9 * BLOCK + 50)
        == data[9 * BLOCK + 5 : 9 * BLOCK + 50]
    )
    c = proxy.counters()
    # a path never seen: its one GET tells the version too (no HEAD first)
    assert dict(c.operations) == {"GetObject": 1}
    assert c.response_bytes == BLOCK  # one block, not the object
    proxy.reset_counters()
    assert (
        fs.cat_file(f"{bucket}/cols", 9 * BLOCK + 100, 9 * BLOCK + 200)
        == data[9 * BLOCK + 100 : 9 * BLOCK + 200]
    )
    assert s3_requests(proxy) == 0


def test_overwrite_through_emrfs_is_never_served_stale(cached, bucket):
    fs, _ = cached
    path = f"{bucket}/data"
    old, new = os.urandom(3 * BLOCK), os.urandom(3 * BLOCK)
    fs.pipe_file(path, old)
    assert fs.cat_file(path, 0, BLOCK) == old[:BLOCK]
    fs.pipe_file(path, new)
    assert fs.cat_file(path, 0, BLOCK) == new[:BLOCK]
    with fs.open(path, "wb") as f:
        f.write(old)
    with fs.open(path, "rb") as f:
        assert f.read() == old
    # rename over it, then delete: nothing of the old bytes survives
    fs.pipe_file(f"{bucket}/other", new)
    fs.cat_file(f"{bucket}/other", 0, 10)
    fs.mv(f"{bucket}/other", path)
    assert fs.cat_file(path, 0, BLOCK) == new[:BLOCK]
    fs.rm(path)
    with pytest.raises(FileNotFoundError):
        fs.cat_file(path, 0, 10)
    assert fs._cached.local.invalidate(path) == 0, "deleted object's blocks were kept"


def test_overwrite_from_outside_once_emrfs_has_seen_it(cached, bucket, emrfs_s3):
    fs, _proxy = cached
    path = f"{bucket}/shared"
    old, new = os.urandom(2 * BLOCK), os.urandom(2 * BLOCK)
    emrfs_s3.put_object(Bucket=bucket, Key="shared", Body=old)
    with fs.open(path, "rb") as f:
        assert f.read() == old
    emrfs_s3.put_object(Bucket=bucket, Key="shared", Body=new)  # behind emrfs's back
    # what emrfs knows is the old version, still whole in the cache: served as it was
    assert fs.cat_file(path, 0, 10) == old[:10]
    # a new open() sees the new ETag: the old blocks are never served again
    with fs.open(path, "rb") as f:
        assert f.read() == new
    assert fs.cat_file(path, 0, 10) == new[:10]
    emrfs_s3.put_object(Bucket=bucket, Key="shared", Body=old)
    fs.info(path)
    assert fs.cat_file(path, BLOCK, BLOCK + 10) == old[BLOCK : BLOCK + 10]


def test_overwrite_from_outside_during_cold_cat_refreshes(cached, bucket, emrfs_s3):
    fs, _ = cached
    path = f"{bucket}/moving"
    a, b = os.urandom(4 * BLOCK), os.urandom(4 * BLOCK)
    emrfs_s3.put_object(Bucket=bucket, Key="moving", Body=a)
    assert fs.cat_file(path, 0, 10) == a[:10]
    emrfs_s3.put_object(Bucket=bucket, Key="moving", Body=b)
    # block 3 is not cached; its fetch carries If-Match of the old ETag, fails,
    # and cat_file looks again rather than mixing versions
    assert fs.cat_file(path, 3 * BLOCK, 3 * BLOCK + 10) == b[3 * BLOCK : 3 * BLOCK + 10]


def test_cache_off_is_plain_s3(emrfs_endpoint, bucket, tmp_path):
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    fs.pipe_file(f"{bucket}/x", b"abc")
    assert fs.cat_file(f"{bucket}/x", 1, 2) == b"b"
    assert fs.cache_metrics() == {}
    assert not fs._cached.built


def test_a_file_closed_right_after_a_read_leaves_its_blocks_warm(cached, bucket, monkeypatch):
    """Closing a file waits for the blocks it fetched to reach the disk (not for read-ahead
    still fetching): a slow disk must not make the next open of the file go to S3."""
    import time

    from emrfs.cache.store import BlockStore

    fs, proxy = cached
    data = os.urandom(3 * BLOCK + 5)
    fs.pipe_file(f"{bucket}/slow", data)
    put = BlockStore.put

    def slow_put(self, *args, **kwargs):
        time.sleep(0.2)  # a slow disk: the write lands well after the read returned
        return put(self, *args, **kwargs)

    monkeypatch.setattr(BlockStore, "put", slow_put)
    with fs.open(f"{bucket}/slow", "rb") as f:
        assert f.read() == data
    with fs.open(f"{bucket}/slow", "rb") as f:
        before = s3_requests(proxy)
        assert f.read() == data
        assert s3_requests(proxy) == before, "the blocks read before close were not cached"

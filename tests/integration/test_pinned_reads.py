"""Every read path reads the version the consistent view recorded (If-Match its ETag), and a
stale copy S3 still serves is retried by the view's policy, not served and not an error.

The fault proxy serves the previous version of an overwritten key (GET and HEAD) for a
while; what S3 really holds and what the table records are checked through raw boto3
and a DynamoDB scan.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid

import boto3
import pytest
from fsspec.asyn import sync

from emrfs import EmrFileSystem
from emrfs.errors import ConsistencyError
from emrfs.s3.client import ChangedError
from emrfs.testing import FaultPolicy, FaultProxy
from emrfs.testing.faults import Inconsistency

pytestmark = pytest.mark.integration

AES = {
    "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
    "aes_key": base64.b64encode(bytes(range(32))).decode(),
}


class ProxyClock:
    """The proxy's clock: time passes only when the consistent view sleeps between
    retries, so a stale window lasts exactly as many retries as it should, however
    slow the machine is, and no test waits for real."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


def consistent_fs(endpoint, table, clock=None, **extra):
    options = {
        "consistent": True,
        "consistency.table_name": table,
        "consistency.retry_policy_type": "fixed",
        "consistency.retry_period_seconds": 0.25,
        "consistency.retry_count": 8,
    }
    options.update(extra)
    fs = EmrFileSystem(endpoint_url=endpoint, skip_instance_cache=True, **options)
    if clock is not None:
        fs._view("bucket/key").sleep = clock.sleep  # the view's injectable sleep
    return fs


def stale_proxy(endpoint, clock, delay=1.0):
    """Overwritten keys serve their previous version for ``delay`` seconds of ``clock``."""
    return FaultProxy(
        endpoint,
        FaultPolicy(
            inconsistency=Inconsistency(
                delay=delay, list_delay=False, lingering_deletes=False, stale_reads=True
            )
        ),
        clock=clock,
    )


def recorded_etag(endpoint, table, bucket, name):
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    for row in ddb.scan(TableName=table)["Items"]:
        if row.get("parent", {}).get("S") == bucket and row.get("child", {}).get("S") == name:
            return row["etag"]["S"]
    raise AssertionError(f"no row for {bucket}/{name}")


def read_via(verb, fs, path, tmp_path):
    if verb == "cat":
        return fs.cat_file(path)
    if verb == "cat_range":
        return fs.cat_file(path, 1, None)
    if verb == "open":
        with fs.open(path, "rb") as f:
            return f.read()
    if verb == "get_file":
        local = tmp_path / "local"
        fs.get_file(path, str(local))
        return local.read_bytes()
    if verb == "cat_stream":

        async def collect():  # as the gateway's OPEN, with no ETag of its own
            stream = fs._cat_stream(path, 0, len(b"version-2"))
            return b"".join([piece async for piece in stream])

        return sync(fs.loop, collect)
    raise AssertionError(verb)


CASES = [
    (verb, mode)
    for mode in ("plain", "cache", "cse")
    for verb in ("cat", "cat_range", "open", "get_file")
] + [("cat_stream", mode) for mode in ("plain", "cache", "cse")]


@pytest.mark.parametrize(("verb", "mode"), CASES)
def test_every_read_path_serves_the_recorded_version(
    emrfs_endpoint, emrfs_s3, bucket, table, tmp_path, verb, mode
):
    extra = {}
    if mode == "cache":
        extra["cache"] = {"enabled": True, "directories": [str(tmp_path / "c")]}
    if mode == "cse":
        extra["cse"] = {"enabled": True, **AES}
    clock = ProxyClock()
    with stale_proxy(emrfs_endpoint, clock) as proxy:
        fs = consistent_fs(proxy.url, table, clock, **extra)
        path = f"{bucket}/p"
        fs.pipe_file(path, b"version-1")
        fs.pipe_file(path, b"version-2")
        got = read_via(verb, fs, path, tmp_path)
        assert proxy.counters().fault("stale_read") >= 1, "the proxy served no stale copy"
    assert clock.sleeps >= 1, "the view did not wait for the stale copy"
    want = b"version-2"
    assert got == (want[1:] if verb == "cat_range" else want)
    # side channel: S3 and the table both hold version 2
    head = emrfs_s3.head_object(Bucket=bucket, Key="p")
    assert head["ETag"].strip('"') == recorded_etag(emrfs_endpoint, table, bucket, "p")
    if mode != "cse":
        assert emrfs_s3.get_object(Bucket=bucket, Key="p")["Body"].read() == want
    if mode == "cache":
        fs._cached.close()


def test_gateway_open_of_a_stale_copy_streams_the_recorded_version(
    emrfs_endpoint, emrfs_s3, bucket, table
):
    """The gateway's streamed OPEN reads through the path's stack: the stale copy S3
    still serves is waited out by the view's policy, never streamed."""
    import requests

    from emrfs.gateway import serve_in_thread

    clock = ProxyClock()
    with stale_proxy(emrfs_endpoint, clock) as proxy:
        fs = consistent_fs(proxy.url, table, clock)
        path = f"{bucket}/g"
        fs.pipe_file(path, b"version-1")
        fs.pipe_file(path, b"version-2")
        with serve_in_thread(fs) as gateway:
            got = requests.get(f"{gateway.url}/webhdfs/v1/{path}?op=OPEN")
        assert proxy.counters().fault("stale_read") >= 1
    assert clock.sleeps >= 1
    assert got.status_code == 200 and got.content == b"version-2"
    head = emrfs_s3.head_object(Bucket=bucket, Key="g")  # side channel: S3 and the table
    assert head["ETag"].strip('"') == recorded_etag(emrfs_endpoint, table, bucket, "g")


def test_stream_of_a_file_overwritten_behind_emrfs_is_refused_by_the_policy(
    emrfs_endpoint, emrfs_s3, bucket, table
):
    """S3 holds a version the view never recorded (written past emrfs): a stream pinned
    to the recorded one waits the policy out and fails; nothing of the other is served."""
    clock = ProxyClock()
    fs = consistent_fs(emrfs_endpoint, table, clock, **{"consistency.retry_count": 2})
    path = f"{bucket}/behind"
    fs.pipe_file(path, b"recorded")
    recorded = fs.info(path)["ETag"]
    emrfs_s3.put_object(Bucket=bucket, Key="behind", Body=b"written behind")
    served: list[bytes] = []

    async def collect(etag):
        async for piece in fs._cat_stream(path, 0, 8, etag=etag):
            served.append(piece)

    for etag in (recorded, None):  # the gateway's status, or none: the stack's checked head
        with pytest.raises(ConsistencyError):
            sync(fs.loop, collect, etag)
    assert served == []
    assert clock.sleeps >= 4  # the policy (retry_count 2), waited out by each stream
    assert recorded.strip('"') == recorded_etag(emrfs_endpoint, table, bucket, "behind")
    assert emrfs_s3.get_object(Bucket=bucket, Key="behind")["Body"].read() == b"written behind"


def _two_versions(proxy, clock, emrfs_endpoint, table, bucket, **extra):
    """(proxied fs, path, info of version 2 as the view records it, plaintext of 2)
    with the proxy still serving version 1: a read whose info is current while
    S3's GET is not yet (the window between HEAD and GET)."""
    fs = consistent_fs(proxy.url, table, clock, **extra)
    direct = consistent_fs(emrfs_endpoint, table, **extra)  # not through the proxy
    path = f"{bucket}/{uuid.uuid4().hex[:6]}"
    v2 = os.urandom(3000)
    fs.pipe_file(path, os.urandom(3000))
    fs.pipe_file(path, v2)
    info = direct.info(path)
    assert info["ETag"].strip('"') == recorded_etag(emrfs_endpoint, table, *path.split("/"))
    return fs, path, info, v2


@pytest.mark.parametrize("whole", [True, False])
def test_cse_read_of_a_stale_copy_is_retried_not_changed_error(
    emrfs_endpoint, bucket, table, whole
):
    # Issue "Data safety" #4: a CSE read under the view raised ChangedError at once
    clock = ProxyClock()
    with stale_proxy(emrfs_endpoint, clock) as proxy:
        fs, path, _, v2 = _two_versions(
            proxy, clock, emrfs_endpoint, table, bucket, cse={"enabled": True, **AES}
        )
        start, end = (0, len(v2)) if whole else (100, 2000)
        got = fs.cat_file(path, 0 if whole else start, None if whole else end)
        assert proxy.counters().fault("stale_read") >= 1
    assert clock.sleeps >= 1
    assert got == v2[start:end]


def test_plain_ranged_read_of_a_stale_copy_is_retried(emrfs_endpoint, bucket, table):
    clock = ProxyClock()
    with stale_proxy(emrfs_endpoint, clock) as proxy:
        fs, path, _, v2 = _two_versions(proxy, clock, emrfs_endpoint, table, bucket)
        got = fs.cat_file(path, 10, 500)  # pinned to the ETag the view records
        assert proxy.counters().fault("stale_read") >= 1
    assert clock.sleeps >= 1
    assert got == v2[10:500]


def test_stale_copy_past_the_policy(emrfs_endpoint, bucket, table, caplog):
    short = {"consistency.retry_count": 2}
    clock = ProxyClock()
    with stale_proxy(emrfs_endpoint, clock, delay=30.0) as proxy:
        fs, path, _, v2 = _two_versions(proxy, clock, emrfs_endpoint, table, bucket, **short)
        with pytest.raises(ConsistencyError, match="stale read"):
            fs.cat_file(path, 0, 10)
        lenient = consistent_fs(
            proxy.url,
            table,
            clock,
            **short,
            **{"consistency.throw_exception_on_inconsistency": False},
        )
        with caplog.at_level(logging.WARNING, logger="emrfs.consistency"):
            # a ranged read never mixes versions: the pin stays
            with pytest.raises(ChangedError):
                lenient.cat_file(path, 0, 10)
            # a whole read gets what S3 serves, logged (as info() does with throw off)
            old = lenient.cat_file(path)
        assert old != v2 and len(old) == 3000
        assert "read" in caplog.text and "ignored" in caplog.text
        assert clock.now < 1030.0  # the window was still open: the policy gave up first


def test_a_stale_range_past_the_policy_waits_the_policy_out_once(emrfs_endpoint, bucket, table):
    # A read through the stack meets the view's policy at the consistent layer; the GET
    # it pins below must not run a second policy inside each of its attempts (lenient: a
    # ranged read keeps its pin, so every attempt fails, and nested policies multiply).
    short = {"consistency.retry_count": 2, "consistency.throw_exception_on_inconsistency": False}
    clock = ProxyClock()
    with stale_proxy(emrfs_endpoint, clock, delay=30.0) as proxy:
        fs, path, _, _ = _two_versions(proxy, clock, emrfs_endpoint, table, bucket, **short)
        with pytest.raises(ChangedError):
            fs.cat_file(path, 0, 10)
    assert clock.sleeps == 2  # retry_count sleeps, not retry_count * (retry_count + 1)


def test_object_overwritten_since_open_fails_at_once(emrfs_endpoint, bucket, table):
    # the table records the newer version: S3 is not stale, the file really changed
    clock = ProxyClock()
    fs = consistent_fs(emrfs_endpoint, table, clock)
    path = f"{bucket}/f"
    fs.pipe_file(path, b"a" * 100)
    with fs.open(path, "rb", cache_type="none") as f:
        fs.pipe_file(path, b"b" * 100)
        with pytest.raises(ChangedError):
            f.read()
    assert clock.sleeps == 0  # no waiting out a policy for a version that is gone


def test_a_resumed_body_never_mixes_two_versions(emrfs_fault_proxy, emrfs_s3, bucket):
    # no view, no pin asked for: the resume after a cut body is pinned to what came first
    from emrfs.testing.faults import Failure

    fs = EmrFileSystem(endpoint_url=emrfs_fault_proxy.url, skip_instance_cache=True)
    emrfs_s3.put_object(Bucket=bucket, Key="r", Body=b"a" * 4096)
    emrfs_fault_proxy.set_policy(FaultPolicy(cut_reads=Failure(1.0, limit=1), cut_fraction=0.5))
    overwritten = []

    def overwrite_once(response):
        if not overwritten:  # between the first GET (cut half way) and its resume
            emrfs_s3.put_object(Bucket=bucket, Key="r", Body=b"b" * 4096)
            overwritten.append(response["ETag"])

    with pytest.raises(ChangedError):
        sync(
            fs.loop,
            fs.s3.read_range,
            f"{bucket}/r",
            bucket,
            "r",
            0,
            4096,
            on_response=overwrite_once,
        )
    assert emrfs_fault_proxy.counters().fault("cut_read") == 1
    assert emrfs_s3.get_object(Bucket=bucket, Key="r")["Body"].read() == b"b" * 4096


def test_cse_listing_never_pairs_one_version_s_etag_with_another_s_length(
    emrfs_endpoint, bucket, table
):
    """Under CSE, ls HEADs each file for its plaintext length; a stale HEAD after an
    overwrite gave the new ETag (from the LIST) with the old length and envelope. The
    entry now describes one version, so the view waits the stale copy out (found by the
    model workload, cse-consistent)."""
    clock = ProxyClock()
    with stale_proxy(emrfs_endpoint, clock) as proxy:
        fs = consistent_fs(proxy.url, table, clock, cse={"enabled": True, **AES})
        fs.pipe_file(f"{bucket}/d/f", b"v" * 100)
        v2 = os.urandom(3000)
        fs.pipe_file(f"{bucket}/d/f", v2)
        entries = fs.ls(f"{bucket}/d", detail=True)
        assert proxy.counters().fault("stale_read") >= 1
    assert [(e["name"], e["size"]) for e in entries] == [(f"{bucket}/d/f", len(v2))]
    raw = boto3.client("s3", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    assert entries[0]["ETag"] == raw.head_object(Bucket=bucket, Key="d/f")["ETag"]

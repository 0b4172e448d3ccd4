"""The fault-injection proxy, seen by raw boto3 clients through it.

Each fault is shown to reach the client (the proxy works), with the raw
client on the server directly (``emrfs_s3``) as the side channel that shows
what is really stored.  Delays run on a manual clock, so nothing sleeps
except the one test that checks real time.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, IncompleteReadError, ResponseStreamingError

from emrfs.testing.faults import Failure, FaultKind, FaultPolicy, FaultProxy, Inconsistency

pytestmark = pytest.mark.integration

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})
REGION = "us-east-1"


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def proxy(emrfs_endpoint, clock):
    with FaultProxy(emrfs_endpoint, clock=clock) as p:
        yield p


def client(url: str, service: str = "s3", config: Config = NO_RETRIES):
    return boto3.client(service, endpoint_url=url, region_name=REGION, config=config)


@pytest.fixture
def s3p(proxy):
    """boto3 S3 through the proxy, retries off."""
    return client(proxy.url)


def keys_of(page) -> list[str]:
    return [o["Key"] for o in page.get("Contents", [])]


def prefixes_of(page) -> list[str]:
    return [p["Prefix"] for p in page.get("CommonPrefixes", [])]


def inconsistent(delay: float = 10.0, **kwargs) -> FaultPolicy:
    return FaultPolicy(inconsistency=Inconsistency(delay=delay, **kwargs))


# --- LIST delay ------------------------------------------------------------------


def test_new_keys_are_hidden_from_list_until_the_delay_ends(
    proxy, s3p, emrfs_s3, emrfs_bucket, clock
):
    emrfs_s3.put_object(Bucket=emrfs_bucket, Key="old", Body=b"o")
    proxy.set_policy(inconsistent(delay=10.0))
    s3p.put_object(Bucket=emrfs_bucket, Key="new", Body=b"n")
    s3p.put_object(Bucket=emrfs_bucket, Key="dir/new", Body=b"n")

    assert keys_of(emrfs_s3.list_objects_v2(Bucket=emrfs_bucket)) == ["dir/new", "new", "old"]
    assert keys_of(s3p.list_objects_v2(Bucket=emrfs_bucket)) == ["old"]
    assert keys_of(s3p.list_objects(Bucket=emrfs_bucket)) == ["old"]
    page = s3p.list_objects_v2(Bucket=emrfs_bucket, Delimiter="/")
    assert (keys_of(page), prefixes_of(page), page["KeyCount"]) == (["old"], [], 1)
    # Reading a hidden key works: only LIST lags.
    assert s3p.get_object(Bucket=emrfs_bucket, Key="new")["Body"].read() == b"n"
    assert proxy.counters().fault(FaultKind.LIST_HIDDEN) == 2 + 2 + 2

    clock.advance(10.0)
    assert keys_of(s3p.list_objects_v2(Bucket=emrfs_bucket)) == ["dir/new", "new", "old"]
    assert prefixes_of(s3p.list_objects_v2(Bucket=emrfs_bucket, Delimiter="/")) == ["dir/"]


def test_a_prefix_with_a_visible_key_stays_listed(proxy, s3p, emrfs_s3, emrfs_bucket):
    emrfs_s3.put_object(Bucket=emrfs_bucket, Key="dir/z-old", Body=b"o")
    proxy.set_policy(inconsistent())
    s3p.put_object(Bucket=emrfs_bucket, Key="dir/a-new", Body=b"n")
    page = s3p.list_objects_v2(Bucket=emrfs_bucket, Delimiter="/")
    assert prefixes_of(page) == ["dir/"]
    assert keys_of(s3p.list_objects_v2(Bucket=emrfs_bucket, Prefix="dir/")) == ["dir/z-old"]


def test_copy_and_multipart_complete_are_hidden_too(proxy, s3p, emrfs_s3, emrfs_bucket):
    emrfs_s3.put_object(Bucket=emrfs_bucket, Key="src", Body=b"s")
    proxy.set_policy(inconsistent())
    s3p.copy_object(
        Bucket=emrfs_bucket, Key="copied", CopySource={"Bucket": emrfs_bucket, "Key": "src"}
    )
    upload = s3p.create_multipart_upload(Bucket=emrfs_bucket, Key="multi")
    part = s3p.upload_part(
        Bucket=emrfs_bucket, Key="multi", UploadId=upload["UploadId"], PartNumber=1, Body=b"m" * 10
    )
    s3p.complete_multipart_upload(
        Bucket=emrfs_bucket,
        Key="multi",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert keys_of(emrfs_s3.list_objects_v2(Bucket=emrfs_bucket)) == ["copied", "multi", "src"]
    assert keys_of(s3p.list_objects_v2(Bucket=emrfs_bucket)) == ["src"]


def test_only_keys_with_the_substring_are_delayed(proxy, s3p, emrfs_bucket):
    proxy.set_policy(inconsistent(key_substring="DELAY_LISTING_ME"))
    s3p.put_object(Bucket=emrfs_bucket, Key="a/DELAY_LISTING_ME/x", Body=b"1")
    s3p.put_object(Bucket=emrfs_bucket, Key="a/plain", Body=b"2")
    assert keys_of(s3p.list_objects_v2(Bucket=emrfs_bucket)) == ["a/plain"]


def test_delay_runs_on_real_time(emrfs_endpoint, emrfs_bucket):
    with FaultProxy(emrfs_endpoint, inconsistent(delay=1.0)) as proxy:
        s3p = client(proxy.url)
        # bounds on what the proxy saw, whatever the machine's load: the PUT arrived
        # after ``started``, a LIST answered before ``asked`` arrived before it
        started = time.monotonic()
        s3p.put_object(Bucket=emrfs_bucket, Key="k", Body=b"1")
        first = keys_of(s3p.list_objects_v2(Bucket=emrfs_bucket))
        if time.monotonic() - started < 1.0:
            assert first == []  # listed within the delay: hidden
        while not keys_of(s3p.list_objects_v2(Bucket=emrfs_bucket)):
            assert time.monotonic() - started < 120, "the delayed key never showed"
            time.sleep(0.05)
        assert time.monotonic() - started >= 1.0  # shown only once the delay passed


def test_clear_inconsistency_shows_everything_now(proxy, s3p, emrfs_bucket):
    proxy.set_policy(inconsistent())
    s3p.put_object(Bucket=emrfs_bucket, Key="k", Body=b"1")
    assert proxy.pending()["hidden"] == 1
    proxy.clear_inconsistency()
    assert keys_of(s3p.list_objects_v2(Bucket=emrfs_bucket)) == ["k"]
    assert proxy.pending() == {"hidden": 0, "lingering": 0, "stale": 0}


# --- lingering deletes -----------------------------------------------------------


def test_deleted_keys_keep_appearing_in_list(proxy, s3p, emrfs_s3, emrfs_bucket, clock):
    for key in ("a", "b", "c", "d", "sub/x"):
        emrfs_s3.put_object(Bucket=emrfs_bucket, Key=key, Body=key.encode() * 3)
    before = {o["Key"]: o for o in emrfs_s3.list_objects_v2(Bucket=emrfs_bucket)["Contents"]}
    proxy.set_policy(inconsistent(delay=5.0))
    s3p.delete_object(Bucket=emrfs_bucket, Key="b")
    s3p.delete_objects(Bucket=emrfs_bucket, Delete={"Objects": [{"Key": "d"}, {"Key": "sub/x"}]})

    assert keys_of(emrfs_s3.list_objects_v2(Bucket=emrfs_bucket)) == ["a", "c"]
    listed = s3p.list_objects_v2(Bucket=emrfs_bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["a", "b", "c", "d", "sub/x"]
    for o in listed:
        assert (o["ETag"], o["Size"], o["LastModified"]) == (
            before[o["Key"]]["ETag"],
            before[o["Key"]]["Size"],
            before[o["Key"]]["LastModified"],
        )
    page = s3p.list_objects(Bucket=emrfs_bucket, Delimiter="/")
    assert (keys_of(page), prefixes_of(page)) == (["a", "b", "c", "d"], ["sub/"])
    with pytest.raises(ClientError) as err:  # the delete itself happened
        s3p.get_object(Bucket=emrfs_bucket, Key="b")
    assert err.value.response["Error"]["Code"] == "NoSuchKey"
    assert proxy.counters().fault(FaultKind.LIST_LINGERING) == 3 + 3

    clock.advance(5.0)
    assert keys_of(s3p.list_objects_v2(Bucket=emrfs_bucket)) == ["a", "c"]


def test_lingering_keys_land_on_the_right_page(proxy, s3p, emrfs_s3, emrfs_bucket):
    for key in ("k1", "k2", "k3", "k4", "k5", "k6"):
        emrfs_s3.put_object(Bucket=emrfs_bucket, Key=key, Body=b"x")
    proxy.set_policy(inconsistent())
    s3p.delete_objects(Bucket=emrfs_bucket, Delete={"Objects": [{"Key": "k2"}, {"Key": "k5"}]})
    pages = s3p.get_paginator("list_objects_v2").paginate(
        Bucket=emrfs_bucket, PaginationConfig={"PageSize": 2}
    )
    seen = [k for page in pages for k in keys_of(page)]
    assert seen == ["k1", "k2", "k3", "k4", "k5", "k6"]
    pages = s3p.get_paginator("list_objects").paginate(
        Bucket=emrfs_bucket, PaginationConfig={"PageSize": 2}
    )
    assert [k for page in pages for k in keys_of(page)] == seen


# --- stale reads -----------------------------------------------------------------


def test_overwritten_keys_read_as_the_previous_version(proxy, s3p, emrfs_s3, emrfs_bucket, clock):
    emrfs_s3.put_object(
        Bucket=emrfs_bucket,
        Key="k",
        Body=b"version-one",
        ContentType="text/x-one",
        Metadata={"v": "1"},
    )
    old_etag = emrfs_s3.head_object(Bucket=emrfs_bucket, Key="k")["ETag"]
    proxy.set_policy(inconsistent(delay=3.0))
    s3p.put_object(Bucket=emrfs_bucket, Key="k", Body=b"VERSION-TWO!", Metadata={"v": "2"})

    assert emrfs_s3.get_object(Bucket=emrfs_bucket, Key="k")["Body"].read() == b"VERSION-TWO!"
    got = s3p.get_object(Bucket=emrfs_bucket, Key="k")
    assert got["Body"].read() == b"version-one"
    assert (got["ETag"], got["ContentLength"], got["ContentType"], got["Metadata"]) == (
        old_etag,
        11,
        "text/x-one",
        {"v": "1"},
    )
    head = s3p.head_object(Bucket=emrfs_bucket, Key="k")
    assert (head["ETag"], head["ContentLength"]) == (old_etag, 11)
    ranged = s3p.get_object(Bucket=emrfs_bucket, Key="k", Range="bytes=8-")
    assert (ranged["Body"].read(), ranged["ContentRange"]) == (b"one", "bytes 8-10/11")
    # Overwrites do not hide the key from LIST.
    assert keys_of(s3p.list_objects_v2(Bucket=emrfs_bucket)) == ["k"]
    assert proxy.counters().fault(FaultKind.STALE_READ) == 3

    clock.advance(3.0)
    assert s3p.get_object(Bucket=emrfs_bucket, Key="k")["Body"].read() == b"VERSION-TWO!"


def test_a_delete_ends_a_stale_read(proxy, s3p, emrfs_s3, emrfs_bucket):
    emrfs_s3.put_object(Bucket=emrfs_bucket, Key="k", Body=b"one")
    proxy.set_policy(inconsistent(lingering_deletes=False))
    s3p.put_object(Bucket=emrfs_bucket, Key="k", Body=b"two")
    s3p.delete_object(Bucket=emrfs_bucket, Key="k")
    with pytest.raises(ClientError):
        s3p.get_object(Bucket=emrfs_bucket, Key="k")
    assert proxy.pending() == {"hidden": 0, "lingering": 0, "stale": 0}


# --- 503 SlowDown ------------------------------------------------------------------


def test_slow_down_raises_without_retries_and_is_absorbed_with_them(
    proxy, s3p, emrfs_s3, emrfs_bucket
):
    proxy.set_policy(FaultPolicy(slow_down=Failure(1.0, limit=3)))
    for _ in range(3):
        with pytest.raises(ClientError) as err:
            s3p.put_object(Bucket=emrfs_bucket, Key="k", Body=b"1")
        assert err.value.response["Error"]["Code"] == "SlowDown"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    s3p.put_object(Bucket=emrfs_bucket, Key="k", Body=b"1")  # the limit is spent

    proxy.set_policy(FaultPolicy(slow_down=Failure(1.0, limit=1)))
    retrying = client(proxy.url, config=Config(retries={"max_attempts": 3, "mode": "standard"}))
    assert retrying.get_object(Bucket=emrfs_bucket, Key="k")["Body"].read() == b"1"
    counters = proxy.counters()
    assert counters.fault("slow_down") == 4
    assert counters.operations["GetObject"] == 2
    assert emrfs_s3.get_object(Bucket=emrfs_bucket, Key="k")["Body"].read() == b"1"


def test_slow_down_can_target_one_operation(emrfs_fault_proxy, emrfs_bucket):
    proxy, s3p = emrfs_fault_proxy, client(emrfs_fault_proxy.url)
    proxy.set_policy(FaultPolicy(slow_down=Failure(1.0, operations={"ListObjectsV2"})))
    s3p.put_object(Bucket=emrfs_bucket, Key="k", Body=b"1")
    with pytest.raises(ClientError, match="SlowDown"):
        s3p.list_objects_v2(Bucket=emrfs_bucket)


# --- cut connections -----------------------------------------------------------------


def test_a_cut_body_raises_on_read(proxy, s3p, emrfs_s3, emrfs_bucket):
    body = os.urandom(300_000)
    emrfs_s3.put_object(Bucket=emrfs_bucket, Key="k", Body=body)
    proxy.set_policy(FaultPolicy(cut_reads=Failure(1.0, limit=1), cut_fraction=0.25))
    got = s3p.get_object(Bucket=emrfs_bucket, Key="k")
    assert got["ContentLength"] == len(body)
    with pytest.raises((IncompleteReadError, ResponseStreamingError)):
        got["Body"].read()
    counters = proxy.counters()
    assert counters.fault(FaultKind.CUT_READ) == 1
    assert counters.response_bytes == len(body) // 4
    assert s3p.get_object(Bucket=emrfs_bucket, Key="k")["Body"].read() == body


# --- DynamoDB throttling -------------------------------------------------------------


def test_dynamodb_throttling(proxy, emrfs_endpoint):
    table = f"faults-{uuid.uuid4().hex[:12]}"
    direct = client(emrfs_endpoint, "dynamodb")
    direct.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
    )
    try:
        proxy.set_policy(
            FaultPolicy(dynamodb_throttle=Failure(1.0, limit=2, operations={"PutItem"}))
        )
        ddb = client(proxy.url, "dynamodb")
        item = {"k": {"S": "a"}}
        for _ in range(2):
            with pytest.raises(ClientError) as err:
                ddb.put_item(TableName=table, Item=item)
            assert err.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
            assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert direct.get_item(TableName=table, Key=item).get("Item") is None
        ddb.put_item(TableName=table, Item=item)
        assert ddb.get_item(TableName=table, Key=item)["Item"] == item

        proxy.set_policy(FaultPolicy(dynamodb_throttle=Failure(1.0, limit=2)))
        retrying = client(proxy.url, "dynamodb", Config(retries={"max_attempts": 4}))
        assert retrying.get_item(TableName=table, Key=item)["Item"] == item
        counters = proxy.counters()
        assert counters.fault("dynamodb_throttle") == 4
        assert counters.services["dynamodb"] == 2 + 1 + 1 + 3
    finally:
        direct.delete_table(TableName=table)


# --- counters, probability, seed -----------------------------------------------------


def test_counters_count_requests_and_body_bytes(emrfs_fault_proxy, emrfs_bucket):
    proxy, s3p = emrfs_fault_proxy, client(emrfs_fault_proxy.url)
    body = os.urandom(10_000)
    s3p.put_object(Bucket=emrfs_bucket, Key="k", Body=body)
    proxy.reset_counters()
    assert s3p.get_object(Bucket=emrfs_bucket, Key="k")["Body"].read() == body
    s3p.head_object(Bucket=emrfs_bucket, Key="k")
    counters = proxy.counters()
    assert (counters.requests, counters.request_bytes, counters.response_bytes) == (2, 0, 10_000)
    assert dict(counters.operations) == {"GetObject": 1, "HeadObject": 1}
    assert dict(counters.services) == {"s3": 2}
    assert counters.faults_total == 0


def test_probability_zero_injects_nothing(proxy, s3p, emrfs_bucket):
    never = Failure(0.0)
    proxy.set_policy(
        FaultPolicy(
            inconsistency=Inconsistency(probability=0.0),
            slow_down=never,
            cut_reads=never,
            dynamodb_throttle=never,
        )
    )
    for i in range(10):
        s3p.put_object(Bucket=emrfs_bucket, Key=f"k{i}", Body=b"v1")
        s3p.put_object(Bucket=emrfs_bucket, Key=f"k{i}", Body=b"v2")
        assert s3p.get_object(Bucket=emrfs_bucket, Key=f"k{i}")["Body"].read() == b"v2"
    s3p.delete_object(Bucket=emrfs_bucket, Key="k0")
    assert keys_of(s3p.list_objects_v2(Bucket=emrfs_bucket)) == [f"k{i}" for i in range(1, 10)]
    assert proxy.counters().faults_total == 0
    assert proxy.pending() == {"hidden": 0, "lingering": 0, "stale": 0}


def test_a_seeded_policy_is_reproducible(proxy, s3p, emrfs_s3, emrfs_bucket):
    emrfs_s3.put_object(Bucket=emrfs_bucket, Key="k", Body=b"1")

    def outcomes(seed: int) -> list[bool]:
        proxy.set_policy(FaultPolicy(slow_down=Failure(0.5), seed=seed))
        result = []
        for _ in range(16):
            try:
                s3p.head_object(Bucket=emrfs_bucket, Key="k")
                result.append(True)
            except ClientError:
                result.append(False)
        return result

    first = outcomes(7)
    assert outcomes(7) == first
    assert True in first and False in first
    assert outcomes(8) != first


# --- streaming ----------------------------------------------------------------------


def test_a_64_mib_object_streams_through_with_bounded_memory(proxy, s3p, emrfs_bucket, tmp_path):
    psutil = pytest.importorskip("psutil")
    size = 64 << 20
    source = tmp_path / "big"
    digest = hashlib.sha256()
    with open(source, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(64):
            piece = block[i:] + block[:i]
            f.write(piece)
            digest.update(piece)
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with open(source, "rb") as f:
            s3p.put_object(Bucket=emrfs_bucket, Key="big", Body=f)
        got = hashlib.sha256()
        for chunk in s3p.get_object(Bucket=emrfs_bucket, Key="big")["Body"].iter_chunks(1 << 20):
            got.update(chunk)
    finally:
        done.set()
        sampler.join()
    assert got.hexdigest() == digest.hexdigest()
    assert proxy.counters().response_bytes == size
    assert peak[0] - baseline < 32 << 20, f"RSS grew by {(peak[0] - baseline) >> 20} MiB"


def test_concurrent_clients_get_their_own_answers(emrfs_fault_proxy, emrfs_bucket):
    from concurrent.futures import ThreadPoolExecutor

    emrfs_fault_proxy.set_policy(inconsistent(key_substring="odd", delay=60.0))

    def work(worker: int) -> list[bool]:
        s3p = client(emrfs_fault_proxy.url)
        results = []
        for i in range(6):
            key = f"{'odd' if i % 2 else 'even'}/{worker}-{i}"
            body = os.urandom(1000 + worker * 100 + i)
            s3p.put_object(Bucket=emrfs_bucket, Key=key, Body=body)
            results.append(s3p.get_object(Bucket=emrfs_bucket, Key=key)["Body"].read() == body)
        return results

    with ThreadPoolExecutor(4) as pool:
        assert all(ok for oks in pool.map(work, range(4)) for ok in oks)
    listed = keys_of(client(emrfs_fault_proxy.url).list_objects_v2(Bucket=emrfs_bucket))
    assert listed == sorted(f"even/{w}-{i}" for w in range(4) for i in (0, 2, 4))
    assert emrfs_fault_proxy.pending()["hidden"] == 12

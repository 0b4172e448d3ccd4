"""The consistent view as a layer over S3Store on the embedded moto server, its rows in
a DynamoDB table there: the store contract suite, the table read back with a raw
DynamoDB scan, and the fault-injection proxy's delayed listings, stale reads and
lingering deletes answered consistently."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping

import boto3
import pytest

from emrfs.config import S3Options
from emrfs.consistency import ConsistentView, create_retry_policy
from emrfs.consistency.dynamodb import DynamoDBMetadataStore
from emrfs.consistency.layer import ConsistentStore
from emrfs.consistency.model import TableSpec
from emrfs.errors import ConsistencyError
from emrfs.store.protocol import ObjectMeta
from emrfs.store.s3 import S3Store
from emrfs.testing import FaultPolicy, FaultProxy
from emrfs.testing.faults import Inconsistency
from emrfs.testing.store import StoreTests
from tests.integration.test_pinned_reads import ProxyClock
from tests.integration.test_store_s3 import S3SideChannel
from tests.unit.test_consistent_store import mend_row


@pytest.fixture(scope="module")
def table(request) -> DynamoDBMetadataStore:
    """One DynamoDB table for the module (each test writes into its own bucket)."""
    endpoint = request.getfixturevalue("emrfs_endpoint")
    store = DynamoDBMetadataStore(
        TableSpec(f"emrfs-layer-{uuid.uuid4().hex[:12]}", host=endpoint),
        read_capacity=50,
        write_capacity=50,
    )
    store.create_table()
    yield store
    store.delete_table(wait=False)


class TestConsistentStoreOnMoto(S3SideChannel, StoreTests):
    many_keys = 25  # pages of 10, as TestS3StoreOnMoto

    @pytest.fixture
    def store(self, emrfs_endpoint, emrfs_s3, table) -> ConsistentStore:
        self.raw, self.table = emrfs_s3, table
        s3 = S3Store.from_options(S3Options(endpoint_url=emrfs_endpoint), page_size=10)
        return ConsistentStore(s3, ConsistentView(table, create_retry_policy("fixed", 3, 0.01)))

    @pytest.fixture
    def root(self, emrfs_bucket) -> str:
        return emrfs_bucket

    def raw_put(self, path: str, data: bytes, metadata: Mapping[str, str] | None = None) -> None:
        bucket, key = path.split("/", 1)
        sent = self.raw.put_object(Bucket=bucket, Key=key, Body=data, Metadata=dict(metadata or {}))
        mend_row(self.table, ObjectMeta(path, len(data), sent["ETag"], None, sent.get("VersionId")))


def scan(endpoint: str, table: DynamoDBMetadataStore, bucket: str) -> dict[str, dict]:
    """The table's rows for ``bucket`` by path, read with raw boto3."""
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    rows = ddb.scan(TableName=table.spec.table_name)["Items"]
    return {
        f"{r['parent']['S']}/{r['child']['S']}": r
        for r in rows
        if r.get("parent", {}).get("S", "").split("/")[0] == bucket
    }


def test_a_dynamodb_scan_shows_the_rows_after_writes_and_tombstones_after_deletes(
    emrfs_endpoint, emrfs_s3, emrfs_bucket, table
):
    s3 = S3Store.from_options(S3Options(endpoint_url=emrfs_endpoint))
    layer = ConsistentStore(s3, ConsistentView(table, create_retry_policy("fixed", 1, 0.01)))
    b = emrfs_bucket

    async def go() -> None:
        await layer.put(f"{b}/d/put", b"12345")
        writer = await layer.writer(f"{b}/d/parts")
        await writer.write_part(1, b"abc")
        await writer.complete()
        await layer.copy(f"{b}/d/put", f"{b}/e/copy")
        await layer.delete([f"{b}/d/put"])
        await layer.close()

    asyncio.run(go())
    rows = scan(emrfs_endpoint, table, b)
    for path, size in ((f"{b}/d/parts", 3), (f"{b}/e/copy", 5)):
        key = path.split("/", 1)[1]
        etag = emrfs_s3.head_object(Bucket=b, Key=key)["ETag"]
        assert rows[path]["etag"]["S"] == etag.strip('"')
        assert int(rows[path]["length"]["N"]) == size
        assert not rows[path].get("is_deleted", {}).get("BOOL", False)
    gone = rows[f"{b}/d/put"]
    assert gone["is_deleted"]["BOOL"] is True and "ttl" in gone


@pytest.mark.parametrize("retries", [8, 1])
def test_delayed_listing_stale_read_and_lingering_delete_through_the_proxy(
    emrfs_endpoint, emrfs_bucket, table, retries
):
    """With the policy longer than the proxy's lag (1 s of the shared clock), every
    answer is the consistent one; with a shorter one, ConsistencyError naming the path."""
    clock = ProxyClock()
    lag = FaultPolicy(inconsistency=Inconsistency(delay=1.0, stale_reads=True))
    b = emrfs_bucket
    with FaultProxy(emrfs_endpoint, lag, clock=clock) as proxy:
        s3 = S3Store.from_options(S3Options(endpoint_url=proxy.url))
        policy = create_retry_policy("fixed", retries, 0.25)
        view = ConsistentView(table, policy, sleep=clock.sleep, clock=clock)
        layer = ConsistentStore(s3, view)

        async def names(delimiter: str | None) -> list[str]:
            pages = [p async for p in layer.list(f"{b}/x/", delimiter=delimiter)]
            return [o.path for p in pages for o in p.objects]

        async def go() -> None:
            await layer.put(f"{b}/x/old", b"old")
            await layer.put(f"{b}/x/gone", b"gone")
            clock.now += 2  # past the lag
            await layer.put(f"{b}/x/new", b"new")
            await layer.delete([f"{b}/x/gone"])
            if retries == 1:
                with pytest.raises(ConsistencyError) as info:
                    await names("/")
                assert f"{b}/x/new" in str(info.value)
            else:
                expected = [f"{b}/x/new", f"{b}/x/old"]
                assert await names("/") == expected  # new listed, gone not
                assert await names(None) == expected
                assert proxy.counters().fault("list_hidden") >= 1
            await layer.put(f"{b}/x/old", b"fresh")  # S3 serves "old" for 1 s more
            if retries == 1:
                with pytest.raises(ConsistencyError) as info:
                    await layer.get_range(f"{b}/x/old")
                assert f"{b}/x/old" in str(info.value)
            else:
                assert await layer.get_range(f"{b}/x/old") == b"fresh"  # not the stale copy
            await layer.close()

        asyncio.run(go())

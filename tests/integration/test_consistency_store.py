"""The metadata-store contract: one suite, run against the in-memory and DynamoDB stores.

The DynamoDB store runs against the local moto server with a uuid table per
test; its rows are also read back through raw boto3 (the side channel) where
the wire format matters.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from emrfs.consistency.store import Entry, InMemoryMetadataStore
from emrfs.errors import InvalidPathError


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture(scope="module")
def shared_table(request):
    """One table for the module's DynamoDB contract tests (each test empties it after)."""
    from emrfs.consistency.dynamodb import DynamoDBMetadataStore
    from emrfs.consistency.model import TableSpec

    endpoint = request.getfixturevalue("emrfs_endpoint")
    spec = TableSpec(f"emrfs-test-{uuid.uuid4().hex[:12]}", host=endpoint)
    owner = DynamoDBMetadataStore(spec, read_capacity=50, write_capacity=50)
    owner.create_table()
    yield spec
    owner.delete_table(wait=False)


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.integration)])
def store(request, clock):
    if request.param == "memory":
        yield InMemoryMetadataStore(tombstone_ttl_seconds=3600, clock=clock)
        return
    from emrfs.consistency.dynamodb import DynamoDBMetadataStore

    spec = request.getfixturevalue("shared_table")
    s = DynamoDBMetadataStore(spec, tombstone_ttl_seconds=3600, clock=clock)
    yield s
    s.remove_rows([e.path for e in s.scan()])


def paths(entries):
    return sorted(e.path for e in entries)


class TestMetadataStoreContract:
    def test_get_missing_is_none(self, store):
        assert store.get("bkt/nothing/here") is None

    def test_put_file_then_get_round_trips_every_field(self, store, clock):
        store.record_file("s3://bkt/a/b/f.txt", 123, '"abc"', version_id="v1", mtime_ms=42)
        got = store.get("bkt/a/b/f.txt")
        assert got == Entry(
            "bkt/a/b/f.txt", False, 123, 42, "abc", "v1", False, False, int(clock.now * 1000), None
        )
        assert got.info()["ETag"] == '"abc"' and got.info()["type"] == "file"

    def test_put_creates_ancestor_directories_and_bucket_row(self, store):
        store.record_file("bkt/a/b/f", 1)
        for d in ("bkt", "bkt/a", "bkt/a/b"):
            row = store.get(d)
            assert row is not None and row.is_dir and row.live, d

    def test_ancestor_creation_keeps_existing_flag(self, store):
        store.record_directory("bkt/a")
        assert store.mark_authoritative("bkt/a")
        store.record_file("bkt/a/f", 1)
        assert store.get("bkt/a").authoritative
        store.record_directory("bkt/a")
        assert store.get("bkt/a").authoritative

    def test_racing_directory_creation_keeps_the_winner(self, store):
        """A row another process created between our read and our write is kept."""
        store.record_directory("bkt/r/won")
        store.mark_authoritative("bkt/r/won")
        store.record_file("bkt/r/gone", 1)
        store.delete("bkt/r/gone")
        rows = [
            Entry("bkt/r/new", is_dir=True),
            Entry("bkt/r/won", is_dir=True),
            Entry("bkt/r/gone", is_dir=True),
        ]
        store._create_many_if_absent(rows)
        assert store.get("bkt/r/won").authoritative
        assert store.get("bkt/r/new").is_dir and store.get("bkt/r/gone").live

    def test_list_children_has_live_entries_and_tombstones(self, store):
        store.put_many(
            [Entry.file("bkt/d/x", 1), Entry.file("bkt/d/y", 2), Entry.directory("bkt/d/sub")]
        )
        store.delete("bkt/d/y")
        listing = store.list_children("bkt/d")
        assert [c.name for c in listing.children] == ["sub", "x", "y"]
        assert paths(listing.live) == ["bkt/d/sub", "bkt/d/x"]
        assert paths(listing.tombstones) == ["bkt/d/y"]
        assert listing.entry is not None and not listing.authoritative

    def test_delete_leaves_tombstone_with_ttl(self, store, clock):
        store.record_file("bkt/f", 5, "e")
        store.delete("bkt/f")
        row = store.get("bkt/f")
        assert row.deleted and row.ttl == int(clock.now) + 3600
        assert row.size == 5 and row.etag == "e"  # what was deleted stays readable

    def test_put_over_tombstone_revives(self, store):
        store.record_file("bkt/f", 5)
        store.delete("bkt/f")
        store.record_file("bkt/f", 6)
        row = store.get("bkt/f")
        assert row.live and row.size == 6 and row.ttl is None

    def test_delete_subtree_tombstones_everything_below(self, store):
        store.put_many([Entry.file(f"bkt/t/{i}/f", i) for i in range(8)])
        store.record_file("bkt/keep", 1)
        n = store.delete_subtree("bkt/t")
        assert n == 17  # 8 files, 8 dirs, t itself
        assert all(e.deleted for e in store.walk("bkt/t"))
        assert store.get("bkt/keep").live and store.get("bkt").live

    def test_rename_moves_subtree_new_rows_then_tombstones(self, store):
        store.put_many([Entry.file("bkt/src/a", 1, "e1"), Entry.file("bkt/src/d/b", 2, "e2")])
        store.record_directory("bkt/src/empty")
        moved = store.rename("bkt/src", "bkt/dst/inner")
        assert sorted(d for _, d in moved) == [
            "bkt/dst/inner",
            "bkt/dst/inner/a",
            "bkt/dst/inner/d",
            "bkt/dst/inner/d/b",
            "bkt/dst/inner/empty",
        ]
        assert store.get("bkt/dst/inner/d/b").etag == "e2"
        assert store.get("bkt/dst").is_dir
        assert all(e.deleted for e in store.walk("bkt/src"))

    def test_rename_overrides_and_into_itself(self, store):
        store.record_file("bkt/s/a", 1, "old")
        store.rename("bkt/s", "bkt/t", overrides={"bkt/t/a": Entry.file("bkt/t/a", 1, "new")})
        assert store.get("bkt/t/a").etag == "new"
        with pytest.raises(InvalidPathError):
            store.rename("bkt/t", "bkt/t/x")
        assert store.rename("bkt/t", "bkt/t") == [] and store.get("bkt/t/a").live

    def test_mark_authoritative_only_on_live_directories(self, store):
        store.record_file("bkt/d/f", 1)
        assert store.mark_authoritative("bkt/d")
        assert store.list_children("bkt/d").authoritative
        assert not store.mark_authoritative("bkt/d/f")
        assert not store.mark_authoritative("bkt/none")
        assert store.get("bkt/none") is None
        assert store.mark_authoritative("bkt/d", False)
        assert not store.get("bkt/d").authoritative
        store.delete_subtree("bkt/d")
        assert not store.mark_authoritative("bkt/d")
        assert not store.get("bkt/d").authoritative

    def test_prune_removes_only_old_tombstones(self, store, clock):
        store.put_many(
            [Entry.file("bkt/old", 1), Entry.file("bkt/new", 1), Entry.file("bkt/live", 1)]
        )
        store.delete("bkt/old")
        clock.now += 7200
        store.delete("bkt/new")
        assert store.prune(3600) == 1
        assert store.get("bkt/old") is None
        assert store.get("bkt/new").deleted and store.get("bkt/live").live

    def test_forget_removes_rows_outright_with_age_filter(self, store, clock):
        store.record_file("bkt/p/a", 1)
        clock.now += 100
        store.record_file("bkt/p/b", 1)
        assert store.forget("bkt/p", older_than_seconds=50) == 2  # p/a and p (dir row)
        assert store.get("bkt/p/a") is None and store.get("bkt/p/b").live
        assert store.forget("bkt/p") == 1

    def test_walk_and_scan(self, store):
        store.put_many(
            [Entry.file("bkt/w/a", 1), Entry.file("bkt/w/b/c", 1), Entry.file("bkt/other/x", 1)]
        )
        assert paths(store.walk("bkt/w")) == ["bkt/w", "bkt/w/a", "bkt/w/b", "bkt/w/b/c"]
        assert paths(store.walk("bkt/w/a")) == ["bkt/w/a"]
        assert paths(store.scan("bkt/w")) == paths(store.walk("bkt/w"))
        assert len(list(store.scan())) == 7

    def test_get_many_and_large_batches(self, store):
        entries = [Entry.file(f"bkt/many/f{i:03d}", i) for i in range(130)]
        store.put_many(entries)
        got = store.get_many(e.path for e in entries)
        assert len(got) == 130 and got["bkt/many/f129"].size == 129
        assert len(store.list_children("bkt/many").children) == 130

    def test_root_path_is_refused(self, store):
        with pytest.raises(InvalidPathError):
            store.get("s3://")

    def test_concurrent_writers_from_threads(self, store):
        def work(n):
            for i in range(6):
                store.record_file(f"bkt/c/t{n}/f{i}", i)
                if i % 3 == 0:
                    store.delete(f"bkt/c/t{n}/f{i}")

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows = list(store.walk("bkt/c"))
        assert sum(1 for e in rows if not e.is_dir and e.live) == 4 * 4
        assert sum(1 for e in rows if e.deleted) == 4 * 2


@pytest.mark.integration
def test_dynamodb_rows_on_the_wire(emrfs_endpoint):
    """The layout other tools see: parent/child keys, ttl as epoch seconds, version marker."""
    import boto3

    from emrfs.consistency.dynamodb import DynamoDBMetadataStore
    from emrfs.consistency.model import TableSpec

    name = f"emrfs-test-{uuid.uuid4().hex[:12]}"
    store = DynamoDBMetadataStore(
        TableSpec(name, host=emrfs_endpoint), clock=lambda: 1000.0, tombstone_ttl_seconds=60
    )
    try:
        store.record_file("bkt/dir/f", 7, '"e"', mtime_ms=5)
        store.delete("bkt/dir/f")
        ddb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint)
        item = ddb.get_item(TableName=name, Key={"parent": {"S": "bkt/dir"}, "child": {"S": "f"}})[
            "Item"
        ]
        assert item["ttl"] == {"N": "1060"} and item["is_deleted"] == {"BOOL": True}
        assert item["length"] == {"N": "7"} and item["etag"] == {"S": "e"}
        bucket = ddb.get_item(TableName=name, Key={"parent": {"S": "/"}, "child": {"S": "bkt"}})[
            "Item"
        ]
        assert bucket["is_dir"] == {"BOOL": True}
        marker = ddb.get_item(
            TableName=name, Key={"parent": {"S": "../VERSION"}, "child": {"S": "../VERSION"}}
        )["Item"]
        assert marker["table_version"] == {"N": "1"}
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
        assert "../VERSION" not in [e.path for e in store.scan()]
    finally:
        store.delete_table(wait=False)


@pytest.mark.integration
def test_missing_table_without_auto_create_is_a_clear_error(emrfs_endpoint):
    from emrfs.consistency.dynamodb import DynamoDBMetadataStore
    from emrfs.consistency.model import TableSpec
    from emrfs.errors import ServiceError

    name = f"emrfs-test-{uuid.uuid4().hex[:12]}"
    store = DynamoDBMetadataStore(TableSpec(name, host=emrfs_endpoint), auto_create=False)
    with pytest.raises(ServiceError, match="create-metadata") as info:
        store.get("bkt/x")
    assert info.value.code == "ResourceNotFoundException"
    assert not store.exists()


def _process_worker(store, n: int) -> None:
    for i in range(6):
        store.record_file(f"bkt/shared/deep/p{n}-{i}", i)
        if i % 2:
            store.delete(f"bkt/shared/deep/p{n}-{i}")


@pytest.mark.integration
def test_processes_sharing_one_table(emrfs_endpoint):
    """Three forked processes race to create the same directory rows and write one
    directory, each through the store object the parent made (and had used)."""
    import multiprocessing

    from emrfs.consistency import sync as S
    from emrfs.consistency.dynamodb import DynamoDBMetadataStore
    from emrfs.consistency.model import TableSpec

    name = f"emrfs-test-{uuid.uuid4().hex[:12]}"
    store = DynamoDBMetadataStore(TableSpec(name, host=emrfs_endpoint))
    store.create_table()
    try:
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_process_worker, args=(store, n)) for n in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0, 0]
        listing = store.list_children("bkt/shared/deep")
        assert sorted(e.name for e in listing.live) == sorted(
            f"p{n}-{i}" for n in range(3) for i in range(0, 6, 2)
        )
        assert len(listing.tombstones) == 9
        assert S.fsck(store, "bkt").problems == []
    finally:
        store.delete_table(wait=False)


@pytest.mark.integration
def test_batches_of_file_rows_go_at_once_directory_rows_in_order(emrfs_endpoint):
    """Recording many written files costs one round trip, not one per 25 rows (the
    consistent view's small writes ran at 0.7x plain, waiting on BatchWriteItems one by
    one); rows whose order matters (a directory's tombstone after its children's) keep it."""
    import boto3

    from emrfs.consistency.dynamodb import DynamoDBMetadataStore
    from emrfs.consistency.model import TableSpec

    name = f"emrfs-test-{uuid.uuid4().hex[:12]}"
    store = DynamoDBMetadataStore(TableSpec(name, host=emrfs_endpoint))
    store.create_table()
    original = store._dispatch
    gate = threading.Barrier(3, timeout=10)  # the three batches of 60 file rows, together
    in_flight, overlapped, order = [0], [False], []
    lock = threading.Lock()

    def dispatch(operation, kwargs):
        if operation != "BatchWriteItem":
            return original(operation, kwargs)
        rows = kwargs["RequestItems"][name]
        with lock:
            in_flight[0] += 1
            overlapped[0] = overlapped[0] or in_flight[0] > 1
            order.append([r["PutRequest"]["Item"]["child"]["S"] for r in rows])
        try:
            if gating[0]:
                gate.wait()  # sequential batches never get past this: BrokenBarrierError
            return original(operation, kwargs)
        finally:
            with lock:
                in_flight[0] -= 1

    gating = [True]
    store._dispatch = dispatch
    try:
        store.put_many([Entry.file(f"bkt/many/f{i:03d}", i, f"e{i}") for i in range(60)])
        assert overlapped[0]
        ddb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint)
        rows = ddb.query(
            TableName=name,
            KeyConditionExpression="parent = :p",
            ExpressionAttributeValues={":p": {"S": "bkt/many"}},
            ConsistentRead=True,
        )["Items"]
        assert sorted(r["child"]["S"] for r in rows) == [f"f{i:03d}" for i in range(60)]

        gating[0], overlapped[0] = False, False
        order.clear()
        store.delete_subtree("bkt/many")  # 60 files, then the directory: in that order
        assert not overlapped[0]
        assert order[-1][-1] == "many" and all("many" not in batch for batch in order[:-1])
    finally:
        store.delete_table(wait=False)

"""The consistent view as a layer: the store contract suite over
``ConsistentStore(MemoryStore)`` with an in-memory metadata table, the table seen
through its own side channel after each verb, and a store that lags (delayed
listings, stale reads, lingering deletes) answered consistently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence

import pytest

from emrfs.consistency import ConsistentView, InMemoryMetadataStore, create_retry_policy
from emrfs.consistency.layer import ConsistentStore
from emrfs.consistency.store import Entry, MetadataStore
from emrfs.crypto.store import EncryptingStore
from emrfs.errors import ChangedError, ConsistencyError, not_found
from emrfs.store import MemoryStore
from emrfs.store.memory import StoredObject
from emrfs.store.protocol import DeleteResult, ListPage, ObjectMeta
from emrfs.testing.store import StoreTests
from tests.unit import test_store_memory as memory_suite
from tests.unit.crypto.store_side_channel import cse_options
from tests.unit.crypto.test_encrypting_store import MemoryBelow


def fast_view(table: MetadataStore, retries: int = 3) -> ConsistentView:
    return ConsistentView(table, create_retry_policy("fixed", retries, 0.001))


def mend_row(table: MetadataStore, meta: ObjectMeta) -> None:
    """What ``emrfs sync`` does for an object written outside emrfs: a row the table
    already holds for the path is rewritten to what the store now holds."""
    if table.get(meta.path) is not None:
        table.put(Entry.file(meta.path, meta.size, meta.etag, meta.version_id))


class TestConsistentStoreOverMemory(memory_suite.TestMemoryStore):
    """The memory store's suite and side channel, the layer over it.  ``raw_put`` writes
    past the layer and mends a row the table holds, as ``emrfs sync`` would (an
    unsynced out-of-band overwrite is what the view exists to refuse)."""

    @pytest.fixture
    def store(self) -> ConsistentStore:
        self.memory = MemoryStore(versioned=True)
        self.table = InMemoryMetadataStore()
        return ConsistentStore(self.memory, fast_view(self.table))

    def raw_put(self, path: str, data: bytes, metadata: Mapping[str, str] | None = None) -> None:
        mend_row(self.table, self.memory.place(path, data, metadata))

    def raw_open_uploads(self, bucket: str) -> list[str]:
        return self.memory.open_uploads(bucket)


# --- the table after each verb, read past the layer ----------------------------------------


def _layer() -> tuple[ConsistentStore, MemoryStore, InMemoryMetadataStore]:
    memory, table = MemoryStore(), InMemoryMetadataStore()
    memory.create_bucket("b")
    return ConsistentStore(memory, fast_view(table)), memory, table


def test_writes_are_recorded_after_the_store_confirms_and_deletes_leave_tombstones():
    layer, memory, table = _layer()

    async def go() -> None:
        put = await layer.put("b/d/put", b"12345")
        writer = await layer.writer("b/d/parts")
        await writer.write_part(1, b"xyz")
        assert table.get("b/d/parts") is None  # nothing recorded before it is published
        parts = await writer.complete()
        copied = await layer.copy("b/d/put", "b/e/copy")
        for meta in (put, parts, copied):
            row = table.get(meta.path)
            assert row is not None and row.live and not row.is_dir
            assert (row.size, f'"{row.etag}"') == (meta.size, memory.stored(meta.path).etag)
        assert table.get("b/d").is_dir and table.get("b/e").is_dir  # ancestors recorded
        assert list((await layer.delete(["b/d/put", "b/d/never"])).deleted) == [
            "b/d/put",
            "b/d/never",
        ]
        assert table.get("b/d/put").deleted and table.get("b/d/put").ttl
        assert table.get("b/d/parts").live
        await layer.put("b/markers/", b"")  # folder markers: the namespace's, not recorded
        await layer.put("b/markers_$folder$", b"")
        assert table.get("b/markers") is None

    asyncio.run(go())


def test_a_refused_write_records_nothing():
    layer, memory, table = _layer()
    memory.place("b/taken", b"already")

    async def go() -> None:
        with pytest.raises(FileExistsError):
            await layer.put("b/taken", b"mine", if_none_match=True)

    asyncio.run(go())
    assert table.get("b/taken") is None


# --- a store that lags behind its writes -----------------------------------------------------


class LaggingStore(MemoryStore):
    """S3 before strong consistency: after a write, the next ``lag`` looks (a head, a
    GET, a listing) miss a new object or serve the version before; after a delete,
    the next ``lag`` listings and heads still show the object."""

    def __init__(self, lag: int = 2):
        super().__init__()
        self.lag = lag
        self._behind: dict[str, list] = {}  # path -> [looks left, what was there before]

    def _looks_behind(self, path: str) -> tuple[bool, StoredObject | None]:
        state = self._behind.get(path)
        if not state or state[0] <= 0:
            return False, None
        state[0] -= 1
        return True, state[1]

    async def put(self, path: str, data: bytes, **kwargs) -> ObjectMeta:
        before = self.stored(path)
        meta = await super().put(path, data, **kwargs)
        self._behind[path] = [self.lag, before]
        return meta

    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        before = {p: self.stored(p) for p in paths}
        done = await super().delete(paths)
        for path in done.deleted:
            self._behind[path] = [self.lag, before[path]]
        return done

    async def head(self, path: str) -> ObjectMeta:
        behind, before = self._looks_behind(path)
        if not behind:
            return await super().head(path)
        if before is None:
            raise not_found(path)
        return before.meta(path)

    def _stale(self, path: str, if_match: str | None) -> StoredObject | None:
        """What a GET is served while the store lags (None: it does not lag now)."""
        behind, before = self._looks_behind(path)
        if not behind:
            return None
        if before is None:
            raise not_found(path)
        if if_match is not None and if_match.strip('"') != before.etag.strip('"'):
            raise ChangedError(path, if_match, before.etag)
        return before

    async def get_range(self, path: str, start: int = 0, end: int | None = None, *, if_match=None):
        stale = self._stale(path, if_match)
        if stale is None:
            return await super().get_range(path, start, end, if_match=if_match)
        return stale.data[start:end]

    async def get(self, path: str, start: int = 0, end: int | None = None, *, if_match=None):
        stale = self._stale(path, if_match)
        if stale is None:
            return await super().get(path, start, end, if_match=if_match)
        return stale.meta(path), stale.data[start:end]

    async def list(self, prefix: str, *, delimiter: str | None = None) -> AsyncIterator[ListPage]:
        pages = [page async for page in super().list(prefix, delimiter=delimiter)]
        now = {o.path: o for page in pages for o in page.objects}
        for path, state in self._behind.items():
            if state[0] > 0 and path.startswith(prefix) and path.count("/") == 1:
                state[0] -= 1
                now.pop(path, None)
                if state[1] is not None:
                    now[path] = state[1].meta(path)
        yield ListPage(sorted(now.values(), key=lambda m: m.path), pages[0].prefixes)


def _lagging(lag: int = 2, retries: int = 3):
    memory, table = LaggingStore(lag), InMemoryMetadataStore()
    memory.create_bucket("b")
    return ConsistentStore(memory, fast_view(table, retries)), memory, table


async def _names(store, prefix: str, delimiter: str | None = None) -> list[str]:
    return [o.path async for page in store.list(prefix, delimiter=delimiter) for o in page.objects]


def test_a_lagging_store_is_answered_consistently():
    layer, lagging, _ = _lagging(lag=2)

    async def go() -> None:
        await layer.put("b/new", b"fresh")
        assert await _names(lagging, "b/") == []  # the store itself lags...
        assert await _names(layer, "b/", "/") == ["b/new"]  # ...the layer waits for it
        await layer.put("b/new", b"second")
        assert await layer.get_range("b/new") == b"second"  # a stale copy is retried
        await layer.put("b/new", b"third")
        meta, got = await layer.get("b/new", 1)
        assert (got, meta.size) == (b"hird", 5)
        await layer.put("b/new", b"second")
        assert (await layer.head("b/new")).size == len(b"second")
        await layer.put("b/gone", b"x")
        assert (await layer.head("b/gone")).size == 1
        await layer.delete(["b/gone"])
        with pytest.raises(FileNotFoundError):
            await layer.get_range("b/gone")  # tombstoned: not found, whatever is served
        assert await _names(layer, "b/") == ["b/new"]  # the lingering delete waited out
        chunks = [c async for c in layer.get_stream("b/new", chunk_size=2)]
        assert b"".join(chunks) == b"second"

    asyncio.run(go())


def test_a_store_that_lags_past_the_policy_is_a_consistency_error_naming_the_path():
    layer, _, _ = _lagging(lag=100, retries=2)

    async def go() -> None:
        await layer.put("b/late", b"x")
        for attempt in (layer.head("b/late"), layer.get_range("b/late"), _names(layer, "b/")):
            with pytest.raises(ConsistencyError) as info:
                await attempt
            assert "b/late" in str(info.value)

    asyncio.run(go())


def test_a_listing_with_a_limit_is_asked_short_and_merged_with_the_table():
    """A probe ("is anything under d/") costs one short LIST, leaves out what the table
    tombstoned though the store still lists it, and adds the table's live rows the store
    does not list yet (a directory row as its prefix), without waiting for the store."""
    layer, memory, table = _layer()
    asked: list[int | None] = []
    listing = memory.list

    def counted(prefix: str, *, delimiter: str | None = None, limit: int | None = None):
        asked.append(limit)
        return listing(prefix, delimiter=delimiter, limit=limit)

    memory.list = counted  # type: ignore[method-assign]

    async def first(prefix: str, delimiter: str | None = None, limit: int = 1):
        pages = [p async for p in layer.list(prefix, delimiter=delimiter, limit=limit)]
        return [o.path for p in pages for o in p.objects], [x for p in pages for x in p.prefixes]

    async def go() -> None:
        for i in range(3):
            memory.place(f"b/gone/{i}", b"x")  # still listed by the store...
        table.put_many([Entry.file(f"b/gone/{i}", 1) for i in range(3)])
        table.delete_many([f"b/gone/{i}" for i in range(3)])  # ...deleted in the table
        assert await first("b/gone/") == ([], [])
        assert asked == [1, 10]  # short: a longer LIST only while tombstones fill it
        memory.place("b/gone/live", b"y")
        assert await first("b/gone/") == (["b/gone/live"], [])
        table.put(Entry.file("b/late/f", 4, "e"))  # recorded, not listed by the store yet
        assert await first("b/late/") == (["b/late/f"], [])
        table.record_directory("b/made/sub")  # an empty directory the table alone knows
        assert await first("b/made/") == ([], ["b/made/sub/"])
        assert await first("b/made/", "/") == ([], ["b/made/sub/"])
        memory.place("b/mixed/a", b"1")
        memory.place("b/mixed/c", b"3")
        table.put(Entry.file("b/mixed/b", 2, "e"))
        assert await first("b/mixed/", limit=2) == (["b/mixed/a", "b/mixed/b"], [])
        with pytest.raises(ValueError):
            await first("b/mixed/", limit=0)

    asyncio.run(go())


def test_listings_read_markers_as_directories_and_add_the_tables():
    """Without a delimiter: a deleted directory's lingering marker is left out and a
    directory only the table knows is a prefix; with one, a whole directory's checked
    listing is remembered, so the next comes from the table alone (fast_list)."""
    layer, memory, table = _layer()
    lists: list[str] = []
    listing = memory.list

    def counted(prefix: str, *, delimiter: str | None = None, limit: int | None = None):
        lists.append(prefix)
        return listing(prefix, delimiter=delimiter, limit=limit)

    memory.list = counted  # type: ignore[method-assign]

    async def names(delimiter: str | None) -> tuple[list[str], list[str]]:
        pages = [p async for p in layer.list("b/d/", delimiter=delimiter)]
        return [o.path for p in pages for o in p.objects], [x for p in pages for x in p.prefixes]

    async def go() -> None:
        memory.place("b/d/f", b"1")
        memory.place("b/d/old/", b"")  # the marker of a directory deleted below
        memory.place("b/d/emr_$folder$", b"")  # an EMRFS marker of a live one
        table.record_directory("b/d/made")  # an empty directory only the table knows
        table.delete("b/d/old")
        assert await names(None) == (["b/d/emr_$folder$", "b/d/f"], ["b/d/made/"])
        await memory.delete(["b/d/old/"])  # (past the layer)
        delimited = (["b/d/emr_$folder$", "b/d/f"], ["b/d/made/"])
        assert await names("/") == delimited
        assert table.get("b/d/emr").is_dir  # learnt from its marker
        lists.clear()
        assert await names("/") == (["b/d/f"], ["b/d/emr/", "b/d/made/"])  # the table's
        assert lists == []

    asyncio.run(go())


# --- over the encryption layer, as the stack orders them -----------------------------------


class TestConsistentStoreOverEncryption(MemoryBelow, StoreTests):
    """consistent over encrypted over memory: the contract holds, every object below is
    sealed, and the rows hold what readers see (plaintext sizes)."""

    seal_raw = True

    @pytest.fixture
    def store(self) -> ConsistentStore:
        self.memory = MemoryStore(versioned=True, min_part_size=self.part_size)
        self.cse = cse_options()
        self.table = InMemoryMetadataStore()
        return ConsistentStore(EncryptingStore(self.memory, self.cse), fast_view(self.table))

    def _raw_write(self, path: str, data: bytes, metadata: Mapping[str, str]) -> None:
        mend_row(self.table, self.memory.place(path, data, metadata))


def test_rows_over_the_encryption_layer_hold_plaintext_sizes():
    memory, table = MemoryStore(), InMemoryMetadataStore()
    memory.create_bucket("b")
    layer = ConsistentStore(EncryptingStore(memory, cse_options()), fast_view(table))

    async def go() -> None:
        meta = await layer.put("b/secret", b"plain text")
        assert meta.size == 10 < memory.stored("b/secret").meta("b/secret").size  # sealed
        assert (await layer.head("b/secret")).size == 10
        assert await layer.get_range("b/secret", 6) == b"text"

    asyncio.run(go())
    assert table.get("b/secret").size == 10
    assert b"plain" not in memory.stored("b/secret").data


def test_from_options_takes_the_policy_and_the_log_mode():
    """``consistency.throw_exception_on_inconsistency=false``: when the policy runs out,
    what the store shows is the answer (logged), not a ConsistencyError."""
    from emrfs.config import load

    options = load(
        {
            "consistent": True,
            "consistency.retry_policy_type": "fixed",
            "consistency.retry_count": 1,
            "consistency.retry_period_seconds": 0.01,
            "consistency.throw_exception_on_inconsistency": "false",
        }
    )
    lagging, table = LaggingStore(lag=100), InMemoryMetadataStore()
    lagging.create_bucket("b")
    layer = ConsistentStore.from_options(lagging, options, store=table)

    async def go() -> None:
        await layer.put("b/late", b"x")
        with pytest.raises(FileNotFoundError):
            await layer.head("b/late")

    asyncio.run(go())
    assert layer.view.policy.delay(0) == 0.01 and layer.view.policy.delay(1) is None

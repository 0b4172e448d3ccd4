"""The object-store contract suite: :class:`StoreTests`, a pytest base class.

Every :class:`~emrfs.store.protocol.ObjectStore` (the memory store, the S3
transports, each layer of the stack) must pass it.  Subclass it, provide two
fixtures and the side channel, and pytest runs every test over your store::

    from emrfs.store import MemoryStore
    from emrfs.testing.store import StoreTests

    class TestMyStore(StoreTests):
        @pytest.fixture
        def store(self):                 # the store under test, fresh per test
            self.memory = MemoryStore()
            return self.memory

        @pytest.fixture
        def root(self, store):           # an empty bucket the test may fill
            self.memory.create_bucket("b")
            return "b"

        # the side channel: reads and writes that bypass the store under test
        def raw_put(self, path, data, metadata=None): ...
        def raw_get(self, path): ...     # FileNotFoundError when there is nothing
        def raw_metadata(self, path): ...  # user metadata, lower-case names

Optionally ``raw_open_uploads(bucket)`` (paths with a multipart upload still
open, so an aborted write is seen to leave nothing behind) and
``raw_put_many(items)`` (a faster bulk ``raw_put`` for the >1,000-key listing).
``part_size`` is the smallest part the store accepts (5 MiB on S3).

Each test runs on its own event loop and closes the store after (a store
must tolerate ``close()`` more than once).  What a test checks, it checks
through the side channel, never only through the store under test.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pytest

from ..errors import ChangedError
from ..store.protocol import ObjectMeta, ObjectStore, ReadTarget, StagedUpload
from ._store_base import StoreTestBase, _bare, _listing, _sample, _store_test
from .store_copy_list import CopyDeleteListTests

__all__ = ["StoreTests", "StoreTestBase"]


class _Collecting(ReadTarget):
    """A read's target: two buffers cut at an odd offset (a read lands across them); it
    records the meta it was given and what it was told."""

    def __init__(self) -> None:
        self.meta: ObjectMeta | None = None
        self.length = -1
        self.told: list[int] = []
        self.buffers: list[bytearray] = []

    async def open(self, meta: ObjectMeta, length: int) -> list[memoryview]:
        assert self.meta is None, "open() is called once"
        self.meta, self.length = meta, length
        cut = min(777, length)
        self.buffers = [bytearray(cut), bytearray(length - cut)]
        return [memoryview(b) for b in self.buffers]

    def filled(self, upto: int) -> None:
        assert self.meta is not None, "told before opened"
        self.told.append(upto)

    def data(self) -> bytes:
        return b"".join(self.buffers)


class StoreTests(CopyDeleteListTests, StoreTestBase):
    """The contract every ObjectStore meets (see the module doc for how to use it)."""

    # --- head and metadata -----------------------------------------------------------------

    @_store_test
    async def test_put_then_head(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/dir/file.bin"
        data = _sample(3000)
        put = await store.put(path, data, content_type="application/x-test")
        assert self.raw_get(path) == data
        assert put.path == path and put.size == len(data)
        assert put.etag and put.etag.startswith('"') and put.etag.endswith('"'), put.etag
        head = await store.head(path)
        assert (head.path, head.size, head.etag) == (path, len(data), put.etag)
        assert head.bucket == root and head.key == "dir/file.bin"
        assert isinstance(head.last_modified, _dt.datetime)
        assert head.last_modified.tzinfo is not None
        assert head.content_type == "application/x-test"
        assert put.version_id == head.version_id

    @_store_test
    async def test_head_of_an_object_written_past_the_store(
        self, store: ObjectStore, root: str
    ) -> None:
        path = f"{root}/raw"
        self.raw_put(path, b"abc", {"origin": "side-channel"})
        head = await store.head(path)
        assert head.size == 3 and head.metadata == {"origin": "side-channel"}

    @_store_test
    async def test_head_tail_is_the_head_and_the_last_stored_bytes(
        self, store: ObjectStore, root: str
    ) -> None:
        """``head_tail``: the status ``head`` gives, and the last bytes as stored (where a
        store gives them: the protocol's default gives none)."""
        path, empty = f"{root}/tail", f"{root}/empty"
        self.raw_put(path, _sample(5000), {"origin": "side-channel"})
        self.raw_put(empty, b"")
        stored = self.raw_get(path)
        for n in (100, 5000, 9000):
            meta, tail = await store.head_tail(path, n)
            head = await store.head(path)
            assert (meta.size, meta.etag, dict(meta.metadata)) == (
                head.size,
                head.etag,
                dict(head.metadata),
            )
            assert tail is None or tail == stored[-n:], (n, len(tail))
        meta, tail = await store.head_tail(empty, 100)
        assert meta.size == 0 and not tail
        with pytest.raises(FileNotFoundError, match="no-such"):
            await store.head_tail(f"{root}/no-such", 100)

    @_store_test
    async def test_metadata_round_trip(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/meta"
        put = await store.put(path, b"x", metadata={"Color": "blue", "x-emrfs-key": "v=1"})
        expected = {"color": "blue", "x-emrfs-key": "v=1"}
        assert self.raw_metadata(path) == expected
        assert dict(put.metadata) == expected
        assert dict((await store.head(path)).metadata) == expected

    @_store_test
    async def test_missing_object_is_file_not_found_naming_the_path(
        self, store: ObjectStore, root: str
    ) -> None:
        path = f"{root}/no/such/key"
        for attempt in (store.head(path), store.get_range(path), store.get_range(path, 0, 10)):
            with pytest.raises(FileNotFoundError) as info:
                await attempt
            assert path in str(info.value)
        with pytest.raises(FileNotFoundError) as info:
            [c async for c in store.get_stream(path)]
        assert path in str(info.value)

    @_store_test
    async def test_missing_bucket_is_file_not_found(self, store: ObjectStore, root: str) -> None:
        path = f"{root}-missing-bucket/key"
        with pytest.raises(FileNotFoundError):
            await store.head(path)
        with pytest.raises(FileNotFoundError):
            await _listing(store, f"{root}-missing-bucket/")

    # --- reading ranges and streams ----------------------------------------------------------

    @_store_test
    async def test_ranges(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/ranges"
        data = _sample(10_000)
        self.raw_put(path, data)
        size = len(data)
        cases = [
            (0, None),
            (0, size),
            (10, 20),
            (100, None),
            (size - 1, None),
            (0, size + 100),  # running past the end: cut there
            (size - 10, size + 10),
            (size, size + 10),  # at the end: nothing
            (size + 5, None),
            (size + 5, size + 50),
            (20, 10),
            (5, 5),
        ]  # empty
        for start, end in cases:
            got = await store.get_range(path, start, end)
            assert got == data[start:end], (start, end, len(got))

    @_store_test
    async def test_get_returns_the_meta_with_the_bytes(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/got"
        data = _sample(10_000)
        self.raw_put(path, data, {"x-emrfs-note": "seen", "Origin": "side"})
        head = await store.head(path)
        size = len(data)
        for start, end in [(0, None), (10, 20), (100, None), (0, size + 100), (size, None)]:
            meta, got = await store.get(path, start, end)
            assert got == data[start:end], (start, end, len(got))
            # the whole object described, whatever the range: size, version, user metadata
            assert (meta.path, meta.size, _bare(meta.etag)) == (path, size, _bare(head.etag))
            assert dict(meta.metadata) == {"x-emrfs-note": "seen", "origin": "side"}
        meta, got = await store.get(path, 5, 5)
        assert got == b"" and meta.size == size
        self.raw_put(f"{root}/empty", b"")
        meta, got = await store.get(f"{root}/empty")
        assert (meta.size, got) == (0, b"")
        with pytest.raises(FileNotFoundError) as info:
            await store.get(f"{root}/no/such/key")
        assert f"{root}/no/such/key" in str(info.value)

    @_store_test
    async def test_get_pinned(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/got-pinned"
        first = await store.put(path, b"version one")
        assert first.etag
        meta, got = await store.get(path, 0, 7, if_match=_bare(first.etag))
        assert (got, _bare(meta.etag)) == (b"version", _bare(first.etag))
        self.raw_put(path, b"version two")
        for start, end in [(0, None), (0, 7), (50, None)]:
            with pytest.raises(ChangedError) as info:
                await store.get(path, start, end, if_match=first.etag)
            assert path in str(info.value)

    @_store_test
    async def test_get_into_the_readers_buffers(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/into"
        data = _sample(50_000)
        self.raw_put(path, data, {"origin": "side"})
        head = await store.head(path)
        size = len(data)
        for start, end in [(0, None), (10, 20), (100, None), (0, size + 9), (size, None), (5, 5)]:
            target = _Collecting()
            meta = await store.get_into(path, target, start, end)
            assert target.data() == data[start:end], (start, end)
            # the whole object described, once, before any byte; told in order, to the end
            assert target.meta is meta and target.length == len(data[start:end])
            assert (meta.path, meta.size, _bare(meta.etag)) == (path, size, _bare(head.etag))
            assert dict(meta.metadata) == {"origin": "side"}
            assert target.told == sorted(target.told) and target.told[-1] == target.length
        with pytest.raises(FileNotFoundError) as info:
            await store.get_into(f"{root}/no/such/key", _Collecting())
        assert f"{root}/no/such/key" in str(info.value)
        self.raw_put(path, b"version two")
        if self.remembers_versions:
            await store.head(path)
        with pytest.raises(ChangedError):
            await store.get_into(path, _Collecting(), if_match=head.etag)

    @_store_test
    async def test_ranges_of_an_empty_object(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/empty"
        self.raw_put(path, b"")
        assert (await store.head(path)).size == 0
        assert await store.get_range(path) == b""
        assert await store.get_range(path, 0, 10) == b""
        assert await store.get_range(path, 3) == b""
        assert [c async for c in store.get_stream(path)] in ([], [b""])

    @_store_test
    async def test_get_stream_in_chunks(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/stream"
        data = _sample(50_000)
        self.raw_put(path, data)
        chunks = [c async for c in store.get_stream(path, chunk_size=8192)]
        assert b"".join(chunks) == data
        assert len(chunks) >= 3 and max(map(len, chunks)) <= 2 * 8192
        part = [c async for c in store.get_stream(path, 1000, 30_000, chunk_size=4096)]
        assert b"".join(part) == data[1000:30_000] and len(part) >= 3
        assert b"".join([c async for c in store.get_stream(path, 49_000)]) == data[49_000:]
        assert b"".join([c async for c in store.get_stream(path, 60_000)]) == b""
        assert b"".join([c async for c in store.get_stream(path, 100, 100)]) == b""

    # --- writing ---------------------------------------------------------------------------

    @_store_test
    async def test_put_if_none_match(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/create-once"
        first = await store.put(path, b"first", if_none_match=True)
        with pytest.raises(FileExistsError):
            await store.put(path, b"second", if_none_match=True)
        assert self.raw_get(path) == b"first"
        again = await store.put(path, b"third")  # a plain put overwrites
        assert self.raw_get(path) == b"third"
        assert _bare(again.etag) != _bare(first.etag)

    async def _write_parts(self, store: ObjectStore, path: str, **kwargs: Any) -> tuple[Any, bytes]:
        writer = await store.writer(path, **kwargs)
        assert writer.path == path
        first = _sample(self.part_size)
        last = b"tail" * 100
        await writer.write_part(1, first)
        await writer.write_part(2, last)
        return writer, first + last

    @_store_test
    async def test_writer_parts_complete(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/multi"
        writer, data = await self._write_parts(
            store, path, metadata={"Kind": "parts"}, content_type="text/plain"
        )
        self.assert_missing(path)  # nothing published before complete
        meta = await writer.complete()
        assert self.raw_get(path) == data
        assert meta.size == len(data)
        head = await store.head(path)
        assert head.size == len(data) and _bare(head.etag) == _bare(meta.etag)
        assert dict(head.metadata) == {"kind": "parts"} == self.raw_metadata(path)
        assert head.content_type == "text/plain"
        assert not self.raw_open_uploads(root)

    @_store_test
    async def test_writer_with_no_parts_writes_an_empty_object(
        self, store: ObjectStore, root: str
    ) -> None:
        path = f"{root}/multi-empty"
        writer = await store.writer(path)
        meta = await writer.complete()
        assert meta.size == 0 and self.raw_get(path) == b""

    @_store_test
    async def test_writer_abort_publishes_nothing(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/aborted"
        writer, _ = await self._write_parts(store, path)
        await writer.abort()
        await writer.abort()  # safe twice
        self.assert_missing(path)
        assert not self.raw_open_uploads(root)
        with pytest.raises(FileNotFoundError):
            await store.head(path)

    @_store_test
    async def test_writer_if_none_match(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/taken"
        self.raw_put(path, b"already here")
        writer, _ = await self._write_parts(store, path, if_none_match=True)
        with pytest.raises(FileExistsError):
            await writer.complete()
        assert self.raw_get(path) == b"already here"
        assert not self.raw_open_uploads(root)

    @_store_test
    async def test_stage_then_complete_staged(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/staged"
        writer, data = await self._write_parts(store, path)
        try:
            staged = await writer.stage()
        except NotImplementedError:
            await writer.abort()
            pytest.skip(f"{type(store).__name__} does not stage uploads")
        assert isinstance(staged, StagedUpload)
        assert staged.path == path and staged.size == len(data)
        assert [n for n, _ in staged.parts] == [1, 2] and staged.upload_id
        self.assert_missing(path)  # staged is not published
        uploads = self.raw_open_uploads(root)
        assert uploads is None or path in uploads
        meta = await store.complete_staged(staged)
        assert self.raw_get(path) == data and meta.size == len(data)
        assert not self.raw_open_uploads(root)
        await store.abort_staged(staged)  # completed already: nothing to do
        assert self.raw_get(path) == data

    @_store_test
    async def test_abort_staged(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/staged-aborted"
        writer, _ = await self._write_parts(store, path)
        try:
            staged = await writer.stage()
        except NotImplementedError:
            await writer.abort()
            pytest.skip(f"{type(store).__name__} does not stage uploads")
        await store.abort_staged(staged)
        await store.abort_staged(staged)  # twice is fine (a job abort may run again)
        self.assert_missing(path)
        assert not self.raw_open_uploads(root)

    # --- pinned reads ------------------------------------------------------------------------

    @_store_test
    async def test_if_match_pins_the_version(self, store: ObjectStore, root: str) -> None:
        path = f"{root}/pinned"
        first = await store.put(path, b"version one")
        assert first.etag
        assert await store.get_range(path, if_match=first.etag) == b"version one"
        assert await store.get_range(path, 0, 7, if_match=_bare(first.etag)) == b"version"
        assert (
            b"".join([c async for c in store.get_stream(path, if_match=first.etag)])
            == b"version one"
        )
        self.raw_put(path, b"version two")
        if self.remembers_versions:
            await store.head(path)
        for attempt in (
            store.get_range(path, if_match=first.etag),
            store.get_range(path, 0, 7, if_match=first.etag),
        ):
            with pytest.raises(ChangedError) as info:
                await attempt
            assert path in str(info.value)
        with pytest.raises(ChangedError):
            [c async for c in store.get_stream(path, if_match=first.etag)]
        second = await store.head(path)
        assert await store.get_range(path, if_match=second.etag) == b"version two"

    # --- close ---------------------------------------------------------------------------

    @_store_test
    async def test_close_twice(self, store: ObjectStore, root: str) -> None:
        await store.put(f"{root}/before-close", b"x")
        await store.close()
        await store.close()
        assert self.raw_get(f"{root}/before-close") == b"x"

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

import asyncio
import datetime as _dt
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import pytest

from ..errors import ChangedError
from ..store.protocol import ListPage, ObjectMeta, ObjectStore, StagedUpload

__all__ = ["StoreTests"]

MiB = 1024 * 1024

_Body = Callable[[Any, ObjectStore, str], Awaitable[None]]


def _store_test(body: _Body) -> Callable[..., None]:
    """An ``async def test(self, store, root)`` as a pytest test run on its own loop."""

    def test(self, store: ObjectStore, root: str, store_loop: asyncio.AbstractEventLoop) -> None:
        async def run() -> None:
            try:
                await body(self, store, root)
            finally:
                await store.close()

        store_loop.run_until_complete(run())

    # no functools.wraps: pytest would read the body's signature (no store_loop) through it
    test.__name__ = body.__name__
    test.__qualname__ = body.__qualname__
    test.__doc__ = body.__doc__
    return test


def _sample(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + bytes(range(size % 256))


def _bare(etag: str | None) -> str:
    return (etag or "").strip('"')


async def _listing(
    store: ObjectStore, prefix: str, delimiter: str | None = None
) -> tuple[list[ObjectMeta], list[str]]:
    objects: list[ObjectMeta] = []
    prefixes: list[str] = []
    async for page in store.list(prefix, delimiter=delimiter):
        assert isinstance(page, ListPage)
        objects.extend(page.objects)
        prefixes.extend(page.prefixes)
    return objects, prefixes


class StoreTests:
    """The contract every ObjectStore meets (see the module doc for how to use it)."""

    #: smallest part but the last a multipart write of the store accepts
    part_size: int = 5 * MiB
    #: keys for the listing beyond one S3 page (1,000)
    many_keys: int = 1005
    #: a layer that serves the version it saw last (the block cache) learns of a write
    #: made past it at its next ``head`` or listing of the path: the suite looks first
    remembers_versions: bool = False

    # --- what a subclass provides ----------------------------------------------------------

    @pytest.fixture
    def store(self) -> ObjectStore:
        raise NotImplementedError("provide a `store` fixture: the ObjectStore under test")

    @pytest.fixture
    def root(self, store: ObjectStore) -> str:
        raise NotImplementedError("provide a `root` fixture: an empty bucket for the test")

    def raw_put(self, path: str, data: bytes, metadata: Mapping[str, str] | None = None) -> None:
        raise NotImplementedError("provide raw_put: write past the store under test")

    def raw_get(self, path: str) -> bytes:
        raise NotImplementedError("provide raw_get: read past the store under test")

    def raw_metadata(self, path: str) -> dict[str, str]:
        raise NotImplementedError("provide raw_metadata: user metadata, lower-case names")

    def raw_open_uploads(self, bucket: str) -> list[str] | None:
        """Paths in ``bucket`` with a multipart upload open; None if the side channel
        cannot tell."""
        return None

    def raw_put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        for path, data in items:
            self.raw_put(path, data)

    @pytest.fixture
    def store_loop(self) -> Iterable[asyncio.AbstractEventLoop]:
        loop = asyncio.new_event_loop()
        yield loop
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def assert_missing(self, path: str) -> None:
        with pytest.raises(FileNotFoundError):
            self.raw_get(path)

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

    # --- copy and delete -------------------------------------------------------------------

    @_store_test
    async def test_copy(self, store: ObjectStore, root: str) -> None:
        src, dst, dst2 = f"{root}/src", f"{root}/copies/dst", f"{root}/copies/dst2"
        data = _sample(4000)
        await store.put(src, data, metadata={"origin": "src"}, content_type="image/png")
        meta = await store.copy(src, dst)
        assert self.raw_get(dst) == data and self.raw_get(src) == data
        assert self.raw_metadata(dst) == {"origin": "src"}
        assert meta.path == dst and meta.size == len(data)
        assert _bare(meta.etag) == _bare((await store.head(dst)).etag)
        replaced = await store.copy(src, dst2, metadata={"origin": "copy", "extra": "1"})
        assert self.raw_metadata(dst2) == {"origin": "copy", "extra": "1"}
        assert dict(replaced.metadata) == {"origin": "copy", "extra": "1"}
        assert (await store.head(dst2)).content_type == "image/png"
        assert self.raw_get(dst2) == data
        with pytest.raises(FileNotFoundError):
            await store.copy(f"{root}/nothing", f"{root}/copies/none")
        self.assert_missing(f"{root}/copies/none")

    @_store_test
    async def test_delete_many_including_missing(self, store: ObjectStore, root: str) -> None:
        paths = [f"{root}/del/{i}" for i in range(5)]
        self.raw_put_many((p, b"x") for p in paths)
        self.raw_put(f"{root}/del-keep", b"kept")
        gone = await store.delete([*paths, f"{root}/del/missing"])
        assert set(gone) == set(paths) | {f"{root}/del/missing"}
        for p in paths:
            self.assert_missing(p)
        assert self.raw_get(f"{root}/del-keep") == b"kept"
        assert await store.delete([]) == []

    # --- listing ---------------------------------------------------------------------------

    @_store_test
    async def test_list(self, store: ObjectStore, root: str) -> None:
        keys = ["a", "b/c", "b/d/e", "b/d/f", "c_x", "c_y/z"]
        self.raw_put_many((f"{root}/{k}", k.encode()) for k in keys)
        objects, prefixes = await _listing(store, f"{root}/")
        assert [o.path for o in objects] == [f"{root}/{k}" for k in keys] and prefixes == []
        assert [o.size for o in objects] == [len(k) for k in keys]
        head = await store.head(f"{root}/b/c")
        assert _bare(objects[1].etag) == _bare(head.etag)
        objects, prefixes = await _listing(store, f"{root}/", delimiter="/")
        assert [o.path for o in objects] == [f"{root}/a", f"{root}/c_x"]
        assert prefixes == [f"{root}/b/", f"{root}/c_y/"]
        objects, prefixes = await _listing(store, f"{root}/b/", delimiter="/")
        assert [o.path for o in objects] == [f"{root}/b/c"] and prefixes == [f"{root}/b/d/"]
        objects, prefixes = await _listing(store, f"{root}/b/d")  # a prefix, not a directory
        assert [o.path for o in objects] == [f"{root}/b/d/e", f"{root}/b/d/f"]
        objects, prefixes = await _listing(store, f"{root}/c", delimiter="/")
        assert [o.path for o in objects] == [f"{root}/c_x"] and prefixes == [f"{root}/c_y/"]
        assert await _listing(store, f"{root}/zzz") == ([], [])
        assert await _listing(store, root) == await _listing(store, f"{root}/")

    @_store_test
    async def test_list_beyond_one_page(self, store: ObjectStore, root: str) -> None:
        names = [f"{i:04d}/x" for i in range(self.many_keys)]
        self.raw_put_many((f"{root}/{n}", b"") for n in names)
        objects, prefixes = await _listing(store, f"{root}/")
        assert [o.path for o in objects] == [f"{root}/{n}" for n in names]
        objects, prefixes = await _listing(store, f"{root}/", delimiter="/")
        assert objects == [] and prefixes == [f"{root}/{i:04d}/" for i in range(self.many_keys)]

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

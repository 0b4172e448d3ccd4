"""The contract suite's copy, delete and listing tests (part of
:class:`emrfs.testing.store.StoreTests`; see there how to use it)."""

from __future__ import annotations

import pytest

from ..store.protocol import DeleteResult, ObjectStore
from ._store_base import StoreTestBase, _bare, _listing, _sample, _store_test

__all__ = ["CopyDeleteListTests"]


class CopyDeleteListTests(StoreTestBase):
    """Server-side copies, deletes that report what they confirmed, listings."""

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
    async def test_copy_of_a_known_size_reports_the_new_object(
        self, store: ObjectStore, root: str
    ) -> None:
        src, dst = f"{root}/sized/src", f"{root}/sized/dst"
        data = _sample(3000)
        self.raw_put(src, data, {"envelope": "kept"})
        meta = await store.copy(src, dst, source_size=len(data))
        assert self.raw_get(dst) == data and self.raw_metadata(dst) == {"envelope": "kept"}
        assert meta.path == dst and meta.size == len(data)
        head = await store.head(dst)  # the ETag reported is the one stored
        assert meta.etag and _bare(meta.etag) == _bare(head.etag)
        assert meta.version_id == head.version_id
        with pytest.raises(FileNotFoundError):
            await store.copy(f"{root}/sized/none", f"{root}/sized/none2", source_size=3)
        self.assert_missing(f"{root}/sized/none2")

    @_store_test
    async def test_delete_many_including_missing(self, store: ObjectStore, root: str) -> None:
        paths = [f"{root}/del/{i}" for i in range(5)]
        self.raw_put_many((p, b"x") for p in paths)
        self.raw_put(f"{root}/del-keep", b"kept")
        result = await store.delete([*paths, f"{root}/del/missing", paths[0]])
        assert isinstance(result, DeleteResult)
        assert sorted(result.deleted) == sorted({*paths, f"{root}/del/missing"})
        assert list(result.errors) == []
        result.raise_errors()  # nothing to raise
        for p in paths:
            self.assert_missing(p)
        assert self.raw_get(f"{root}/del-keep") == b"kept"
        empty = await store.delete([])
        assert list(empty.deleted) == [] and list(empty.errors) == []

    @_store_test
    async def test_delete_reports_what_it_could_not_delete(
        self, store: ObjectStore, root: str
    ) -> None:
        """A batch refused as a whole (here: a missing bucket) is reported per path with
        its error, and the rest of the call is still done and confirmed."""
        if not self.has_buckets:
            pytest.skip(f"{type(store).__name__} has no buckets of its own to miss")
        kept, gone = f"{root}/partial/a", f"{root}/partial/b"
        self.raw_put_many([(kept, b"a"), (gone, b"b")])
        lost = [f"{root}-missing-bucket/x", f"{root}-missing-bucket/y"]
        result = await store.delete([gone, *lost])
        assert list(result.deleted) == [gone]
        self.assert_missing(gone)
        assert self.raw_get(kept) == b"a"
        # (a layer may add companions of its own, e.g. CSE instruction files)
        assert set(lost) <= {f.path for f in result.errors} and not set(lost) & {*result.deleted}
        assert all(isinstance(f.error, FileNotFoundError) for f in result.errors)
        with pytest.raises(FileNotFoundError):
            result.raise_errors(f"{root}/partial")

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
    async def test_list_with_a_limit(self, store: ObjectStore, root: str) -> None:
        keys = ["d/0", "d/a", "d/b/c", "d/b/e", "d/f", "d/g/h", "e"]
        self.raw_put_many((f"{root}/{k}", b"") for k in keys)
        objects, prefixes = await _listing(store, f"{root}/d/", limit=1)
        assert [o.path for o in objects] == [f"{root}/d/0"] and prefixes == []
        objects, prefixes = await _listing(store, f"{root}/d/", limit=3)
        assert [o.path for o in objects] == [f"{root}/{k}" for k in ("d/0", "d/a", "d/b/c")]
        objects, prefixes = await _listing(store, f"{root}/d/", "/", limit=3)
        assert [o.path for o in objects] == [f"{root}/d/0", f"{root}/d/a"]
        assert prefixes == [f"{root}/d/b/"]  # objects and prefixes count together
        objects, prefixes = await _listing(store, f"{root}/d/", "/", limit=100)
        assert [o.path for o in objects] == [f"{root}/d/0", f"{root}/d/a", f"{root}/d/f"]
        assert prefixes == [f"{root}/d/b/", f"{root}/d/g/"]
        assert await _listing(store, f"{root}/none/", limit=1) == ([], [])
        with pytest.raises(ValueError):
            await _listing(store, f"{root}/d/", limit=0)

    @_store_test
    async def test_list_beyond_one_page(self, store: ObjectStore, root: str) -> None:
        names = [f"{i:04d}/x" for i in range(self.many_keys)]
        self.raw_put_many((f"{root}/{n}", b"") for n in names)
        objects, prefixes = await _listing(store, f"{root}/")
        assert [o.path for o in objects] == [f"{root}/{n}" for n in names]
        objects, prefixes = await _listing(store, f"{root}/", delimiter="/")
        assert objects == [] and prefixes == [f"{root}/{i:04d}/" for i in range(self.many_keys)]

"""The plumbing of the contract suite (:mod:`emrfs.testing.store`): how a test runs on
its own loop, sample data, and :class:`StoreTestBase`, what a subclass provides."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import pytest

from ..store.protocol import ListPage, ObjectMeta, ObjectStore

__all__ = ["StoreTestBase"]

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
    store: ObjectStore, prefix: str, delimiter: str | None = None, *, limit: int | None = None
) -> tuple[list[ObjectMeta], list[str]]:
    objects: list[ObjectMeta] = []
    prefixes: list[str] = []
    async for page in store.list(prefix, delimiter=delimiter, limit=limit):
        assert isinstance(page, ListPage)
        objects.extend(page.objects)
        prefixes.extend(page.prefixes)
    assert limit is None or len(objects) + len(prefixes) <= limit
    return objects, prefixes


class StoreTestBase:
    """What a subclass of :class:`~emrfs.testing.store.StoreTests` provides and tunes."""

    #: smallest part but the last a multipart write of the store accepts
    part_size: int = 5 * MiB
    #: keys for the listing beyond one S3 page (1,000)
    many_keys: int = 1005
    #: a layer that serves the version it saw last (the block cache) learns of a write
    #: made past it at its next ``head`` or listing of the path: the suite looks first
    remembers_versions: bool = False
    #: the store keeps buckets apart and refuses one that does not exist (S3); False for
    #: a store whose first segment is only a name (the ephemeral tier)
    has_buckets: bool = True

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

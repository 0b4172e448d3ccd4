"""Listing: paginate ListObjectsV2 and turn pages into files and directories.

Directories come from three sources: common prefixes (a key below), ``dir/``
markers (S3A, console, emrfs) and ``dir_$folder$`` markers (EMRFS).  The
page-to-entries step is pure so it can be tested without a server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import (
    AsyncIterator,
    ItemsView,
    Iterator,
    MutableMapping,
    Sequence,
    ValuesView,
)
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..paths import DIR_MARKER_SUFFIX, EMRFS_FOLDER_SUFFIX, implied_dirs, marker_dir
from ..status import StatusFactory
from ..store.protocol import ListedRow, ListPage, split
from .client import S3Client


async def list_pages(
    client: S3Client,
    path: str,
    bucket: str,
    prefix: str,
    *,
    delimiter: str | None = "/",
    max_keys: int | None = None,
    page_size: int = 1000,
) -> AsyncIterator[dict[str, Any]]:
    """ListObjectsV2 pages under ``prefix``; stops after ``max_keys`` entries if given."""
    token = None
    seen = 0
    while True:
        kwargs: dict[str, Any] = {
            "Bucket": bucket,
            "Prefix": prefix,
            "MaxKeys": min(page_size, max_keys or page_size),
        }
        if delimiter:
            kwargs["Delimiter"] = delimiter
        if token:
            kwargs["ContinuationToken"] = token
        page = await client.call("list_objects_v2", path, **kwargs)
        yield page
        seen += page.get("KeyCount", 0)
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token or (max_keys and seen >= max_keys):
            return


T = TypeVar("T")


async def read_ahead(pages: AsyncIterator[T]) -> AsyncIterator[T]:
    """``pages``, each yielded once the request for the next one is under way: a LIST's
    pages come one after another (each needs the last one's token), so the caller's
    work on a page overlaps the server's on the next instead of adding to it."""
    source = pages.__aiter__()
    pending: asyncio.Future[T] = asyncio.ensure_future(source.__anext__())
    try:
        while True:
            try:
                page = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(source.__anext__())
            await asyncio.sleep(0)  # let the next page's request start before the caller works
            yield page
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        closer = getattr(source, "aclose", None)
        if closer is not None:
            await closer()


class ListedFiles(MutableMapping[str, dict]):
    """Statuses by path where a listed file stays the store's row until its status dict is
    asked for: ``find`` without ``detail`` wants the names only, and the dicts were about
    a third of a 10,000-key ``find``'s client CPU.  Other entries (directories) are set as
    dicts.  Every path is in one of the two forms; :meth:`values` and :meth:`items` make
    the rest of the dicts in one loop (:meth:`~emrfs.status.StatusFactory.add_listed_files`)."""

    __slots__ = ("_made", "_rows", "_status")

    def __init__(self) -> None:
        self._rows: dict[str, ListedRow] = {}
        self._made: dict[str, dict] = {}
        self._status: StatusFactory | None = None

    def add_rows(self, rows: dict[str, ListedRow], status: StatusFactory) -> None:
        """The files of ``rows`` (rows by path), their dicts made by ``status``."""
        self._status = status
        made = self._made
        if made:  # a row replaces what its path held, as a dict set there would
            for path in rows:
                made.pop(path, None)
        self._rows.update(rows)

    def rows(self) -> list[ListedRow]:
        """The rows of the files whose status dicts were not made yet."""
        return list(self._rows.values())

    def _make_all(self) -> dict[str, dict]:
        if self._rows:
            assert self._status is not None  # set with the rows
            self._status.add_listed_files(self._made, self._rows.values())
            self._rows.clear()
        return self._made

    def __getitem__(self, path: str) -> dict:
        info = self._made.get(path)
        if info is None:
            row = self._rows.pop(path)  # KeyError: not listed
            assert self._status is not None
            info = self._made[path] = self._status.listed_file(
                row[0], row[1], row[2], row[3], row[5]
            )
        return info

    def __setitem__(self, path: str, info: dict) -> None:
        self._rows.pop(path, None)
        self._made[path] = info

    def __delitem__(self, path: str) -> None:
        if self._made.pop(path, None) is None:
            del self._rows[path]

    def __contains__(self, path: object) -> bool:
        return path in self._made or path in self._rows

    def __iter__(self) -> Iterator[str]:
        # a snapshot: reading an entry moves it from one form to the other
        return iter([*self._rows, *self._made])

    def __len__(self) -> int:
        return len(self._rows) + len(self._made)

    def values(self) -> ValuesView[dict]:
        return self._make_all().values()

    def items(self) -> ItemsView[str, dict]:
        return self._make_all().items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ListedFiles):
            other = other._make_all()
        return self._make_all() == other if isinstance(other, dict) else NotImplemented

    def __repr__(self) -> str:
        return f"ListedFiles({len(self._rows)} rows, {len(self._made)} dicts)"


@dataclass
class Listing:
    """Entries of one directory (delimited) or one subtree (recursive)."""

    files: ListedFiles = field(default_factory=ListedFiles)
    dirs: dict[str, dict] = field(default_factory=dict)
    #: markers seen for the listed directory itself
    self_marker: str | None = None

    def entries(self) -> list[dict]:
        out = list(self.dirs.values()) + [f for n, f in self.files.items() if n not in self.dirs]
        return sorted(out, key=lambda e: e["name"])

    @property
    def empty(self) -> bool:
        return not self.files and not self.dirs


def _page_entries(page: dict | ListPage, bucket: str) -> tuple[Sequence[ListedRow], list[str]]:
    """A page's objects as rows (paths ``bucket/key``) and its common prefixes as keys,
    from a store's :class:`ListPage` or a raw ListObjectsV2 page (rows: no
    ``ObjectMeta`` is made for a key only turned into a status dict)."""
    if isinstance(page, ListPage):
        return page.rows, [split(p)[1] for p in page.prefixes]
    rows: list[ListedRow] = [
        (
            f"{bucket}/{o['Key']}",
            o.get("Size", 0),
            o.get("ETag"),
            o.get("LastModified"),
            None,
            o.get("StorageClass"),
        )
        for o in page.get("Contents", ())
    ]
    return rows, [cp["Prefix"] for cp in page.get("CommonPrefixes", ())]


_MARKER_ENDINGS = (DIR_MARKER_SUFFIX, EMRFS_FOLDER_SUFFIX)


def add_page(
    listing: Listing,
    bucket: str,
    dir_key: str,
    page: dict | ListPage,
    status: StatusFactory,
    *,
    recursive: bool,
    withdirs: bool = True,
) -> None:
    """Fold one listing page for directory ``dir_key`` ('' = bucket root) into ``listing``
    (a store's :class:`ListPage` of ``bucket``, or a raw ListObjectsV2 page).

    Runs once per listed key, so it does per key only what the key needs: the status
    dict built once, the key's name reused from the store's path, and implied parents
    walked up only to the first one already known (the keys come sorted, so siblings
    share the walk)."""
    own_markers = (dir_key + DIR_MARKER_SUFFIX, dir_key + EMRFS_FOLDER_SUFFIX) if dir_key else ()
    rows, prefixes = _page_entries(page, bucket)
    skip = len(bucket) + 1
    dirs = listing.dirs
    imply = recursive and withdirs
    listed_dir = f"{bucket}/{dir_key}"
    plain: dict[str, ListedRow] = {}  # the files' rows (status dicts made if asked for)
    for row in rows:
        name = row[0]
        # one C-level test per key; marker_dir only for the few keys that may be markers
        if name.endswith(_MARKER_ENDINGS):
            key = name[skip:]
            as_dir = marker_dir(key)
            if as_dir is not None:
                if key in own_markers:
                    listing.self_marker = key
                    continue
                if as_dir == dir_key:
                    continue
                _add_dir(listing, status, f"{bucket}/{as_dir}", row[3], key)
                if imply:
                    _imply_parents(listing, status, bucket, as_dir, dir_key)
                continue
        plain[name] = row
        if imply:
            # the parent's name cut from the path: no new string per key to look it up
            parent = name.rpartition("/")[0]
            if parent != listed_dir and parent != bucket and parent not in dirs:
                _imply_parents(listing, status, bucket, name[skip:], dir_key)
    listing.files.add_rows(plain, status)
    for common in prefixes:
        prefix = common.rstrip("/")
        if prefix and prefix != dir_key:
            _add_dir(listing, status, f"{bucket}/{prefix}")


def _imply_parents(
    listing: Listing, status: StatusFactory, bucket: str, key: str, dir_key: str
) -> None:
    """The directories ``key`` implies below ``dir_key``, nearest first, up to the first
    one already listed (its own parents were added with it)."""
    for d in implied_dirs(key, dir_key):
        name = f"{bucket}/{d}"
        if name in listing.dirs:
            return
        listing.dirs[name] = status.directory(name)


def _add_dir(
    listing: Listing, status: StatusFactory, name: str, mtime=None, marker: str | None = None
) -> None:
    existing = listing.dirs.get(name)
    if existing is None or (marker and not existing.get("marker")):
        listing.dirs[name] = status.directory(name, last_modified=mtime, marker=marker)

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
    Iterable,
    Iterator,
    MutableMapping,
    Sequence,
    ValuesView,
)
from dataclasses import dataclass, field
from operator import itemgetter
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

    def add_rows(
        self, paths: Sequence[str], rows: Sequence[ListedRow], status: StatusFactory
    ) -> None:
        """The files of ``rows`` (at ``paths``, their first fields), their dicts made by
        ``status``."""
        self._status = status
        made = self._made
        if made:  # a row replaces what its path held, as a dict set there would
            for path in paths:
                made.pop(path, None)
        self._rows.update(zip(paths, rows, strict=True))

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

    def drop(self, paths: Iterable[str]) -> None:
        """Take out those of ``paths`` that are here, found by set operations (a ``find``
        without directories drops each directory's name: a tree has many)."""
        for entries in (self._rows, self._made):
            for path in entries.keys() & paths:
                del entries[path]

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
#: what a marker's name ends with in a page's names joined by newlines
_MARKER_ENDS_JOINED = tuple(ending + "\n" for ending in _MARKER_ENDINGS)
_PATH = itemgetter(0)


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

    Runs once per listed key, so the work per key is C loops over the whole page (the
    names taken, the files' rows put in by path, the names joined once for the tests
    below); a Python step runs only for the keys that need one: the few that may be
    markers (a page without one is told by one search of the joined names), and, in a
    listing of a tree, one per distinct parent directory (none if every key is a direct
    child: one count of the joined names' slashes)."""
    rows, prefixes = _page_entries(page, bucket)
    names = list(map(_PATH, rows))
    # every name after a newline: a key holding none has exactly one before it
    joined = "\n" + "\n".join(names) + "\n"
    flat = _direct_children(joined, len(names), f"{bucket}/{dir_key}/" if dir_key else f"{bucket}/")
    if _MARKER_ENDS_JOINED[0] in joined or _MARKER_ENDS_JOINED[1] in joined:
        # (a false alarm, a newline inside a key, only costs these loops)
        for row in [r for r in rows if r[0].endswith(_MARKER_ENDINGS)]:
            _add_marker(listing, bucket, dir_key, row, status, recursive and withdirs)
        rows = [r for r in rows if not r[0].endswith(_MARKER_ENDINGS)]
        names = list(map(_PATH, rows))
    if recursive and withdirs and not flat:
        _imply_parents_of(listing, status, bucket, dir_key, names)
    listing.files.add_rows(names, rows, status)  # status dicts made if asked for
    for common in prefixes:
        prefix = common.rstrip("/")
        if prefix and prefix != dir_key:
            _add_dir(listing, status, f"{bucket}/{prefix}")


def _direct_children(joined: str, count: int, listed: str) -> bool:
    """Whether each of the ``count`` names in ``joined`` (each after a newline) is a
    direct child of ``listed`` (``bucket/dir/``) or its own marker: each starts with it
    (counted where no key holds a newline), and so has at least as many slashes, and
    they have no more than that many in all."""
    return (
        joined.count("\n") == count + 1
        and joined.count("\n" + listed) == count
        and joined.count("/") == count * listed.count("/")
    )


def _add_marker(
    listing: Listing,
    bucket: str,
    dir_key: str,
    row: ListedRow,
    status: StatusFactory,
    imply: bool,
) -> None:
    """Fold ``row``, a directory marker (of either kind)."""
    key = row[0][len(bucket) + 1 :]
    as_dir = marker_dir(key)
    assert as_dir is not None  # (its name ends as a marker's)
    if dir_key and key in (dir_key + DIR_MARKER_SUFFIX, dir_key + EMRFS_FOLDER_SUFFIX):
        listing.self_marker = key
    elif as_dir != dir_key:
        _add_dir(listing, status, f"{bucket}/{as_dir}", row[3], key)
        if imply:
            _imply_parents(listing, status, bucket, as_dir, dir_key)


def _imply_parents_of(
    listing: Listing, status: StatusFactory, bucket: str, dir_key: str, files: list[str]
) -> None:
    """The directories the paths of ``files`` imply below ``dir_key``: from each distinct
    parent not listed yet, up to the first one listed (as :func:`_imply_parents`, on
    the paths as they are)."""
    below = f"{bucket}/{dir_key}/" if dir_key else f"{bucket}/"
    empty = f"{bucket}/"  # an empty key ("a//b"'s parent at the root) is no directory
    dirs = listing.dirs
    directory = status.directory
    for name in {path.rpartition("/")[0] for path in files} - dirs.keys():
        while name.startswith(below) and name != empty and name not in dirs:
            dirs[name] = directory(name)
            name = name.rpartition("/")[0]


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

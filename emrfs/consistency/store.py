"""The metadata store: what emrfs knows about each path, and the operations on it.

:class:`MetadataStore` implements every public operation once, on top of seven
small primitives a backend supplies (read rows, write rows, conditional create,
set the authoritative flag, list a directory's rows, remove rows, scan).  So
:class:`InMemoryMetadataStore` (here) and
:class:`~emrfs.consistency.dynamodb.DynamoDBMetadataStore` behave the same by
construction, and one contract suite tests both.

Stores are synchronous and thread-safe; the filesystem calls them through
``asyncio.to_thread``.  Paths are emrfs paths (``bucket/key``; ``s3://`` and
``emrfs://`` prefixes are stripped).

Writes are ordered so a crash half-way loses nothing: ancestors before the
entry, new rows before tombstones (rename), children before their directory
(subtree delete).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from .. import paths as P
from ..errors import InvalidPathError

__all__ = ["Entry", "Listing", "MetadataStore", "InMemoryMetadataStore", "normalize_etag"]


def normalize_etag(etag: str | None) -> str | None:
    """S3 quotes ETags (``"abc"``); the table stores and compares them bare."""
    if etag is None:
        return None
    etag = str(etag).strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"') or None


@dataclass(frozen=True)
class Entry:
    """One row: a file, a directory, or a tombstone (``deleted``) for either.

    ``mtime_ms`` is the object's modification time in S3 (ms since the epoch);
    ``last_updated_ms`` when emrfs wrote the row; ``ttl`` (epoch seconds) when
    DynamoDB may drop a tombstone.
    """

    path: str
    is_dir: bool = False
    size: int = 0
    mtime_ms: int | None = None
    etag: str | None = None
    version_id: str | None = None
    deleted: bool = False
    authoritative: bool = False
    last_updated_ms: int | None = None
    ttl: int | None = None
    #: rows of :mod:`emrfs.consistency.staged` only: the staged upload, as JSON.
    staged: str | None = None

    @classmethod
    def file(
        cls,
        path: str,
        size: int,
        etag: str | None = None,
        version_id: str | None = None,
        mtime_ms: int | None = None,
    ) -> Entry:
        return cls(_norm(path), False, int(size), mtime_ms, normalize_etag(etag), version_id)

    @classmethod
    def directory(cls, path: str, mtime_ms: int | None = None) -> Entry:
        return cls(_norm(path), True, 0, mtime_ms)

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def parent(self) -> str:
        return self.path.rpartition("/")[0]

    @property
    def live(self) -> bool:
        return not self.deleted

    def info(self) -> dict:
        """The entry as an fsspec info dict (``name``, ``size``, ``type``, ``ETag``...)."""
        out = {
            "name": self.path,
            "size": 0 if self.is_dir else self.size,
            "type": "directory" if self.is_dir else "file",
        }
        if self.etag is not None:
            out["ETag"] = f'"{self.etag}"'
        if self.version_id is not None:
            out["VersionId"] = self.version_id
        if self.mtime_ms is not None:
            out["mtime"] = self.mtime_ms / 1000.0
        return out


@dataclass(frozen=True)
class Listing:
    """A directory's rows: ``entry`` (None when the table has no row for it),
    ``children`` (live entries and tombstones) and whether the table knows all
    of them (``authoritative``)."""

    path: str
    entry: Entry | None
    children: tuple[Entry, ...]

    @property
    def authoritative(self) -> bool:
        return bool(
            self.entry and self.entry.live and self.entry.is_dir and self.entry.authoritative
        )

    @property
    def live(self) -> tuple[Entry, ...]:
        return tuple(c for c in self.children if c.live)

    @property
    def tombstones(self) -> tuple[Entry, ...]:
        return tuple(c for c in self.children if c.deleted)


def _norm(path: str) -> str:
    norm = P.strip_protocol(path)
    if not norm:
        raise InvalidPathError(
            "the metadata store holds buckets, files and directories; the root '' has no "
            "row (name a bucket or a path in one)",
            path,
        )
    return norm


class MetadataStore(ABC):
    """What emrfs knows about paths.  Subclasses supply the ``_primitives``.

    Parameters
    ----------
    tombstone_ttl_seconds
        A deleted path's tombstone carries ``ttl = now + this`` (DynamoDB's TTL
        removes it after that; :meth:`prune` does it by hand elsewhere).
    clock
        Seconds since the epoch; injectable for tests.
    """

    def __init__(
        self, *, tombstone_ttl_seconds: int = 86400, clock: Callable[[], float] = time.time
    ):
        self.tombstone_ttl_seconds = int(tombstone_ttl_seconds)
        self.clock = clock

    # --- primitives a backend supplies --------------------------------------------

    @abstractmethod
    def _get_rows(self, paths: Sequence[str]) -> dict[str, Entry]:
        """Rows for ``paths`` that exist (strongly consistent read)."""

    @abstractmethod
    def _write_rows(self, entries: Sequence[Entry]) -> None:
        """Write rows unconditionally (no duplicate paths in ``entries``)."""

    @abstractmethod
    def _create_if_absent(self, entry: Entry) -> bool:
        """Write ``entry`` only when no live row exists for its path; True if written."""

    def _create_many_if_absent(self, entries: Sequence[Entry]) -> None:
        """:meth:`_create_if_absent` for each entry (a backend may batch it)."""
        for entry in entries:
            self._create_if_absent(entry)

    @abstractmethod
    def _set_authoritative(self, path: str, flag: bool, now_ms: int) -> bool:
        """Set the flag on a live directory row (clear it on any row); True if done."""

    @abstractmethod
    def _child_rows(self, path: str) -> list[Entry]:
        """Every row whose parent is ``path``."""

    @abstractmethod
    def _remove_rows(self, paths: Sequence[str]) -> None:
        """Delete rows outright (no tombstone)."""

    @abstractmethod
    def _scan_rows(self) -> Iterator[Entry]:
        """Every metadata row in the table."""

    def close(self) -> None:  # noqa: B027 - optional: most stores hold nothing to release
        """Release connections (nothing to do for most stores)."""

    # --- reads ------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def get(self, path: str) -> Entry | None:
        """The row for ``path``: a live entry, a tombstone (``deleted``), or None."""
        path = _norm(path)
        return self._get_rows([path]).get(path)

    def get_many(self, paths: Iterable[str]) -> dict[str, Entry]:
        """Rows for those of ``paths`` the table has."""
        return self._get_rows(list(dict.fromkeys(_norm(p) for p in paths)))

    def list_children(self, path: str) -> Listing:
        """The directory's own row and its children's rows (tombstones included)."""
        path = _norm(path)
        entry = self._get_rows([path]).get(path)
        children = sorted(self._child_rows(path), key=lambda e: e.name)
        return Listing(path, entry, tuple(children))

    def walk(self, path: str) -> Iterator[Entry]:
        """``path``'s row and every row below it reachable through directory rows.

        Tombstoned directories are descended too (their children may still be
        live after a crash).  Rows under a directory that has no row at all are
        only found by :meth:`scan`.
        """
        path = _norm(path)
        own = self._get_rows([path]).get(path)
        if own is not None:
            yield own
        pending = [path] if own is None or own.is_dir else []
        while pending:
            directory = pending.pop()
            for child in sorted(self._child_rows(directory), key=lambda e: e.name):
                yield child
                if child.is_dir:
                    pending.append(child.path)

    def scan(self, under: str | None = None) -> Iterator[Entry]:
        """Every row (or every row at or below ``under``), orphans included."""
        root = _norm(under) if under else ""
        for entry in self._scan_rows():
            if not root or P.is_within(entry.path, root):
                yield entry

    # --- writes -----------------------------------------------------------------------

    def put(self, entry: Entry) -> None:
        """Record a file or directory (and any missing ancestor directories)."""
        self.put_many([entry])

    def put_many(self, entries: Iterable[Entry], *, live_dirs: set[str] | None = None) -> None:
        """Record many entries; ancestors first, so a crash leaves no orphan.

        ``live_dirs``: directories the caller's earlier ``put_many`` calls of the same
        bulk write ensured (rows already live): not read again; the directories this
        call ensures are added to it once their rows are written.  One bulk write whose
        rows arrive over time so checks its ancestors once, as one call with every row
        would.
        """
        now = self.now_ms()
        rows: dict[str, Entry] = {}
        for entry in entries:
            path = _norm(entry.path)
            rows[path] = replace(
                entry,
                path=path,
                etag=normalize_etag(entry.etag),
                deleted=False,
                ttl=None,
                last_updated_ms=now,
                authoritative=entry.authoritative and entry.is_dir,
            )
        if not rows:
            return
        known = live_dirs if live_dirs is not None else set()
        ancestors = [d for d in _ancestors_of(rows) if d not in known]
        self._ensure_directories(ancestors, now)
        self._write_rows(list(rows.values()))
        if live_dirs is not None:
            live_dirs.update(ancestors)
            live_dirs.update(p for p, e in rows.items() if e.is_dir)

    def record_file(
        self,
        path: str,
        size: int,
        etag: str | None = None,
        version_id: str | None = None,
        mtime_ms: int | None = None,
    ) -> Entry:
        """Record an object S3 now holds; returns the entry written."""
        entry = Entry.file(path, size, etag, version_id, mtime_ms)
        self.put(entry)
        return entry

    def record_directory(self, path: str) -> Entry:
        """Record a directory (mkdir); keeps an existing live row (and its flag)."""
        entry = Entry.directory(path)
        now = self.now_ms()
        self._ensure_directories([*_ancestors_of({entry.path: entry}), entry.path], now)
        return entry

    def delete(self, path: str) -> None:
        """Leave a tombstone for ``path`` (a file, or a directory row alone)."""
        self.delete_many([path])

    def delete_many(self, paths: Iterable[str]) -> int:
        """Tombstone each path; returns how many tombstones were written."""
        now = self.now_ms()
        ttl = int(self.clock()) + self.tombstone_ttl_seconds
        norm = list(dict.fromkeys(_norm(p) for p in paths))
        existing = self._get_rows(norm)
        stones = []
        for path in norm:
            old = existing.get(path)
            base = old if old is not None else Entry(path)
            stones.append(
                replace(base, deleted=True, authoritative=False, ttl=ttl, last_updated_ms=now)
            )
        if stones:
            self._write_rows(stones)
        return len(stones)

    def delete_subtree(self, path: str) -> int:
        """Tombstone ``path`` and every live row below it, deepest first."""
        rows = [e for e in self.walk(path) if e.live]
        rows.sort(key=lambda e: e.path.count("/"), reverse=True)
        return self.delete_many(e.path for e in rows) if rows else 0

    def delete_confirmed(self, root: str, deleted: Iterable[str]) -> int:
        """Tombstones after S3 confirmed deleting ``deleted`` (paths at or below ``root``).

        Each of ``deleted`` is tombstoned, then every directory row at or below
        ``root`` that no live row remains below (deepest first).  A live row S3
        did not confirm deleting stays live, and so do the directories above it:
        the table never says a file S3 still holds is gone.
        """
        root = _norm(root)
        doomed = list(dict.fromkeys(_norm(p) for p in deleted))
        count = self.delete_many(doomed) if doomed else 0
        live = [e for e in self.walk(root) if e.live]
        kept: set[str] = set()
        for e in live:
            if not e.is_dir:
                kept.update(a for a in P.ancestors(e.path) if P.is_within(a, root))
        empty = sorted(
            (e.path for e in live if e.is_dir and e.path not in kept),
            key=lambda p: p.count("/"),
            reverse=True,
        )
        return count + (self.delete_many(empty) if empty else 0)

    def copy_subtree(
        self, src: str, dst: str, overrides: Mapping[str, Entry] | None = None
    ) -> list[tuple[str, str]]:
        """Write rows at ``dst`` for every live row at or below ``src``.

        ``overrides`` maps a destination path to the entry to write there (a
        copy can change an ETag).  Returns the (source, destination) pairs.
        """
        src, dst = _norm(src), _norm(dst)
        if P.is_within(dst, src) and src != dst:
            raise InvalidPathError(f"cannot move {src!r} into itself ({dst!r})", dst)
        overrides = {_norm(k): v for k, v in (overrides or {}).items()}
        moved, rows = [], []
        for entry in self.walk(src):
            if entry.deleted:
                continue
            target = P.join(dst, P.relative_to(entry.path, src)) if entry.path != src else dst
            row = overrides.get(target) or replace(entry, path=target, authoritative=False)
            rows.append(replace(row, path=target))
            moved.append((entry.path, target))
        self.put_many(rows)
        return moved

    def rename(
        self, src: str, dst: str, overrides: Mapping[str, Entry] | None = None
    ) -> list[tuple[str, str]]:
        """Move ``src``'s rows to ``dst``: new rows first, then tombstones at the source.

        A crash in between leaves both (nothing lost; ``diff`` shows the source
        still recorded).
        """
        if _norm(src) == _norm(dst):
            return []
        moved = self.copy_subtree(src, dst, overrides)
        sources = sorted((s for s, _ in moved), key=lambda p: p.count("/"), reverse=True)
        self.delete_many(sources)
        return moved

    def mark_authoritative(self, path: str, authoritative: bool = True) -> bool:
        """Say the table holds every child of directory ``path`` (or stop saying it).

        Setting it succeeds only on a live directory row (a conditional write,
        so a concurrent delete wins); returns whether the flag was changed.
        """
        return self._set_authoritative(_norm(path), authoritative, self.now_ms())

    # --- housekeeping -----------------------------------------------------------------

    def prune(self, older_than_seconds: float, under: str | None = None) -> int:
        """Remove tombstones written more than ``older_than_seconds`` ago."""
        cutoff = self.now_ms() - int(older_than_seconds * 1000)
        old = [e.path for e in self.scan(under) if e.deleted and (e.last_updated_ms or 0) <= cutoff]
        self._remove_rows(old)
        return len(old)

    def forget(self, path: str, older_than_seconds: float | None = None) -> int:
        """Remove rows at or below ``path`` outright (``emrfs delete``).

        With ``older_than_seconds``, only rows last written before then.
        """
        cutoff = (
            None if older_than_seconds is None else self.now_ms() - int(older_than_seconds * 1000)
        )
        doomed = [
            e.path for e in self.scan(path) if cutoff is None or (e.last_updated_ms or 0) <= cutoff
        ]
        self._remove_rows(doomed)
        return len(doomed)

    def remove_rows(self, paths: Iterable[str]) -> None:
        """Delete rows outright (used by ``fsck --fix``)."""
        self._remove_rows(list(dict.fromkeys(_norm(p) for p in paths)))

    def _ensure_directories(self, dirs: Sequence[str], now: int) -> None:
        """Create directory rows for ``dirs`` (top-down) where no live row exists."""
        if not dirs:
            return
        dirs = sorted(set(dirs), key=lambda p: p.count("/"))
        existing = self._get_rows(dirs)
        missing = [
            Entry(p, is_dir=True, last_updated_ms=now)
            for p in dirs
            if p not in existing or existing[p].deleted
        ]
        self._create_many_if_absent(missing)


def _ancestors_of(rows: Mapping[str, Entry]) -> list[str]:
    """Directories above the given paths, bucket rows included, minus the paths themselves."""
    out: set[str] = set()
    for path in rows:
        bucket = path.partition("/")[0]
        if path != bucket:
            out.add(bucket)
            out.update(P.ancestors(path))
    return [d for d in out if d not in rows or not rows[d].is_dir]


class InMemoryMetadataStore(MetadataStore):
    """A dict behind a lock: for tests, and for one-process use without DynamoDB."""

    def __init__(
        self, *, tombstone_ttl_seconds: int = 86400, clock: Callable[[], float] = time.time
    ):
        super().__init__(tombstone_ttl_seconds=tombstone_ttl_seconds, clock=clock)
        self._rows: dict[str, Entry] = {}
        self._lock = threading.RLock()

    def _get_rows(self, paths):
        with self._lock:
            return {p: self._rows[p] for p in paths if p in self._rows}

    def _write_rows(self, entries):
        with self._lock:
            for entry in entries:
                self._rows[entry.path] = entry

    def _create_if_absent(self, entry):
        with self._lock:
            old = self._rows.get(entry.path)
            if old is not None and old.live:
                return False
            self._rows[entry.path] = entry
            return True

    def _set_authoritative(self, path, flag, now_ms):
        with self._lock:
            old = self._rows.get(path)
            if old is None or (flag and (old.deleted or not old.is_dir)):
                return False
            self._rows[path] = replace(old, authoritative=flag, last_updated_ms=now_ms)
            return True

    def _child_rows(self, path):
        with self._lock:
            return [e for e in self._rows.values() if e.parent == path]

    def _remove_rows(self, paths):
        with self._lock:
            for path in paths:
                self._rows.pop(path, None)

    def _scan_rows(self):
        with self._lock:
            rows = list(self._rows.values())
        return iter(rows)

"""Bucket versus table: diff, sync, import, delete and fsck.

These need a view of S3, given as an :class:`S3Walker`: anything with
``walk(path)`` yielding ``(path, info)`` for every object at or below a path
(fsspec info dicts: name, size, type, ETag, mtime or LastModified).  Folder
markers (``dir/``, ``dir_$folder$``) come as ``type == "directory"``.
:class:`AioS3Walker` is one over emrfs's S3 transport; the filesystem's own
listing fits the same protocol.

A crash between an S3 write and the metadata write leaves an object S3 has
and the table lacks: :func:`diff` reports it (``s3_only``) and :func:`sync`
records it.  A crash between an S3 delete and the tombstone leaves a row S3
lacks (``metadata_only``), which sync tombstones.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import paths as P
from ..blocking import run_blocking
from ..config import S3Options
from ..s3.client import S3Client
from ..s3.listing import list_pages
from .store import Entry, MetadataStore, normalize_etag

__all__ = [
    "S3Walker",
    "AioS3Walker",
    "DiffItem",
    "DiffReport",
    "SyncReport",
    "FsckProblem",
    "FsckReport",
    "diff",
    "sync",
    "import_",
    "delete",
    "fsck",
    "entry_from_info",
]

Progress = Callable[[int], None]

SAME, DIFFERS, METADATA_ONLY, S3_ONLY, TOMBSTONE_IN_S3 = (
    "same",
    "differs",
    "metadata_only",
    "s3_only",
    "tombstone_in_s3",
)


class S3Walker(Protocol):
    """Anything that lists every object at or below a path."""

    def walk(self, path: str) -> AsyncIterator[tuple[str, dict]]: ...


def _mtime_ms(info: dict) -> int | None:
    value = info.get("mtime", info.get("LastModified"))
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return int(value.timestamp() * 1000)
    return int(float(value) * 1000)


def entry_from_info(path: str, info: dict) -> Entry:
    """The metadata entry that records what S3's ``info`` shows."""
    if info.get("type") == "directory":
        return Entry.directory(path, _mtime_ms(info))
    return Entry.file(
        path,
        int(info.get("size") or 0),
        info.get("ETag") or info.get("etag"),
        info.get("VersionId"),
        _mtime_ms(info),
    )


class AioS3Walker:
    """Lists a prefix through emrfs's S3 transport (:class:`~emrfs.s3.client.S3Client`).

    So a walk gets what every other S3 call gets: ``s3.max_attempts`` retries,
    ``ca_bundle``, the profile, the addressing style, and errors translated
    once (a missing bucket is a ``FileNotFoundError`` naming the path).

    ``client`` is an :class:`S3Client` (not closed here: the owner closes it)
    or :class:`~emrfs.config.S3Options`, for which the walker makes its own
    client for each walk and closes it afterwards.
    """

    def __init__(self, client: S3Client | S3Options):
        self.client = client

    @classmethod
    def from_options(cls, options) -> AioS3Walker:
        """The walker for an :class:`~emrfs.config.Options` tree's ``s3`` section."""
        return cls(options.s3)

    async def walk(self, path: str) -> AsyncIterator[tuple[str, dict]]:
        if isinstance(self.client, S3Client):
            client, owned = self.client, False
        else:
            client, owned = S3Client(self.client), True
        bucket, key = P.split(path)
        try:
            async for page in list_pages(client, path, bucket, key, delimiter=None):
                for obj in page.get("Contents", []):
                    name = obj["Key"]
                    directory = P.marker_dir(name)
                    rel = directory if directory is not None else name
                    if key and rel != key and not rel.startswith(key + "/"):
                        continue  # "dir2/x" when walking "dir"
                    full = P.join(bucket, rel)
                    if directory is not None:
                        yield (
                            full,
                            {
                                "name": full,
                                "size": 0,
                                "type": "directory",
                                "LastModified": obj.get("LastModified"),
                            },
                        )
                    else:
                        yield (
                            full,
                            {
                                "name": full,
                                "size": obj.get("Size", 0),
                                "type": "file",
                                "ETag": obj.get("ETag"),
                                "LastModified": obj.get("LastModified"),
                            },
                        )
        finally:
            if owned:
                await client.close()


async def _collect_s3(walker: S3Walker, path: str, progress: Progress | None) -> dict[str, dict]:
    """Every object and directory S3 shows at or below ``path`` (implied ones too)."""
    root = P.strip_protocol(path)
    bucket = root.partition("/")[0]
    shown: dict[str, dict] = {}
    count = 0
    async for name, info in walker.walk(root):
        name = P.strip_protocol(name)
        if not name or name == bucket:
            continue
        shown[name] = info
        _, key = P.split(name)
        for directory in P.implied_dirs(key):
            full = P.join(bucket, directory)
            if P.is_within(full, root):
                shown.setdefault(full, {"name": full, "size": 0, "type": "directory"})
        count += 1
        if progress and count % 100 == 0:
            progress(count)
    if progress:
        progress(count)
    return shown


@dataclass(frozen=True)
class DiffItem:
    """One path: ``status`` is same / differs / metadata_only / s3_only / tombstone_in_s3."""

    path: str
    status: str
    is_dir: bool
    differences: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "type": "directory" if self.is_dir else "file",
            "differences": list(self.differences),
        }


@dataclass
class DiffReport:
    path: str
    items: list[DiffItem] = field(default_factory=list)
    s3: dict[str, dict] = field(default_factory=dict, repr=False)
    metadata: dict[str, Entry] = field(default_factory=dict, repr=False)

    @property
    def differences(self) -> list[DiffItem]:
        return [i for i in self.items if i.status != SAME]

    @property
    def clean(self) -> bool:
        return not self.differences

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in (SAME, DIFFERS, METADATA_ONLY, S3_ONLY, TOMBSTONE_IN_S3)}
        for item in self.items:
            out[item.status] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "counts": self.counts(),
            "differences": [i.as_dict() for i in self.differences],
        }


def _differences(info: dict, entry: Entry) -> tuple[str, ...]:
    out = []
    s3_dir = info.get("type") == "directory"
    if s3_dir != entry.is_dir:
        out.append(
            f"type: metadata {'directory' if entry.is_dir else 'file'}, "
            f"S3 {'directory' if s3_dir else 'file'}"
        )
        return tuple(out)
    if not s3_dir:
        size = int(info.get("size") or 0)
        if size != entry.size:
            out.append(f"size: metadata {entry.size}, S3 {size}")
        etag = normalize_etag(info.get("ETag") or info.get("etag"))
        if etag and entry.etag and etag != entry.etag:
            out.append(f"etag: metadata {entry.etag}, S3 {etag}")
    return tuple(out)


async def diff(
    store: MetadataStore, walker: S3Walker, path: str, *, progress: Progress | None = None
) -> DiffReport:
    """Compare everything at or below ``path`` in S3 and in the table."""

    root = P.strip_protocol(path)
    shown = await _collect_s3(walker, root, progress)
    rows = await run_blocking(lambda: {e.path: e for e in store.walk(root)})
    report = DiffReport(root, s3=shown, metadata=rows)
    bucket = root.partition("/")[0]
    for name in sorted(set(shown) | set(rows)):
        if name == bucket:
            continue  # the bucket itself is not compared
        info, entry = shown.get(name), rows.get(name)
        if entry is None:
            assert info is not None  # the name came from one side or the other
            report.items.append(DiffItem(name, S3_ONLY, info.get("type") == "directory"))
        elif entry.deleted:
            if info is not None:
                report.items.append(DiffItem(name, TOMBSTONE_IN_S3, entry.is_dir))
        elif info is None:
            report.items.append(DiffItem(name, METADATA_ONLY, entry.is_dir))
        else:
            found = _differences(info, entry)
            report.items.append(DiffItem(name, DIFFERS if found else SAME, entry.is_dir, found))
    return report


@dataclass
class SyncReport:
    path: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "dry_run": self.dry_run,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "counts": {
                "added": len(self.added),
                "updated": len(self.updated),
                "removed": len(self.removed),
            },
        }


async def sync(
    store: MetadataStore,
    walker: S3Walker,
    path: str,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> SyncReport:
    """Make the table match S3 at or below ``path``: record what S3 has, tombstone the rest.

    Rows are written before tombstones, so a crash half-way loses nothing.
    """

    report = await diff(store, walker, path, progress=progress)
    out = SyncReport(report.path, dry_run=dry_run)
    puts = []
    for item in report.differences:
        if item.status == METADATA_ONLY:
            out.removed.append(item.path)
            continue
        puts.append(entry_from_info(item.path, report.s3[item.path]))
        (out.added if item.status in (S3_ONLY, TOMBSTONE_IN_S3) else out.updated).append(item.path)
    if not dry_run:
        await run_blocking(store.put_many, puts)
        doomed = sorted(out.removed, key=lambda p: p.count("/"), reverse=True)
        await run_blocking(store.delete_many, doomed)
    return out


async def import_(
    store: MetadataStore, walker: S3Walker, path: str, *, progress: Progress | None = None
) -> SyncReport:
    """Record S3 objects at or below ``path`` that the table has no live row for.

    Existing live rows are left as they are (use :func:`sync` to correct them).
    """

    report = await diff(store, walker, path, progress=progress)
    out = SyncReport(report.path)
    puts = []
    for item in report.differences:
        if item.status in (S3_ONLY, TOMBSTONE_IN_S3):
            puts.append(entry_from_info(item.path, report.s3[item.path]))
            out.added.append(item.path)
    await run_blocking(store.put_many, puts)
    return out


def delete(store: MetadataStore, path: str, older_than_seconds: float | None = None) -> int:
    """Remove table rows at or below ``path`` (only those older than the age, if given).

    S3 is not touched; the rows are gone, not tombstoned (``emrfs delete``).
    """
    return store.forget(path, older_than_seconds)


@dataclass(frozen=True)
class FsckProblem:
    path: str
    kind: str
    detail: str
    fixable: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class FsckReport:
    path: str
    problems: list[FsckProblem] = field(default_factory=list)
    fixed: list[FsckProblem] = field(default_factory=list)
    rows: int = 0

    @property
    def unresolved(self) -> list[FsckProblem]:
        return [p for p in self.problems if p not in self.fixed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "problems": [p.as_dict() for p in self.problems],
            "fixed": len(self.fixed),
            "unresolved": len(self.unresolved),
        }


def fsck(store: MetadataStore, path: str, *, fix: bool = False) -> FsckReport:
    """Check the table's own invariants at or below ``path``; mend what is safe with ``fix``.

    Invariants: every live row's parent (short of the bucket) is a live
    directory row; no tombstone or file row is marked authoritative; every
    tombstone carries a TTL.  Fixes never drop information: a missing or
    tombstoned parent is (re)created as a directory, flags are cleared, TTLs
    stamped.  A live row under a *file* is reported, not fixed: ``emrfs sync``
    decides from S3.
    """
    root = P.strip_protocol(path)
    rows = {e.path: e for e in store.scan(root)}
    outside = {e.parent for e in rows.values() if e.parent and e.parent not in rows}
    rows.update(store.get_many(outside))
    report = FsckReport(root, rows=len(rows))
    for entry in sorted(rows.values(), key=lambda e: e.path):
        if not P.is_within(entry.path, root):
            continue
        _check_row(entry, rows, report)
    if fix:
        for problem in report.problems:
            if problem.fixable:
                _fix(store, problem)
                report.fixed.append(problem)
    return report


def _check_row(entry: Entry, rows: dict[str, Entry], report: FsckReport) -> None:
    add = report.problems.append
    if entry.deleted:
        if entry.authoritative:
            add(
                FsckProblem(
                    entry.path,
                    "authoritative_tombstone",
                    "a tombstone is marked authoritative",
                    True,
                )
            )
        if entry.ttl is None:
            add(
                FsckProblem(
                    entry.path,
                    "tombstone_without_ttl",
                    "a tombstone has no TTL, so DynamoDB never removes it",
                    True,
                )
            )
        return
    if entry.authoritative and not entry.is_dir:
        add(
            FsckProblem(
                entry.path, "authoritative_file", "a file row is marked authoritative", True
            )
        )
    parent = entry.parent
    if not parent:
        return  # a bucket row
    row = rows.get(parent)
    if row is None:
        add(FsckProblem(entry.path, "orphan", f"its parent {parent!r} has no row", True))
    elif row.deleted:
        add(
            FsckProblem(entry.path, "parent_deleted", f"its parent {parent!r} is a tombstone", True)
        )
    elif not row.is_dir:
        add(
            FsckProblem(
                entry.path,
                "parent_is_file",
                f"its parent {parent!r} is recorded as a file; run `emrfs sync` on it "
                "to take S3's word",
                False,
            )
        )


def _fix(store: MetadataStore, problem: FsckProblem) -> None:
    if problem.kind in ("orphan", "parent_deleted"):
        store.record_directory(P.parent(problem.path))
    elif problem.kind in ("authoritative_tombstone", "tombstone_without_ttl"):
        store.delete(problem.path)
    elif problem.kind == "authoritative_file":
        store.mark_authoritative(problem.path, False)

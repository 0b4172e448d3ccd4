"""Staged uploads: task output waiting in S3 multipart uploads for the job commit.

A task commit on one machine uploads each of the task's files as a multipart
upload that it does *not* complete (nothing is visible in S3), and records it
here; the job commit, on any machine, completes them; an abort aborts them.
This is the state the machines share, so it lives in the metadata table, in
rows of their own::

    .emrfs-staged/<bucket>/<path of the file in the ephemeral tier>

S3 bucket names never start with ``.``, so these rows cannot collide with a
path's row, and the consistent view's own lookups (by bucket) never meet
them.  A file row carries the upload in ``staged`` (JSON: target key, upload
id, part ETags, plaintext size, the CSE instruction file if there is one);
directory rows make ``ls`` of the tier's directories work on every machine.
Rows are removed outright (no tombstones): nothing reads a staged row's
history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from .. import paths as P
from .store import Entry, MetadataStore

__all__ = ["STAGED_ROOT", "StagedUpload", "StagedEntry", "StagedUploads"]

#: first segment of every staged row (no bucket name starts with '.').
STAGED_ROOT = ".emrfs-staged"


@dataclass(frozen=True)
class StagedUpload:
    """One uncompleted multipart upload holding a whole file.

    ``target`` is where it completes (``bucket/key``); ``etags`` are its parts
    1..n; ``size`` the file's length as readers see it (plaintext under CSE);
    ``instruction`` the CSE instruction-file body and metadata, written when
    the upload completes (InstructionFile mode only).
    """

    target: str
    upload_id: str
    etags: tuple[str, ...]
    size: int
    staged_ms: int
    instruction: str | None = None
    instruction_metadata: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "target": self.target,
                "upload_id": self.upload_id,
                "etags": [e.strip('"') for e in self.etags],
                "size": self.size,
                "staged_ms": self.staged_ms,
                "instruction": self.instruction,
                "instruction_metadata": dict(self.instruction_metadata),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> StagedUpload:
        d = json.loads(text)
        return cls(
            d["target"],
            d["upload_id"],
            tuple(f'"{e}"' for e in d["etags"]),
            int(d["size"]),
            int(d["staged_ms"]),
            d.get("instruction"),
            d.get("instruction_metadata") or {},
        )

    @property
    def parts(self) -> list[dict]:
        """The ``Parts`` list of CompleteMultipartUpload."""
        return [{"PartNumber": n, "ETag": e} for n, e in enumerate(self.etags, 1)]


@dataclass(frozen=True)
class StagedEntry:
    """A staged file (``upload`` set) or a directory of staged files, at tier ``path``."""

    path: str
    upload: StagedUpload | None
    mtime_ms: int | None

    @property
    def is_dir(self) -> bool:
        return self.upload is None


def _row_path(path: str) -> str:
    return f"{STAGED_ROOT}/{P.strip_protocol(path)}"


def _tier_path(row_path: str) -> str:
    return row_path[len(STAGED_ROOT) + 1 :]


def _entry(row: Entry) -> StagedEntry:
    upload = StagedUpload.from_json(row.staged) if row.staged else None
    return StagedEntry(
        _tier_path(row.path), upload, upload.staged_ms if upload else row.last_updated_ms
    )


class StagedUploads:
    """The staged rows of one metadata table (synchronous; call from a thread)."""

    def __init__(self, store: MetadataStore):
        self.store = store

    def record(self, uploads: Mapping[str, StagedUpload]) -> None:
        """Record staged files by tier path (their directories come with them)."""
        self.store.put_many(
            Entry(_row_path(path), size=u.size, mtime_ms=u.staged_ms, staged=u.to_json())
            for path, u in uploads.items()
        )

    def record_directory(self, path: str) -> None:
        """Record a directory of the job (``OUT/_temporary/N`` made by the job set-up), so
        every machine sees it, whichever machine's disk holds it."""
        self.store.record_directory(_row_path(path))

    def get(self, path: str) -> StagedEntry | None:
        row = self.store.get(_row_path(path))
        return _entry(row) if row is not None and row.live else None

    def children(self, path: str) -> list[StagedEntry]:
        """Staged entries directly under tier directory ``path``."""
        listing = self.store.list_children(_row_path(path))
        return [_entry(r) for r in listing.live]

    def walk(self, path: str) -> Iterator[StagedEntry]:
        """``path``'s entry and everything staged below it."""
        for row in self.store.walk(_row_path(path)):
            if row.live:
                yield _entry(row)

    def files(self, path: str) -> list[tuple[str, StagedUpload]]:
        """(tier path, upload) of every staged file at or below ``path``."""
        return [(e.path, e.upload) for e in self.walk(path) if e.upload is not None]

    def all(self, under: str | None = None) -> Iterator[StagedEntry]:
        """Every staged entry in the table (or at or below ``under``): a table scan."""
        for row in self.store.scan(_row_path(under) if under else STAGED_ROOT):
            if row.live and row.path != STAGED_ROOT:
                yield _entry(row)

    def forget(self, paths: Iterable[str]) -> None:
        """Remove the rows of these paths (files, or directories alone)."""
        self.store.remove_rows([_row_path(p) for p in paths])

    def forget_tree(self, path: str) -> int:
        """Remove ``path``'s row and every row below it, then the directory rows above
        it that are left empty (short of the bucket's); returns how many went."""
        top = _row_path(path)
        rows = sorted(
            (r.path for r in self.store.walk(top)), key=lambda p: p.count("/"), reverse=True
        )
        self.store.remove_rows(rows)
        parent = P.parent(top)
        while parent.count("/") >= 2 and not self.store.list_children(parent).live:
            self.store.remove_rows([parent])
            rows.append(parent)
            parent = P.parent(parent)
        return len(rows)

    def move(self, src: str, dst: str) -> int:
        """Re-key everything staged at or below ``src`` to ``dst`` (uploads unchanged):
        new rows first, then the old ones go."""
        entries = list(self.walk(src))
        uploads = {
            P.join(dst, P.relative_to(e.path, src)) if e.path != src else dst: e.upload
            for e in entries
            if e.upload is not None
        }
        if not entries:
            return 0
        self.record(uploads)
        self.forget_tree(src)
        return len(uploads)

"""Decide whether what S3 shows agrees with what the metadata says.

Pure functions first: :func:`check_path` (for ``info``/``open``) and
:func:`check_listing` (for ``ls``) take S3's answer (fsspec info dicts: name,
size, type, ETag, mtime) and the metadata (an :class:`Entry` or a
:class:`Listing`) and return a :class:`Verdict`: the disagreements found and
the view to hand back.  Then :func:`run_with_policy` re-probes S3 under a
:class:`~emrfs.consistency.policy.RetryPolicy` until they agree or the policy
runs out, and raises :class:`~emrfs.errors.ConsistencyError` or returns what
S3 shows.

What counts as a disagreement (each may heal as S3 catches up):

* ``missing_in_s3`` — the metadata has a live file S3 does not show;
* ``etag_mismatch`` — S3 serves another ETag than the last one emrfs wrote
  (a stale read after an overwrite; only with ``etag_verification``);
* ``deleted_but_present`` — the metadata has a tombstone, S3 still shows it;
* ``type_mismatch`` — one says file, the other directory.

Directories the metadata knows and S3 does not show are *not* disagreements:
S3 has no directories of its own (an empty one exists only as a marker), so
the metadata's word stands and the directory is added to the view.  Paths S3
shows and the metadata has no row for were written outside emrfs (or before
it tracked them) and are passed through.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .. import paths as P
from ..errors import ConsistencyError
from .policy import RetryPolicy
from .sink import InconsistencyEvent, InconsistencySink, LoggingSink
from .store import Entry, Listing, normalize_etag

__all__ = [
    "Problem",
    "Verdict",
    "check_path",
    "check_listing",
    "check_tree",
    "merge_tree",
    "run_with_policy",
    "MISSING_IN_S3",
    "ETAG_MISMATCH",
    "DELETED_BUT_PRESENT",
    "TYPE_MISMATCH",
]

log = logging.getLogger("emrfs.consistency")

MISSING_IN_S3 = "missing_in_s3"
ETAG_MISMATCH = "etag_mismatch"
DELETED_BUT_PRESENT = "deleted_but_present"
TYPE_MISMATCH = "type_mismatch"


@dataclass(frozen=True)
class Problem:
    """One path on which S3 and the metadata disagree."""

    path: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one look: ``problems`` (empty when consistent), the view to
    return when consistent (``view``), and what S3 alone shows (``s3_view``)."""

    problems: tuple[Problem, ...]
    view: Any
    s3_view: Any

    @property
    def consistent(self) -> bool:
        return not self.problems

    @property
    def status(self) -> str:
        """``consistent`` or ``retry`` (:func:`run_with_policy` decides ``inconsistent``)."""
        return "consistent" if self.consistent else "retry"


def _is_dir(info: dict) -> bool:
    return info.get("type") == "directory"


def _compare(
    path: str, info: dict | None, entry: Entry | None, etag_verification: bool
) -> Problem | None:
    """The disagreement between S3's ``info`` and the metadata's ``entry``, if any."""
    if entry is None:
        return None
    if entry.deleted:
        if info is None:
            return None
        what = "directory" if _is_dir(info) else "object"
        return Problem(
            path, DELETED_BUT_PRESENT, f"deleted in the metadata but S3 still shows the {what}"
        )
    if info is None:
        if entry.is_dir:
            return None
        return Problem(
            path,
            MISSING_IN_S3,
            f"in the metadata (size {entry.size}, ETag {entry.etag}) but not in S3",
        )
    if entry.is_dir != _is_dir(info):
        said = "directory" if entry.is_dir else "file"
        shown = "directory" if _is_dir(info) else "file"
        return Problem(path, TYPE_MISMATCH, f"the metadata says {said}, S3 shows a {shown}")
    if etag_verification and not entry.is_dir:
        s3_etag = normalize_etag(info.get("ETag") or info.get("etag"))
        if entry.etag and s3_etag and s3_etag != entry.etag:
            return Problem(
                path,
                ETAG_MISMATCH,
                f"S3 serves ETag {s3_etag} but the metadata recorded {entry.etag} "
                "(a stale read after an overwrite)",
            )
    return None


def check_path(
    path: str, s3_info: dict | None, entry: Entry | None, *, etag_verification: bool = True
) -> Verdict:
    """Compare S3's info for one path (None: S3 says not found) with its metadata row.

    The view is ``s3_info``, or the metadata's directory when only it knows
    one, or None (not found) for a tombstone S3 agrees with.
    """
    path = P.strip_protocol(path)
    problem = _compare(path, s3_info, entry, etag_verification)
    view = s3_info
    if s3_info is None and entry is not None and entry.live and entry.is_dir:
        view = entry.info()
    return Verdict((problem,) if problem else (), view, s3_info)


def check_listing(
    path: str, s3_infos: Iterable[dict], listing: Listing, *, etag_verification: bool = True
) -> Verdict:
    """Compare an S3 listing of directory ``path`` with the metadata's rows for it.

    The view (a list of info dicts sorted by name) is S3's listing with the
    metadata's directories added; ``s3_view`` is S3's listing alone.
    """
    path = P.strip_protocol(path)
    shown = {P.strip_protocol(i["name"]): i for i in s3_infos}
    rows = {c.path: c for c in listing.children}
    problems = []
    for child, entry in sorted(rows.items()):
        problem = _compare(child, shown.get(child), entry, etag_verification)
        if problem:
            problems.append(problem)
    view = dict(shown)
    for child, entry in rows.items():
        if entry.live and entry.is_dir and child not in view:
            view[child] = entry.info()
    s3_view = [shown[k] for k in sorted(shown)]
    return Verdict(tuple(problems), [view[k] for k in sorted(view)], s3_view)


def check_tree(
    path: str,
    s3_infos: dict[str, dict],
    rows: Iterable[Entry],
    *,
    etag_verification: bool = True,
    with_dirs: bool = False,
) -> Verdict:
    """Compare a recursive S3 listing below ``path`` (``find``: infos by name) with the
    metadata's rows below it (already cut to the listing's scope).

    Directories are not compared (a recursive listing shows them only through
    their files); the view is S3's listing, plus (``with_dirs``) the
    metadata's live directories it lacks.
    """
    rows = list(rows)
    shown = {P.strip_protocol(n): i for n, i in s3_infos.items()}
    problems = [
        p
        for e in rows
        if not e.is_dir or e.deleted
        if (p := _compare(e.path, (info := shown.get(e.path)), e, etag_verification))
        # a deleted directory S3 still shows (the tombstone of one the table had no row
        # for says file) is left out of the view below, not waited for
        and not (
            (e.is_dir or (info is not None and _is_dir(info))) and p.kind == DELETED_BUT_PRESENT
        )
    ]
    # a deleted directory S3 still lists (its marker's delete lingers) is gone, unless
    # something live is listed below it
    gone = {e.path for e in rows if e.deleted}
    implied = {a for name in shown if name not in gone for a in P.ancestors(name)}
    view = {
        n: i
        for n, i in s3_infos.items()
        if not (
            (name := P.strip_protocol(n)) in gone
            and name not in implied
            and i.get("type") == "directory"
        )
    }
    if with_dirs:
        for e in rows:
            if e.live and e.is_dir and e.path not in shown:
                view[e.path] = e.info()
    return Verdict(tuple(sorted(problems, key=lambda p: p.path)), view, s3_infos)


def merge_tree(
    path: str, s3_infos: dict[str, dict], rows: Iterable[Entry], *, etag_verification: bool = True
) -> Verdict:
    """The tree below ``path`` that a directory operation (rmdir, rm, rename) acts on.

    Compared as :func:`check_tree` compares (with directories), but both views are
    the *merged* listing: what S3 lists, less the paths the metadata tombstoned,
    plus the metadata's live files and directories S3 does not list yet.  So when
    the retry policy runs out and the caller proceeds anyway
    (``throw_exception_on_inconsistency=false``), it still acts on every file the
    table knows and resurrects none it deleted.  Entries from the metadata alone
    carry ``"from_metadata": True``.
    """
    rows = list(rows)
    verdict = check_tree(path, s3_infos, rows, etag_verification=etag_verification, with_dirs=True)
    merged = {P.strip_protocol(n): i for n, i in s3_infos.items()}
    for e in rows:
        if e.deleted:
            merged.pop(e.path, None)
        elif e.live and not e.is_dir and e.path not in merged:
            merged[e.path] = {**e.info(), "from_metadata": True}
    implied = {a for name in merged for a in P.ancestors(name)}
    for e in rows:  # directories the table alone knows, and nothing listed below them
        if e.live and e.is_dir and e.path not in merged and e.path not in implied:
            merged[e.path] = {**e.info(), "from_metadata": True}
    return Verdict(verdict.problems, merged, merged)


def _message(
    operation: str, path: str, problems: tuple[Problem, ...], retries: int, elapsed: float
) -> str:
    details = "; ".join(str(p) for p in problems)
    return (
        f"{operation} {path!r}: S3 and the consistent-view metadata still disagree after "
        f"{retries} retries over {elapsed:.1f} s: {details}. If S3 is right (the change "
        f"was made outside emrfs), run `emrfs sync s3://{path}` to mend the metadata; "
        "set consistency.throw_exception_on_inconsistency=false to get what S3 shows"
    )


async def run_with_policy(
    probe: Callable[[], Awaitable[Verdict]],
    policy: RetryPolicy,
    *,
    operation: str,
    path: str,
    throw: bool = True,
    sink: InconsistencySink | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Call ``probe()`` until its verdict is consistent or ``policy`` runs out.

    Returns the consistent verdict's ``view``.  When retries run out, raises
    :class:`~emrfs.errors.ConsistencyError` naming every path and what
    disagreed, or (``throw=False``) logs and returns the last ``s3_view``.
    Every look that found a disagreement is reported once to ``sink``.
    """
    sink = sink if sink is not None else LoggingSink()
    start = clock()
    retry = 0
    seen: tuple[Problem, ...] = ()
    while True:
        verdict = await probe()
        if verdict.consistent:
            if retry:
                sink.report(
                    InconsistencyEvent(operation, path, seen, retry, clock() - start, "recovered")
                )
            return verdict.view
        seen = seen or verdict.problems
        delay = policy.delay(retry)
        if delay is None:
            break
        log.debug(
            "%s %s: %d disagreement(s), retry %d in %.2f s",
            operation,
            path,
            len(verdict.problems),
            retry + 1,
            delay,
        )
        await sleep(delay)
        retry += 1
    elapsed = clock() - start
    sink.report(
        InconsistencyEvent(
            operation, path, verdict.problems, retry, elapsed, "raised" if throw else "ignored"
        )
    )
    message = _message(operation, path, verdict.problems, retry, elapsed)
    if throw:
        raise ConsistencyError(
            message,
            path,
            paths=tuple(p.path for p in verdict.problems),
            reason=", ".join(sorted({p.kind for p in verdict.problems})),
        )
    log.warning("%s; returning what S3 shows", message)
    return verdict.s3_view

"""The consistent view as the filesystem uses it: async, one call per step.

The filesystem owns the S3 calls and their order; :class:`ConsistentView`
owns the metadata side.  Blocking store calls run on :mod:`emrfs.blocking`'s leaf threads
(never the loop's default pool, which threads waiting on the loop may fill).
Every ``record_*`` is called *after* the S3 call it records has succeeded, so
a crash in between leaves S3 ahead of the table, which ``emrfs diff`` reports
and ``emrfs sync`` mends, and nothing is lost:

======================  ================================================================
write / multipart       S3 PUT (or CompleteMultipartUpload) -> ``record_file``
mkdir                   S3 marker PUT -> ``record_directory``
delete file(s)          S3 DELETE -> ``record_delete``
delete directory        ``tree(dir, probe)`` -> S3 DELETEs of its keys -> ``record_delete``
                        (confirmed files) and ``record_delete_tree(dir, confirmed markers)``
copy                    S3 COPY -> ``record_file`` (``ConsistentStore.copy``)
rename (directory)      ``tree(src, probe)`` -> S3 COPY of each key -> ``record_file``
                        (the copied keys only) -> S3 DELETE of the sources ->
                        ``record_delete`` (confirmed files) and
                        ``record_delete_tree(src, confirmed markers)``
info / open             ``info(path, probe)`` where ``probe`` does the S3 HEAD
every read (GET)        ``read(path, etag, get)``: the GET pinned to the ETag ``info`` gave;
                        a stale copy is retried by the policy
ls                      ``ls(path, probe)`` where ``probe`` does the S3 LIST
find / glob             ``find(path, probe, in_scope)``: the recursive LIST, checked
                        against the rows below ``path``
a child went            the stack's probe below ``parent`` (``ConsistentStore.list`` with a
                        ``limit``: S3's first keys less tombstones, plus live child rows)
                        -> S3 marker PUT (if empty) -> ``record_directory``
write a file            the same probe below ``path``, or its live directory row: the
                        write is refused
======================  ================================================================
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..blocking import run_blocking
from .batching import RowBatcher, Ticket
from .checker import (
    ETAG_MISMATCH,
    MISSING_IN_S3,
    Problem,
    Verdict,
    check_listing,
    check_path,
    check_tree,
    merge_tree,
    run_with_policy,
)
from .policy import RetryPolicy, policy_from_options
from .sink import InconsistencySink, LoggingSink
from .store import Entry, Listing, MetadataStore, normalize_etag
from .sync import entry_from_info

if TYPE_CHECKING:
    from ..errors import ChangedError

__all__ = ["ConsistentView"]


InfoProbe = Callable[[], Awaitable["dict | None"]]
ListProbe = Callable[[], Awaitable["list[dict]"]]
FindProbe = Callable[[], Awaitable["dict[str, dict]"]]


class ConsistentView:
    """Metadata bookkeeping and read checks for one filesystem instance.

    Parameters
    ----------
    store
        Any :class:`MetadataStore` (DynamoDB in production, in-memory in tests).
    policy
        Retry policy for reads that disagree (:func:`policy_from_options`).
    throw
        Raise :class:`~emrfs.errors.ConsistencyError` when retries run out
        (``consistency.throw_exception_on_inconsistency``), else return S3's view.
    etag_verification, fast_list
        ``consistency.etag_verification`` and ``consistency.fast_list``.
    sink
        Where inconsistencies are reported (the log by default).
    sleep, clock
        Injectable for tests.
    """

    def __init__(
        self,
        store: MetadataStore,
        policy: RetryPolicy,
        *,
        throw: bool = True,
        etag_verification: bool = True,
        fast_list: bool = True,
        sink: InconsistencySink | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.policy = policy
        self.throw = throw
        self.etag_verification = etag_verification
        self.fast_list = fast_list
        self.sink = sink if sink is not None else LoggingSink()
        self.sleep = sleep
        self.clock = clock
        self._batches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @classmethod
    def from_options(cls, options, store: MetadataStore | None = None, **kwargs) -> ConsistentView:
        """A view configured by ``options.consistency``; a DynamoDB store unless one is given."""
        cons = options.consistency
        if store is None:
            from .dynamodb import DynamoDBMetadataStore

            store = DynamoDBMetadataStore.from_options(options)
        kwargs.setdefault("throw", cons.throw_exception_on_inconsistency)
        kwargs.setdefault("etag_verification", cons.etag_verification)
        kwargs.setdefault("fast_list", cons.fast_list)
        return cls(store, policy_from_options(cons), **kwargs)

    # --- mutations: call each after the S3 call succeeded ----------------------------

    async def record_file(
        self,
        path: str,
        size: int,
        etag: str | None = None,
        version_id: str | None = None,
        mtime_ms: int | None = None,
        *,
        ticket: Ticket | None = None,
    ) -> None:
        """Record one written object; returns once the row is stored.

        Rows of writes running concurrently are written together (see
        :mod:`~emrfs.consistency.batching`); ``ticket``: the one :meth:`expect_row`
        gave when the write began.
        """
        await self._batcher().record([Entry.file(path, size, etag, version_id, mtime_ms)], ticket)

    async def record_files(self, entries: Iterable[Entry]) -> None:
        """Many writes at once (batched: one round trip per 25 rows)."""
        await self._batcher().record(list(entries))

    def expect_row(self) -> Ticket:
        """Call as a write begins whose row :meth:`record_file` will record (with this
        ticket), and close it (a context manager) when the write ends: a flush waits
        for the rows of writes under way to fill its request."""
        return self._batcher().expect()

    def _batcher(self) -> RowBatcher:
        loop = asyncio.get_running_loop()
        batcher = self._batches.get(loop)
        if batcher is None:
            batcher = self._batches[loop] = RowBatcher(self.store.put_many)
        return batcher

    async def record_directory(self, path: str) -> None:
        await run_blocking(self.store.record_directory, path)

    async def record_delete(self, paths: str | Iterable[str]) -> None:
        paths = [paths] if isinstance(paths, str) else list(paths)
        try:
            await run_blocking(self.store.delete_many, paths)
        finally:
            self._forget_live_dirs()

    async def record_delete_tree(self, path: str, deleted: Iterable[str] = ()) -> None:
        """Tombstones for ``deleted`` (the paths whose S3 deletes were confirmed: files,
        and directories whose markers went) and for the directory rows at or below
        ``path`` that nothing live remains below.  Rows for keys S3 still holds stay."""
        try:
            await run_blocking(self.store.delete_confirmed, path, list(deleted))
        finally:
            self._forget_live_dirs()

    def _forget_live_dirs(self) -> None:
        """A delete may have tombstoned a directory a write run made sure of: the runs'
        next flushes read their ancestors again.  (Another view or process deleting is
        seen when the run ends, or within ``batching.LIVE_DIRS_SECONDS``.)"""
        for batcher in list(self._batches.values()):
            batcher.forget_live_dirs()

    async def record_copy(
        self, src: str, dst: str, overrides: Mapping[str, Entry] | None = None
    ) -> None:
        """Rows at ``dst`` for everything recorded at or below ``src``.

        ``overrides`` carries what the copies returned (a multipart copy has a
        new ETag); keys are destination paths.
        """
        await run_blocking(self.store.copy_subtree, src, dst, overrides)

    # --- checked reads ------------------------------------------------------------------

    async def info(self, path: str, probe: InfoProbe) -> dict | None:
        """S3's info for ``path`` (``probe`` returns None for not found), checked.

        Returns the info to use, or None when the path does not exist; raises
        :class:`~emrfs.errors.ConsistencyError` when retries run out.
        """

        async def look() -> Verdict:
            shown = await probe()
            entry = await run_blocking(self.store.get, path)
            return check_path(path, shown, entry, etag_verification=self.etag_verification)

        return await run_with_policy(
            look,
            self.policy,
            operation="info",
            path=path,
            throw=self.throw,
            sink=self.sink,
            sleep=self.sleep,
            clock=self.clock,
        )

    async def ls(
        self,
        path: str,
        probe: ListProbe,
        *,
        in_scope: Callable[[str], bool] | None = None,
        remember: bool = True,
    ) -> list[dict]:
        """The children of directory ``path``, checked against the metadata.

        With ``fast_list`` and an authoritative directory row, the answer comes
        from the table alone (``probe`` is not called).  After a consistent S3
        listing, children the table lacks are recorded and the directory is
        marked authoritative, so the next listing can be fast (``remember``, and
        only for a whole directory).  ``in_scope``: only the children it accepts
        are compared (``probe`` lists only those, e.g. a name prefix).
        """
        remember = remember and in_scope is None

        async def children() -> Listing:
            listing = await run_blocking(self.store.list_children, path)
            if in_scope is None:
                return listing
            kept = tuple(c for c in listing.children if in_scope(c.path))
            return Listing(listing.path, listing.entry, kept)

        first = await children()
        if self.fast_list and first.authoritative:
            return [e.info() for e in first.live]
        pending = [first]

        async def look() -> Verdict:
            shown = await probe()
            listing = pending.pop() if pending else await children()
            verdict = check_listing(path, shown, listing, etag_verification=self.etag_verification)
            if verdict.consistent:
                look.listing = listing  # type: ignore[attr-defined]
            return verdict

        view = await run_with_policy(
            look,
            self.policy,
            operation="ls",
            path=path,
            throw=self.throw,
            sink=self.sink,
            sleep=self.sleep,
            clock=self.clock,
        )
        listing = getattr(look, "listing", None)
        if remember and self.fast_list and listing is not None and listing.entry is not None:
            await run_blocking(self._remember, path, view, listing)
        return view

    async def find(
        self, path: str, probe: FindProbe, in_scope: Callable[[str], bool], withdirs: bool = False
    ) -> dict[str, dict]:
        """A recursive listing below ``path`` (``probe`` returns infos by name), checked
        against every row below ``path`` that ``in_scope`` accepts: files the
        metadata has and S3 does not list yet, or lists though deleted, are
        retried by the policy as for ``ls``."""

        async def look() -> Verdict:
            shown = await probe()
            rows = await run_blocking(
                lambda: [e for e in self.store.walk(path) if e.path != path and in_scope(e.path)]
            )
            return check_tree(
                path, shown, rows, etag_verification=self.etag_verification, with_dirs=withdirs
            )

        return await run_with_policy(
            look,
            self.policy,
            operation="find",
            path=path,
            throw=self.throw,
            sink=self.sink,
            sleep=self.sleep,
            clock=self.clock,
        )

    async def tree(
        self, path: str, probe: FindProbe, *, operation: str = "tree"
    ) -> dict[str, dict]:
        """Everything below directory ``path`` that a directory operation (``rmdir``,
        ``rm``, rename) must act on: S3's recursive listing (``probe``: infos by name)
        merged with the metadata's rows below ``path``.

        A file the metadata has and S3 does not list yet (a delayed listing), or one
        S3 still lists though deleted, is waited for under the retry policy as a
        read is; when it runs out, :class:`~emrfs.errors.ConsistencyError` (or, with
        ``throw=False``, the merged listing: S3's, less tombstones, plus the
        table's live rows).  See :func:`~emrfs.consistency.checker.merge_tree`.
        """

        async def look() -> Verdict:
            shown = await probe()
            rows = await run_blocking(lambda: [e for e in self.store.walk(path) if e.path != path])
            return merge_tree(path, shown, rows, etag_verification=self.etag_verification)

        return await run_with_policy(
            look,
            self.policy,
            operation=operation,
            path=path,
            throw=self.throw,
            sink=self.sink,
            sleep=self.sleep,
            clock=self.clock,
        )

    async def read(
        self,
        path: str,
        etag: str,
        get: Callable[[], Awaitable[Any]],
        unpinned: Callable[[], Awaitable[Any]] | None = None,
    ) -> Any:
        """``get()``: a GET of ``path`` pinned to ``etag`` (the version this view's ``info``
        gave), checked.

        S3 serving another version while the metadata records ``etag`` is a stale
        copy: retried by the policy, then :class:`~emrfs.errors.ConsistencyError`
        (or, ``throw=False``, logged and ``unpinned()``: what S3 serves, when the GET
        is of the whole object; else the :class:`~emrfs.s3.client.ChangedError`).
        When the metadata records another version, or none, the object really changed
        since the read began: the ``ChangedError`` is raised at once.  A GET that finds
        nothing while the metadata records ``etag`` live (S3 does not show the write yet)
        is retried the same way; else its ``FileNotFoundError`` is raised at once.
        """
        from ..s3.client import ChangedError

        failed: list[Exception] = []

        async def look() -> Verdict:
            try:
                return Verdict((), await get(), None)
            except (FileNotFoundError, ChangedError) as exc:
                problem = await self._stale_copy(path, etag, exc)
                if problem is None:
                    raise  # the object really changed, or went, since the read began
                failed[:] = [exc]
                return Verdict((problem,), None, None)

        response = await run_with_policy(
            look,
            self.policy,
            operation="read",
            path=path,
            throw=self.throw,
            sink=self.sink,
            sleep=self.sleep,
            clock=self.clock,
        )
        if response is not None:
            return response
        if unpinned is not None:
            return await unpinned()
        raise failed[-1]

    async def _stale_copy(
        self, path: str, etag: str, exc: FileNotFoundError | ChangedError
    ) -> Problem | None:
        """What a GET pinned to ``etag`` failing with ``exc`` (nothing found, or another
        version) means: a stale copy in S3 while the metadata records ``etag`` live;
        None when the metadata records another version, or none (a real change)."""
        entry = await run_blocking(self.store.get, path)
        if entry is None or entry.deleted or entry.etag != normalize_etag(etag):
            return None
        if isinstance(exc, FileNotFoundError):
            return Problem(
                path,
                MISSING_IN_S3,
                f"the metadata recorded ETag {entry.etag} but S3 does not show the object",
            )
        served = normalize_etag(exc.got) or "another version (412)"
        return Problem(
            path,
            ETAG_MISMATCH,
            f"S3 serves {served} but the metadata recorded "
            f"{entry.etag} (a stale read after an overwrite)",
        )

    def _remember(self, path: str, view: list[dict], listing) -> None:
        known = {c.path for c in listing.children if c.live}
        from .. import paths as P

        untracked = [
            entry_from_info(P.strip_protocol(i["name"]), i)
            for i in view
            if P.strip_protocol(i["name"]) not in known
        ]
        self.store.put_many(untracked)
        self.store.mark_authoritative(path)

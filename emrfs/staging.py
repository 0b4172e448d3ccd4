"""Staged task commit: the ephemeral tier's output leaves the machine at task commit.

With one machine, the tier keeps a task's files on local disk until the job
commit uploads them (``ephemeral.task_commit='local'``).  On a cluster each
node writes through its own gateway, and the job commit runs elsewhere, so
the task commit must move the data off its node — without making it visible
(as Hadoop S3A's staging committer does):

* task commit (the tier rename ``OUT/_temporary/N/_temporary/ATTEMPT`` ->
  ``OUT/_temporary/N/TASK``): each file is uploaded to the key the job commit
  will give it (:func:`emrfs.commit_layout.job_output_path`) as a multipart
  upload that is *not* completed, through the filesystem's own write path
  (SSE and CSE apply); the uploads are recorded in the metadata table
  (:mod:`emrfs.consistency.staged`), then the local copy goes.
* every machine sees the staged files at their tier paths (``info``, ``ls``,
  ``find``), from the table.
* job commit (a rename of staged files out of the tier): CompleteMultipartUpload
  at the staged key, the instruction file under CSE InstructionFile mode, the
  consistent-view record; a different destination than predicted costs a copy.
* abort (deleting a tier directory): the uploads are aborted, the rows removed.

Order, so a crash loses nothing: parts up, then rows, then the local copy
goes (task commit); complete, then record, then the row goes (job commit; a
repeated complete finds the object there and carries on).  Uploads a crash
orphaned are listed and aborted by ``emrfs staged``; the multipart purge
(:class:`emrfs.s3.multipart.UploadPurge`) skips every upload recorded here
(:meth:`TaskCommitStaging.staged_upload_ids`).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from . import paths
from .blocking import run_blocking
from .commit_layout import in_task_attempt, is_task_commit, job_output_path
from .consistency.staged import StagedEntry, StagedUpload, StagedUploads
from .errors import ConfigurationError
from .store.protocol import StagedUpload as OpenUpload

if TYPE_CHECKING:
    from .cache.ephemeral import EphemeralTier
    from .config import Options
    from .namespace.markers import Markers
    from .status import StatusFactory

logger = logging.getLogger("emrfs.staging")

__all__ = ["TaskCommitStaging"]

#: files staged or completed at once.
CONCURRENCY = 4
_CHUNK = 8 * 1024 * 1024


class TaskCommitStaging:
    """The staged side of the tier's verbs (one per filesystem instance)."""

    def __init__(
        self,
        options: Options,
        status: StatusFactory,
        markers: Markers,
        open_file: Callable[..., Any],
        rename: Callable[[str, str], Awaitable[None]],
        *,
        owns: Callable[[str], bool],
        patterns: Sequence[str],
        tier: Callable[[], EphemeralTier],
    ):
        self.options = options
        self.status = status
        self.markers = markers
        self.open_file = open_file  # the stack's own write path (multipart, SSE/CSE)
        self.rename = rename
        self.owns = owns
        self.patterns = patterns
        self.tier = tier
        self.mode = options.ephemeral.task_commit

    # --- where it applies --------------------------------------------------------------

    def uploads(self, path: str) -> StagedUploads | None:
        """The staged rows for ``path``'s bucket, or None where staging is off."""
        if self.mode == "local":
            return None
        if in_task_attempt(path):
            return None  # tasks write there; only committed task output is staged
        view = self.markers.views(path)
        if view is None:
            if self.mode == "staged":
                raise ConfigurationError(
                    f"ephemeral.task_commit='staged' but the consistent view is off for "
                    f"{path!r} (a per-bucket override?); staged uploads are recorded in its "
                    "table: turn consistency on there or use task_commit='local'",
                    "ephemeral.task_commit",
                )
            return None
        return StagedUploads(view.store)

    def _is_ephemeral_segment(self, segment: str) -> bool:
        return any(fnmatchcase(segment, p) for p in self.patterns)

    def target_for(self, path: str) -> str | None:
        """The S3 path a committed task file at tier ``path`` will be renamed to."""
        target = job_output_path(path, self._is_ephemeral_segment)
        if target is None or not paths.split(target)[1] or self.owns(target):
            return None
        return target

    # --- what every machine sees --------------------------------------------------------

    def _status(self, entry: StagedEntry) -> dict[str, Any]:
        moment = (
            _dt.datetime.fromtimestamp(entry.mtime_ms / 1000, _dt.timezone.utc)
            if entry.mtime_ms
            else None
        )
        if entry.upload is None:  # a directory
            status = self.status.directory(entry.path, last_modified=moment)
        else:
            status = self.status.file(entry.path, entry.upload.size, last_modified=moment)
            status["staged"] = entry.upload.target
        status["ephemeral"] = True
        return status

    async def info(self, path: str) -> dict[str, Any] | None:
        store = self.uploads(path)
        if store is None:
            return None
        entry = await run_blocking(store.get, path)
        return None if entry is None else self._status(entry)

    async def children(self, path: str) -> list[dict[str, Any]]:
        store = self.uploads(path)
        if store is None:
            return []
        return [self._status(e) for e in await run_blocking(store.children, path)]

    async def walk(self, path: str) -> dict[str, dict[str, Any]]:
        """Every staged entry below ``path`` (not ``path`` itself), by path."""
        store = self.uploads(path)
        if store is None:
            return {}
        entries = await run_blocking(lambda: list(store.walk(path)))
        return {e.path: self._status(e) for e in entries if e.path != path}

    async def files(self, path: str) -> list[tuple[str, StagedUpload]]:
        store = self.uploads(path)
        if store is None:
            return []
        return await run_blocking(store.files, path)

    # --- task commit ------------------------------------------------------------------------

    def wants(self, src: str, dst: str) -> bool:
        """True when tier rename ``src -> dst`` is a task commit to stage."""
        return (
            is_task_commit(src, dst)
            and self.uploads(dst) is not None
            and self.target_for(paths.join(dst, "x")) is not None
        )

    async def stage_task(self, src: str, dst: str) -> int:
        """Task commit: stage every local file below ``src`` under ``dst``; returns how many."""
        tier = self.tier()
        store = self.uploads(dst)
        assert store is not None, dst  # wants(src, dst) said yes
        files = list(tier.walk_files(src))
        staged: dict[str, StagedUpload] = {}
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one(f: str) -> None:
            path = paths.join(dst, paths.relative_to(f, src))
            target = self.target_for(path)
            if target is None:
                raise ValueError(f"no job output path for {path!r}")
            async with semaphore:
                staged[path] = await asyncio.to_thread(self._stage_file, f, target)

        try:
            # every upload settles before any is judged: none may finish after the abort
            outcomes = await asyncio.gather(*(one(f) for f in files), return_exceptions=True)
            failed = [o for o in outcomes if isinstance(o, BaseException)]
            if failed:
                raise failed[0]
            await run_blocking(store.record, staged)  # the task's commit point
        except BaseException:
            await asyncio.shield(self.abort_uploads(list(staged.values())))
            raise
        tier.delete(src, recursive=True)
        self.prune(paths.parent(src))
        logger.info("staged %d files of %s for job commit", len(staged), dst)
        return len(staged)

    async def record_directory(self, path: str) -> None:
        """A directory made in the tier outside any task attempt (the job set-up's
        ``OUT/_temporary/N``): recorded, so machines that prune theirs still see it."""
        store = self.uploads(path)
        if store is not None:
            await run_blocking(store.record_directory, path)

    def shared(self, path: str) -> bool:
        """True when task output below ``path``'s bucket is staged (other machines commit)."""
        return self.mode != "local" and self.markers.views(path) is not None

    def prune(self, directory: str) -> None:
        """Drop the tier's empty directories from ``directory`` upwards (``OUT/_temporary``
        and the local directories that only held it): once a task's output is staged,
        nothing on this machine belongs to the job, and the job's end (on another
        machine) cannot reach here."""
        self.tier().remove_empty_dirs(directory, paths.split(directory)[0])

    def _stage_file(self, src: str, target: str) -> StagedUpload:
        """Upload one tier file to ``target`` without completing (blocking; a thread)."""
        part = max(_CHUNK, self.options.s3.part_size)
        writer = self.open_file(target, "wb", autocommit=False)
        try:
            with self.tier().open_for_upload(src) as r:
                while chunk := r.read(part):
                    writer.write(chunk)
            staged = writer.stage()
        except BaseException:
            writer.discard()
            raise
        # a CSE instruction file goes beside the object at job commit, not before
        body, meta = staged.instruction if staged.instruction is not None else (None, {})
        return StagedUpload(
            target,
            staged.upload_id,
            tuple(etag for _, etag in staged.parts),
            staged.size,
            int(time.time() * 1000),
            base64.b64encode(body).decode() if body is not None else None,
            dict(meta),
        )

    # --- job commit ---------------------------------------------------------------------

    async def complete_tree(self, src: str, dst: str) -> int:
        """Job commit of what is staged at or below tier ``src``, renamed to ``dst``."""
        store = self.uploads(src)
        if store is None:
            return 0
        files = await run_blocking(store.files, src)
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one(path: str, upload: StagedUpload) -> None:
            want = dst if path == src else paths.join(dst, paths.relative_to(path, src))
            async with semaphore:
                await self._complete(upload)
                if upload.target != want:
                    logger.warning(
                        "job commit moved %s to %s, not to %s where it was staged: one S3 copy",
                        path,
                        want,
                        upload.target,
                    )
                    await self.rename(upload.target, want)

        await asyncio.gather(*(one(p, u) for p, u in files))
        # the rows go once all completed (a row left by a crash is completed again: a no-op)
        await run_blocking(store.forget_tree, src)
        return len(files)

    async def _complete(self, upload: StagedUpload) -> None:
        """Publish one staged upload through its target's stack: the CSE layer writes the
        instruction file beside it (InstructionFile mode), the consistent layer records it
        once S3 confirms, the block cache drops the path's blocks."""
        target = upload.target
        staged = _open_upload(upload)
        try:
            await self.markers.stacks.for_path(target).complete_staged(staged)
        except FileNotFoundError as exc:
            # NoSuchUpload: an earlier attempt of this job commit completed it (and then
            # stopped before removing the row), or someone aborted it.
            await self._completed_before(staged, exc)
        await self.markers.after_create(target)

    async def _completed_before(self, staged: OpenUpload, missing: FileNotFoundError) -> None:
        """A staged upload an earlier job commit completed: what that attempt may not have
        done after S3 published it (the instruction file, the view's record) is done again.
        On the transport: no store verb adopts an object already published."""
        target = staged.path
        transport = self.markers.transport(target)
        try:
            meta = await transport.head(target)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"the staged upload of {target!r} is gone (aborted, or expired by a "
                "bucket lifecycle rule) and the object is not there; rerun the job; "
                "`emrfs metadata staged --abort` clears what is left"
            ) from missing
        if staged.instruction is not None:  # its own envelope: stored as it is
            body, metadata = staged.instruction
            suffix = self.markers.options.for_path(target).cse.instruction_suffix
            await transport.put(target + suffix, body, metadata=metadata)
        await self.markers.views.record_file(
            target, staged.size, {"ETag": meta.etag, "VersionId": meta.version_id}
        )

    # --- moves and aborts ---------------------------------------------------------------

    async def move(self, src: str, dst: str) -> int:
        """A rename inside the tier of staged files: the rows move, the uploads stay."""
        store = self.uploads(src)
        if store is None:
            return 0
        return await asyncio.to_thread(store.move, src, dst)

    async def abort_tree(self, path: str) -> bool:
        """Abort every upload staged at or below ``path`` and remove the rows;
        True when the table had anything there."""
        store = self.uploads(path)
        if store is None:
            return False
        entries = await asyncio.to_thread(lambda: list(store.walk(path)))
        if not entries:
            return False
        await self.abort_uploads([e.upload for e in entries if e.upload is not None])
        await asyncio.to_thread(store.forget_tree, path)
        return True

    async def staged_upload_ids(self, bucket: str) -> set[str]:
        """Upload ids recorded as staged in ``bucket`` by any machine (the multipart purge
        never aborts these); none where the consistent view, which holds them, is off."""
        view = self.markers.views(bucket)
        if view is None:
            return set()
        store = StagedUploads(view.store)
        return await asyncio.to_thread(
            lambda: {e.upload.upload_id for e in store.all(bucket) if e.upload is not None}
        )

    async def abort_uploads(self, uploads: list[StagedUpload]) -> None:
        """AbortMultipartUpload for each (one already gone is fine)."""
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one(u: StagedUpload) -> None:
            async with semaphore:  # one already gone is fine (the store says nothing)
                await self.markers.transport(u.target).abort_staged(_open_upload(u))

        await asyncio.gather(*(one(u) for u in uploads))


def _open_upload(upload: StagedUpload) -> OpenUpload:
    """A staged row's upload as the store protocol names it (``size``: S3's, unknown
    here, so the row's; only the meta returned carries it)."""
    instruction = None
    if upload.instruction is not None:  # CSE InstructionFile mode: written beside on complete
        instruction = (base64.b64decode(upload.instruction), dict(upload.instruction_metadata))
    return OpenUpload(
        upload.target,
        upload.upload_id,
        [(n, etag) for n, etag in enumerate(upload.etags, 1)],
        upload.size,
        instruction,
    )

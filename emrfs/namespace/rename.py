"""HDFS rename over S3: a file, or a whole directory, copied then deleted.

S3 has no rename.  A file is copied through the destination's stack (the
encryption layer keeps a CSE object's envelope and copies its instruction file,
the consistent layer records the copy once S3 confirms it, the cache drops the
destination's blocks), then its source is deleted through the source's stack
(its tombstone written once S3 confirms).  A directory's tree
(:meth:`Trees.tree`) is copied in parallel, files and its own marker first, then
the subdirectories' markers (so empty directories stay empty directories), and
its sources deleted.  A directory rename is journalled (:mod:`emrfs.renames`)
before its first copy: if it is cut short, the same ``mv`` finishes it.  What is
recorded in the consistent view is exactly what S3 confirmed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fsspec.callbacks import DEFAULT_CALLBACK

from .. import paths
from ..crypto.envelope import parse as parse_envelope
from ..crypto.guard import EnvelopeGuard
from ..errors import (
    EmrfsError,
    EncryptionError,
    InvalidPathError,
    exists,
    is_a_directory,
    not_found,
)
from ..stacks import cse_in_force
from .markers import DIR_CONTENT_TYPE, Markers
from .tree import Trees, persistent_stack

if TYPE_CHECKING:
    from ..renames import RenameJournal
    from ..stacks import Stacks
    from ..store import ObjectMeta
    from ..tiers import EphemeralRoutes

logger = logging.getLogger("emrfs")

__all__ = ["Renames"]


class Renames:
    """Server-side copies and renames for one filesystem instance.

    ``lookup`` is the stack's ``info()``.
    """

    def __init__(
        self,
        markers: Markers,
        trees: Trees,
        tiers: EphemeralRoutes,
        journal: RenameJournal,
        lookup: Callable[[str], Awaitable[dict]],
        stacks: Stacks,
    ):
        self.markers = markers
        self.trees = trees
        self.tiers = tiers
        self.journal = journal
        self.lookup = lookup
        self.stacks = stacks
        self.options = markers.options
        self.views = markers.views
        self.encrypted = markers.encrypted

    # --- one object ---------------------------------------------------------------------

    async def copy_object(self, src: str, dst: str, info: dict) -> ObjectMeta:
        """Copy the file ``src`` (``info``: its status) to ``dst`` through the destination's
        stack: its SSE settings, its encryption layer (the envelope and instruction file
        kept), its consistent view (recorded once S3 confirms), its cache."""
        if info.get("cse") and not cse_in_force(self.options.for_path(dst).cse):
            if not _names_its_key(src, info["cse"]):
                self.refuse_sealed_copy(src, dst)
            # sealed with a KMS key its envelope names: read where no CSE is configured
            # too (the guard layer), which carries the envelope when told it is sealed
            for layer in self.stacks.layers(dst):
                if isinstance(layer, EnvelopeGuard):
                    layer.note_sealed(src)
        return await self.stacks.for_path(dst).copy(src, dst, source_size=info["size"])

    def check_sealed_copy(self, src: str, dst: str) -> None:
        """Refuse to copy a tree under client-side encryption to a ``dst`` whose options
        hold no CSE key (see :meth:`refuse_sealed_copy`)."""
        if not cse_in_force(self.options.for_path(dst).cse):
            self.refuse_sealed_copy(src, dst)

    def refuse_sealed_copy(self, src: str, dst: str) -> None:
        """A copy of client-side encrypted ``src`` at ``dst`` could not be read there: no
        CSE key is configured for ``dst`` and the envelope names none (no KMS key)."""
        raise EncryptionError(
            f"cannot copy {src!r} to {dst!r}: {src!r} is client-side encrypted and no "
            f"CSE key is configured for {dst!r}, so the copy could not be read there; "
            "configure cse.* for the destination (or its prefix), or read the file "
            "and write it anew",
            dst,
        )

    async def copy_key(self, src: str, dst: str, size: int) -> ObjectMeta:
        """One object of a tree (``size``: as listed) copied through the destination's
        stack below the tier: S3 listed it, S3 holds its copy."""
        return await persistent_stack(self.stacks, dst).copy(src, dst, source_size=size)

    # --- rename -------------------------------------------------------------------------

    async def rename(
        self, src: str, dst: str, *, into: bool = False, callback=DEFAULT_CALLBACK
    ) -> None:
        """HDFS rename of ``src`` (normalised) to ``dst``, or into ``dst`` if it is a
        directory (or ``into``: the caller wrote ``dst/``)."""
        if not paths.split(src)[1]:
            raise InvalidPathError(
                f"cannot rename {src!r} to {dst!r}: buckets cannot be renamed", src
            )
        tier = self.tiers.involved(src, dst)  # the tier moves it, by the same rules
        try:
            info = await self.lookup(src)
        except FileNotFoundError:
            # a directory rename cut short after its last source went: finish it
            if not tier and await self.journal.finish_if_done(src, dst):
                return
            raise not_found(src, f"nothing to rename to {dst!r}") from None
        if info["type"] == "directory" and not tier:
            journal = await self.journal.read(src)
            if journal is not None:
                return await self._resume(src, dst, journal)
        if src == dst:
            return  # HDFS: renaming a path onto itself is a no-op
        dst, dinfo = await self._destination(src, dst, into)
        if dst == src:
            return  # into the directory that already holds it: nothing to do
        if info["type"] == "file":
            if dinfo is not None and dinfo["type"] == "directory":
                raise is_a_directory(dst, f"cannot replace a directory with file {src!r}")
        else:
            if paths.is_within(dst, src):
                raise InvalidPathError(f"cannot move directory {src!r} into itself ({dst!r})", src)
            if dinfo is not None:
                raise exists(
                    dst,
                    f"cannot move directory {src!r} over an existing "
                    f"{'directory' if dinfo['type'] == 'directory' else 'file'}",
                )
        if self.tiers.involved(src, dst):  # (dst may have become a path inside the tier)
            return await self.tiers.move(src, dst, info)
        if info["type"] == "file":
            return await self._rename_file(src, dst, info, callback)
        await self.markers.check_parents(dst)
        await self.move_tree(src, dst, callback=callback)  # journalled before its first copy
        await self.tiers.follow(src, dst)  # its ephemeral descendants (out/_temporary) too
        await self.journal.end(src)  # after the last source is gone

    async def _info_or_none(self, path: str) -> dict | None:
        try:
            return await self.lookup(path)
        except FileNotFoundError:
            return None

    async def _destination(self, src: str, dst: str, into: bool) -> tuple[str, dict | None]:
        """Where a rename of ``src`` to ``dst`` lands (inside ``dst`` if it is a
        directory), with what is there now (None: nothing)."""
        dinfo = await self._info_or_none(dst)
        if into and dinfo is None:
            dinfo = self.markers.status.directory(dst)  # created by the copy
        if dinfo is not None and dinfo["type"] == "directory":
            dst = paths.join(dst, paths.basename(src))
            if dst == src:
                return dst, dinfo
            dinfo = await self._info_or_none(dst)
        if not paths.split(dst)[1]:
            raise InvalidPathError(
                f"cannot rename {src!r} to {dst!r}: nothing can replace a bucket", dst
            )
        return dst, dinfo

    async def _rename_file(self, src: str, dst: str, info: dict, callback) -> None:
        await self.markers.check_parents(dst)
        callback.set_size(1)
        with callback.branched(src, dst) as child:
            child.set_size(info["size"])
            await self.copy_object(src, dst, info)
            child.relative_update(info["size"])
        callback.relative_update(1)
        await self.markers.after_create(dst)
        # the copy is confirmed (and recorded under the view): only now the source goes
        done = await self.trees.delete([src])  # with its instruction file; tombstoned
        done.raise_errors(src)
        self.markers.cached.forget(src)
        await self.markers.keep_parent(src)

    async def _resume(self, src: str, dst: str, journal: dict) -> None:
        """Finish the journalled rename of ``src``, if ``dst`` is where the caller meant to
        rename it (else refuse, naming the unfinished one)."""
        target = self.journal.check_target(src, dst, journal)
        logger.warning("finishing the rename of %s to %s that was cut short", src, target)
        await self.markers.check_parents(target)
        await self.move_tree(src, target, resume=True)
        await self.tiers.follow(src, target)
        await self.journal.end(src)

    # --- a directory's tree ---------------------------------------------------------------

    async def move_tree(
        self, src: str, dst: str, resume: bool = False, callback=DEFAULT_CALLBACK
    ) -> None:
        """Copy every object under ``src`` to ``dst`` in parallel, then delete the sources.

        Decides from :meth:`Trees.tree` (the consistent view's merged listing when it is
        on).  Every copy goes through the destination's stack, which records it once S3
        confirms; every delete through the source's, which tombstones what S3
        confirmed; the directories' rows are recorded here.  ``resume``: a journalled
        rename cut short; objects already at ``dst`` with the source's size (and ETag,
        where both are single-part) are not copied again (CSE objects are: their
        instruction files and plaintext sizes are the encryption layer's to carry).
        """
        sk = paths.split(src)[1]
        db, dk = paths.split(dst)
        if cse_in_force(self.options.for_path(src).cse):
            self.check_sealed_copy(src, dst)
        items = await self.trees.tree(src, "mv")
        present: dict[str, ObjectMeta] = {}
        if not resume:
            await self.journal.begin(src, dst)  # a crash from here on can be finished
        elif not cse_in_force(self.options.for_path(dst).cse):
            async for page in self.markers.transport(dst).list(f"{db}/{dk}/"):
                present.update((o.key, o) for o in page.objects)
        callback.set_size(sum(1 for i in items if i["type"] == "file"))
        copy = _TreeCopy(self, src, dst, items, present, callback)
        pairs = [(i, k) for i in items for k in i["keys"] if not copy.carried(k)]
        if not pairs:
            # an empty directory marked only by EMRFS's $folder$: stays an empty directory
            await self.markers.transport(dst).put(dst + "/", b"", content_type=DIR_CONTENT_TYPE)
            copy.dirs.add(dst)
        own = {sk + "/"}
        # files (and the directory's own marker) first, then subdirectories' markers
        await asyncio.gather(*(copy.one(i, k) for i, k in pairs if i["type"] == "file" or k in own))
        await asyncio.gather(
            *(copy.one(i, k) for i, k in pairs if i["type"] != "file" and k not in own)
        )
        await self.markers.after_create(dst)
        await self._record_copies(dst, copy)
        sb = paths.split(src)[0]
        doomed = [f"{sb}/{k}" for i in items for k in i["keys"]]
        doomed += [f"{sb}/{k}" for k in paths.marker_keys(sk)]
        await self._delete_sources(src, dst, doomed, copy.copied)

    async def _record_copies(self, dst: str, copy: _TreeCopy) -> None:
        """Rows the stack did not write: the directories a tree rename put at ``dst``, and
        on a resume the files a cut-short run had copied (the copies' rows are written
        by the destination's consistent layer)."""
        view = self.views(dst)
        if view is None:
            return
        from ..consistency.store import Entry

        rows = [Entry.file(p, meta.size, meta.etag) for p, meta in copy.found.items()]
        rows += [Entry.directory(d) for d in sorted(copy.dirs) if d not in copy.copied]
        if rows:
            await view.record_files(rows)

    async def _delete_sources(
        self, src: str, dst: str, doomed: list[str], copied: set[str]
    ) -> None:
        """Delete a renamed tree's sources, ``doomed``: tombstones for what S3 confirmed
        (the files' by the source's stack, the directories' here), then its errors."""
        done = await self.trees.delete(doomed)
        await self.trees.record_removed_dirs(src, done)
        done.raise_errors(src)
        self.markers.forget_dirs(src)
        self.markers.forget_dirs(dst)  # names below it may be files now
        self.markers.cached.forget_tree(src, [p for p in doomed if not p.endswith("/")])
        self.markers.cached.forget_tree(dst, copied)
        await self.markers.keep_parent(src)


class _TreeCopy:
    """The copies of one tree rename: what is copied, bounded by the store's concurrency."""

    def __init__(
        self,
        renames: Renames,
        src: str,
        dst: str,
        items: list[dict],
        present: dict[str, ObjectMeta],
        callback: Any,
    ):
        self.renames = renames
        self.sb, self.sk = paths.split(src)
        self.db, self.dk = paths.split(dst)
        self.dst = dst
        self.present = present
        self.callback = callback
        self.semaphore = asyncio.Semaphore(renames.options.s3.max_concurrency)
        self.copied: set[str] = set()  # destination files copied
        self.found: dict[str, ObjectMeta] = {}  # destination files a cut-short run copied
        self.dirs: set[str] = set()  # destination directories whose markers were copied
        # A marker only keeps an empty directory a directory, and S3 may still list one
        # that a child's arrival removed (as S3A does): a copy of it would fail
        # (NoSuchKey) though the directory is there.  So markers are not copied: the
        # destination's empty directories get a new one, the others need none.
        self.holding = {paths.parent(i["path"]) for i in items}
        # instruction files travel with their objects where both ends read them alike
        options = renames.options
        source_cse, target_cse = options.for_path(src).cse, options.for_path(dst).cse
        self.companions: set[str] = set()
        if source_cse == target_cse and cse_in_force(source_cse):
            self.companions = {
                companion
                for i in items
                if i["type"] == "file"
                for companion in renames.encrypted.companion_keys(i["path"])
            }

    def carried(self, k: str) -> bool:
        """Whether key ``k`` is an instruction file its object's copy carries along."""
        return k in self.companions

    def target(self, k: str) -> str:
        rel = k[len(self.sk) + 1 :] if k.startswith(self.sk + "/") else ""
        return f"{self.dk}/{rel}" if rel else self.dk + "/"

    async def one(self, item: dict, k: str) -> None:
        r, sb, db = self.renames, self.sb, self.db
        dk_ = self.target(k)
        is_marker = item["type"] == "directory" or paths.marker_dir(k) is not None
        there = self.present.get(dk_)
        if there is not None and _same_object(there, item):
            if not is_marker:
                self.found[f"{db}/{dk_}"] = there
        elif is_marker and item["path"] in self.holding:
            pass  # it holds files or directories: implied by their keys
        elif is_marker:
            async with self.semaphore:
                await r.markers.transport(self.dst).put(
                    f"{db}/{dk_}", b"", content_type=DIR_CONTENT_TYPE
                )
        else:
            async with self.semaphore:
                with self.callback.branched(f"{sb}/{k}", f"{db}/{dk_}") as child:
                    child.set_size(item["size"])
                    await r.copy_key(f"{sb}/{k}", f"{db}/{dk_}", item["size"])
                    child.relative_update(item["size"])
        if is_marker:
            self.dirs.add(f"{db}/{paths.marker_dir(dk_) or dk_}".rstrip("/"))
        else:
            self.callback.relative_update(1)
            self.copied.add(f"{db}/{dk_}")


def _same_object(there: ObjectMeta, item: dict) -> bool:
    """Whether the object already at the destination (as listed) is a copy of the source
    ``item``: same size, and same ETag unless either came from a multipart upload or
    copy (whose ETags differ between copies of the same bytes)."""
    if there.size != item["size"]:
        return False
    a, b = (str(e or "").strip('"') for e in (there.etag, item.get("ETag")))
    return not a or not b or "-" in a or "-" in b or a == b


def _names_its_key(path: str, cse: dict) -> bool:
    """Whether the envelope ``cse`` (an info's ``cse``) wraps its data key with KMS, whose
    key it names: readable wherever KMS answers, with no CSE key configured."""
    instruction = cse.get("instruction")
    try:
        envelope = parse_envelope(
            cse.get("envelope"), path, None if instruction is None else json.loads(instruction)
        )
    except (EmrfsError, ValueError):
        return False
    return envelope.wrap_algorithm in ("kms", "kms+context")

"""HDFS rename over S3: a file, or a whole directory, copied then deleted.

S3 has no rename.  A file is copied (a CSE object keeps its envelope: metadata
and instruction file), recorded, then its source deleted; a directory's tree
(:meth:`Trees.tree`) is copied in parallel, files and its own marker first, then
the subdirectories' markers (so empty directories stay empty directories), and
its sources deleted.  A directory rename is journalled (:mod:`emrfs.renames`)
before its first copy: if it is cut short, the same ``mv`` finishes it.  What is
recorded in the consistent view is exactly what S3 confirmed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fsspec.callbacks import DEFAULT_CALLBACK

from .. import paths
from ..blocking import run_blocking
from ..errors import InvalidPathError, exists, is_a_directory, not_found
from .markers import DIR_CONTENT_TYPE, Markers, deleted_paths
from .tree import Trees

if TYPE_CHECKING:
    from ..renames import RenameJournal
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
    ):
        self.markers = markers
        self.trees = trees
        self.tiers = tiers
        self.journal = journal
        self.lookup = lookup
        self.s3 = markers.s3
        self.options = markers.options
        self.views = markers.views
        self.encrypted = markers.encrypted

    # --- one object ---------------------------------------------------------------------

    async def copy_object(self, src: str, dst: str, info: dict) -> str | None:
        """Copy one file; a CSE object keeps its envelope (metadata and instruction file)."""
        size = info.get("cse", {}).get("stored_size", info["size"])
        etag = await self.copy_key(*paths.split(src), *paths.split(dst), size)
        await self.encrypted.copy_companions(src, dst, info)
        return etag

    async def copy_key(self, sb: str, sk: str, db: str, dk: str, size: int) -> str | None:
        """Server-side copy of one key (raw keys: markers keep their trailing slash) by
        the destination's transport (its SSE settings; the source's SSE-C key); a CSE
        object's envelope travels in its metadata.  Returns the new object's ETag."""
        src, dst = f"{sb}/{sk}", f"{db}/{dk}"
        copied = await self.markers.transport(dst).copy(src, dst, source_size=size)
        return copied.etag

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
        if self.tiers.involved(src, dst):
            return await self.tiers.mv(src, dst)
        try:
            info = await self.lookup(src)
        except FileNotFoundError:
            # a directory rename cut short after its last source went: finish it
            if await self.journal.finish_if_done(src, dst):
                return
            raise not_found(src, f"nothing to rename to {dst!r}") from None
        if info["type"] == "directory":
            journal = await self.journal.read(src)
            if journal is not None:
                return await self._resume(src, dst, journal)
        if src == dst:
            return  # HDFS: renaming a path onto itself is a no-op
        dst, dinfo = await self._destination(src, dst, into)
        if dst == src:
            return  # into the directory that already holds it: nothing to do
        if info["type"] == "file":
            return await self._rename_file(src, dst, info, dinfo, callback)
        if paths.is_within(dst, src):
            raise InvalidPathError(f"cannot move directory {src!r} into itself ({dst!r})", src)
        if dinfo is not None:
            raise exists(
                dst,
                f"cannot move directory {src!r} over an existing "
                f"{'directory' if dinfo['type'] == 'directory' else 'file'}",
            )
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

    async def _rename_file(
        self, src: str, dst: str, info: dict, dinfo: dict | None, callback
    ) -> None:
        if dinfo is not None and dinfo["type"] == "directory":
            raise is_a_directory(dst, f"cannot replace a directory with file {src!r}")
        await self.markers.check_parents(dst)
        callback.set_size(1)
        with callback.branched(src, dst) as child:
            child.set_size(info["size"])
            etag = await self.copy_object(src, dst, info)
            child.relative_update(info["size"])
        callback.relative_update(1)
        await self.markers.after_create(dst)
        await self.views.record_file(dst, info["size"], {"ETag": etag})
        sb, sk = paths.split(src)
        await self.markers.delete_keys(src, sb, [sk, *self.encrypted.companion_keys(src)])
        view = self.views(src)
        if view is not None:
            await view.record_delete(src)
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
        on) and records only what S3 confirmed: rows for the keys copied, tombstones for
        the keys deleted.  ``resume``: a journalled rename cut short; objects already
        at ``dst`` with the source's size (and ETag, where both are single-part) are
        not copied again.
        """
        _sb, sk = paths.split(src)
        db, dk = paths.split(dst)
        items = await self.trees.tree(src, "mv")
        present: dict[str, ObjectMeta] = {}
        if not resume:
            await self.journal.begin(src, dst)  # a crash from here on can be finished
        else:
            async for page in self.markers.transport(dst).list(f"{db}/{dk}/"):
                present.update((o.key, o) for o in page.objects)
        callback.set_size(sum(1 for i in items if i["type"] == "file"))
        copy = _TreeCopy(self, src, dst, items, present, callback)
        pairs = [(i, k) for i in items for k in i["keys"]]
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
        await self._record_copies(src, dst, copy.copied, copy.dirs)
        keys = [k for _, k in pairs] + list(paths.marker_keys(sk))
        await self._delete_sources(src, dst, keys, list(copy.copied))

    async def _record_copies(
        self, src: str, dst: str, copied: dict[str, tuple[int, str | None]], dirs: set[str]
    ) -> None:
        """Rows for the files and directories a tree rename put at ``dst``."""
        view = self.views(dst)
        if view is None:
            return
        from ..consistency.store import Entry

        sizes = {p: size for p, (size, _) in copied.items()}
        if self.encrypted.maybe_encrypted(src):
            sizes = await self._plaintext_sizes(src, dst, sizes)
        rows = [Entry.file(p, sizes[p], etag) for p, (_, etag) in copied.items()]
        rows += [Entry.directory(d) for d in sorted(dirs) if d not in copied]
        await view.record_files(rows)

    async def _delete_sources(self, src: str, dst: str, keys: list[str], copied: list[str]) -> None:
        """Delete a renamed tree's source ``keys``; tombstones for what S3 confirmed."""
        sb = paths.split(src)[0]
        confirmed: list[str] = []
        try:
            await self.markers.delete_keys(src, sb, keys, confirmed=confirmed)
        finally:
            source_view = self.views(src)
            if source_view is not None:
                await source_view.record_delete_tree(src, deleted_paths(sb, confirmed))
        self.markers.forget_dirs(src)
        self.markers.forget_dirs(dst)  # names below it may be files now
        self.markers.cached.forget_tree(src, [f"{sb}/{k}" for k in keys])
        self.markers.cached.forget_tree(dst, copied)
        await self.markers.keep_parent(src)

    async def _plaintext_sizes(self, src: str, dst: str, stored: dict[str, int]) -> dict[str, int]:
        """Lengths readers see of CSE objects copied from ``src`` to ``dst`` (``stored``:
        S3's sizes by destination path): the source's rows, else the objects' envelopes."""
        by_source = {paths.join(src, paths.relative_to(p, dst)): p for p in stored}
        source_view = self.views(src)
        rows = (
            await run_blocking(source_view.store.get_many, list(by_source))
            if source_view is not None
            else {}
        )
        sizes: dict[str, int] = {}
        unknown: list[dict] = []
        for source, target in by_source.items():
            row = rows.get(source)
            if row is not None and row.live and not row.is_dir:
                sizes[target] = row.size
            else:
                unknown.append({"name": target, "size": stored[target], "type": "file"})
        for entry in await self.encrypted.listed(unknown) if unknown else ():
            sizes[entry["name"]] = entry["size"]
        return sizes


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
        self.copied: dict[str, tuple[int, str | None]] = {}  # destination file -> (size, ETag)
        self.dirs: set[str] = set()  # destination directories whose markers were copied
        # A marker only keeps an empty directory a directory, and S3 may still list one
        # that a child's arrival removed (as S3A does): a copy of it would fail
        # (NoSuchKey) though the directory is there.  So markers are not copied: the
        # destination's empty directories get a new one, the others need none.
        self.holding = {paths.parent(i["path"]) for i in items}

    def target(self, k: str) -> str:
        rel = k[len(self.sk) + 1 :] if k.startswith(self.sk + "/") else ""
        return f"{self.dk}/{rel}" if rel else self.dk + "/"

    async def one(self, item: dict, k: str) -> None:
        r, sb, db = self.renames, self.sb, self.db
        dk_ = self.target(k)
        is_marker = item["type"] == "directory" or paths.marker_dir(k) is not None
        there = self.present.get(dk_)
        if there is not None and _same_object(there, item):
            etag = there.etag
        elif is_marker and item["path"] in self.holding:
            etag = None  # it holds files or directories: implied by their keys
        elif is_marker:
            async with self.semaphore:
                await r.markers.transport(self.dst).put(
                    f"{db}/{dk_}", b"", content_type=DIR_CONTENT_TYPE
                )
            etag = None
        else:
            async with self.semaphore:
                with self.callback.branched(f"{sb}/{k}", f"{db}/{dk_}") as child:
                    child.set_size(item["size"])
                    etag = await r.copy_key(sb, k, db, dk_, item["size"])
                    child.relative_update(item["size"])
        if is_marker:
            self.dirs.add(f"{db}/{paths.marker_dir(dk_) or dk_}".rstrip("/"))
        else:
            self.callback.relative_update(1)
            self.copied[f"{db}/{dk_}"] = (item["size"], etag)


def _same_object(there: ObjectMeta, item: dict) -> bool:
    """Whether the object already at the destination (as listed) is a copy of the source
    ``item``: same size, and same ETag unless either came from a multipart upload or
    copy (whose ETags differ between copies of the same bytes)."""
    if there.size != item["size"]:
        return False
    a, b = (str(e or "").strip('"') for e in (there.etag, item.get("ETag")))
    return not a or not b or "-" in a or "-" in b or a == b

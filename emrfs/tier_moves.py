"""Copies, renames and deletes where the ephemeral tier is involved (the tier's side of
``cp``, ``mv`` and ``rm``; see :mod:`emrfs.tiers` for the rules).

* inside the tier: a local metadata change (no data moves);
* from the tier to a persistent path (a job commit): one upload per file, streamed
  through the filesystem's own write path, then the tier copy is deleted;
* a persistent directory renamed: what the tier holds below it follows;
* from a persistent path into the tier: refused (``cp`` downloads instead);
* ``rm``: the tier's paths, and what the tier holds below persistent ones, go here;
  the rest is left for S3.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from . import paths
from .blocking import run_blocking
from .commit_layout import in_task_attempt
from .errors import InvalidPathError, exists, is_a_directory

if TYPE_CHECKING:
    from .cache.ephemeral import EphemeralTier
    from .config import Options
    from .staging import TaskCommitStaging


@dataclass(frozen=True)
class StackVerbs:
    """The whole stack's verbs, for what crosses between the tier and S3: a commit out
    of the tier writes through the same path as any write (multipart, SSE/CSE, the
    consistent view's record), a status may be either side's."""

    info: Callable[[str], Awaitable[dict]]
    makedirs: Callable[..., Awaitable[None]]
    open: Callable[..., Any]
    rename: Callable[[str, str], Awaitable[None]]
    loop: Callable[[], asyncio.AbstractEventLoop]


class TierRoutes(Protocol):
    """What the moves need of :class:`~emrfs.tiers.EphemeralRoutes` (a Protocol, so this
    lower module does not import the routes that own it)."""

    on: bool
    options: Options
    stack: StackVerbs
    staging: TaskCommitStaging

    @property
    def tier(self) -> EphemeralTier: ...

    def owns(self, path: str) -> bool: ...

    def holds_dir(self, path: str) -> bool: ...

    async def holds_any(self, path: str) -> bool: ...

    async def check_creatable(self, path: str) -> None: ...

    async def keep_parent(self, path: str) -> None: ...

    def children(self, path: str) -> list[dict[str, Any]]: ...

    def walk(self, path: str, maxdepth: int | None, withdirs: bool) -> dict[str, dict]: ...


#: Files uploaded at once when a directory leaves the tier.
UPLOAD_CONCURRENCY = 4
_CHUNK = 8 * 1024 * 1024


class TierMoves:
    """The tier's copies, renames and deletes, for one :class:`~emrfs.tiers.EphemeralRoutes`."""

    def __init__(self, routes: TierRoutes):
        self.routes = routes

    async def cp_file(self, src: str, dst: str) -> None:
        info = await self.routes.stack.info(src)
        if info["type"] == "directory":
            await self.routes.stack.makedirs(dst, exist_ok=True)
            return
        if self.routes.owns(dst):
            await self.routes.check_creatable(dst)
        if self.routes.owns(src) and self.routes.owns(dst):
            await run_blocking(self._copy_local, src, dst)
        elif self.routes.owns(src):
            await asyncio.to_thread(self._upload, src, dst)
        else:
            await asyncio.to_thread(self._download, src, dst)

    def _copy_local(self, src: str, dst: str) -> None:
        with self.routes.tier.open_read(src) as r, self.routes.tier.open_write(dst) as w:
            while chunk := r.read(_CHUNK):
                w.write(chunk)

    def _upload(self, src: str, dst: str) -> None:
        """One tier file to S3 through the filesystem's own write path (blocking; a thread)."""
        part = max(_CHUNK, self.routes.options.s3.part_size)
        with self.routes.tier.open_for_upload(src) as r, self.routes.stack.open(dst, "wb") as w:
            while chunk := r.read(part):
                w.write(chunk)

    def _download(self, src: str, dst: str) -> None:
        with self.routes.stack.open(src, "rb") as r, self.routes.tier.open_write(dst) as w:
            while chunk := r.read(_CHUNK):
                w.write(chunk)

    async def mv(self, src: str, dst: str) -> None:
        """HDFS rename where the tier is involved (see the module docstring)."""
        info = await self.routes.stack.info(src)
        if src == dst:
            return  # HDFS: renaming a path onto itself is a no-op
        dinfo = await self._info_or_none(dst)
        if dinfo is not None and dinfo["type"] == "directory":
            dst = paths.join(dst, paths.basename(src))
            if dst == src:
                return  # into the directory that already holds it: nothing to do
            dinfo = await self._info_or_none(dst)
        if info["type"] == "file":
            if dinfo is not None and dinfo["type"] == "directory":
                raise is_a_directory(dst, f"cannot replace a directory with file {src!r}")
        else:
            if paths.is_within(dst, src):
                raise InvalidPathError(f"cannot move directory {src!r} into itself ({dst!r})", src)
            if dinfo is not None:
                raise exists(dst, f"cannot move directory {src!r} over an existing file")
        if not self.routes.owns(src):
            raise PermissionError(
                f"cannot rename {src!r} into the ephemeral tier ({dst!r}): the S3 copy would be "
                "deleted and the data kept only until the tier ends; copy it with cp instead, "
                "or pick a destination outside ephemeral.patterns/prefixes"
            )
        if self.routes.owns(dst):
            await self.routes.check_creatable(dst)
            if self.routes.tier.exists(src) and self.routes.staging.wants(src, dst):
                await self.routes.staging.stage_task(src, dst)  # the data leaves this machine
                return
            if self.routes.tier.exists(src):
                self.routes.tier.rename(src, dst)  # a local metadata change
            await self.routes.staging.move(src, dst)  # staged rows, if any, follow
            await self.routes.keep_parent(src)
            return
        await self._commit(src, dst, info)
        await self.routes.keep_parent(src)

    async def follow(self, src: str, dst: str) -> None:
        """Persistent directory ``src`` was renamed to ``dst``: what the tier holds below
        it (local, or staged by any machine) moves too, as HDFS moves a whole subtree."""
        if not self.routes.on:
            return
        local = [e["name"] for e in self.routes.children(src)]
        staged = [e["name"] for e in await self.routes.staging.children(src)]
        for name in dict.fromkeys(local + staged):
            target = paths.join(dst, paths.basename(name))
            if name in local:
                self.routes.tier.rename(name, target)
            await self.routes.staging.move(name, target)
        if local:
            self.routes.tier.remove_empty_dirs(src, paths.split(src)[0])
            await self.routes.keep_parent(src)

    async def _info_or_none(self, path: str) -> dict | None:
        try:
            return await self.routes.stack.info(path)
        except FileNotFoundError:
            return None

    def _empty_dirs(self, path: str) -> list[str]:
        """The tier's directories strictly below ``path`` that hold nothing."""
        entries = self.routes.walk(path, None, withdirs=True)
        holding = {paths.parent(n) for n in entries}
        return [n for n, e in entries.items() if e["type"] == "directory" and n not in holding]

    async def _commit(self, src: str, dst: str, info: dict) -> None:
        """Tier -> S3: staged uploads complete, local files go up one upload each,
        then the tier copy goes."""
        completed = await self.routes.staging.complete_tree(src, dst)
        if not self.routes.tier.exists(src):
            if not completed and info["type"] == "directory":
                await self.routes.stack.makedirs(dst, exist_ok=True)
            return
        if info["type"] == "file":
            await asyncio.to_thread(self._upload, src, dst)
        else:
            files = list(self.routes.tier.walk_files(src))
            if not files and not completed:
                await self.routes.stack.makedirs(dst, exist_ok=True)
            for d in self._empty_dirs(src):  # HDFS moves empty directories too
                await self.routes.stack.makedirs(
                    paths.join(dst, paths.relative_to(d, src)), exist_ok=True
                )
            semaphore = asyncio.Semaphore(UPLOAD_CONCURRENCY)

            async def one(f: str) -> None:
                async with semaphore:
                    target = paths.join(dst, f[len(src) + 1 :])
                    await asyncio.to_thread(self._upload, f, target)

            await asyncio.gather(*(one(f) for f in files))
        self.routes.tier.delete(src, recursive=True)

    async def rm(self, targets: list[str], recursive: bool) -> list[str]:
        """Delete what ``targets`` name in the tier; return the paths left for S3."""
        if not self.routes.on:
            return targets
        rest: list[str] = []
        removed: list[str] = []
        for p in sorted(set(targets), key=len):
            if any(paths.is_within(p, r) for r in removed):
                continue  # went with a directory removed before it
            if self.routes.owns(p):
                if not recursive and (
                    await self.routes.staging.children(p)
                    or (self.routes.tier.isdir(p) and self.routes.tier.ls(p, detail=False))
                ):
                    raise is_a_directory(p, "it is a non-empty directory; use recursive=True")
                had_staged = await self.routes.staging.abort_tree(p)  # uploads staged below it
                try:
                    self.routes.tier.delete(p, recursive=recursive)
                except FileNotFoundError:
                    if not had_staged:
                        raise
                if in_task_attempt(p) and self.routes.staging.shared(p):
                    self.routes.staging.prune(paths.parent(p))  # an aborted task attempt
                elif not self.routes.owns(paths.parent(p)):  # local directories that only held it
                    self.routes.tier.remove_empty_dirs(paths.parent(p), paths.split(p)[0])
                await self.routes.keep_parent(p)
                removed.append(p)
                continue
            if await self.routes.holds_any(p):
                if not recursive:
                    raise is_a_directory(p, "it is a non-empty directory; use recursive=True")
                # what the tier holds below p goes everywhere: the local copy, and the
                # staged uploads and recorded job directories every machine sees
                if self.routes.holds_dir(p):
                    self.routes.tier.delete(p, recursive=True)
                await self.routes.staging.abort_tree(p)
                if await self._info_or_none(p) is None:
                    await self.routes.keep_parent(p)
                    removed.append(p)
                    continue  # it was a directory only because of the tier
            rest.append(p)
        return rest

"""Copies, renames and deletes where the ephemeral tier is involved: what the tier does
once the namespace's rules (:mod:`emrfs.namespace`: rename's destination, no file over a
directory, ``rm`` of a non-empty directory only with ``recursive``) allowed ``cp``,
``mv`` or ``rm`` (see :mod:`emrfs.tiers`).

* inside the tier: a local metadata change (no data moves);
* from the tier to a persistent path (a job commit): one upload per file, streamed
  through the filesystem's own write path, then the tier copy is deleted;
* a persistent directory renamed: what the tier holds below it follows;
* from a persistent path into the tier: refused (``cp`` downloads instead);
* ``rm``: a tier path's local copy and staged uploads; what the tier holds below a
  persistent directory, everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from . import paths
from .commit_layout import in_task_attempt

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

    def _upload(self, src: str, dst: str) -> None:
        """One tier file to S3 through the filesystem's own write path (blocking; a thread)."""
        part = max(_CHUNK, self.routes.options.s3.part_size)
        with self.routes.tier.open_for_upload(src) as r, self.routes.stack.open(dst, "wb") as w:
            while chunk := r.read(part):
                w.write(chunk)

    async def move(self, src: str, dst: str, info: dict) -> None:
        """Rename ``src`` (its status ``info``) to ``dst``, the tier involved; the
        namespace (:mod:`emrfs.namespace.rename`) resolved ``dst`` and checked the rules."""
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

    async def remove(self, p: str, recursive: bool) -> None:
        """Delete tier path ``p`` (a file, or a directory the namespace let go: empty, or
        ``recursive``): its local copy and the uploads staged below it."""
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

    async def remove_below(self, p: str) -> None:
        """Delete what the tier holds below persistent directory ``p`` everywhere: the
        local copy, and the staged uploads and recorded job directories every machine sees."""
        if self.routes.holds_dir(p):
            self.routes.tier.delete(p, recursive=True)
        await self.routes.staging.abort_tree(p)

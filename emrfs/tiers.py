"""What is the ephemeral tier's own, beside the namespace's rules and the routed stack.

Paths that match ``ephemeral.patterns`` (``_temporary``, ``.spark-staging-*``)
or lie below ``ephemeral.prefixes`` live only in local blocks
(:class:`emrfs.cache.ephemeral.EphemeralTier`), never in S3.  They take the same
verbs and HDFS rules as S3 paths (:mod:`emrfs.namespace`): the router at the top
of each stack (:class:`emrfs.cache.routing.RoutingStore`) sends them to the tier
store, and listings of persistent directories merge the tier's entries
(``out/_temporary`` shows in ``ls("out")``).  :class:`EphemeralRoutes` keeps what
only the tier does: which paths are its own (:meth:`EphemeralRoutes.owns`), making
and removing its directories, its moves (:mod:`emrfs.tier_moves`), what task
commits staged on any machine (:mod:`emrfs.staging`), and its file class.

One namespace with S3 (as HDFS): nothing is created in the tier below a file,
persistent or not (``NotADirectoryError``); a persistent path with tier
descendants -- local, or staged by a task commit on any machine -- is a
directory for info, ls, find, rmdir and writes; a persistent directory the
tier empties stays a directory (its S3 marker, :meth:`EphemeralRoutes.keep_parent`).

When is the tier on: ``ephemeral.enabled`` *and* ``cache.enabled`` (the tier
keeps its blocks in the cache directories).  With the cache off every path
goes to S3, ``_temporary`` included, as without emrfs's cache.

Renames (:mod:`emrfs.tier_moves` holds copies, renames and deletes; the tier's file
class is :class:`emrfs.cache.tierfile.TierFile`):

* inside the tier: a local metadata change (no data moves);
* from the tier to a persistent path (a job commit): one upload per file,
  streamed through the filesystem's own write path (``open(dst, "wb")``:
  multipart when large, SSE/CSE, the consistent-view record), then the tier
  copy is deleted.  Nothing reaches S3 before this.
* a persistent directory renamed: what the tier holds below it follows
  (:meth:`EphemeralRoutes.follow`);
* with the staged task commit (:mod:`emrfs.staging`), a task commit stages the
  files in S3 and the job commit completes them, from any machine;
* from a persistent path into the tier: refused (:class:`PermissionError`);
  the S3 copy would be deleted and the data kept only until the tier ends.
  ``cp`` into the tier is allowed (it downloads).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from fsspec.asyn import sync

from . import paths
from .cache.layer import as_tuple
from .cache.matching import is_ephemeral
from .config import Options
from .errors import is_a_directory
from .namespace.markers import Markers
from .staging import TaskCommitStaging
from .status import StatusFactory
from .tier_moves import StackVerbs, TierMoves

if TYPE_CHECKING:
    from .cache.ephemeral import EphemeralTier
    from .cached_io import CachedIO


class EphemeralRoutes:
    """The ephemeral tier's side of every filesystem verb (one per filesystem instance)."""

    def __init__(
        self,
        options: Options,
        cached: CachedIO,
        status: StatusFactory,
        markers: Markers,
        stack: StackVerbs,
    ):
        self.options = options
        self.cached = cached
        self.status = status
        self.markers = markers
        self.stack = stack
        o = options
        self.on = bool(o.ephemeral.enabled and o.cache.enabled)
        self.patterns = as_tuple(o.ephemeral.patterns)
        self.prefixes = as_tuple(o.ephemeral.prefixes)
        # task output staged in S3 (emrfs.staging)
        self.staging = TaskCommitStaging(
            options,
            status,
            markers,
            stack.open,
            stack.rename,
            owns=self.owns,
            patterns=self.patterns,
            tier=lambda: self.tier,
        )
        self.moves = TierMoves(self)  # cp, mv and rm where the tier is involved

    # --- which paths ----------------------------------------------------------------------

    def owns(self, path: str) -> bool:
        """True when ``path`` (normalised) lives in the tier."""
        return self.on and bool(path) and is_ephemeral(path, self.patterns, self.prefixes)

    @property
    def tier(self) -> EphemeralTier:
        return self.cached.local.tier

    def holds_dir(self, path: str) -> bool:
        """True when the tier has something at or below persistent directory ``path``."""
        if not (self.on and path):
            return False
        try:
            return self.tier.isdir(path)
        except FileNotFoundError:  # every tier directory is gone: nothing is held
            return False

    def _persistent_top(self, path: str) -> str:
        """The outermost tier path at or above tier ``path`` (``b/out/_temporary`` for
        ``b/out/_temporary/0/x``): everything above it is persistent."""
        for above in reversed(paths.ancestors(path)):
            if self.owns(above):
                return above
        return path

    async def check_creatable(self, path: str) -> None:
        """Before creating tier ``path``: no persistent ancestor may be a file (HDFS:
        nothing below a file).  The tier checks its own ancestors itself."""
        await self.markers.check_parents(self._persistent_top(path))

    async def refuse_directory(self, path: str) -> None:
        """Before a persistent write of ``path``: refuse when the tier makes it a directory
        (``out`` while ``out/_temporary/...`` exists, here or staged by any machine)."""
        if await self.holds_any(path):
            raise is_a_directory(
                path,
                "a directory has this name (it holds ephemeral paths "
                "such as _temporary); pick another path",
            )

    async def keep_parent(self, path: str) -> None:
        """``path`` left the tier (removed, renamed, committed): the persistent directory
        that held it stays a directory, as in HDFS.  While the tier holds nothing more
        there, the filesystem marks it in S3 if S3 has nothing below it either."""
        top = self._persistent_top(path) if self.owns(path) else path
        parent = paths.parent(top)
        if not self.on or not paths.split(parent)[1]:
            return
        with contextlib.suppress(FileNotFoundError):  # the tier's own copies of S3 dirs
            self.tier.remove_empty_dirs(parent, paths.split(parent)[0])
        if not await self.holds_any(parent):
            await self.markers.keep_parent(top)  # (staged: task output other machines see)

    async def holds_any(self, path: str) -> bool:
        """True when persistent directory ``path`` has tier entries below it: local, or
        staged by any machine (one metadata query where staging is on)."""
        return self.on and (self.holds_dir(path) or bool(await self._staged_below(path)))

    async def _staged_below(self, path: str, deep: bool = False) -> Any:
        """What task commits staged below persistent ``path`` (children, or with ``deep``
        everything by path); nothing to ask where staging is off for its bucket."""
        if not self.staging.shared(path):
            return {} if deep else []
        return await (self.staging.walk(path) if deep else self.staging.children(path))

    # --- status ---------------------------------------------------------------------------

    def _status(self, entry: dict) -> dict[str, Any]:
        moment = _dt.datetime.fromtimestamp(entry["mtime"], _dt.timezone.utc)
        if entry["type"] == "directory":
            status = self.status.directory(entry["name"], last_modified=moment)
        else:
            status = self.status.file(entry["name"], entry["size"], last_modified=moment)
            status["replication"] = entry["replication"]
        status["ephemeral"] = True
        return status

    async def implied_dir(self, path: str) -> dict[str, Any] | None:
        """Status of a persistent ``path`` S3 does not know, if the tier has descendants
        (here, or staged by a task commit on any machine)."""
        if not await self.holds_any(path):
            return None
        status = self.status.directory(path)
        status["ephemeral"] = True
        return status

    def children(self, path: str) -> list[dict[str, Any]]:
        """The tier's entries directly under persistent directory ``path`` (often none)."""
        if not self.holds_dir(path):
            return []
        return [self._status(e) for e in self.tier.ls(path)]

    def walk(self, path: str, maxdepth: int | None, withdirs: bool) -> dict[str, dict]:
        """Everything at or below ``path`` in the tier (directories only if ``withdirs``)."""
        out: dict[str, dict] = {}
        todo = [(path, 0)]
        while todo:
            d, depth = todo.pop()
            if maxdepth is not None and depth >= maxdepth:
                continue
            for e in self.tier.ls(d):
                status = self._status(e)
                if e["type"] == "directory":
                    if withdirs:
                        out[e["name"]] = status
                    todo.append((e["name"], depth + 1))
                else:
                    out[e["name"]] = status
        return out

    def mark(self, entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Mark the tier's entries of a listing through the router (``ephemeral``, the
        tier's replication); returns the others (S3's, which reads may remember)."""
        if not self.on:
            return list(entries)
        others = []
        for entry in entries:
            if not self.owns(entry["name"]):
                others.append(entry)
            elif not entry.get("ephemeral"):
                entry["ephemeral"] = True
                if entry["type"] == "file":
                    entry["replication"] = self.options.ephemeral.replication
        return others

    async def merge_staged(self, path: str, entries: list[dict]) -> list[dict]:
        """A directory's listed entries plus what task commits staged directly below it,
        on any machine (the listing's win on a clash)."""
        staged = await self._staged_below(path) if self.on else []
        if not staged:
            return entries
        names = {e["name"] for e in entries}
        return sorted(
            entries + [e for e in staged if e["name"] not in names], key=lambda e: e["name"]
        )

    async def merge_staged_find(
        self,
        path: str,
        out: MutableMapping[str, dict],
        maxdepth: int | None,
        withdirs: bool,
        prefix: str = "",
    ) -> MutableMapping[str, dict]:
        """A ``find``'s results plus what task commits staged below ``path``, on any
        machine (``path`` itself a directory then, unless it is a bucket)."""
        if not self.on:
            return out
        extra: dict[str, dict] = {}
        for name, status in (await self._staged_below(path, deep=True)).items():
            depth = paths.relative_to(name, path).count("/") + 1
            if (maxdepth is None or depth <= maxdepth) and (withdirs or status["type"] == "file"):
                extra[name] = status
        if not extra:
            return out
        if withdirs and paths.split(path)[1] and path not in out:
            extra[path] = self.status.directory(path)
            extra[path]["ephemeral"] = True
        start = paths.join(path, prefix) if prefix else ""
        for name, status in extra.items():
            if not start or name.startswith(start):
                out.setdefault(name, status)
        return out

    # --- directories (the rules are the namespace's: emrfs.namespace) ------------------------

    async def make_dir(self, path: str) -> None:
        """Make tier directory ``path`` and its missing parents, once the namespace's rules
        allowed it; recorded where staging is on, so every machine sees it."""
        await self.check_creatable(path)
        self.tier.mkdir(path, create_parents=True)
        await self.staging.record_directory(path)

    async def holds_below(self, path: str) -> bool:
        """True when the tier has something strictly below ``path``: a tier directory's
        children (local, or staged by any machine), or a persistent directory's tier
        descendants (:meth:`holds_any`)."""
        if not self.owns(path):
            return await self.holds_any(path)
        if self.tier.isdir(path) and self.tier.ls(path, detail=False):
            return True
        return bool(await self.staging.children(path))

    async def remove_dir(self, path: str) -> None:
        """Remove the empty tier directory ``path`` (the namespace checked it is one)."""
        if self.tier.exists(path):
            self.tier.delete(path)
        await self.staging.abort_tree(path)  # its row, if the job set-up recorded it
        await self.keep_parent(path)

    # --- reading (through the stack: the router sends tier paths to the tier store) ---------

    @staticmethod
    def _readable(path: str, info: dict) -> None:
        if info["type"] != "file":
            raise is_a_directory(path, "open a file below it, or use ls")
        if "staged" in info:
            raise PermissionError(
                f"{path!r} is staged for the job commit (an uncompleted multipart upload to "
                f"{info['staged']!r}); read it at {info['staged']!r} once the job commits"
            )

    async def refuse_read(self, path: str, hint: str) -> None:
        """After a read found no file at ``path`` (nor an S3 directory): raise that the
        tier makes it a directory, or that a task commit staged it (read it where it
        goes once the job commits)."""
        if await self.implied_dir(path) is not None:
            raise is_a_directory(path, hint)
        if self.owns(path):
            staged = await self.staging.info(path)
            if staged is not None and staged["type"] != "file":
                raise is_a_directory(path, hint)
            if staged is not None:
                self._readable(path, staged)

    async def beside(self, path: str) -> dict[str, Any] | None:
        """The status of ``path`` where neither S3 nor the local tier knows it: a file or
        directory a task commit staged (maybe on another machine), or a persistent
        directory only the tier's staged paths are below."""
        if self.owns(path):
            return await self.staging.info(path)
        return await self.implied_dir(path)

    def check_readable(self, path: str) -> None:
        """Before opening tier ``path`` for reading: a file here, or one staged elsewhere
        (else not found, or a directory, named)."""
        if not self.tier.exists(path):
            self._readable(path, sync(self.stack.loop(), self.stack.info, path))

    # --- copy, move, delete -------------------------------------------------------------------

    def involved(self, src: str, dst: str) -> bool:
        """True when a copy or rename between ``src`` and ``dst`` is this module's business."""
        return self.owns(src) or self.owns(dst)

    async def move(self, src: str, dst: str, info: dict[str, Any]) -> None:
        """Rename ``src`` (its status ``info``) to ``dst`` where the tier is involved, once
        the namespace's rename rules resolved and allowed it (see the module docstring)."""
        await self.moves.move(src, dst, info)

    async def follow(self, src: str, dst: str) -> None:
        """Persistent directory ``src`` was renamed to ``dst``: what the tier holds below
        it (local, or staged by any machine) moves too, as HDFS moves a whole subtree."""
        await self.moves.follow(src, dst)

    async def remove(self, path: str, recursive: bool) -> None:
        """Delete tier ``path`` (the namespace checked it may go)."""
        await self.moves.remove(path, recursive)

    async def remove_below(self, path: str) -> None:
        """Delete what the tier holds below persistent directory ``path``, everywhere."""
        await self.moves.remove_below(path)

"""A directory's whole tree, and the rules of removing it.

What ``rm``, ``rmdir`` and ``mv`` act on is one list (:meth:`Trees.tree`): S3's
recursive listing, merged with the consistent view's rows when the view is on,
so every key the table knows is deleted or moved and none is assumed.  Deletes
go through the path's stack (:func:`delete_all`): the encryption layer takes
instruction files with their objects, the consistent layer tombstones exactly
what S3 confirmed, the cache drops blocks; the directory rows are recorded here.
A parent left empty keeps its marker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from fsspec.callbacks import DEFAULT_CALLBACK

from .. import paths
from ..errors import is_a_directory, not_a_directory, not_empty
from ..store import DeleteFailure, DeleteResult, ObjectStore
from .markers import Markers

if TYPE_CHECKING:
    from ..stacks import Stacks
    from ..tiers import EphemeralRoutes

__all__ = ["Trees", "delete_all", "persistent_stack"]

#: paths per delete request (S3's DeleteObjects takes 1,000 keys)
DELETE_BATCH = 1000


def persistent_stack(stacks: Stacks, path: str) -> ObjectStore:
    """``path``'s stack below the tier's router: what S3 listed (a tree's keys) is
    copied and deleted there, whatever the tier would claim."""
    from ..cache.routing import RoutingStore

    store = stacks.for_path(path)
    return store.persistent if isinstance(store, RoutingStore) else store


async def delete_all(
    stacks: Stacks,
    doomed: Sequence[str],
    *,
    concurrency: int,
    callback: Any = DEFAULT_CALLBACK,
) -> DeleteResult:
    """Delete ``doomed`` (paths, possibly under several stacks) through each one's stack,
    in batches, ``concurrency`` at a time.  Every batch runs to its end before anything
    is raised: the result holds every confirmed path (each stack's consistent layer
    has tombstoned exactly those) and a failure per path not; the caller records what
    it owns (directory rows) and then :meth:`DeleteResult.raise_errors`."""
    groups: dict[int, tuple[ObjectStore, list[str]]] = {}
    # a directory's files share its stack unless an override starts strictly inside
    # it: resolved once per such directory, not per key (a tree holds thousands)
    by_directory: dict[str, ObjectStore | None] = {}
    for path in dict.fromkeys(doomed):
        parent = paths.parent(path)
        store = by_directory.get(parent)
        if store is None:
            store = persistent_stack(stacks, path)
            if parent not in by_directory:
                uniform = stacks.options.uniform_below(parent)
                by_directory[parent] = store if uniform else None
        groups.setdefault(id(store), (store, []))[1].append(path)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(store: ObjectStore, batch: list[str]) -> DeleteResult:
        async with semaphore:
            try:
                result = await store.delete(batch)
            except Exception as exc:  # noqa: BLE001 - the batch's failure, raised by the caller
                return DeleteResult((), [DeleteFailure(p, error=exc) for p in batch])
        callback.relative_update(len(batch))
        return result

    results = await asyncio.gather(
        *(
            one(store, group[i : i + DELETE_BATCH])
            for store, group in groups.values()
            for i in range(0, len(group), DELETE_BATCH)
        )
    )
    return DeleteResult.combine(*results)


class Trees:
    """Tree listing and removal for one filesystem instance.

    ``lookup`` is the stack's ``info()`` (a path may be a tier path, or a persistent
    directory only because the tier holds something below it).
    """

    def __init__(
        self,
        markers: Markers,
        tiers: EphemeralRoutes,
        lookup: Callable[[str], Awaitable[dict]],
        stacks: Stacks,
    ):
        self.markers = markers
        self.stacks = stacks
        self.s3 = markers.s3
        self.views = markers.views
        self.tiers = tiers
        self.lookup = lookup

    async def has_children(self, path: str, operation: str) -> bool:
        """Whether directory ``path`` holds anything: S3's first page answers alone; with
        the consistent view on, its merged listing (delayed listings waited for)."""
        if await self.tiers.holds_below(path):
            return True  # ephemeral descendants (out/_temporary), local or staged
        if self.tiers.owns(path):
            return False  # a tier directory's children are all the tier's
        key = paths.split(path)[1]
        if key and self.views(path) is not None:
            return any(i["path"] != path for i in await self.tree(path, operation))
        found = await self.markers.first_keys(path, key + "/" if key else "", limit=2)
        return any(k != key + "/" for k in found)

    async def tree(self, path: str, operation: str) -> list[dict]:
        """Every object at or below directory ``path`` (its markers and its subdirectories'
        too) that a directory operation acts on: S3's recursive listing, merged with the
        consistent view's rows when the view is on (:meth:`ConsistentView.tree`).

        Each item: ``path`` (an emrfs path), ``type``, ``size``, ``ETag``, ``keys`` (the
        S3 keys that stand for it: a file's key, a directory's markers) and ``listed``
        (False for what only the metadata knows).
        """
        bucket, key = paths.split(path)
        prefix = key + "/" if key else ""

        async def s3_tree() -> dict[str, dict]:
            found: dict[str, dict] = {}
            async for page in self.markers.transport(path).list(f"{bucket}/{prefix}"):
                for obj in page.objects:
                    k = obj.key
                    as_dir = paths.marker_dir(k)
                    name = f"{bucket}/{as_dir if as_dir is not None else k}".rstrip("/")
                    item = found.setdefault(
                        name, {"name": name, "type": "directory", "size": 0, "keys": []}
                    )
                    item["keys"].append(k)
                    if as_dir is None:
                        item.update(type="file", size=obj.size, ETag=obj.etag)
            return found

        view = self.views(path) if key else None
        found = (
            await s3_tree() if view is None else await view.tree(path, s3_tree, operation=operation)
        )
        items = []
        for name, info in found.items():
            keys = info.get("keys") or [
                paths.split(name)[1] + ("/" if info["type"] == "directory" else "")
            ]
            items.append(
                {
                    "path": name,
                    "type": info["type"],
                    "size": info.get("size", 0),
                    "ETag": info.get("ETag"),
                    "keys": keys,
                    "listed": not info.get("from_metadata"),
                }
            )
        return items

    # --- removal ------------------------------------------------------------------------

    async def rmdir(self, path: str) -> None:
        """Remove the empty directory ``path`` (a bucket: delete the bucket)."""
        bucket, key = paths.split(path)
        if not key:
            await self.s3.call("delete_bucket", path, Bucket=bucket)
            return
        info = await self.lookup(path)
        if info["type"] != "directory":
            raise not_a_directory(path, "rmdir removes directories; use rm for files")
        if await self.has_children(path, "rmdir"):
            raise not_empty(path, "rmdir removes only empty directories; use rm(recursive=True)")
        if self.tiers.owns(path):
            return await self.tiers.remove_dir(path)
        done = await self.delete([f"{bucket}/{k}" for k in paths.marker_keys(key)])
        await self.record_removed_dirs(path, done)
        done.raise_errors(path)
        self.markers.forget_dirs(path)
        await self.markers.keep_parent(path)

    async def remove(self, expanded: list[str], recursive: bool, callback=DEFAULT_CALLBACK) -> None:
        """Delete the paths ``expanded`` names (globs already expanded); ``callback``
        (fsspec's): ``set_size`` with the keys to delete, updates per batch."""
        doomed: list[str] = []
        buckets: list[str] = []
        removed: list[str] = []
        removed_dirs: list[str] = []
        by_tier: list[str] = []  # removed by the tier, which keeps their parents itself
        for p in sorted(set(expanded), key=len):
            if any(paths.is_within(p, r) and p != r for r in removed + by_tier if recursive):
                continue
            bucket, key = paths.split(p)
            info = await self.lookup(p)
            if info["type"] == "directory" and not recursive and await self.has_children(p, "rm"):
                raise is_a_directory(p, "it is a non-empty directory; use recursive=True")
            if self.tiers.owns(p):
                await self.tiers.remove(p, recursive)  # its local copy, its staged uploads
                by_tier.append(p)
                continue
            if info["type"] == "file":
                doomed.append(p)  # its stack's encryption layer takes its instruction file
                removed.append(p)
                continue
            if key and await self.tiers.holds_any(p):
                await self.tiers.remove_below(p)  # out/_temporary: local and staged
                if await self._status_or_none(p) is None:  # a directory only by the tier
                    await self.tiers.keep_parent(p)
                    by_tier.append(p)
                    continue
            doomed += [f"{bucket}/{k}" for k in await self._directory_keys(p, recursive)]
            if not key:
                buckets.append(bucket)
            removed_dirs.append(p)
            self.markers.forget_dirs(p)
            removed.append(p)
        doomed = list(dict.fromkeys(doomed))
        callback.set_size(len(doomed))
        try:
            done = await self.delete(doomed, callback)
        finally:
            for p in doomed:
                if not p.endswith("/"):
                    self.markers.cached.forget(p)
        for root in removed_dirs:
            await self.record_removed_dirs(root, done)
        done.raise_errors(removed[0] if len(removed) == 1 else None)
        for bucket in buckets:
            await self.s3.call("delete_bucket", bucket, Bucket=bucket)
        for parent in {paths.parent(p) for p in removed if paths.split(p)[1]}:
            if not any(paths.is_within(parent, r) for r in removed):
                await self.markers.keep_parent(parent + "/x")

    async def delete(self, doomed: list[str], callback=DEFAULT_CALLBACK) -> DeleteResult:
        """Delete ``doomed`` through their stacks (see :func:`delete_all`); nothing raised
        yet: the caller records the directory rows, then raises the result's errors."""
        for p in doomed:
            self.markers.reads.forget(p)
        return await delete_all(
            self.stacks,
            doomed,
            concurrency=self.markers.options.s3.max_concurrency,
            callback=callback,
        )

    async def record_removed_dirs(self, root: str, done: DeleteResult) -> None:
        """The directory rows at or below ``root`` a delete emptied: tombstones for the
        directories whose markers S3 confirmed gone and for the rows nothing live
        remains below (the files' own tombstones are the consistent layer's)."""
        view = self.views(root)
        if view is None:
            return
        gone = []
        for p in done.deleted:
            bucket, key = paths.split(p)
            as_dir = paths.marker_dir(key)
            directory = f"{bucket}/{as_dir}".rstrip("/") if as_dir is not None else bucket
            if directory != bucket and paths.is_within(directory, root):
                gone.append(directory)
        await view.record_delete_tree(root, gone)

    async def _status_or_none(self, path: str) -> dict | None:
        try:
            return await self.lookup(path)
        except FileNotFoundError:
            return None

    async def _directory_keys(self, path: str, recursive: bool) -> list[str]:
        """The keys removing directory ``path`` deletes (its emptiness checked already
        unless ``recursive``): the consistent view's merged listing when it is on (delayed
        listings waited for), so every key the table knows is deleted, none assumed."""
        below = [i for i in await self.tree(path, "rm") if i["path"] != path] if recursive else []
        keys = [k for item in below for k in item["keys"]]
        key = paths.split(path)[1]
        if key:
            keys.extend(paths.marker_keys(key))
        return keys

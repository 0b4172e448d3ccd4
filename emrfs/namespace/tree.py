"""A directory's whole tree, and the rules of removing it.

What ``rm``, ``rmdir`` and ``mv`` act on is one list (:meth:`Trees.tree`): S3's
recursive listing, merged with the consistent view's rows when the view is on,
so every key the table knows is deleted or moved and none is assumed.  Deletes
record exactly what S3 confirmed; a parent left empty keeps its marker.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fsspec.callbacks import DEFAULT_CALLBACK

from .. import paths
from ..errors import is_a_directory, not_a_directory, not_empty
from .markers import Markers, deleted_paths

if TYPE_CHECKING:
    from ..tiers import EphemeralRoutes

__all__ = ["Trees"]


class Trees:
    """Tree listing and removal for one filesystem instance.

    ``lookup`` is the stack's ``info()`` (a path may be a tier path, or a persistent
    directory only because the tier holds something below it).
    """

    def __init__(
        self, markers: Markers, tiers: EphemeralRoutes, lookup: Callable[[str], Awaitable[dict]]
    ):
        self.markers = markers
        self.s3 = markers.s3
        self.views = markers.views
        self.tiers = tiers
        self.lookup = lookup

    async def has_children(self, path: str, operation: str) -> bool:
        """Whether directory ``path`` holds anything: S3's first page answers alone; with
        the consistent view on, its merged listing (delayed listings waited for)."""
        if await self.tiers.holds_any(path):
            return True  # ephemeral descendants (out/_temporary), local or staged
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
        if self.tiers.owns(path):
            return await self.tiers.rmdir(path)
        info = await self.lookup(path)
        if info["type"] != "directory":
            raise not_a_directory(path, "rmdir removes directories; use rm for files")
        if await self.has_children(path, "rmdir"):
            raise not_empty(path, "rmdir removes only empty directories; use rm(recursive=True)")
        confirmed: list[str] = []
        try:
            await self.markers.delete_keys(
                path, bucket, list(paths.marker_keys(key)), confirmed=confirmed
            )
        finally:
            view = self.views(path)
            if view is not None:
                await view.record_delete_tree(path, deleted_paths(bucket, confirmed))
        self.markers.forget_dirs(path)
        await self.markers.keep_parent(path)

    async def remove(self, expanded: list[str], recursive: bool, callback=DEFAULT_CALLBACK) -> None:
        """Delete the paths ``expanded`` names (globs already expanded); ``callback``
        (fsspec's): ``set_size`` with the keys to delete, updates per batch."""
        expanded = await self.tiers.rm(expanded, recursive)  # ephemeral paths go here
        by_bucket: dict[str, list[str]] = defaultdict(list)
        buckets: list[str] = []
        removed: list[str] = []
        removed_dirs: list[str] = []
        for p in sorted(set(expanded), key=len):
            if any(paths.is_within(p, r) and p != r for r in removed if recursive):
                continue
            bucket, key = paths.split(p)
            info = await self.lookup(p)
            if info["type"] == "file":
                by_bucket[bucket].append(key)
                by_bucket[bucket].extend(self.markers.encrypted.companion_keys(p))
            else:
                by_bucket[bucket].extend(await self._directory_keys(p, recursive))
                if not key:
                    buckets.append(bucket)
                removed_dirs.append(p)
                self.markers.forget_dirs(p)
            removed.append(p)
        confirmed: dict[str, list[str]] = defaultdict(list)
        callback.set_size(sum(len(set(keys)) for keys in by_bucket.values()))
        try:
            await asyncio.gather(
                *(
                    self.markers.delete_keys(b, b, keys, confirmed=confirmed[b], callback=callback)
                    for b, keys in by_bucket.items()
                )
            )
        finally:
            await self._record_deletes(removed, removed_dirs, confirmed)
        self.markers.cached.forget_keys(by_bucket)
        for bucket in buckets:
            await self.s3.call("delete_bucket", bucket, Bucket=bucket)
        for parent in {paths.parent(p) for p in removed if paths.split(p)[1]}:
            if not any(paths.is_within(parent, r) for r in removed):
                await self.markers.keep_parent(parent + "/x")

    async def _directory_keys(self, path: str, recursive: bool) -> list[str]:
        """The keys removing directory ``path`` deletes (refused if it is not empty and
        not ``recursive``): the consistent view's merged listing when it is on (delayed
        listings waited for), so every key the table knows is deleted, none assumed."""
        if not recursive and await self.has_children(path, "rm"):
            raise is_a_directory(path, "it is a non-empty directory; use recursive=True")
        below = [i for i in await self.tree(path, "rm") if i["path"] != path] if recursive else []
        keys = [k for item in below for k in item["keys"]]
        key = paths.split(path)[1]
        if key:
            keys.extend(paths.marker_keys(key))
        return keys

    async def _record_deletes(
        self, removed: list[str], removed_dirs: list[str], confirmed: dict[str, list[str]]
    ) -> None:
        """Tombstones for what :meth:`remove` deleted: exactly the keys S3 confirmed."""
        for root in removed:
            view = self.views(root)
            if view is None:
                continue
            bucket, key = paths.split(root)
            done = confirmed.get(bucket, ())
            if root in removed_dirs:
                gone = [p for p in deleted_paths(bucket, list(done)) if paths.is_within(p, root)]
                await view.record_delete_tree(root, gone)
            elif key in done:
                await view.record_delete(root)

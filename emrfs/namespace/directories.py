"""Making directories: a marker per directory, a bucket only when named as such;
the root's listing of buckets.

``mkdir`` refuses what exists and, without ``create_parents``, a missing parent or a
parent that is a file; ``makedirs`` accepts an existing directory when asked to and
creates a bucket only when the path is the bucket itself.  The rules are the same for
the ephemeral tier's paths (only where the directory is made differs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .. import paths
from ..errors import exists, missing_bucket, not_a_directory, not_found
from .markers import Markers

if TYPE_CHECKING:
    from ..tiers import EphemeralRoutes

__all__ = ["Directories"]


async def check_mkdir_parent(path: str, status: Callable[[str], Awaitable[dict[str, Any]]]) -> None:
    """``mkdir(path, create_parents=False)``'s rule (HDFS's): the parent exists and is a
    directory; ``status`` is the filesystem's ``info`` (the parent may be on either side
    of the tier)."""
    parent = paths.parent(path)
    try:
        found = await status(parent)
    except FileNotFoundError:
        raise not_found(
            parent, f"parent of {path!r} does not exist; use create_parents=True or makedirs"
        ) from None
    if found["type"] != "directory":
        raise not_a_directory(parent, f"cannot create {path!r} below a file")


class Directories:
    """``mkdir``, ``makedirs`` and the root's listing of one filesystem (paths already
    normalised)."""

    def __init__(
        self,
        markers: Markers,
        tiers: EphemeralRoutes,
        info: Callable[[str], Awaitable[dict[str, Any]]],
    ) -> None:
        self.markers = markers
        self.tiers = tiers
        self.info = info

    async def buckets(self, detail: bool) -> list[Any]:
        """The root's listing: every bucket the credentials see (statuses, or names)."""
        response = await self.markers.s3.call("list_buckets", "")
        entries = [
            self.markers.status.bucket(b["Name"], b.get("CreationDate"))
            for b in response.get("Buckets", [])
        ]
        return entries if detail else [e["name"] for e in entries]

    async def _status(self, path: str) -> dict[str, Any] | None:
        try:
            return await self.info(path)
        except FileNotFoundError:
            return None

    async def mkdir(self, path: str, create_parents: bool, region: str | None) -> None:
        if not path:
            raise exists("", "the root always exists")
        bucket, key = paths.split(path)
        if not key:
            await self.markers.make_bucket(path, bucket, region)
            return
        info = await self._status(path)
        if info is not None:
            raise exists(path, "a file" if info["type"] == "file" else "the directory exists")
        if not create_parents and paths.split(paths.parent(path))[1]:
            await check_mkdir_parent(path, self.info)
        await self._make(path)

    async def makedirs(self, path: str, exist_ok: bool) -> None:
        info = await self._status(path)
        if info is not None:
            if info["type"] == "file":
                raise exists(path, "a file is in the way of makedirs")
            if not exist_ok:
                raise exists(path, "use exist_ok=True")
            return
        bucket, key = paths.split(path)
        if not key:
            await self.markers.make_bucket(path, bucket, None)
            return
        if not await self.markers.bucket_exists(bucket):
            # one rule for library, CLI and gateway: buckets only when asked for by name
            raise missing_bucket(path, bucket)
        await self._make(path)  # not mkdir: a concurrent creator is no error here

    async def _make(self, path: str) -> None:
        """Make directory ``path`` where it lives: the tier's directory, or an S3 marker."""
        if self.tiers.owns(path):
            await self.tiers.make_dir(path)
        else:
            await self.markers.put_marker(path)

"""``ls`` and ``find`` of persistent paths: S3's listing, the consistent view's merge,
CSE plaintext lengths, and what the ephemeral tier holds below (``out/_temporary``).

A directory's children are S3's delimited listing (markers of both kinds read as
directories); with the consistent view on, its merged listing (delayed listings
waited for, deletions S3 still lists left out).  Tier paths are the tier's own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .. import paths
from ..s3.listing import Listing, add_page, read_ahead
from .markers import Markers
from .views import as_status

if TYPE_CHECKING:
    from ..tiers import EphemeralRoutes

__all__ = ["Listings"]


class Listings:
    """Listings for one filesystem instance (``lookup``: the stack's ``info()``)."""

    def __init__(
        self, markers: Markers, tiers: EphemeralRoutes, lookup: Callable[[str], Awaitable[dict]]
    ):
        self.markers = markers
        self.tiers = tiers
        self.lookup = lookup
        self.status = markers.status
        self.views = markers.views

    async def ls(self, path: str, detail: bool = True) -> list:
        """The children of ``path`` (normalised, not the root); a file lists itself."""
        if self.tiers.owns(path):
            return await self.tiers.ls(path, detail)
        bucket, key = paths.split(path)
        view = self.views(path)
        if view is None:
            entries = await self.markers.s3_ls(path, bucket, key)
        else:
            entries = [
                as_status(self.status, e)
                for e in await view.ls(path, lambda: self.markers.s3_ls(path, bucket, key))
            ]
        entries = await self.tiers.merge_children(path, entries)  # e.g. out/_temporary
        if not entries:
            info = await self.lookup(path)  # a file, an empty directory, or nothing
            entries = [info] if info["type"] == "file" else []
        return entries if detail else [e["name"] for e in entries]

    async def find(
        self,
        path: str,
        maxdepth: int | None,
        withdirs: bool,
        detail: bool,
        prefix: str = "",
        literal: str | None = None,
    ) -> Any:
        """Everything below ``path`` (normalised, not the root); ``literal``: the literal
        start of a glob, sent to S3 as the listing's prefix."""
        if self.tiers.owns(path):
            return await self.tiers.find(path, maxdepth, withdirs, detail, prefix)
        bucket, key = paths.split(path)
        list_prefix = key + "/" if key else ""
        if prefix:
            list_prefix += prefix
        if literal:
            lit_bucket, lit_key = paths.split(literal)
            if lit_bucket == bucket and lit_key.startswith(list_prefix):
                list_prefix = lit_key

        def s3_find() -> Awaitable[dict[str, dict]]:
            return self._s3_find(
                path, list_prefix, maxdepth, withdirs, exact=not literal and not prefix
            )

        view = self.views(path)
        if view is None:
            out = await s3_find()
        else:
            scope = f"{bucket}/{list_prefix}"

            def in_scope(name: str) -> bool:
                depth = name[len(path) + 1 :].count("/") + 1
                return name.startswith(scope) and (maxdepth is None or depth <= maxdepth)

            out = {
                n: as_status(self.status, i)
                for n, i in (await view.find(path, s3_find, in_scope, withdirs)).items()
            }
        entries = list(out.values())
        listed = await self.markers.encrypted.listed(entries, scope=path)
        if listed is not entries:  # CSE changed lengths or hid instruction files
            out = {e["name"]: e for e in listed}
        # after the CSE lengths: tier files are local plaintext, never HEADed in S3
        out = await self.tiers.merge_find(path, out, maxdepth, withdirs, prefix)
        if maxdepth is not None and maxdepth > 1:
            depth_base = len(path) + 1
            out = {
                n: i for n, i in out.items() if n == path or n[depth_base:].count("/") < maxdepth
            }
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

    async def _s3_find(
        self, path: str, list_prefix: str, maxdepth: int | None, withdirs: bool, *, exact: bool
    ) -> dict[str, dict]:
        """What S3 lists below ``path`` (from ``list_prefix``); ``exact``: the listing is
        of ``path`` itself (no glob or name prefix), so an empty one asks what it is."""
        bucket, key = paths.split(path)
        listing = Listing()
        async for page in read_ahead(
            self.markers.transport(path).list(
                f"{bucket}/{list_prefix}", delimiter="/" if maxdepth == 1 else None
            )
        ):
            add_page(
                listing, bucket, key, page, self.status, recursive=maxdepth != 1, withdirs=True
            )
        out: dict[str, dict] = {}
        if listing.empty and listing.self_marker is None and exact:
            try:
                info = await self.lookup(path)
            except FileNotFoundError:
                return out
            if info["type"] == "file" or (withdirs and key):  # a bucket never lists itself
                out[path] = info
        else:
            out.update(listing.files)
            if withdirs:
                out.update(listing.dirs)
                if key and (listing.self_marker or not listing.empty):
                    out.setdefault(path, self.status.directory(path, marker=listing.self_marker))
            else:
                for name in listing.dirs:
                    out.pop(name, None)
        self.markers.reads.remember_listing(list(listing.files.values()), scope=path)
        return out

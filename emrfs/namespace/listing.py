"""``ls`` and ``find``: the path's stack's listing read by the namespace's rules.

A directory's children are its stack's delimited listing (markers of both kinds read
as directories, :meth:`~emrfs.namespace.markers.Markers.listed`); the layers below
say what is there: the tier's router its local entries (``out/_temporary``, or a
tier path's whole listing), the consistent view's checked listing (delayed listings
waited for, deletions S3 still lists left out, directories only its table knows
added), CSE plaintext lengths.  What task commits staged, on any machine, is merged
from the tier's rows (:meth:`~emrfs.tiers.EphemeralRoutes.merge_staged`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from .. import paths
from .markers import Markers

if TYPE_CHECKING:
    from ..s3.listing import Listing
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

    async def ls(self, path: str, detail: bool = True) -> list:
        """The children of ``path`` (normalised, not the root); a file lists itself."""
        key = paths.split(path)[1]
        listing = await self.markers.listed(path, key + "/" if key else "", recursive=False)
        self._remember_files(listing, path)
        if not detail and not self.tiers.on:  # names only: no status dict made
            names = sorted({*listing.dirs, *listing.files})
            if names:
                return names
            info = await self.lookup(path)  # a file, an empty directory, or nothing
            return [info["name"]] if info["type"] == "file" else []
        entries = listing.entries()
        self.tiers.mark(entries)
        entries = await self.tiers.merge_staged(path, entries)  # staged on any machine
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
        bucket, key = paths.split(path)
        list_prefix = key + "/" if key else ""
        if prefix:
            list_prefix += prefix
        if literal:
            lit_bucket, lit_key = paths.split(literal)
            if lit_bucket == bucket and lit_key.startswith(list_prefix):
                list_prefix = lit_key
        out = await self._find(
            path, list_prefix, maxdepth, withdirs, exact=not literal and not prefix
        )
        # what task commits staged below it, on any machine
        out = await self.tiers.merge_staged_find(path, out, maxdepth, withdirs, prefix)
        if self.tiers.on:  # (values() makes every file's status dict)
            self.tiers.mark(out.values())
        names = sorted(out)
        if maxdepth is not None and maxdepth > 1:
            depth_base = len(path) + 1
            names = [n for n in names if n == path or n[depth_base:].count("/") < maxdepth]
        if not detail:
            return names
        statuses = dict(out.items())  # the listed files' dicts made in one loop
        return {n: statuses[n] for n in names}

    async def _find(
        self, path: str, list_prefix: str, maxdepth: int | None, withdirs: bool, *, exact: bool
    ) -> MutableMapping[str, dict]:
        """What the stack lists below ``path`` (from ``list_prefix``); ``exact``: the
        listing is of ``path`` itself (no glob or name prefix), so an empty one asks what
        it is.  The listed files' status dicts are made only if asked for."""
        key = paths.split(path)[1]
        listing = await self.markers.listed(path, list_prefix, recursive=maxdepth != 1)
        out: MutableMapping[str, dict] = {}
        if listing.empty and listing.self_marker is None and exact:
            try:
                info = await self.lookup(path)
            except FileNotFoundError:
                return out
            if info["type"] == "file" or (withdirs and key):  # a bucket never lists itself
                out[path] = info
            return out
        self._remember_files(listing, path)
        out = listing.files
        if withdirs:
            out.update(listing.dirs)
            if key and (listing.self_marker or not listing.empty):
                out.setdefault(path, self.status.directory(path, marker=listing.self_marker))
        else:
            listing.files.drop(listing.dirs)
        return out

    def _remember_files(self, listing: Listing, scope: str) -> None:
        """S3's files in ``listing`` (of ``scope``): an open after ls or find needs no
        HEAD (the tier's are not S3's to remember)."""
        rows = listing.files.rows()
        if self.tiers.on:
            rows = [r for r in rows if not self.tiers.owns(r[0])]
        self.markers.reads.remember_listed_rows(rows, self.status, scope=scope)

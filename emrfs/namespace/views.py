"""The consistent view in force for a path, and what writes record in it."""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any

from ..config import Options
from ..status import StatusFactory
from ..store import ObjectStore

__all__ = ["Views", "as_status"]


class Views:
    """The consistent view of each path (per bucket/prefix options), built on first use
    and shared by every path whose consistency options are equal."""

    def __init__(self, options: Options):
        self.options = options
        self._views: dict = {}  # ConsistencyOptions -> ConsistentView

    def __call__(self, path: str):
        """The consistent view in force for ``path``, or None when it is off there."""
        return self.for_options(self.options.for_path(path))

    def for_options(self, options: Options):
        """The consistent view of options already resolved for a path, or None when it is
        off there."""
        if not options.consistency.enabled:
            return None
        view = self._views.get(options.consistency)
        if view is None:
            from ..consistency.view import ConsistentView

            view = self._views[options.consistency] = ConsistentView.from_options(options)
        return view

    def layer(self, path: str, below: ObjectStore) -> ObjectStore:
        """``below`` under the consistent view in force at ``path`` (a
        :class:`~emrfs.consistency.layer.ConsistentStore` sharing that view), or ``below``
        itself where the view is off.  ``below`` must report the sizes readers see: the
        plain transport, or the encryption layer (never the transport of a CSE path).
        The layer owns nothing: closing ``below`` stays its owner's business."""
        view = self(path)
        if view is None:
            return below
        from ..consistency.layer import ConsistentStore

        return ConsistentStore(below, view)

    async def record_file(self, path: str, size: int, response: dict | None) -> None:
        """A file S3 confirmed storing (``response``: the PUT, complete or copy's answer)."""
        view = self(path)
        if view is not None:
            response = response or {}
            await view.record_file(
                path, size, response.get("ETag"), response.get("VersionId"), int(time.time() * 1000)
            )


def as_status(status: StatusFactory, info: dict[str, Any]) -> dict[str, Any]:
    """Info from the metadata table (no Hadoop fields yet) as a full status record."""
    if "permission" in info:
        return info
    mtime = info.get("mtime")
    moment = _dt.datetime.fromtimestamp(mtime, _dt.timezone.utc) if mtime else None
    if info["type"] == "directory":
        return status.directory(info["name"], last_modified=moment)
    return status.file(
        info["name"],
        info["size"],
        etag=info.get("ETag"),
        last_modified=moment,
        version_id=info.get("VersionId"),
    )

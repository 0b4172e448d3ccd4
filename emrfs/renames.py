"""The rename journal: a directory rename that is cut short can be finished.

S3 has no rename: emrfs renames a directory by copying every object, then
deleting the sources.  A process killed half-way leaves some objects at both
places and the rest only at the source.  Re-running the same ``mv`` would see
the destination existing and move the source *into* it (HDFS semantics), so
the rename would never finish.  Hence a small JSON object, written before the
first copy and deleted after the last source is gone::

    <bucket>/.emrfs-renames/<sha256 of the source path>   {"src": ..., "dst": ...}

in the source's bucket, with the bucket's write options (SSE).  While it
exists, ``mv(src, dst)`` (or ``mv(src, parent of dst)``) resumes the rename:
it copies what is missing at the destination (or differs by size or ETag),
then deletes the sources, then the journal.  A ``mv`` of ``src`` elsewhere is
refused, naming the unfinished rename.  ``emrfs fsck --fix`` finishes every
journalled rename below a path.  It works with or without the consistent view
(the journal lives in S3).  docs/recovery.md says what a crash leaves.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from . import paths
from .errors import exists

if TYPE_CHECKING:
    from .namespace.markers import Markers

JOURNAL_PREFIX = ".emrfs-renames/"


class RenameJournal:
    """Journal entries of one filesystem's directory renames (see the module docstring)."""

    def __init__(self, markers: Markers):
        self.markers = markers  # the transport of a path, and batched deletes

    @staticmethod
    def key_path(src: str) -> str:
        """The emrfs path of the journal entry for a rename of ``src``."""
        bucket = paths.split(src)[0]
        digest = hashlib.sha256(paths.strip_protocol(src).encode("utf-8")).hexdigest()
        return f"{bucket}/{JOURNAL_PREFIX}{digest}"

    async def begin(self, src: str, dst: str) -> None:
        """Record that ``src`` is being renamed to ``dst`` (before the first copy)."""
        where = self.key_path(src)
        body = json.dumps(
            {"src": src, "dst": dst, "started": _dt.datetime.now(_dt.timezone.utc).isoformat()}
        )
        await self.markers.transport(where).put(
            where, body.encode("utf-8"), content_type="application/json"
        )

    async def read(self, src: str) -> dict | None:
        """The unfinished rename of ``src`` (``{"src", "dst", "started"}``), or None."""
        return await self._load(self.key_path(src))

    async def end(self, src: str) -> None:
        """The rename of ``src`` is complete: drop its journal entry."""
        where = self.key_path(src)
        bucket, key = paths.split(where)
        await self.markers.delete_keys(where, bucket, [key])

    async def finish_if_done(self, src: str, dst: str) -> bool:
        """``src`` is gone: if a rename of it to ``dst`` was journalled, every source was
        deleted before the crash, so only the journal entry is left to remove."""
        journal = await self.read(src)
        if journal is None:
            return False
        self.check_target(src, dst, journal)
        await self.end(src)
        return True

    def check_target(self, src: str, dst: str, journal: dict) -> str:
        """The journalled destination, if ``dst`` (as given to mv) means it; else refuse."""
        target = journal["dst"]
        if target not in (dst, paths.join(dst, paths.basename(src))):
            raise exists(
                src,
                f"an unfinished rename of {src!r} to {target!r} is recorded in "
                f"s3://{self.key_path(src)}; run mv({src!r}, {target!r}) "
                "(or `emrfs fsck --fix`) to finish it first",
            )
        return target

    async def pending(self, under: str) -> AsyncIterator[dict]:
        """Unfinished renames whose source is at or below ``under``."""
        bucket = paths.split(under)[0]
        async for page in self.markers.transport(under).list(f"{bucket}/{JOURNAL_PREFIX}"):
            for obj in page.objects:
                journal = await self._load(obj.path)
                if journal is not None and paths.is_within(journal["src"], under):
                    yield journal

    async def _load(self, where: str) -> dict | None:
        try:
            data = await self.markers.transport(where).get_range(where)
        except FileNotFoundError:
            return None
        return json.loads(data.decode("utf-8"))


async def finish_pending(
    journal_of: RenameJournal,
    rename: Callable[[str, str], Awaitable[None]],
    under: str,
    *,
    fix: bool,
) -> list[tuple[dict, bool]]:
    """Unfinished renames whose source is at or below ``under``, each with whether it
    was finished now (``fix``: by running the same ``rename`` again)."""
    out = []
    async for journal in journal_of.pending(under):
        finished = False
        if fix:
            await rename(journal["src"], journal["dst"])
            finished = True
        out.append((journal, finished))
    return out

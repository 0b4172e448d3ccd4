"""Whole files in and out of the path's stack: bytes or a local file written (one PUT or
a multipart upload, with progress), a download committed to a local file, and the
checks a write target must pass first.  The filesystem's verbs call these once they
have normalised the path; the ephemeral tier's paths go the same way (the router at the
top of the stack sends them to the tier store)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import nullcontext
from typing import Any

from . import paths, streamed_read
from .byterange import resolve_range
from .cached_io import CachedIO
from .config import Options
from .encrypted_io import EncryptedIO
from .errors import is_a_directory
from .namespace.markers import Markers
from .namespace.rename import Renames
from .stacks import Stacks
from .store.progress import reporting_sends
from .tiers import EphemeralRoutes
from .uploads import bytes_parts, file_parts, write_parts


class Transfers:
    """One filesystem's whole-file writes and downloads through the stack of each path."""

    def __init__(
        self,
        options: Options,
        markers: Markers,
        tiers: EphemeralRoutes,
        stacks: Stacks,
        cached: CachedIO,
        info: Callable[[str], Awaitable[dict[str, Any]]],
        encrypted: EncryptedIO,
        moves: Renames,
    ) -> None:
        self.moves = moves
        self.encrypted = encrypted
        self.options = options
        self.markers = markers
        self.tiers = tiers
        self.stacks = stacks
        self.cached = cached
        self.info = info

    async def get_bytes(self, path: str, start: int | None, end: int | None) -> bytes:
        """Bytes ``[start, end)`` of ``path`` (negative: from the end) through its stack:
        the block cache serves blocks, the consistent view pins the recorded ETag (stale
        copies retried by its policy), CSE decrypts and verifies."""
        stack = self.stacks.for_path(path)
        try:
            if start is None and end is None:
                return await stack.get_range(path)
            start = start or 0
            if start < 0 or (end is not None and end <= max(start, 0)):
                # from the end, or empty: the size first (an empty range still names a file)
                size = self.cached.known_size(path)  # the version the block cache serves
                if size is None:
                    info = await self.info(path)
                    if info["type"] != "file":
                        raise is_a_directory(path, "open a file below it, or use ls")
                    size = info["size"]
                start, end = resolve_range(start, end, size)
                if end <= start:
                    return b""
            return await stack.get_range(path, start, end)
        except FileNotFoundError:
            await self.refuse_directory_read(path, "open a file below it, or use ls")
            raise

    def stream(
        self, path: str, start: int, end: int, etag: str | None, piece_size: int
    ) -> AsyncIterator[bytes] | None:
        """Bytes ``[start, end)`` of ``path`` as pieces through its stack
        (:mod:`emrfs.streamed_read`), pinned to ``etag`` (else to the version the stack's
        ``head`` finds); None for an empty range or a bucket: the caller reads ranges."""
        if not paths.split(path)[1] or end <= start:
            return None
        return streamed_read.stream(
            self.stacks.for_path(path),
            path,
            start,
            end,
            etag=etag,
            piece_size=piece_size,
            # a CSE layer reads a sealed object whole to verify it: its own reads, no windows
            windowed=not self.encrypted.maybe_encrypted(path),
        )

    async def refuse_directory_read(self, path: str, hint: str) -> None:
        """After a read found no file at ``path``: raise that it is a directory if it is
        one (a marker, a prefix, or ephemeral paths below it), or that a task commit
        staged it (readable once the job commits)."""
        bucket, key = paths.split(path)
        if await self.markers.dir_probe(path, bucket, key) is not None:
            raise is_a_directory(path, hint) from None
        await self.tiers.refuse_read(path, hint)  # staged by a task commit, or its directory

    async def get_local(self, rpath: str, lpath: str, callback: Any, etag: str | None) -> None:
        """``rpath`` into the local file ``lpath`` through its stack: pinned to ``etag``
        (else under the view's own pin); CSE verified before the last chunk, so only a
        verified file is committed to ``lpath``."""

        async def directory_instead() -> None:
            await self.refuse_directory_read(rpath, "use get(recursive=True) for directories")

        await save_local(
            lambda: self.stacks.for_path(rpath).get_stream(rpath, if_match=etag),
            lpath,
            callback,
            directory_instead,
        )

    async def check_target(self, path: str, *, dir_checked: bool = False) -> None:
        """Before writing a file: not the root or a bucket, not a directory, not below a file.

        ``dir_checked``: the caller already knows ``path`` is not a directory (a bulk
        write listed the parent once instead of probing every name).
        """
        bucket, key = paths.split(path)
        if not key:
            raise is_a_directory(path, "a bucket cannot be written as a file")
        await self.tiers.refuse_directory(path)  # a directory of ephemeral paths (all a
        # tier path's directories are the tier's: S3 is not asked about those)
        if self.options.s3.create_checks and not dir_checked and not self.tiers.owns(path):
            await asyncio.gather(
                self.markers.check_parents(path), self.markers.refuse_directory(path, bucket, key)
            )
        else:  # one check: awaited as it is (a task per write costs more than its HEADs)
            await self.markers.check_parents(path)

    async def refuse_subdirs(self, targets: Iterable[str]) -> bool:
        """For many writes: one listing per parent directory stands in for a probe per
        name, and each parent's ancestors are checked once (not by every write of the
        batch at the same time).  Raises if a target is a directory or below a file;
        True when the targets were checked for directories (then each write skips its
        own probe)."""
        targets = list(targets)
        if len(targets) < 2:
            return False
        one_per_parent = {paths.parent(p): p for p in targets if not self.tiers.owns(p)}
        checks: list[Awaitable[Any]] = [
            self.markers.check_parents(p) for p in one_per_parent.values()
        ]
        listing = self.options.s3.create_checks
        if listing:
            checks += [self.markers.child_dirs(p) for p in sorted(one_per_parent)]
        found = await asyncio.gather(*checks)
        if not listing:
            return False
        subdirs = set().union(*found[len(one_per_parent) :])
        for p in targets:
            if p in subdirs:
                raise is_a_directory(p, "a directory has this name; pick another path")
        return True

    async def copy_file(
        self, path1: str, path2: str, info: dict[str, Any], callback: Any, *, dir_checked: bool
    ) -> None:
        """The file ``path1`` (its status ``info``) copied to ``path2`` through the
        destination's stack: the envelope kept, the copy recorded once S3 confirms.
        ``dir_checked``: as :meth:`check_target`'s."""
        if callback is not None:
            callback.set_size(info["size"])
        await self.check_target(path2, dir_checked=dir_checked)
        await self.moves.copy_object(path1, path2, info)
        await self.markers.after_create(path2)
        if callback is not None:
            callback.relative_update(info["size"])

    async def put_bytes(self, path: str, value: bytes, *, create: bool) -> None:
        """``value`` as ``path`` through its stack: CSE encrypts, the consistent layer
        records the file once S3 confirms it, the block cache drops the path's old
        blocks; SSE and the purge of abandoned uploads are the transport's.  ``create``:
        exclusive create, on a single PUT or a multipart upload."""
        stack = self.stacks.for_path(path)
        o = self.options.s3
        if len(value) <= max(o.part_size, o.multipart_threshold):
            await stack.put(path, value, if_none_match=create)
        else:
            await write_parts(
                stack,
                path,
                bytes_parts(value, o.part_size),
                concurrency=o.upload_concurrency,
                if_none_match=create,
            )

    async def put_local(self, lpath: str, rpath: str, callback: Any, *, create: bool) -> None:
        """The local file ``lpath`` as ``rpath``, through its stack as :meth:`put_bytes`;
        ``callback`` (fsspec's, or None) is told the file's size and its bytes as they land."""
        size = os.path.getsize(lpath)
        o = self.options.s3
        if callback is not None:
            callback.set_size(size)
        reported = 0

        def sent(nbytes: int) -> None:  # bytes as each part lands, or as the one PUT sends
            nonlocal reported
            nbytes = min(nbytes, size - reported)  # a CSE body's tag is not the file's
            if nbytes > 0:
                reported += nbytes
                callback.relative_update(nbytes)

        stack = self.stacks.for_path(rpath)
        with open(lpath, "rb") as f:
            if size <= max(o.part_size, o.multipart_threshold):
                body = await asyncio.to_thread(f.read)  # one PUT (s3.multipart_threshold)
                with reporting_sends(sent) if callback is not None else nullcontext():
                    await stack.put(rpath, body, if_none_match=create)
                del body
            else:
                await write_parts(
                    stack,
                    rpath,
                    file_parts(f, size, o.part_size),
                    concurrency=o.upload_concurrency,
                    if_none_match=create,
                    part_done=sent if callback is not None else None,
                )
        if callback is not None and size > reported:
            callback.relative_update(size - reported)


async def save_local(
    chunks: Callable[[], AsyncIterator[bytes]],
    lpath: str,
    callback: Any,
    missing: Callable[[], Awaitable[None]],
) -> None:
    """``chunks()`` into ``lpath`` by way of a temporary file beside it, renamed into place
    only once every chunk arrived: nothing half-written is left at ``lpath``.  When the
    source is not found, ``missing()`` runs (after the temporary file goes) and may raise
    a better error; else the FileNotFoundError propagates."""
    directory = os.path.dirname(os.path.abspath(lpath))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".emrfs-")
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in chunks():
                f.write(chunk)
                if callback is not None:
                    callback.relative_update(len(chunk))
        os.replace(tmp, lpath)
    except FileNotFoundError:
        os.unlink(tmp)
        await missing()
        raise
    except BaseException:
        os.unlink(tmp)
        raise

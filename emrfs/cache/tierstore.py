"""The ephemeral tier as a store of the stack: :class:`TierStore`.

Objects are the tier's files (:class:`~emrfs.cache.ephemeral.EphemeralTier`): kept in
local blocks, never in S3, sealed at rest where the tier must seal them (CSE paths).
The tier has real directories where S3 has keys, so:

* a key ending in ``/`` is a directory marker: ``put("b/d/", b"")`` makes the
  directory, ``delete(["b/d/"])`` removes it when it is empty (children keep it,
  as they keep S3's implied directories); ``head("b/d/")`` and listings show a
  directory as a marker object only while it is empty (a directory with
  children is implied by them, as in S3 once the namespace cleared its marker);
* deleting the last file of a directory removes the directories it leaves empty
  (as in S3, where nothing stays behind a deleted key);
* a key cannot name a file and a directory at once (``b/x`` and ``b/x/y``), nor
  sit below a file: such a write is refused naming the path (the HDFS rules the
  namespace keeps refuse them before they get here);
* the first segment of a path is the bucket: a directory of the tier, made by the
  first write into it; a listing of a bucket the tier does not hold is
  ``FileNotFoundError``.

ETags are the tier file's id (new with every write, quoted as S3 quotes); user
metadata and content type live in the file's manifest.  Disk work runs on the
leaf threads (:func:`emrfs.blocking.run_blocking`).
"""

from __future__ import annotations

import builtins
import datetime as _dt
import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from ..blocking import run_blocking
from ..errors import ChangedError, exists, is_a_directory, not_found
from ..store.protocol import (
    DeleteResult,
    ListPage,
    ObjectMeta,
    ObjectStore,
    ObjectWriter,
    check_chunk_size,
    check_range,
    split,
)
from .ephemeral import EphemeralTier, EphemeralWriter
from .ephemeral_life import TMP_MARK, TRASH_MARK

__all__ = ["TierStore"]

PAGE_SIZE = 1000


def _bare(etag: str | None) -> str:
    return (etag or "").strip('"')


def _user_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (metadata or {}).items()}


class TierStore(ObjectStore):
    """The object-store protocol over an :class:`EphemeralTier` (see the module doc)."""

    def __init__(self, tier: EphemeralTier, *, page_size: int = PAGE_SIZE):
        if page_size < 1:
            raise ValueError(f"TierStore page_size must be at least 1, not {page_size}")
        self.tier = tier
        self.page_size = page_size

    # --- the namespace on disk ----------------------------------------------------------------

    def _local(self, path: str) -> str:
        return self.tier._local(self.tier._roots()[0], path)

    def _meta(self, path: str, manifest: Mapping[str, Any]) -> ObjectMeta:
        return ObjectMeta(
            path,
            int(manifest["size"]),
            etag=f'"{manifest["id"]}"',
            last_modified=_dt.datetime.fromtimestamp(float(manifest["mtime"]), _dt.timezone.utc),
            metadata=dict(manifest.get("metadata") or {}),
            content_type=manifest.get("content_type"),
        )

    def _marker_meta(self, path: str) -> ObjectMeta:
        mtime = os.stat(self._local(path.rstrip("/"))).st_mtime
        return ObjectMeta(
            path,
            0,
            etag='"d41d8cd98f00b204e9800998ecf8427e"',  # an empty object's, as S3's marker
            last_modified=_dt.datetime.fromtimestamp(mtime, _dt.timezone.utc),
            content_type="application/x-directory",
        )

    def _empty_dir(self, path: str) -> bool:
        try:
            names = os.listdir(self._local(path))
        except (FileNotFoundError, NotADirectoryError):
            return False
        return not any(n for n in names if TMP_MARK not in n and TRASH_MARK not in n)

    def _head(self, path: str) -> ObjectMeta:
        key = split(path)[1]
        if not key:
            raise not_found(path, "a bucket is not an object; give bucket/key")
        if key.endswith("/"):
            if self.tier.isdir(path.rstrip("/")) and self._empty_dir(path.rstrip("/")):
                return self._marker_meta(path)
            raise not_found(path)
        try:
            return self._meta(path, self.tier.manifest(path))
        except IsADirectoryError:
            raise not_found(path, "a directory of the ephemeral tier, not a file") from None

    async def head(self, path: str) -> ObjectMeta:
        return await run_blocking(self._head, path)

    # --- reading ------------------------------------------------------------------------------

    def _open(self, path: str, if_match: str | None) -> tuple[Any, ObjectMeta]:
        if split(path)[1].endswith("/"):
            return None, self._head(path)  # a marker: no bytes
        try:
            manifest = self.tier.manifest(path)
        except IsADirectoryError:
            raise not_found(path, "a directory of the ephemeral tier, not a file") from None
        meta = self._meta(path, manifest)
        if if_match is not None and _bare(if_match) != _bare(meta.etag):
            raise ChangedError(path, if_match, meta.etag)
        return self.tier.open_manifest(path, manifest), meta

    def _read(self, path: str, start: int, end: int | None, if_match: str | None) -> bytes:
        check_range(path, start, end)
        reader, meta = self._open(path, if_match)
        if reader is None:
            return b""
        with reader:
            stop = meta.size if end is None else min(end, meta.size)
            if stop <= start:
                return b""
            reader.seek(start)
            return reader.read(stop - start)

    async def get_range(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> bytes:
        return await run_blocking(self._read, path, start, end, if_match)

    async def get_stream(
        self,
        path: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 8 * 1024 * 1024,
    ) -> AsyncIterator[bytes]:
        check_range(path, start, end)
        check_chunk_size(path, chunk_size)
        reader, meta = await run_blocking(self._open, path, if_match)
        if reader is None:
            return
        try:
            stop = meta.size if end is None else min(end, meta.size)
            reader.seek(start)
            for offset in range(start, stop, chunk_size):
                yield await run_blocking(reader.read, min(chunk_size, stop - offset))
        finally:
            reader.close()

    # --- writing ------------------------------------------------------------------------------

    def _open_write(
        self,
        path: str,
        if_none_match: bool,
        metadata: Mapping[str, str] | None,
        content_type: str | None,
    ) -> EphemeralWriter:
        """A tier writer (``if_none_match``: refused now if the file exists; a writer in
        parts checks again when it completes)."""
        key = split(path)[1]
        if not key:
            raise not_found(path, "a bucket is not an object; give bucket/key")
        if key.endswith("/"):
            raise is_a_directory(path, "a key ending in '/' is a directory marker, not a file")
        extra = {"metadata": _user_metadata(metadata), "content_type": content_type}
        return self.tier.open_write(path, overwrite=not if_none_match, extra=extra)

    def _put(
        self,
        path: str,
        data: bytes,
        if_none_match: bool,
        metadata: Mapping[str, str] | None,
        content_type: str | None,
    ) -> ObjectMeta:
        if split(path)[1].endswith("/"):
            if data:
                raise ValueError(f"{path!r} is a directory marker: its body must be empty")
            if if_none_match and self.tier.exists(path.rstrip("/")):
                raise exists(path)
            self.tier.mkdir(path.rstrip("/"), create_parents=True, exist_ok=True)
            return self._marker_meta(path)
        with self._open_write(path, if_none_match, metadata, content_type) as writer:
            writer.write(data)
        return self._head(path)

    async def put(
        self,
        path: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectMeta:
        return await run_blocking(self._put, path, data, if_none_match, metadata, content_type)

    async def writer(
        self,
        path: str,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectWriter:
        # created only if absent: checked when it completes (as S3 checks at completion)
        out = await run_blocking(self._open_write, path, False, metadata, content_type)
        return _TierWriter(self, path, out, if_none_match)

    def _copy(self, src: str, dst: str, metadata: Mapping[str, str] | None) -> ObjectMeta:
        reader, meta = self._open(src, None)
        if reader is None:
            return self._put(dst, b"", False, None, None)
        new_metadata = meta.metadata if metadata is None else metadata
        with reader, self._open_write(dst, False, new_metadata, meta.content_type) as out:
            while chunk := reader.read(8 * self.tier.block_size):
                out.write(chunk)
        return self._head(dst)

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
    ) -> ObjectMeta:
        return await run_blocking(self._copy, src, dst, metadata)

    def _delete_one(self, path: str) -> None:
        bucket, key = split(path)
        if not key:
            raise ValueError(f"{path!r} is a bucket: delete objects, not buckets")
        target = path.rstrip("/")
        if key.endswith("/"):
            if self._empty_dir(target):
                self._prune(target)
            return
        if not self.tier.exists(target) or self.tier.isdir(target):
            return  # nothing there (a directory is no object of this name)
        try:
            self.tier.delete(target)
        except FileNotFoundError:
            return
        parent = target.rpartition("/")[0]
        if parent != bucket:
            self._prune(parent)

    def _prune(self, directory: str) -> None:
        """Remove ``directory`` and its ancestors while they are empty (never the bucket)."""
        top = "/".join(directory.split("/")[:2])  # the bucket's child it lies in
        self.tier.remove_empty_dirs(directory, top)

    def _delete(self, paths: Sequence[str]) -> builtins.list[str]:
        for path in paths:
            self._delete_one(path)
        return list(dict.fromkeys(paths))

    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        return DeleteResult(await run_blocking(self._delete, list(paths)))

    # --- listing ------------------------------------------------------------------------------

    def _entries(self, prefix: str, delimiter: str | None) -> builtins.list[tuple[str, Any]]:
        """(key, meta) for objects and (common prefix, None), in key order."""
        bucket, key_prefix = split(prefix)
        if not bucket:
            raise ValueError("list needs a prefix that starts with a bucket name")
        if not self.tier.isdir(bucket):
            raise not_found(bucket, "the ephemeral tier holds nothing in this bucket")
        base = key_prefix.rpartition("/")[0]  # the deepest directory the prefix names
        if not self.tier.isdir(f"{bucket}/{base}" if base else bucket):
            return []
        found = self._level(bucket, base) if delimiter == "/" else self._walk(bucket, base)
        entries: builtins.list[tuple[str, Any]] = []
        seen: set[str] = set()
        for key, meta in found:
            if not key.startswith(key_prefix):
                continue
            rest = key[len(key_prefix) :]
            if delimiter and delimiter in rest:
                common = key_prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if common not in seen:
                    seen.add(common)
                    entries.append((common, None))
                continue
            entries.append((key, meta))
        entries.sort(key=lambda e: e[0])
        return entries

    def _file(self, bucket: str, key: str) -> tuple[str, ObjectMeta] | None:
        try:
            return key, self._meta(f"{bucket}/{key}", self.tier.manifest(f"{bucket}/{key}"))
        except (FileNotFoundError, IsADirectoryError):
            return None  # deleted or replaced by a directory meanwhile

    def _level(self, bucket: str, base: str) -> Iterator[tuple[str, ObjectMeta | None]]:
        """One level below ``bucket/base``: files, and each directory as ``dir/`` (its
        marker or its children: a '/' listing rolls both up into one common prefix)."""
        top = self._local(f"{bucket}/{base}" if base else bucket)
        if base and self._empty_dir(f"{bucket}/{base}"):
            yield base + "/", self._marker_meta(f"{bucket}/{base}/")
        with os.scandir(top) as it:
            for entry in it:
                if TMP_MARK in entry.name or TRASH_MARK in entry.name:
                    continue
                key = f"{base}/{entry.name}" if base else entry.name
                if entry.is_dir():
                    yield key + "/", None
                else:
                    found = self._file(bucket, key)
                    if found is not None:
                        yield found

    def _walk(self, bucket: str, base: str) -> Iterator[tuple[str, ObjectMeta]]:
        """Files (and empty directories, as markers) below ``bucket/base``."""
        top = self._local(f"{bucket}/{base}" if base else bucket)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if TRASH_MARK not in d and TMP_MARK not in d]
            rel = os.path.relpath(dirpath, top)
            below = "" if rel == "." else rel.replace(os.sep, "/")
            here = "/".join(p for p in (base, below) if p)
            names = [n for n in filenames if TMP_MARK not in n]
            if here and not names and not dirnames:
                yield here + "/", self._marker_meta(f"{bucket}/{here}/")
            for n in names:
                found = self._file(bucket, f"{here}/{n}" if here else n)
                if found is not None:
                    yield found

    async def list(
        self, prefix: str, *, delimiter: str | None = None, limit: int | None = None
    ) -> AsyncIterator[ListPage]:
        bucket = split(prefix)[0]
        if limit is not None and limit < 1:
            raise ValueError(f"list of {prefix!r}: limit must be at least 1, not {limit}")
        entries = await run_blocking(self._entries, prefix, delimiter)
        entries = entries if limit is None else entries[:limit]
        for i in range(0, max(len(entries), 1), self.page_size):
            page = entries[i : i + self.page_size]
            yield ListPage(
                objects=[m for _, m in page if m is not None],
                prefixes=[f"{bucket}/{k}" for k, m in page if m is None],
            )


class _TierWriter(ObjectWriter):
    """Parts streamed into one tier file in order (a part that comes early waits in memory
    for those before it); the file appears whole on ``complete``."""

    def __init__(self, store: TierStore, path: str, out: EphemeralWriter, if_none_match: bool):
        self.store = store
        self.path = path
        self.out = out
        self.if_none_match = if_none_match
        self._next = 1
        self._waiting: dict[int, bytes] = {}
        self._done = False

    def _check_open(self) -> None:
        if self._done:
            raise ValueError(f"the write of {self.path!r} already ended (completed or aborted)")

    def _write_ready(self) -> None:
        while self._next in self._waiting:
            self.out.write(self._waiting.pop(self._next))
            self._next += 1

    async def write_part(self, number: int, data: bytes) -> None:
        self._check_open()
        if not 1 <= number <= 10_000:
            raise ValueError(f"part number {number} of {self.path!r}: parts are 1 to 10,000")
        if number < self._next:
            raise ValueError(f"part {number} of {self.path!r} was written already")
        self._waiting[number] = bytes(data)
        await run_blocking(self._write_ready)

    def _complete(self) -> ObjectMeta:
        for number in sorted(self._waiting):  # parts may skip numbers, as on S3
            self.out.write(self._waiting.pop(number))
        if self.if_none_match and self.store.tier.exists(self.path):
            raise exists(self.path, "it already exists and overwrite was not allowed")
        self.out.close()
        return self.store._head(self.path)

    async def complete(self) -> ObjectMeta:
        self._check_open()
        self._done = True
        try:
            return await run_blocking(self._complete)
        except BaseException:
            self.out.abort()
            raise

    async def abort(self) -> None:
        self._done = True
        self._waiting.clear()
        self.out.abort()

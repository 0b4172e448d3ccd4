"""``EmrFileSystem``: the namespace.  Owns the verbs and the order of the layers.

HDFS-like semantics over S3: real directories (markers), rename of trees,
Hadoop file status, atomic exclusive create.  Protocol detail lives in
:mod:`emrfs.s3`; path logic in :mod:`emrfs.paths`; options in
:mod:`emrfs.config`.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import io
import logging
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

from fsspec.asyn import AsyncFileSystem, _run_coros_in_chunks, get_loop, sync_wrapper
from fsspec.callbacks import DEFAULT_CALLBACK, NoOpCallback
from fsspec.utils import other_paths

from . import config as _config, paths, streamed_read
from .blocking import run_blocking
from .byterange import resolve_range
from .cached_io import CachedIO
from .encrypted_io import EncryptedFile, EncryptedIO
from .errors import (
    EmrfsError,
    InvalidPathError,
    exists,
    is_a_directory,
    missing_bucket,
    not_a_directory,
    not_empty,
    not_found,
)
from .readplan import ReadPlanner
from .renames import RenameJournal
from .s3.client import S3Client
from .s3.listing import Listing, add_page, list_pages
from .s3.multipart import MultipartUpload, UploadPurge, part_ranges
from .status import StatusFactory
from .store import ObjectMeta, ObjectStore, transport_for
from .tiers import EphemeralRoutes

logger = logging.getLogger("emrfs")

_FSSPEC_KWARGS = ("use_listings_cache", "listings_expiry_time", "max_paths")
_DELETE_BATCH = 1000
_DIR_CONTENT_TYPE = "application/x-directory"


class EmrFileSystem(AsyncFileSystem):
    """S3 as a Hadoop filesystem.

    Paths: ``emrfs://bucket/key``, ``s3://``, ``s3a://``, ``s3n://`` or bare
    ``bucket/key`` all name the same object.

    Parameters
    ----------
    **storage_options
        Any option of :mod:`emrfs.config`, by canonical name
        (``"consistency.retry_count"``), EMRFS property name
        (``"fs.s3.consistent.retryCount"``), short name (``endpoint_url``,
        ``region``, ``key``/``secret``/``token``, ``consistent``,
        ``part_size``, ``read_block_size``, ``max_attempts``, ``require_tls``,
        ``ca_bundle``...) or as a section dict (``sse={"algorithm": "aws:kms"}``);
        ``site=`` names an emrfs-site file; ``overrides={"bucket/prefix": {...}}``
        sets per-bucket or per-prefix options.  The endpoint defaults to
        ``EMRFS_ENDPOINT_URL``.  Unknown or conflicting options raise
        :class:`~emrfs.errors.ConfigurationError` naming the key.
    asynchronous, loop, batch_size
        As for every fsspec ``AsyncFileSystem``.

    Folder markers: emrfs writes ``dir/`` (zero bytes, ``application/x-directory``)
    and reads ``dir/`` and EMRFS's ``dir_$folder$``; a parent's marker is removed
    when its first child arrives and recreated when its last child goes.
    """

    protocol = ("emrfs", "s3", "s3a", "s3n")
    root_marker = ""
    async_impl = True
    _pid: int  # fsspec's AbstractFileSystem sets it: the process that made the instance

    def __init__(self, *args: Any, asynchronous: bool = False, loop=None,
                 batch_size: int | None = None, **storage_options: Any):
        fsspec_kwargs = {k: storage_options.pop(k) for k in _FSSPEC_KWARGS if k in storage_options}
        self.options = _config.load(storage_options)
        super().__init__(*args, asynchronous=asynchronous, loop=loop, batch_size=batch_size,
                         **fsspec_kwargs)
        o = self.options.s3
        # every GET pinned to a version (If-Match) runs under the consistent view's policy
        self.s3 = S3Client(o, pinned_get=self._pinned_get)
        self._encrypted = EncryptedIO(self)  # SSE kwargs, CSE streams (emrfs.encrypted_io)
        self.status = StatusFactory(o.fs_block_size, o.owner, o.group)
        self.blocksize = o.read_block_size
        # Directories this instance has checked (not files) and whose markers it
        # removed: a bulk write into one directory pays for the checks once.
        self._checked_dirs: set[str] = set()  # directories whose markers are cleared
        self._not_files: set[str] = set()     # ancestors known not to be files
        self._inflight: dict = {}             # checks under way, shared by concurrent writers
        self._views: dict = {}  # ConsistencyOptions -> ConsistentView
        self._cached = CachedIO(self)  # block cache (emrfs.cached_io)
        self._tiers = EphemeralRoutes(self, self._cached)  # ephemeral paths (emrfs.tiers)
        self._renames = RenameJournal(self)  # directory renames cut short (emrfs.renames)
        self._reads = ReadPlanner(self)  # statuses and footers reads reuse (emrfs.readplan)
        self._purge = UploadPurge(  # abandoned multipart uploads (emrfs.s3.multipart)
            self.s3, age_seconds=o.multipart_purge_age, whole_bucket=o.multipart_purge,
            staged_ids=self._tiers.staging.staged_upload_ids)
        # the object-store protocol's transport, one per SSE settings in force (per bucket or
        # prefix), all over self.s3 (its connections, retries and pinned-get policy)
        self._transports: dict = {}
        self.transport = self._transport("")

    def _transport(self, path: str) -> ObjectStore:
        """The transport for ``path``: made once per distinct S3/SSE options, then cached."""
        options = self.options.for_path(path)
        store = self._transports.get((options.s3, options.sse))
        if store is None:
            store = self._transports[(options.s3, options.sse)] = transport_for(
                options, client=self.s3, purge=self._purge,
                source_sse=lambda src: self.options.for_path(src).sse)
        return store

    # --- the consistent view ---------------------------------------------------------

    def _view(self, path: str):
        """The consistent view in force for ``path``, or None when it is off there."""
        options = self.options.for_path(path)
        if not options.consistency.enabled:
            return None
        view = self._views.get(options.consistency)
        if view is None:
            from .consistency.view import ConsistentView

            view = self._views[options.consistency] = ConsistentView.from_options(options)
        return view

    async def _pinned_get(self, path: str, etag: str, get, unpinned) -> dict:
        """Every GET pinned to ``etag`` (by any read verb) passes here: with the consistent
        view on at ``path``, a stale copy is retried by its policy (``ConsistentView.read``);
        without it, another version is a :class:`ChangedError` at once."""
        view = self._view(path)
        if view is None:
            return await get()
        return await view.read(path, etag, get, unpinned)

    async def _record_file(self, path: str, size: int, response: dict | None) -> None:
        view = self._view(path)
        if view is not None:
            response = response or {}
            await view.record_file(path, size, response.get("ETag"), response.get("VersionId"),
                                   int(time.time() * 1000))

    def _as_status(self, info: dict) -> dict:
        """Info from the metadata table (no Hadoop fields yet) as a full status record."""
        if "permission" in info:
            return info
        mtime = info.get("mtime")
        moment = _dt.datetime.fromtimestamp(mtime, _dt.timezone.utc) if mtime else None
        if info["type"] == "directory":
            return self.status.directory(info["name"], last_modified=moment)
        return self.status.file(info["name"], info["size"], etag=info.get("ETag"),
                                last_modified=moment, version_id=info.get("VersionId"))

    # --- fork safety ---------------------------------------------------------------

    @property
    def loop(self):
        if self._pid != os.getpid():
            # After fork the parent's IO thread is gone; fsspec made a fresh loop
            # slot.  Take a new loop; the S3 client notices the new pid itself.
            self._pid = os.getpid()
            if not self.asynchronous:
                self._loop = get_loop()
            self._checked_dirs = set()
            self._not_files = set()
            self._inflight = {}
        return self._loop

    # --- paths -----------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return paths.strip_protocol(path)

    def unstrip_protocol(self, name: str) -> str:
        return "emrfs://" + paths.strip_protocol(name)

    @staticmethod
    def _get_kwargs_from_urls(urlpath):
        return {}

    def _norm(self, path: str) -> str:
        return paths.validate(path)

    def split_path(self, path: str) -> tuple[str, str]:
        return paths.split(self._norm(path))

    # --- status ----------------------------------------------------------------------

    async def _info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._norm(path)
        if not path:
            return self.status.directory("")
        bucket, key = paths.split(path)
        if not key:
            await self.s3.call("head_bucket", path, Bucket=bucket)
            return self.status.bucket(bucket)
        if self._tiers.owns(path):
            return await self._tiers.info(path)
        view = self._view(path)
        if view is None:
            found = await self._s3_info(path, bucket, key)
        else:
            found = await view.info(path, lambda: self._s3_info(path, bucket, key))
            found = self._as_status(found) if found is not None else None
        if found is None:
            found = await self._tiers.implied_dir(path)  # ephemeral descendants only
        if found is None:
            raise not_found(path)
        self._cached.seen(found)  # the version later cached reads use
        self._reads.remember(found)  # isfile and open reuse it (pinned to its ETag)
        return found

    async def _isfile(self, path: str) -> bool:
        try:
            path = self._norm(path)
        except (ValueError, OSError):
            return False
        if self._reads.known_file(path):  # a file a moment ago; reads pin its ETag
            return True
        return await super()._isfile(path)

    def invalidate_cache(self, path: str | None = None) -> None:
        if path is None:
            self._reads.statuses.clear()
        else:
            self._reads.forget_below(self._strip_protocol(path))
        super().invalidate_cache(path)

    async def _s3_info(self, path: str, bucket: str, key: str) -> dict | None:
        """What S3 alone says about ``path`` (None: nothing there)."""
        try:
            if self._reads.fetches_tail(path):  # one GET: the HEAD's answer and the footer
                head = await self._reads.stat(path, bucket, key, **self._read_kwargs(path))
                return await self._encrypted.file_info(path, head,
                                                       self._file_from_head(path, head))
            meta = await self._transport(path).head(path)
            head = {"ContentLength": meta.size, "Metadata": dict(meta.metadata)}  # CSE reads these
            return await self._encrypted.file_info(path, head, self._file_from_meta(meta))
        except FileNotFoundError:
            pass
        return await self._dir_probe(path, bucket, key)

    def _file_from_head(self, path: str, head: dict) -> dict[str, Any]:
        return self.status.file(
            path, head["ContentLength"], etag=head.get("ETag"),
            last_modified=head.get("LastModified"), version_id=head.get("VersionId"),
            ContentType=head.get("ContentType"))

    def _file_from_meta(self, meta: ObjectMeta) -> dict[str, Any]:
        return self.status.file(
            meta.path, meta.size, etag=meta.etag, last_modified=meta.last_modified,
            version_id=meta.version_id, ContentType=meta.content_type)

    async def _dir_probe(self, path: str, bucket: str, key: str) -> dict | None:
        """Directory info if ``key`` is a directory (children, ``key/`` or ``key_$folder$``)."""
        page = await self.s3.call("list_objects_v2", path, Bucket=bucket, Prefix=key + "/",
                                  MaxKeys=1)
        contents = page.get("Contents") or []
        if contents or page.get("CommonPrefixes"):
            first = contents[0] if contents else {}
            marker = first.get("Key") if first.get("Key") == key + "/" else None
            moment = first.get("LastModified") if marker else None
            return self.status.directory(path, marker=marker, last_modified=moment)
        try:
            head = await self._transport(path).head(path + paths.EMRFS_FOLDER_SUFFIX)
        except FileNotFoundError:
            return None
        return self.status.directory(path, marker=key + paths.EMRFS_FOLDER_SUFFIX,
                                     last_modified=head.last_modified)

    async def _modified(self, path: str):
        info = await self._info(path)
        if info.get("LastModified") is None:
            raise EmrfsError(f"{path!r} is a directory with no marker; it has no "
                             "modification time", path)
        return info["LastModified"]

    modified = sync_wrapper(_modified)

    # --- listing ---------------------------------------------------------------------

    async def _ls(self, path: str, detail: bool = True, **kwargs: Any):
        path = self._norm(path)
        if not path:
            response = await self.s3.call("list_buckets", "")
            entries = [self.status.bucket(b["Name"], b.get("CreationDate"))
                       for b in response.get("Buckets", [])]
            return entries if detail else [e["name"] for e in entries]
        if self._tiers.owns(path):
            return await self._tiers.ls(path, detail)
        bucket, key = paths.split(path)
        view = self._view(path)
        if view is None:
            entries = await self._s3_ls(path, bucket, key)
        else:
            entries = [self._as_status(e) for e in
                       await view.ls(path, lambda: self._s3_ls(path, bucket, key))]
        entries = await self._tiers.merge_children(path, entries)  # e.g. out/_temporary
        if not entries:
            info = await self._info(path)  # a file, an empty directory, or nothing
            entries = [info] if info["type"] == "file" else []
        return entries if detail else [e["name"] for e in entries]

    async def _s3_ls(self, path: str, bucket: str, key: str) -> list[dict]:
        """One directory's children as S3 lists them (delimited LIST)."""
        listing = Listing()
        prefix = key + "/" if key else ""
        async for page in self._transport(path).list(f"{bucket}/{prefix}", delimiter="/"):
            add_page(listing, bucket, key, page, self.status, recursive=False)
        entries = await self._encrypted.listed(listing.entries())  # CSE: plaintext lengths
        self._reads.remember_listing(entries)  # an open after ls needs no HEAD
        return entries

    async def _find(self, path: str, maxdepth: int | None = None, withdirs: bool = False,
                    detail: bool = False, prefix: str = "", **kwargs: Any):
        literal = kwargs.pop("_literal_prefix", None)
        path = self._norm(path)
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        if not path:
            return await super()._find(path, maxdepth=maxdepth, withdirs=withdirs,
                                       detail=detail, **kwargs)
        if self._tiers.owns(path):
            return await self._tiers.find(path, maxdepth, withdirs, detail, prefix)
        bucket, key = paths.split(path)
        list_prefix = key + "/" if key else ""
        if prefix:
            list_prefix += prefix
        if literal:
            lit_bucket, lit_key = paths.split(literal)
            if lit_bucket == bucket and lit_key.startswith(list_prefix):
                list_prefix = lit_key

        async def s3_find() -> dict[str, dict]:
            listing = Listing()
            async for page in self._transport(path).list(
                    f"{bucket}/{list_prefix}", delimiter="/" if maxdepth == 1 else None):
                add_page(listing, bucket, key, page, self.status, recursive=maxdepth != 1,
                         withdirs=True)
            out: dict[str, dict] = {}
            if listing.empty and listing.self_marker is None and not literal and not prefix:
                try:
                    info = await self._info(path)
                except FileNotFoundError:
                    return out
                if info["type"] == "file" or (withdirs and key):  # a bucket never lists itself
                    out[path] = info
            else:
                out.update(listing.files)
                if withdirs:
                    out.update(listing.dirs)
                    if key and (listing.self_marker or not listing.empty):
                        out.setdefault(path, self.status.directory(path,
                                                                   marker=listing.self_marker))
                else:
                    for name in listing.dirs:
                        out.pop(name, None)
            self._reads.remember_listing(list(listing.files.values()))
            return out

        view = self._view(path)
        if view is None:
            out = await s3_find()
        else:
            scope = f"{bucket}/{list_prefix}"

            def in_scope(name: str) -> bool:
                depth = name[len(path) + 1:].count("/") + 1
                return name.startswith(scope) and (maxdepth is None or depth <= maxdepth)

            out = {n: self._as_status(i)
                   for n, i in (await view.find(path, s3_find, in_scope, withdirs)).items()}
        out = {e["name"]: e for e in await self._encrypted.listed(list(out.values()))}
        # after the CSE lengths: tier files are local plaintext, never HEADed in S3
        out = await self._tiers.merge_find(path, out, maxdepth, withdirs, prefix)
        if maxdepth is not None and maxdepth > 1:
            depth_base = len(path) + 1
            out = {n: i for n, i in out.items()
                   if n == path or n[depth_base:].count("/") < maxdepth}
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

    def _cat_stream(self, path: str, start: int, end: int, *, etag: str | None = None,
                    piece_size: int = streamed_read.PIECE_SIZE):
        """Bytes ``[start, end)`` of a plain S3 object as pieces from one GET, or None where
        another layer serves the path (:mod:`emrfs.streamed_read`); iterate on ``self.loop``."""
        return streamed_read.cat_stream(self, path, start, end, etag=etag, piece_size=piece_size)

    async def _glob(self, path: str, maxdepth: int | None = None, **kwargs: Any):
        stripped = self._strip_protocol(path)
        if isinstance(stripped, str) and paths.has_magic(stripped):
            literal = paths.glob_literal_prefix(stripped)
            if "/" in literal:  # the bucket is literal: send the prefix to S3
                kwargs["_literal_prefix"] = literal
        return await super()._glob(path, maxdepth=maxdepth, **kwargs)

    # --- directories -------------------------------------------------------------------

    async def _mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._norm(path)
        if not path:
            raise exists("", "the root always exists")
        bucket, key = paths.split(path)
        if not key:
            await self._make_bucket(path, bucket, kwargs.get("region"))
            return
        if self._tiers.owns(path):
            return await self._tiers.mkdir(path, create_parents)
        try:
            info = await self._info(path)
        except FileNotFoundError:
            info = None
        if info is not None:
            raise exists(path, "a file" if info["type"] == "file" else "the directory exists")
        parent = paths.parent(path)
        if not create_parents and paths.split(parent)[1]:
            try:
                pinfo = await self._info(parent)
            except FileNotFoundError:
                raise not_found(parent, f"parent of {path!r} does not exist; use "
                                        "create_parents=True or makedirs") from None
            if pinfo["type"] != "directory":
                raise not_a_directory(parent, f"cannot create {path!r} below a file")
        await self._put_marker(path)

    async def _put_marker(self, path: str) -> None:
        await self._check_parents(path)
        await self._transport(path).put(path + "/", b"", content_type=_DIR_CONTENT_TYPE)
        await self._after_create(path)
        view = self._view(path)
        if view is not None:
            await view.record_directory(path)

    async def _make_bucket(self, path: str, bucket: str, region: str | None) -> None:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        region = region or self.options.s3.region
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        await self.s3.call("create_bucket", path, **kwargs)

    async def _makedirs(self, path: str, exist_ok: bool = False) -> None:
        path = self._norm(path)
        if self._tiers.owns(path):
            return await self._tiers.makedirs(path, exist_ok)
        try:
            info = await self._info(path)
        except FileNotFoundError:
            info = None
        if info is not None:
            if info["type"] == "file":
                raise exists(path, "a file is in the way of makedirs")
            if not exist_ok:
                raise exists(path, "use exist_ok=True")
            return
        bucket, key = paths.split(path)
        if not key:
            await self._make_bucket(path, bucket, None)
            return
        if not await self._bucket_exists(bucket):
            # one rule for library, CLI and gateway: buckets only when asked for by name
            raise missing_bucket(path, bucket)
        await self._put_marker(path)  # not _mkdir: a concurrent creator is no error here

    async def _bucket_exists(self, bucket: str) -> bool:
        try:
            await self.s3.call("head_bucket", bucket, Bucket=bucket)
            return True
        except FileNotFoundError:
            return False

    async def _rmdir(self, path: str) -> None:
        path = self._norm(path)
        bucket, key = paths.split(path)
        if not key:
            await self.s3.call("delete_bucket", path, Bucket=bucket)
            return
        if self._tiers.owns(path):
            return await self._tiers.rmdir(path)
        info = await self._info(path)
        if info["type"] != "directory":
            raise not_a_directory(path, "rmdir removes directories; use rm for files")
        if await self._has_children(path, "rmdir"):
            raise not_empty(path, "rmdir removes only empty directories; use rm(recursive=True)")
        confirmed: list[str] = []
        try:
            await self._delete_keys(path, bucket, list(paths.marker_keys(key)),
                                    confirmed=confirmed)
        finally:
            view = self._view(path)
            if view is not None:
                await view.record_delete_tree(path, _deleted_paths(bucket, confirmed))
        self._forget_dirs(path)
        await self._keep_parent(path)

    rmdir = sync_wrapper(_rmdir)

    # --- write checks and markers -----------------------------------------------------------

    async def _once(self, key: tuple, make) -> Any:
        """Run ``make()`` once per ``key`` at a time; concurrent callers share its result."""
        task = self._inflight.get(key)
        if task is None:
            task = self._inflight[key] = asyncio.ensure_future(make())
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _check_parents(self, path: str) -> None:
        """Refuse to create ``path`` below a file; one HEAD per directory per instance."""
        unchecked = [d for d in paths.ancestors(path) if d not in self._not_files]
        if not unchecked:
            return

        async def is_file(d: str) -> bool:
            try:
                await self._transport(d).head(d)
                return True
            except FileNotFoundError:
                self._not_files.add(d)
                return False

        results = await asyncio.gather(*(self._once(("is_file", d), lambda d=d: is_file(d))
                                         for d in unchecked))
        for d, blocked in zip(unchecked, results, strict=True):
            if blocked:
                raise not_a_directory(path, f"{d!r} is a file, so nothing can be created below it")

    async def _check_write_target(self, path: str, *, dir_checked: bool = False) -> None:
        """Before writing a file: not the root or a bucket, not a directory, not below a file.

        ``dir_checked``: the caller already knows ``path`` is not a directory (a bulk
        write listed the parent once instead of probing every name).
        """
        bucket, key = paths.split(path)
        if not key:
            raise is_a_directory(path, "a bucket cannot be written as a file")
        await self._tiers.refuse_directory(path)  # a directory of ephemeral paths only
        checks = [self._check_parents(path)]
        if self.options.s3.create_checks and not dir_checked:
            checks.append(self._refuse_directory(path, bucket, key))
        await asyncio.gather(*checks)

    async def _pipe(self, path, value=None, batch_size: int | None = None, **kwargs: Any):
        """Many writes: one listing per parent directory stands in for a probe per name."""
        if isinstance(path, str):
            path = {path: value}
        targets = {self._norm(p): v for p, v in path.items()}
        dir_checked = False
        if self.options.s3.create_checks and len(targets) > 1:
            parents = sorted({paths.parent(p) for p in targets if not self._tiers.owns(p)})
            listed = await asyncio.gather(*(self._child_dirs(p) for p in parents))
            subdirs = set().union(*listed) if listed else set()
            for p in targets:
                if p in subdirs:
                    raise is_a_directory(p, "a directory has this name; pick another path")
            dir_checked = True
        coros = [self._pipe_file(p, v, _dir_checked=dir_checked, **kwargs)
                 for p, v in targets.items()]
        await _run_coros_in_chunks(coros, batch_size=batch_size or self.batch_size, nofiles=True)

    async def _child_dirs(self, parent: str) -> set[str]:
        bucket, key = paths.split(parent)
        if not bucket:
            return set()
        view = self._view(parent)
        try:
            if view is None:
                entries = await self._s3_ls(parent, bucket, key)
            else:  # subdirectories whose listing is delayed too
                entries = await view.ls(parent, lambda: self._s3_ls(parent, bucket, key))
        except FileNotFoundError:  # no such bucket: the writes will say so
            return set()
        return {e["name"] for e in entries if e["type"] == "directory"}

    async def _refuse_directory(self, path: str, bucket: str, key: str) -> None:
        view = self._view(path)
        if view is not None:
            # the merged listing: a directory whose children's listing is delayed is
            # still one, and one whose deleted children S3 still lists is gone
            directory = await view.is_directory(path, self._paths_below(path, bucket, key))
        else:
            page = await self.s3.call("list_objects_v2", path, Bucket=bucket,
                                      Prefix=key + "/", MaxKeys=1)
            directory = bool(page.get("KeyCount", 0) or page.get("Contents")
                             or page.get("CommonPrefixes"))
        if directory:
            raise is_a_directory(path, "a directory has this name; pick another path")

    async def _paths_below(self, path: str, bucket: str, key: str
                           ) -> AsyncIterator[list[str]]:
        """Pages of the paths S3 lists below directory ``path`` (recursively, its own
        marker left out; a marker stands for its directory): a short first page, since
        the consistent view's emptiness checks usually stop at its first live path."""
        prefix, token, size = key + "/", None, 8
        companion = self._encrypted.companion_keys(path)  # CSE instruction files
        suffix = companion[0][len(key):] if companion else None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": size}
            if token:
                kwargs["ContinuationToken"] = token
            page = await self.s3.call("list_objects_v2", path, **kwargs)
            names = []
            for obj in page.get("Contents", ()):
                k = obj["Key"]
                if k == prefix:
                    continue
                if suffix and k.endswith(suffix):
                    k = k[:-len(suffix)]  # stands for its object (deleted with it)
                names.append(f"{bucket}/{paths.marker_dir(k) or k}")
            yield names
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            size = 100  # deletions S3 still lists: one metadata batch per page

    async def _after_create(self, path: str) -> None:
        """A child arrived: remove ancestors' markers (as S3A does), once per directory."""
        self._cached.forget(path)  # blocks of what was there before
        self._reads.forget(path)
        self._not_files.discard(path)  # it may be a file now: checked again below it
        parent = paths.parent(path)
        if parent in self._checked_dirs or not paths.split(parent)[1]:
            return

        async def clear_markers() -> None:
            bucket = paths.split(path)[0]
            keys = [mk for d in paths.ancestors(path)
                    for mk in paths.marker_keys(paths.split(d)[1])]
            await self._delete_keys(path, bucket, keys)
            if len(self._checked_dirs) > 100_000:
                self._checked_dirs.clear()
            self._checked_dirs.update(paths.ancestors(path))

        await self._once(("markers", parent), clear_markers)

    async def _keep_parent(self, path: str) -> None:
        """A child went: if its parent is now empty, write the parent's marker (HDFS keeps it)."""
        parent = paths.parent(path)
        bucket, key = paths.split(parent)
        if not key:
            return
        view = self._view(parent)
        if view is not None:
            # the merged listing: S3 may still list the child that just went (its
            # tombstone says it is gone) or not list yet one just written (its row says
            # it is there).  Its own marker may be a deletion S3 still lists: written anew.
            if await view.has_children(parent, self._paths_below(parent, bucket, key)):
                return
        else:
            page = await self.s3.call("list_objects_v2", parent, Bucket=bucket,
                                      Prefix=key + "/", MaxKeys=1)
            if page.get("KeyCount", 0) or page.get("Contents"):
                return
        await self._transport(parent).put(parent + "/", b"", content_type=_DIR_CONTENT_TYPE)
        self._checked_dirs.discard(parent)
        if view is not None:
            await view.record_directory(parent)  # a directory S3 listed only by its files

    def _forget_dirs(self, root: str) -> None:
        self._reads.forget_below(root)
        self._checked_dirs = {d for d in self._checked_dirs if not paths.is_within(d, root)}
        self._not_files = {d for d in self._not_files if not paths.is_within(d, root)}

    # --- request options hooks (encryption plugs in here) ---------------------------------

    def _write_kwargs(self, path: str) -> dict[str, Any]:
        return self._encrypted.write_kwargs(path)

    def _read_kwargs(self, path: str) -> dict[str, Any]:
        return self._encrypted.read_kwargs(path)

    def _copy_kwargs(self, src: str, dst: str) -> dict[str, Any]:
        return self._encrypted.copy_kwargs(src, dst)

    # --- reading -----------------------------------------------------------------------

    async def _cat_file(self, path: str, start: int | None = None, end: int | None = None,
                        **kwargs: Any) -> bytes:
        path = self._norm(path)
        bucket, key = paths.split(path)
        if not key:
            raise is_a_directory(path, "a bucket is a directory, not a file")
        if self._tiers.owns(path):
            return await self._tiers.cat(path, start, end)
        if self._cached.serves(path, start, end):
            return await self._cached.cat_range(path, start, end)
        view = self._view(path)
        if view is not None:
            return await self._consistent_cat(view, path, bucket, key, start, end)
        try:
            if start is None and end is None:
                return await self._encrypted.read_bytes(path, bucket, key)  # CSE: verified
            return await self._encrypted.cat_range(path, start, end)
        except FileNotFoundError:
            if await self._dir_probe(path, bucket, key) is not None \
                    or await self._tiers.implied_dir(path) is not None:
                raise is_a_directory(path, "open a file below it, or use ls") from None
            raise

    async def _cat_ranges(self, paths, starts, ends, max_gap=None, batch_size=None,
                          on_error="return", **kwargs: Any) -> list:
        # the ranges of one file from one version, nearby ones in one GET (emrfs.readplan)
        return await self._reads.cat_ranges(
            paths, starts, ends, max_gap=max_gap, batch_size=batch_size, on_error=on_error,
            one=lambda p, s, e: self._cat_file(p, start=s, end=e, **kwargs))

    async def _consistent_cat(self, view, path: str, bucket: str, key: str,
                              start: int | None, end: int | None) -> bytes:
        """A read checked against the ETag the metadata records (stale copies retried)."""
        info = await self._info(path)
        if info["type"] != "file":
            raise is_a_directory(path, "open a file below it, or use ls")
        size = info["size"]
        start, end = resolve_range(start, end, size)
        if info.get("cse"):  # client-side encrypted: decrypted (and verified) by its format
            return await self._encrypted.read_info_range(path, info, start, end)
        return await self._read_range_checked(path, bucket, key, start, end, info.get("ETag"))

    async def _read_range_checked(self, path: str, bucket: str, key: str, start: int,
                                  end: int, etag: str | None) -> bytes:
        """Bytes of the version with ``etag`` (a stale copy is retried by the consistent
        view's policy, see :meth:`_pinned_get`; another version is :class:`ChangedError`)."""
        return await self._transport(path).get_range(path, start, end, if_match=etag or None)

    async def _get_file(self, rpath: str, lpath: str, callback=None, **kwargs: Any) -> None:
        rpath = self._norm(rpath)
        if os.path.isdir(lpath):
            return
        if self._tiers.owns(rpath):
            return await self._tiers.get_file(rpath, lpath, callback)
        bucket, key = paths.split(rpath)
        etag = None
        watched = callback is not None and not isinstance(callback, NoOpCallback)
        if watched or self._view(rpath) is not None:
            # the version the view recorded, pinned; the size first, so a progress bar
            # knows the total (one HEAD, only when watched or the view is on)
            info = await self._info(rpath)
            if info["type"] != "file":
                raise is_a_directory(rpath, "use get(recursive=True) for directories")
            if self._view(rpath) is not None:
                etag = info.get("ETag")
            if watched:
                callback.set_size(info.get("size"))
        directory = os.path.dirname(os.path.abspath(lpath))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".emrfs-")
        try:
            with os.fdopen(fd, "wb") as f:
                # CSE objects verify before the rename below commits the file
                async for chunk in self._encrypted.read_chunks(rpath, bucket, key,
                                                               if_match=etag):
                    f.write(chunk)
                    if callback is not None:
                        callback.relative_update(len(chunk))
            os.replace(tmp, lpath)  # nothing half-written is left at lpath
        except FileNotFoundError:
            os.unlink(tmp)
            if await self._dir_probe(rpath, bucket, key) is not None \
                    or await self._tiers.implied_dir(rpath) is not None:
                raise is_a_directory(rpath, "use get(recursive=True) for directories") from None
            raise
        except BaseException:
            os.unlink(tmp)
            raise

    # --- writing -------------------------------------------------------------------------

    async def _pipe_file(self, path: str, value: bytes, mode: str = "overwrite",
                         _dir_checked: bool = False, **kwargs: Any) -> None:
        path = self._norm(path)
        if self._tiers.owns(path):
            return await self._tiers.pipe(path, value, mode)
        bucket, key = paths.split(path)
        await self._check_write_target(path, dir_checked=_dir_checked)
        if self._encrypted.cse_enabled(path):
            response = await self._encrypted.put_bytes(path, value, create=mode == "create")
        elif len(value) <= max(self.options.s3.part_size, self.options.s3.multipart_threshold):
            meta = await self._transport(path).put(path, value, if_none_match=mode == "create")
            response = {"ETag": meta.etag, "VersionId": meta.version_id}
        else:
            response = await self._upload_multipart(
                path, bucket, key, _bytes_parts(value, self.options.s3.part_size),
                if_none_match=mode == "create")
        await self._after_create(path)
        await self._record_file(path, len(value), response)

    async def _put_file(self, lpath: str, rpath: str, callback=None, mode: str = "overwrite",
                        **kwargs: Any) -> None:
        if os.path.isdir(lpath):
            await self._makedirs(rpath, exist_ok=True)
            return
        rpath = self._norm(rpath)
        if self._tiers.owns(rpath):
            return await self._tiers.put_file(lpath, rpath, callback, mode)
        bucket, key = paths.split(rpath)
        await self._check_write_target(rpath)
        size = os.path.getsize(lpath)
        part_size = self.options.s3.part_size
        if callback is not None:
            callback.set_size(size)
        reported = 0

        def part_done(nbytes: int) -> None:  # multipart: bytes as each part lands
            nonlocal reported
            reported += nbytes
            callback.relative_update(nbytes)
        with open(lpath, "rb") as f:
            if self._encrypted.cse_enabled(rpath):
                response = await self._encrypted.put_encrypted(
                    rpath, _file_parts(f, size, part_size), size, create=mode == "create")
            elif size <= max(part_size, self.options.s3.multipart_threshold):
                extra = dict(self._write_kwargs(rpath))
                if mode == "create":
                    extra["IfNoneMatch"] = "*"
                # the open file streams; botocore rewinds it for a retry
                body = f if callback is None else _ReadProgress(f, part_done)
                response = await self.s3.call("put_object", rpath, Bucket=bucket, Key=key,
                                              Body=body, ContentLength=size, **extra)
            else:
                response = await self._upload_multipart(
                    rpath, bucket, key, _file_parts(f, size, part_size),
                    if_none_match=mode == "create",
                    part_done=part_done if callback is not None else None)
        if callback is not None and size > reported:
            callback.relative_update(size - reported)
        await self._after_create(rpath)
        await self._record_file(rpath, size, response)

    async def _upload_multipart(self, path: str, bucket: str, key: str, parts,
                                if_none_match: bool = False,
                                metadata: dict[str, str] | None = None,
                                part_done: Callable[[int], None] | None = None) -> dict:
        """Upload an iterable of part bytes with bounded memory and concurrency;
        ``part_done(nbytes)`` after each part (progress callbacks)."""
        upload = self._new_upload(path, bucket, key, if_none_match=if_none_match,
                                  metadata=metadata)
        await upload.start()
        in_flight: set[asyncio.Task] = set()
        try:
            for number, data in enumerate(parts, start=1):
                if len(in_flight) >= self.options.s3.upload_concurrency:
                    done, in_flight = await asyncio.wait(in_flight,
                                                         return_when=asyncio.FIRST_COMPLETED)
                    for t in done:
                        t.result()
                task = asyncio.ensure_future(upload.upload_part(number, data))
                if part_done is not None:
                    task.add_done_callback(_report_part(part_done, len(data)))
                in_flight.add(task)
            if in_flight:
                for outcome in await asyncio.gather(*in_flight, return_exceptions=True):
                    if isinstance(outcome, BaseException):
                        raise outcome
        except BaseException:
            for t in in_flight:
                t.cancel()
            await upload.abort()
            raise
        return await upload.complete()

    def _new_upload(self, path: str, bucket: str, key: str, *, if_none_match: bool = False,
                    metadata: dict[str, str] | None = None) -> MultipartUpload:
        create_kwargs = dict(self._write_kwargs(path))
        if metadata:
            create_kwargs["Metadata"] = dict(metadata)  # the CSE envelope, or a copy's metadata
        return MultipartUpload(self.s3, path, bucket, key, create_kwargs=create_kwargs,
                               part_kwargs=self._part_kwargs(path),
                               concurrency=self.options.s3.upload_concurrency, purge=self._purge,
                               if_none_match=if_none_match)

    def _part_kwargs(self, path: str) -> dict[str, Any]:
        return self._encrypted.part_kwargs(path)

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None,
              autocommit: bool = True, cache_options: dict | None = None, **kwargs: Any):
        path = self._norm(path)
        if "b" not in mode:
            raise ValueError(f"emrfs opens files in binary mode; got mode {mode!r} for {path!r}")
        if self._tiers.owns(path):
            return self._tiers.open(path, mode, block_size=block_size, autocommit=autocommit,
                                    **kwargs)
        return EncryptedFile(self, path, mode, block_size=block_size, autocommit=autocommit,
                             cache_options=cache_options, **kwargs)

    # --- copy, move, delete ------------------------------------------------------------

    async def _copy(self, path1, path2, recursive: bool = False, on_error=None,
                    maxdepth: int | None = None, batch_size: int | None = None,
                    callback=DEFAULT_CALLBACK, **kwargs: Any) -> None:
        """fsspec's copy, taking ``callback`` as ``put``/``get`` do (fsspec's own takes
        none): each file gets a ``branched()`` child told its bytes, the parent one
        ``relative_update`` per file.  A name that exists as written means itself, even
        when it holds glob characters."""
        if callback is not DEFAULT_CALLBACK:
            kwargs["_parent_callback"] = callback
        if isinstance(path1, str) and isinstance(path2, str) \
                and paths.has_magic(self._strip_protocol(path1)) and await self._exists(path1):
            # a name that holds glob characters: copied as fsspec copies any plain path
            # (fsspec would take it for a pattern when placing the copy)
            sources = await self._expand_path(path1, recursive=recursive, maxdepth=maxdepth)
            if not recursive or maxdepth is not None:
                sources = [p for p in sources if not await self._isdir(p)]
                if not sources:
                    return None
            dest_is_dir = path2.endswith("/") or await self._isdir(path2)
            path2 = other_paths(sources, path2,
                                exists=dest_is_dir and not path1.endswith("/"))
            path1 = sources
        return await super()._copy(path1, path2, recursive=recursive, on_error=on_error,
                                   maxdepth=maxdepth, batch_size=batch_size, **kwargs)

    async def _cp_file(self, path1: str, path2: str, callback=None, **kwargs: Any) -> bool:
        """Copy one file (True), or make the directory ``path2`` for a directory (False)."""
        parent = kwargs.pop("_parent_callback", None)
        if parent is not None:
            with parent.branched(path1, path2) as child:
                copied = await self._cp_file(path1, path2, callback=child, **kwargs)
            if copied:  # files, not the directories copy() also visits
                parent.relative_update(1)
            return copied
        path1, path2 = self._norm(path1), self._norm(path2)
        if path1 == path2:
            # a copy onto itself changes nothing, as a rename onto itself (S3 would refuse
            # the request, or with SSE rewrite the object); a missing source is still an error
            return (await self._info(path1))["type"] == "file"
        if self._tiers.involved(path1, path2):
            await self._tiers.cp_file(path1, path2)
            return True
        info = await self._info(path1)
        if info["type"] == "directory":
            await self._makedirs(path2, exist_ok=True)
            return False
        if callback is not None:
            callback.set_size(info["size"])
        await self._check_write_target(path2)
        etag = await self._copy_object(path1, path2, info)
        await self._after_create(path2)
        await self._record_file(path2, info["size"], {"ETag": etag})
        if callback is not None:
            callback.relative_update(info["size"])
        return True

    async def _copy_object(self, src: str, dst: str, info: dict) -> str | None:
        """Copy one file; a CSE object keeps its envelope (metadata and instruction file)."""
        size = info.get("cse", {}).get("stored_size", info["size"])
        etag = await self._copy_key(*paths.split(src), *paths.split(dst), size)
        await self._encrypted.copy_companions(src, dst, info)
        return etag

    async def _copy_key(self, sb: str, sk: str, db: str, dk: str, size: int) -> str | None:
        """Server-side copy of one key (raw keys: markers keep their trailing slash)."""
        src, dst = f"{sb}/{sk}", f"{db}/{dk}"
        source = {"Bucket": sb, "Key": sk}
        extra = self._copy_kwargs(src, dst)
        if size <= self.options.s3.copy_threshold:
            response = await self.s3.call("copy_object", f"{src} -> {dst}", Bucket=db, Key=dk,
                                          CopySource=source, **extra)
            return response.get("CopyObjectResult", {}).get("ETag")
        # a multipart copy states the metadata itself (the CSE envelope lives there)
        head = await self.s3.call("head_object", src, Bucket=sb, Key=sk, **self._read_kwargs(src))
        upload = self._new_upload(dst, db, dk, metadata=head.get("Metadata"))
        await upload.start()
        try:
            await asyncio.gather(*(
                upload.copy_part(n, source, start, end, **_copy_part_kwargs(extra))
                for n, (start, end) in enumerate(
                    part_ranges(size, self.options.s3.copy_part_size), start=1)))
        except BaseException:
            await upload.abort()
            raise
        return (await upload.complete()).get("ETag")

    async def _mv(self, path1, path2, recursive: bool = False, maxdepth=None,
                  callback=DEFAULT_CALLBACK, **kwargs) -> None:
        """HDFS rename: a file or a whole directory; into ``path2`` if it is a directory.

        Renaming a path onto itself (or into the directory that holds it) changes
        nothing.  A directory rename is journalled (:mod:`emrfs.renames`): if it is
        cut short, running the same ``mv`` again finishes it.

        ``callback`` (fsspec's): ``set_size`` with the files to move, one update per
        file, and a ``branched()`` child per file told its bytes.
        """
        if isinstance(path1, list):
            for p in path1:
                await self._mv(p, path2, recursive=recursive, callback=callback, **kwargs)
            return
        if paths.has_magic(self._strip_protocol(path1)):
            named = await self._literal_or_glob(path1)
            if named != [self._norm(path1)]:  # a pattern, not a name that exists as written
                if not named:
                    raise not_found(self._strip_protocol(path1), "no path matches this pattern")
                for p in named:
                    await self._mv(p, path2, recursive=recursive, callback=callback, **kwargs)
                return
        into = isinstance(path2, str) and path2.endswith("/")  # "dir/": move into it
        src, dst = self._norm(path1), self._norm(path2)
        if not paths.split(src)[1]:
            raise InvalidPathError(f"cannot rename {src!r} to {dst!r}: buckets cannot be "
                                   "renamed", src)
        if self._tiers.involved(src, dst):
            return await self._tiers.mv(src, dst)
        try:
            info = await self._info(src)
        except FileNotFoundError:
            # a directory rename cut short after its last source went: finish it
            if await self._renames.finish_if_done(src, dst):
                return
            raise not_found(src, f"nothing to rename to {dst!r}") from None
        if info["type"] == "directory":
            journal = await self._renames.read(src)
            if journal is not None:
                return await self._resume_rename(src, dst, journal)
        if src == dst:
            return  # HDFS: renaming a path onto itself is a no-op
        try:
            dinfo = await self._info(dst)
        except FileNotFoundError:
            dinfo = None
        if into and dinfo is None:
            dinfo = self.status.directory(dst)  # created by the copy below
        if dinfo is not None and dinfo["type"] == "directory":
            dst = paths.join(dst, paths.basename(src))
            if dst == src:
                return  # into the directory that already holds it: nothing to do
            try:
                dinfo = await self._info(dst)
            except FileNotFoundError:
                dinfo = None
        if not paths.split(dst)[1]:
            raise InvalidPathError(f"cannot rename {src!r} to {dst!r}: nothing can replace a "
                                   "bucket", dst)
        if info["type"] == "file":
            if dinfo is not None and dinfo["type"] == "directory":
                raise is_a_directory(dst, f"cannot replace a directory with file {src!r}")
            await self._check_parents(dst)
            callback.set_size(1)
            with callback.branched(src, dst) as child:
                child.set_size(info["size"])
                etag = await self._copy_object(src, dst, info)
                child.relative_update(info["size"])
            callback.relative_update(1)
            await self._after_create(dst)
            await self._record_file(dst, info["size"], {"ETag": etag})
            sb, sk = paths.split(src)
            await self._delete_keys(src, sb, [sk, *self._encrypted.companion_keys(src)])
            view = self._view(src)
            if view is not None:
                await view.record_delete(src)
            self._cached.forget(src)
            await self._keep_parent(src)
            return
        if paths.is_within(dst, src):
            raise InvalidPathError(f"cannot move directory {src!r} into itself ({dst!r})", src)
        if dinfo is not None:
            raise exists(dst, f"cannot move directory {src!r} over an existing "
                              f"{'directory' if dinfo['type'] == 'directory' else 'file'}")
        await self._check_parents(dst)
        await self._move_tree(src, dst, callback=callback)  # journalled before its first copy
        await self._tiers.follow(src, dst)  # its ephemeral descendants (out/_temporary) too
        await self._renames.end(src)  # after the last source is gone

    mv = sync_wrapper(_mv)

    async def _resume_rename(self, src: str, dst: str, journal: dict) -> None:
        """Finish the journalled rename of ``src``, if ``dst`` is where the caller meant to
        rename it (else refuse, naming the unfinished one)."""
        target = self._renames.check_target(src, dst, journal)
        logger.warning("finishing the rename of %s to %s that was cut short", src, target)
        await self._check_parents(target)
        await self._move_tree(src, target, resume=True)
        await self._tiers.follow(src, target)
        await self._renames.end(src)

    async def _has_children(self, path: str, operation: str) -> bool:
        """Whether directory ``path`` holds anything: S3's first page answers alone; with
        the consistent view on, its merged listing (delayed listings waited for)."""
        if await self._tiers.holds_any(path):
            return True  # ephemeral descendants (out/_temporary), local or staged
        bucket, key = paths.split(path)
        if key and self._view(path) is not None:
            return any(i["path"] != path for i in await self._tree(path, operation))
        page = await self.s3.call("list_objects_v2", path, Bucket=bucket,
                                  Prefix=key + "/" if key else "", MaxKeys=2)
        return any(o["Key"] != key + "/" for o in page.get("Contents", [])) \
            or bool(page.get("CommonPrefixes"))

    async def _tree(self, path: str, operation: str) -> list[dict]:
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
            async for page in self._transport(path).list(f"{bucket}/{prefix}"):
                for obj in page.objects:
                    k = obj.key
                    as_dir = paths.marker_dir(k)
                    name = f"{bucket}/{as_dir if as_dir is not None else k}".rstrip("/")
                    item = found.setdefault(name, {"name": name, "type": "directory",
                                                   "size": 0, "keys": []})
                    item["keys"].append(k)
                    if as_dir is None:
                        item.update(type="file", size=obj.size, ETag=obj.etag)
            return found

        view = self._view(path) if key else None
        found = await s3_tree() if view is None else \
            await view.tree(path, s3_tree, operation=operation)
        items = []
        for name, info in found.items():
            keys = info.get("keys") or [paths.split(name)[1] + ("/" if info["type"] ==
                                                                "directory" else "")]
            items.append({"path": name, "type": info["type"], "size": info.get("size", 0),
                          "ETag": info.get("ETag"), "keys": keys,
                          "listed": not info.get("from_metadata")})
        return items

    async def _move_tree(self, src: str, dst: str, resume: bool = False,
                         callback=DEFAULT_CALLBACK) -> None:
        """Copy every object under ``src`` to ``dst`` in parallel, then delete the sources.

        Decides from :meth:`_tree` (the consistent view's merged listing when it is on)
        and records only what S3 confirmed: rows for the keys copied, tombstones for
        the keys deleted.  ``resume``: a journalled rename cut short; objects already
        at ``dst`` with the source's size (and ETag, where both are single-part) are
        not copied again.
        """
        sb, sk = paths.split(src)
        db, dk = paths.split(dst)
        items = await self._tree(src, "mv")
        present: dict[str, dict] = {}
        if not resume:
            await self._renames.begin(src, dst)  # a crash from here on can be finished
        else:
            async for page in list_pages(self.s3, dst, db, dk + "/", delimiter=None):
                present.update((o["Key"], o) for o in page.get("Contents", ()))
        semaphore = asyncio.Semaphore(self.options.s3.max_concurrency)
        copied: dict[str, tuple[int, str | None]] = {}  # destination file -> (size, ETag)
        dirs: set[str] = set()  # destination directories whose markers were copied
        callback.set_size(sum(1 for i in items if i["type"] == "file"))

        def target(k: str) -> str:
            rel = k[len(sk) + 1:] if k.startswith(sk + "/") else ""
            return f"{dk}/{rel}" if rel else dk + "/"

        # A marker only keeps an empty directory a directory, and S3 may still list one
        # that a child's arrival removed (as S3A does): a copy of it would fail
        # (NoSuchKey) though the directory is there.  So markers are not copied: the
        # destination's empty directories get a new one, the others need none.
        holding = {paths.parent(i["path"]) for i in items}

        async def copy_one(item: dict, k: str) -> None:
            dk_ = target(k)
            is_marker = item["type"] == "directory" or paths.marker_dir(k) is not None
            there = present.get(dk_)
            if there is not None and _same_object(there, item):
                etag = there.get("ETag")
            elif is_marker and item["path"] in holding:
                etag = None  # it holds files or directories: implied by their keys
            elif is_marker:
                async with semaphore:
                    await self._transport(dst).put(f"{db}/{dk_}", b"",
                                                   content_type=_DIR_CONTENT_TYPE)
                etag = None
            else:
                async with semaphore:
                    with callback.branched(f"{sb}/{k}", f"{db}/{dk_}") as child:
                        child.set_size(item["size"])
                        etag = await self._copy_key(sb, k, db, dk_, item["size"])
                        child.relative_update(item["size"])
            if is_marker:
                dirs.add(f"{db}/{paths.marker_dir(dk_) or dk_}".rstrip("/"))
            else:
                callback.relative_update(1)
                copied[f"{db}/{dk_}"] = (item["size"], etag)

        pairs = [(i, k) for i in items for k in i["keys"]]
        if not pairs:
            # an empty directory marked only by EMRFS's $folder$: stays an empty directory
            await self._transport(dst).put(dst + "/", b"", content_type=_DIR_CONTENT_TYPE)
            dirs.add(dst)
        own = {sk + "/"}
        # files (and the directory's own marker) first, then subdirectories' markers
        await asyncio.gather(*(copy_one(i, k) for i, k in pairs
                               if i["type"] == "file" or k in own))
        await asyncio.gather(*(copy_one(i, k) for i, k in pairs
                               if i["type"] != "file" and k not in own))
        await self._after_create(dst)
        view = self._view(dst)
        if view is not None:
            from .consistency.store import Entry

            sizes = {p: size for p, (size, _) in copied.items()}
            if self._encrypted.maybe_encrypted(src):
                sizes = await self._plaintext_sizes(src, dst, sizes)
            rows = [Entry.file(p, sizes[p], etag) for p, (_, etag) in copied.items()]
            rows += [Entry.directory(d) for d in sorted(dirs) if d not in copied]
            await view.record_files(rows)
        keys = [k for _, k in pairs] + list(paths.marker_keys(sk))
        confirmed: list[str] = []
        try:
            await self._delete_keys(src, sb, keys, confirmed=confirmed)
        finally:
            source_view = self._view(src)
            if source_view is not None:
                await source_view.record_delete_tree(src, _deleted_paths(sb, confirmed))
        self._forget_dirs(src)
        self._forget_dirs(dst)  # names below it may be files now
        self._cached.forget_tree(src, [f"{sb}/{k}" for k in keys])
        self._cached.forget_tree(dst, list(copied))
        await self._keep_parent(src)

    async def _plaintext_sizes(self, src: str, dst: str, stored: dict[str, int]
                               ) -> dict[str, int]:
        """Lengths readers see of CSE objects copied from ``src`` to ``dst`` (``stored``:
        S3's sizes by destination path): the source's rows, else the objects' envelopes."""
        by_source = {paths.join(src, paths.relative_to(p, dst)): p for p in stored}
        source_view = self._view(src)
        rows = await run_blocking(source_view.store.get_many, list(by_source)) \
            if source_view is not None else {}
        sizes: dict[str, int] = {}
        unknown: list[dict] = []
        for source, target in by_source.items():
            row = rows.get(source)
            if row is not None and row.live and not row.is_dir:
                sizes[target] = row.size
            else:
                unknown.append({"name": target, "size": stored[target], "type": "file"})
        for entry in await self._encrypted.listed(unknown) if unknown else ():
            sizes[entry["name"]] = entry["size"]
        return sizes

    async def _rm_file(self, path: str, **kwargs: Any) -> None:
        await self._rm(path)

    async def _rm(self, path, recursive: bool = False, maxdepth: int | None = None,
                  callback=DEFAULT_CALLBACK, **kwargs: Any) -> None:
        """``callback`` (fsspec's): ``set_size`` with the keys to delete, updates per batch."""
        if maxdepth is not None:
            return await super()._rm(path, recursive=recursive, maxdepth=maxdepth, **kwargs)
        targets = path if isinstance(path, list) else [path]
        expanded: list[str] = []
        for p in targets:
            expanded.extend(await self._literal_or_glob(p))
        expanded = await self._tiers.rm(expanded, recursive)  # ephemeral paths go here
        by_bucket: dict[str, list[str]] = defaultdict(list)
        buckets: list[str] = []
        removed: list[str] = []
        removed_dirs: list[str] = []
        for p in sorted(set(expanded), key=len):
            if any(paths.is_within(p, r) and p != r for r in removed if recursive):
                continue
            bucket, key = paths.split(p)
            info = await self._info(p)
            if info["type"] == "file":
                by_bucket[bucket].append(key)
                by_bucket[bucket].extend(self._encrypted.companion_keys(p))
            else:
                # the consistent view's merged listing when it is on (delayed listings
                # waited for), so every key the table knows is deleted, none assumed
                if not recursive and await self._has_children(p, "rm"):
                    raise is_a_directory(p, "it is a non-empty directory; use recursive=True")
                below = [i for i in await self._tree(p, "rm") if i["path"] != p] \
                    if recursive else []
                for item in below:
                    by_bucket[bucket].extend(item["keys"])
                if key:
                    by_bucket[bucket].extend(paths.marker_keys(key))
                else:
                    buckets.append(bucket)
                removed_dirs.append(p)
                self._forget_dirs(p)
            removed.append(p)
        confirmed: dict[str, list[str]] = defaultdict(list)
        callback.set_size(sum(len(set(keys)) for keys in by_bucket.values()))
        try:
            await asyncio.gather(*(self._delete_keys(b, b, keys, confirmed=confirmed[b],
                                                     callback=callback)
                                   for b, keys in by_bucket.items()))
        finally:
            await self._record_deletes(removed, removed_dirs, confirmed)
        self._cached.forget_keys(by_bucket)
        for bucket in buckets:
            await self.s3.call("delete_bucket", bucket, Bucket=bucket)
        for parent in {paths.parent(p) for p in removed if paths.split(p)[1]}:
            if not any(paths.is_within(parent, r) for r in removed):
                await self._keep_parent(parent + "/x")
        self.invalidate_cache()

    async def _literal_or_glob(self, path: str) -> list[str]:
        """The paths ``path`` names: itself when it exists as written (a name may hold
        ``*``, ``?`` or ``[``), else, if it has glob characters, what the pattern matches
        (as Hadoop's shell does); a literal path that does not exist is returned as is,
        for the caller's own not-found error."""
        stripped = self._strip_protocol(path)
        if not paths.has_magic(stripped) or await self._exists(stripped):
            return [self._norm(stripped)]
        return await self._glob(stripped)

    async def _expand_path(self, path, recursive: bool = False, maxdepth: int | None = None,
                           assume_literal: bool = False) -> list[str]:
        """fsspec's expansion (cp, get, put, du, rm with maxdepth...), except that a path
        which exists as written means itself, not a pattern (see :meth:`_literal_or_glob`)."""
        if isinstance(path, str):
            path = [path]
        literal, patterns = [], []
        for p in (self._strip_protocol(p) for p in path):
            if assume_literal or not paths.has_magic(p) or await self._exists(p):
                literal.append(p)
            else:
                patterns.append(p)
        out: set[str] = set()
        for group, as_written in ((literal, True), (patterns, False)):
            if group:
                try:
                    out.update(await super()._expand_path(group, recursive=recursive,
                                                          maxdepth=maxdepth,
                                                          assume_literal=as_written))
                except FileNotFoundError:
                    pass  # the other group may match; nothing at all is raised below
        if not out:
            raise not_found(", ".join(literal + patterns), "nothing matches")
        return sorted(out)

    async def _record_deletes(self, removed: list[str], removed_dirs: list[str],
                              confirmed: dict[str, list[str]]) -> None:
        """Tombstones for what ``_rm`` deleted: exactly the keys S3 confirmed deleting."""
        for root in removed:
            view = self._view(root)
            if view is None:
                continue
            bucket, key = paths.split(root)
            done = confirmed.get(bucket, ())
            if root in removed_dirs:
                gone = [p for p in _deleted_paths(bucket, list(done)) if paths.is_within(p, root)]
                await view.record_delete_tree(root, gone)
            elif key in done:
                await view.record_delete(root)

    async def _delete_keys(self, path: str, bucket: str, keys: list[str],
                           confirmed: list[str] | None = None,
                           callback=DEFAULT_CALLBACK) -> None:
        """Delete ``keys`` in batches; ``confirmed`` collects the keys S3 said it deleted
        (filled even when a batch fails, so the caller records exactly those)."""
        keys = list(dict.fromkeys(keys))
        for k in keys:
            self._reads.forget(f"{bucket}/{k}")
        batches = [keys[i:i + _DELETE_BATCH] for i in range(0, len(keys), _DELETE_BATCH)]
        semaphore = asyncio.Semaphore(self.options.s3.max_concurrency)

        async def one(batch: list[str]) -> None:
            async with semaphore:
                response = await self.s3.call(
                    "delete_objects", path, Bucket=bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            errors = response.get("Errors") or []
            if confirmed is not None:
                refused = {e.get("Key") for e in errors}
                confirmed.extend(k for k in batch if k not in refused)
            if errors:
                first = errors[0]
                raise EmrfsError(
                    f"S3 refused to delete {len(errors)} of {len(batch)} objects under "
                    f"{path!r}, e.g. {bucket}/{first.get('Key')}: {first.get('Code')} "
                    f"{first.get('Message')}; run the delete again", path, code=first.get("Code"))
            callback.relative_update(len(batch))

        await asyncio.gather(*(one(b) for b in batches))

    # --- misc ----------------------------------------------------------------------------

    def cache_metrics(self) -> dict[str, int]:
        """Block cache counters of this process: hits, misses, evictions, corruptions, writes."""
        return self._cached.metrics()

    async def _close(self) -> None:
        await self._encrypted.close()
        self._cached.close()
        await self.s3.close()


class _ReadProgress(io.BufferedIOBase):
    """A file being sent in one PUT, reporting bytes as the HTTP client reads them;
    a retry's rewind re-reads without reporting twice (only new high-water bytes count)."""

    def __init__(self, f, report: Callable[[int], None]):
        super().__init__()
        self._f = f
        self._report = report
        self._high = f.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._f.read(size)
        position = self._f.tell()
        if position > self._high:
            self._report(position - self._high)
            self._high = position
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()


def _report_part(part_done: Callable[[int], None], nbytes: int):
    """A task done-callback: ``part_done(nbytes)`` when the part uploaded."""
    def done(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is None:
            part_done(nbytes)
    return done


def _bytes_parts(value: bytes, part_size: int):
    view = memoryview(value)
    for start, end in part_ranges(len(value), part_size):
        yield bytes(view[start:end])


def _file_parts(f, size: int, part_size: int):
    for start, end in part_ranges(size, part_size):
        yield f.read(end - start)


def _copy_part_kwargs(copy_kwargs: dict[str, Any]) -> dict[str, Any]:
    # UploadPartCopy takes the source/destination SSE-C keys but no metadata directives
    allowed = ("SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5",
               "CopySourceSSECustomerAlgorithm", "CopySourceSSECustomerKey",
               "CopySourceSSECustomerKeyMD5")
    return {k: v for k, v in copy_kwargs.items() if k in allowed}


def _same_object(there: dict, item: dict) -> bool:
    """Whether the object already at the destination (a ListObjectsV2 entry) is a copy of
    the source ``item``: same size, and same ETag unless either came from a multipart
    upload or copy (whose ETags differ between copies of the same bytes)."""
    if there.get("Size") != item["size"]:
        return False
    a, b = (str(e or "").strip('"') for e in (there.get("ETag"), item.get("ETag")))
    return not a or not b or "-" in a or "-" in b or a == b


def _deleted_paths(bucket: str, keys: list[str]) -> list[str]:
    """The emrfs paths that deleted S3 ``keys`` stood for (a marker: its directory)."""
    out = []
    for k in keys:
        as_dir = paths.marker_dir(k)
        name = f"{bucket}/{as_dir if as_dir is not None else k}".rstrip("/")
        if name != bucket:
            out.append(name)
    return out

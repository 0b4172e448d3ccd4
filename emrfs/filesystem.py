"""``EmrFileSystem``: the namespace.  Owns the verbs and the order of the layers.

HDFS-like semantics over S3: real directories (markers), rename of trees,
Hadoop file status, atomic exclusive create.  Each verb normalises its path and
hands it to one part: the parts are wired in :mod:`emrfs.components`; names and
patterns in :mod:`emrfs.expansion`; whole-file transfers in :mod:`emrfs.transfers`;
the namespace in :mod:`emrfs.namespace`; path logic in :mod:`emrfs.paths`; options
in :mod:`emrfs.config`.
"""

from __future__ import annotations

import os
from typing import Any

from fsspec.asyn import AsyncFileSystem, get_loop, sync, sync_wrapper
from fsspec.callbacks import DEFAULT_CALLBACK, NoOpCallback

from . import components, config as _config, expansion, paths, streamed_read
from .cache.tierfile import TierFile
from .errors import EmrfsError, is_a_directory, not_found
from .files import EmrFile
from .tier_moves import StackVerbs

_FSSPEC_KWARGS = ("use_listings_cache", "listings_expiry_time", "max_paths")


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

    def __init__(
        self,
        *args: Any,
        asynchronous: bool = False,
        loop=None,
        batch_size: int | None = None,
        **storage_options: Any,
    ):
        fsspec_kwargs = {k: storage_options.pop(k) for k in _FSSPEC_KWARGS if k in storage_options}
        self.options = _config.load(storage_options)
        super().__init__(
            *args, asynchronous=asynchronous, loop=loop, batch_size=batch_size, **fsspec_kwargs
        )
        parts = components.build(
            self.options,
            StackVerbs(
                info=self._info,
                makedirs=self._makedirs,
                open=self.open,
                rename=self._mv,
                loop=lambda: self.loop,
            ),
        )
        self.s3, self.status = parts.s3, parts.status
        self.blocksize = self.options.s3.read_block_size
        self._views = self._view = parts.views  # (the view in force for a path, or None)
        self._purge, self._transport = parts.purge, parts.transports
        self.transport = self._transport("")
        self._encrypted, self._cached, self._reads = parts.encrypted, parts.cached, parts.reads
        self._markers, self._tiers, self._stacks = parts.markers, parts.tiers, parts.stacks
        self._renames, self._trees = parts.renames, parts.trees
        self._listings, self._moves = parts.listings, parts.moves
        self._transfers, self._dirs = parts.transfers, parts.directories
        self._expansion = expansion.Expansion(  # literal names, patterns (emrfs.expansion)
            strip=self._strip_protocol,
            norm=self._norm,
            exists=self._exists,
            isdir=self._isdir,
            glob=self._glob,
            base_expand=super()._expand_path,
        )

    # --- fork safety ---------------------------------------------------------------

    @property
    def loop(self):
        if self._pid != os.getpid():
            # After fork the parent's IO thread is gone; fsspec made a fresh loop
            # slot.  Take a new loop; the S3 client notices the new pid itself.
            self._pid = os.getpid()
            if not self.asynchronous:
                self._loop = get_loop()
            self._markers.reset()
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
        found = await self._markers.path_status(path)  # through the path's stack
        if found is None:
            raise not_found(path)
        if found.get("ephemeral"):
            return found  # local to the tier: nothing for S3's reads to remember
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

    async def _modified(self, path: str):
        info = await self._info(path)
        if info.get("LastModified") is None:
            raise EmrfsError(
                f"{path!r} is a directory with no marker; it has no modification time", path
            )
        return info["LastModified"]

    modified = sync_wrapper(_modified)

    # --- listing ---------------------------------------------------------------------

    async def _ls(self, path: str, detail: bool = True, **kwargs: Any):
        path = self._norm(path)
        if not path:
            return await self._dirs.buckets(detail)
        return await self._listings.ls(path, detail)

    async def _find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        prefix: str = "",
        **kwargs: Any,
    ):
        literal = kwargs.pop("_literal_prefix", None)
        path = self._norm(path)
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        if not path:
            return await super()._find(
                path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kwargs
            )
        return await self._listings.find(path, maxdepth, withdirs, detail, prefix, literal)

    def _cat_stream(
        self,
        path: str,
        start: int,
        end: int,
        *,
        etag: str | None = None,
        piece_size: int = streamed_read.PIECE_SIZE,
    ):
        """Bytes ``[start, end)`` of ``path`` as pieces through its stack, pinned to one
        version (:mod:`emrfs.streamed_read`); None for an empty range or a bucket (the
        caller reads ranges instead).  Iterate on ``self.loop``."""
        return self._transfers.stream(self._norm(path), start, end, etag, piece_size)

    async def _glob(self, path: str, maxdepth: int | None = None, **kwargs: Any):
        kwargs = expansion.glob_kwargs(self._strip_protocol(path), kwargs)
        return await super()._glob(path, maxdepth=maxdepth, **kwargs)

    # --- directories -------------------------------------------------------------------

    async def _mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        await self._dirs.mkdir(self._norm(path), create_parents, kwargs.get("region"))

    async def _makedirs(self, path: str, exist_ok: bool = False) -> None:
        await self._dirs.makedirs(self._norm(path), exist_ok)

    async def _rmdir(self, path: str) -> None:
        await self._trees.rmdir(self._norm(path))

    rmdir = sync_wrapper(_rmdir)

    # --- write checks and markers -----------------------------------------------------------

    async def _check_write_target(self, path: str, *, dir_checked: bool = False) -> None:
        await self._transfers.check_target(path, dir_checked=dir_checked)

    async def _pipe(self, path, value=None, batch_size: int | None = None, **kwargs: Any):
        """Many writes: one listing per parent directory stands in for a probe per name;
        the writes run under one semaphore (as :meth:`_cat`'s reads), the first failure raised."""
        if isinstance(path, str):
            path = {path: value}
        targets = {self._norm(p): v for p, v in path.items()}
        dir_checked = await self._transfers.refuse_subdirs(targets)
        out = await expansion.gather_each(
            list(targets),
            lambda p: self._pipe_file(p, targets[p], _dir_checked=dir_checked, **kwargs),
            batch_size or self.batch_size,
        )
        expansion.raise_first_failure(out)

    # --- reading -----------------------------------------------------------------------

    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        path = self._norm(path)
        if not paths.split(path)[1]:
            raise is_a_directory(path, "a bucket is a directory, not a file")
        return await self._transfers.get_bytes(path, start, end)

    async def _cat(
        self, path, recursive=False, on_error="raise", batch_size=None, **kwargs: Any
    ) -> Any:
        """fsspec's ``cat``, its reads gathered under a semaphore of the same batch size:
        fsspec's chunked runner waits on every pending read again after each completes
        (quadratic in the batch: most of emrfs's CPU per small GET in ``cat(list)``)."""
        found = await self._expand_path(path, recursive=recursive)
        out = await expansion.gather_each(
            found, lambda p: self._cat_file(p, **kwargs), batch_size or self.batch_size
        )
        return expansion.cat_result(path, found, out, on_error, self._strip_protocol(path))

    async def _cat_ranges(
        self, paths, starts, ends, max_gap=None, batch_size=None, on_error="return", **kwargs: Any
    ) -> list:
        # the ranges of one file from one version, nearby ones in one GET (emrfs.readplan)
        return await self._reads.cat_ranges(
            paths,
            starts,
            ends,
            max_gap=max_gap,
            batch_size=batch_size,
            on_error=on_error,
            one=lambda p, s, e: self._cat_file(p, start=s, end=e, **kwargs),
        )

    async def _get_file(self, rpath: str, lpath: str, callback=None, **kwargs: Any) -> None:
        rpath = self._norm(rpath)
        if os.path.isdir(lpath):
            return
        etag = None
        if callback is not None and not isinstance(callback, NoOpCallback):
            # the size first, so a progress bar knows the total (one HEAD, only when
            # watched); the download is pinned to the version it describes
            info = await self._info(rpath)
            if info["type"] != "file":
                raise is_a_directory(rpath, "use get(recursive=True) for directories")
            callback.set_size(info.get("size"))
            etag = info.get("ETag")
        await self._transfers.get_local(rpath, lpath, callback, etag)

    # --- writing -------------------------------------------------------------------------

    async def _pipe_file(
        self,
        path: str,
        value: bytes,
        mode: str = "overwrite",
        _dir_checked: bool = False,
        **kwargs: Any,
    ) -> None:
        path = self._norm(path)
        await self._check_write_target(path, dir_checked=_dir_checked)
        await self._transfers.put_bytes(path, value, create=mode == "create")
        await self._markers.after_create(path)

    async def _put_file(
        self, lpath: str, rpath: str, callback=None, mode: str = "overwrite", **kwargs: Any
    ) -> None:
        if os.path.isdir(lpath):
            await self._makedirs(rpath, exist_ok=True)
            return
        rpath = self._norm(rpath)
        await self._check_write_target(rpath)
        await self._transfers.put_local(lpath, rpath, callback, create=mode == "create")
        await self._markers.after_create(rpath)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict | None = None,
        **kwargs: Any,
    ):
        path = self._norm(path)
        if "b" not in mode:
            raise ValueError(f"emrfs opens files in binary mode; got mode {mode!r} for {path!r}")
        if self._tiers.owns(path):  # the tier's own file I/O; the namespace's rules
            if mode == "rb":
                self._tiers.check_readable(path)
            else:
                sync(self.loop, self._check_write_target, path)
            kwargs.pop("cache_type", None)
            return TierFile(
                self,
                path,
                mode,
                tier=self._tiers.tier,
                block_size=block_size,
                autocommit=autocommit,
                **kwargs,
            )
        return EmrFile(
            self,
            path,
            mode,
            block_size=block_size,
            autocommit=autocommit,
            cache_options=cache_options,
            **kwargs,
        )

    # --- copy, move, delete ------------------------------------------------------------

    async def _copy(
        self,
        path1,
        path2,
        recursive: bool = False,
        on_error=None,
        maxdepth: int | None = None,
        batch_size: int | None = None,
        callback=DEFAULT_CALLBACK,
        **kwargs: Any,
    ) -> None:
        """fsspec's copy, taking ``callback`` as ``put``/``get`` do (fsspec's own takes
        none): each file gets a ``branched()`` child told its bytes, the parent one
        ``relative_update`` per file.  A name that exists as written means itself, even
        when it holds glob characters."""
        if callback is not DEFAULT_CALLBACK:
            kwargs["_parent_callback"] = callback
        pairs = await self._expansion.copy_pairs(path1, path2, recursive, maxdepth)
        # every source's status first, then each file's target checked once per parent
        # directory (not probed name by name), then the copies
        infos = await expansion.gather_each([p for p, _ in pairs], self._info, batch_size)
        is_file = [isinstance(i, dict) and i["type"] == "file" for i in infos]
        files = [self._norm(p2) for (_, p2), f in zip(pairs, is_file, strict=True) if f]
        dir_checked = await self._transfers.refuse_subdirs(files)
        out = await expansion.gather_each(
            list(zip(pairs, infos, strict=True)),
            lambda pair: self._copy_one(*pair, dir_checked, kwargs),
            batch_size,
        )
        ignore_missing = on_error == "ignore" or (on_error is None and recursive)
        expansion.raise_first_failure(
            [r for r in out if not (ignore_missing and isinstance(r, FileNotFoundError))]
        )
        return None

    async def _copy_one(
        self, pair: tuple[str, str], info: Any, dir_checked: bool, kwargs: dict[str, Any]
    ) -> bool:
        if isinstance(info, Exception):
            raise info
        return await self._cp_file(*pair, _info=info, _dir_checked=dir_checked, **kwargs)

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
        info = kwargs.get("_info") or await self._info(path1)  # (copy() asked already)
        if path1 == path2:
            # a copy onto itself changes nothing, as a rename onto itself (S3 would refuse
            # the request, or with SSE rewrite the object); a missing source is still an error
            return info["type"] == "file"
        if info["type"] == "directory":
            await self._makedirs(path2, exist_ok=True)
            return False
        dir_checked = kwargs.get("_dir_checked", False)
        await self._transfers.copy_file(path1, path2, info, callback, dir_checked=dir_checked)
        return True

    async def _mv(
        self,
        path1,
        path2,
        recursive: bool = False,
        maxdepth=None,
        callback=DEFAULT_CALLBACK,
        **kwargs,
    ) -> None:
        """HDFS rename: a file or a whole directory; into ``path2`` if it is a directory.

        Renaming a path onto itself (or into the directory that holds it) changes
        nothing.  A directory rename is journalled (:mod:`emrfs.renames`): if it is
        cut short, running the same ``mv`` again finishes it.

        ``callback`` (fsspec's): ``set_size`` with the files to move, one update per
        file, and a ``branched()`` child per file told its bytes.
        """
        many = path1 if isinstance(path1, list) else await self._expansion.matches(path1)
        if many is not None:  # a list, or a pattern: each path it names moved in turn
            for p in many:
                await self._mv(p, path2, recursive=recursive, callback=callback, **kwargs)
            return
        into = isinstance(path2, str) and path2.endswith("/")  # "dir/": move into it
        await self._moves.rename(self._norm(path1), self._norm(path2), into=into, callback=callback)

    mv = sync_wrapper(_mv)

    async def _rm_file(self, path: str, **kwargs: Any) -> None:
        await self._rm(path)

    async def _rm(
        self,
        path,
        recursive: bool = False,
        maxdepth: int | None = None,
        callback=DEFAULT_CALLBACK,
        **kwargs: Any,
    ) -> None:
        """``callback`` (fsspec's): ``set_size`` with the keys to delete, updates per batch."""
        if maxdepth is not None:
            return await super()._rm(path, recursive=recursive, maxdepth=maxdepth, **kwargs)
        targets = path if isinstance(path, list) else [path]
        expanded: list[str] = []
        for p in targets:
            expanded.extend(await self._literal_or_glob(p))
        await self._trees.remove(expanded, recursive, callback)
        self.invalidate_cache()

    async def _literal_or_glob(self, path: str) -> list[str]:
        return await self._expansion.literal_or_glob(path)

    async def _expand_path(
        self,
        path,
        recursive: bool = False,
        maxdepth: int | None = None,
        assume_literal: bool = False,
    ) -> list[str]:
        """fsspec's expansion, except that a name which exists as written means itself
        (:mod:`emrfs.expansion`)."""
        return await self._expansion.expand_path(path, recursive, maxdepth, assume_literal)

    # --- misc ----------------------------------------------------------------------------

    def cache_metrics(self) -> dict[str, int]:
        """Block cache counters of this process: hits, misses, evictions, corruptions, writes."""
        return self._cached.metrics()

    async def _close(self) -> None:
        await self._stacks.close()
        await self._encrypted.close()
        self._cached.close()
        await self.s3.close()

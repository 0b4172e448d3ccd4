"""Directory markers, parent checks and the S3 side of status and listing.

HDFS rules emrfs keeps over S3 (shared by the filesystem's verbs, the ephemeral
tier, staged task commits and the rename journal):

- a directory is a marker (emrfs writes ``dir/``, zero bytes,
  ``application/x-directory``; EMRFS's ``dir_$folder$`` is read too) or the
  prefix of anything below it;
- nothing is created below a file (:meth:`Markers.check_parents`);
- a parent's marker goes when its first child arrives (:meth:`Markers.after_create`)
  and comes back when its last child goes (:meth:`Markers.keep_parent`);
- with the consistent view on, "has children" is the view's merged listing.

One :class:`Markers` per filesystem instance: it remembers the directories it has
checked, so a bulk write into one directory pays for the checks once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fsspec.callbacks import DEFAULT_CALLBACK

from .. import paths
from ..blocking import run_blocking
from ..cache.routing import RoutingStore
from ..config import Options
from ..consistency.layer import ConsistentStore
from ..crypto.envelope import is_encrypted
from ..crypto.guard import EnvelopeGuard
from ..crypto.store import EncryptingStore
from ..encrypted_io import with_sealed
from ..errors import is_a_directory, not_a_directory
from ..s3.client import S3Client
from ..s3.listing import Listing, add_page, read_ahead
from ..status import StatusFactory
from ..store.protocol import ListPage, ObjectMeta, ObjectStore
from .views import Views, as_status

if TYPE_CHECKING:
    from ..cached_io import CachedIO
    from ..encrypted_io import EncryptedIO
    from ..readplan import ReadPlanner
    from ..stacks import Stacks

__all__ = ["Markers", "DIR_CONTENT_TYPE"]

DIR_CONTENT_TYPE = "application/x-directory"
_DELETE_BATCH = 1000


class Markers:
    """The namespace's S3 side for one filesystem instance (see the module docstring)."""

    def __init__(
        self,
        s3: S3Client,
        transport: Callable[[str], ObjectStore],
        options: Options,
        views: Views,
        status: StatusFactory,
        encrypted: EncryptedIO,
        cached: CachedIO,
        reads: ReadPlanner,
    ):
        self.s3 = s3
        self.transport = transport  # the object-store transport of a path
        self.options = options
        self.views = views
        self.status = status
        self.encrypted = encrypted
        self.cached = cached
        self.reads = reads  # statuses reads reuse: forgotten when a path changes
        self.stacks: Stacks  # the stack of each path (the filesystem's, set once it is made)
        # the ephemeral tier's paths, and what its staged rows say of a path neither S3 nor
        # the local tier knows (set by the filesystem's wiring, where the tier is on)
        self.in_tier: Callable[[str], bool] = _nowhere
        self.beside: Callable[[str], Awaitable[dict | None]] = _nothing_beside
        self.tier_replication = options.ephemeral.replication
        self.reset()

    def reset(self) -> None:
        """Forget what was checked (a new instance, or a forked child)."""
        self._checked_dirs: set[str] = set()  # directories whose markers are cleared
        # directories whose markers a write is deleting now, and what says it is done
        self._clearing: dict[str, asyncio.Future[None]] = {}
        self._not_files: set[str] = set()  # ancestors known not to be files
        self._inflight: dict = {}  # checks under way, shared by concurrent writers

    async def once(self, key: tuple, make) -> Any:
        """Run ``make()`` once per ``key`` at a time; concurrent callers share its result."""
        task = self._inflight.get(key)
        if task is None:
            task = self._inflight[key] = asyncio.ensure_future(make())
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def check_parents(self, path: str) -> None:
        """Refuse to create ``path`` below a file; one HEAD per directory per instance (the
        tier's ancestors are the tier's to check: it refuses a write below its own files)."""
        unchecked = [
            d for d in paths.ancestors(path) if d not in self._not_files and not self.in_tier(d)
        ]
        if not unchecked:
            return

        async def is_file(d: str) -> bool:
            try:
                await self.transport(d).head(d)
                return True
            except FileNotFoundError:
                self._not_files.add(d)
                return False

        results = await asyncio.gather(
            *(self.once(("is_file", d), lambda d=d: is_file(d)) for d in unchecked)
        )
        for d, blocked in zip(unchecked, results, strict=True):
            if blocked:
                raise not_a_directory(path, f"{d!r} is a file, so nothing can be created below it")

    async def refuse_directory(self, path: str, bucket: str, key: str) -> None:
        """Refuse to write a file at ``path`` if it is a directory: something below it in
        its stack's probe (with the consistent view on, the merged listing: a directory
        whose children's listing is delayed is still one, one whose deleted children S3
        still lists is gone), or the view's live row of it (made, not listed yet)."""
        probes: list[Awaitable[Any]] = [self.first_keys(path, key + "/")]
        view = self.views(path)
        if view is not None:
            probes.append(run_blocking(view.store.get, path))
        found = await asyncio.gather(*probes)
        row = found[1] if view is not None else None
        if found[0] or (row is not None and row.live and row.is_dir):
            raise is_a_directory(path, "a directory has this name; pick another path")

    async def after_create(self, path: str) -> None:
        """A child arrived: remove ancestors' markers (as S3A does), once per directory."""
        self.cached.forget(path)  # blocks of what was there before
        self.reads.forget(path)
        self._not_files.discard(path)  # it may be a file now: checked again below it
        parent = paths.parent(path)
        if parent in self._checked_dirs or not paths.split(parent)[1] or self.in_tier(path):
            return  # (a tier path: S3's markers stay, for the machines the tier is not on)
        await self._clear_markers(path)

    async def _clear_markers(self, path: str) -> None:
        """Delete the markers of ``path``'s ancestors not cleared yet, in one request.

        An ancestor another write is clearing is waited for, not deleted again: writes into
        20 new subdirectories of one new directory asked for its markers 20 times at once,
        and an object store may serve concurrent deletes of one key in turn (SeaweedFS:
        1-4 s each, so a ``pipe`` of 2,000 files took 5.5-11 s where 1.5 s was due).  If
        that other write fails, its directories are taken over here."""
        bucket = paths.split(path)[0]
        while True:
            # (none is in the tier: an ancestor is only if the path is, and after_create
            # returned for a tier path)
            dirs = [d for d in paths.ancestors(path) if d not in self._checked_dirs]
            others = {self._clearing[d] for d in dirs if d in self._clearing}
            mine = [d for d in dirs if d not in self._clearing]
            if mine:
                done = asyncio.get_running_loop().create_future()
                self._clearing.update(dict.fromkeys(mine, done))
                try:
                    keys = [mk for d in mine for mk in paths.marker_keys(paths.split(d)[1])]
                    await self.delete_keys(path, bucket, keys)
                    if len(self._checked_dirs) > 100_000:
                        self._checked_dirs.clear()
                    self._checked_dirs.update(mine)
                finally:
                    for d in mine:
                        if self._clearing.get(d) is done:
                            del self._clearing[d]
                    done.set_result(None)  # its waiters look again: a failure left them to do
            if not others:
                return
            await asyncio.wait(others)  # (wait, unlike gather, cancels none of them)

    async def keep_parent(self, path: str) -> None:
        """A child went: if its parent is now empty, write the parent's marker (HDFS keeps it)."""
        parent = paths.parent(path)
        key = paths.split(parent)[1]
        if not key:
            return
        # the stack's probe (with the view on, merged: S3 may still list the child that
        # just went, or not list yet one just written).  Its own marker does not count: it
        # may be a deletion S3 still lists, so it is written anew.
        if any(k != key + "/" for k in await self.first_keys(parent, key + "/", limit=2)):
            return
        view = self.views(parent)
        await self.transport(parent).put(parent + "/", b"", content_type=DIR_CONTENT_TYPE)
        self._checked_dirs.discard(parent)
        if view is not None:
            await view.record_directory(parent)  # a directory S3 listed only by its files

    def forget_dirs(self, root: str) -> None:
        self.reads.forget_below(root)
        self._checked_dirs = {d for d in self._checked_dirs if not paths.is_within(d, root)}
        self._not_files = {d for d in self._not_files if not paths.is_within(d, root)}

    async def put_marker(self, path: str) -> None:
        await self.check_parents(path)
        await self.transport(path).put(path + "/", b"", content_type=DIR_CONTENT_TYPE)
        await self.after_create(path)
        view = self.views(path)
        if view is not None:
            await view.record_directory(path)

    # Bucket verbs stay on the S3 client: a bucket is no object, and the store protocol
    # (objects named bucket/key) has no verb that makes, probes or removes one.
    async def make_bucket(self, path: str, bucket: str, region: str | None) -> None:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        region = region or self.options.s3.region
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        await self.s3.call("create_bucket", path, **kwargs)

    async def bucket_exists(self, bucket: str) -> bool:
        try:
            await self.s3.call("head_bucket", bucket, Bucket=bucket)
            return True
        except FileNotFoundError:
            return False

    async def delete_keys(
        self,
        path: str,
        bucket: str,
        keys: list[str],
        confirmed: list[str] | None = None,
        callback=DEFAULT_CALLBACK,
    ) -> None:
        """Delete ``keys`` in batches; ``confirmed`` collects the keys S3 said it deleted
        (filled even when a batch fails, so the caller records exactly those)."""
        keys = list(dict.fromkeys(keys))
        for k in keys:
            self.reads.forget(f"{bucket}/{k}")
        batches = [keys[i : i + _DELETE_BATCH] for i in range(0, len(keys), _DELETE_BATCH)]
        semaphore = asyncio.Semaphore(self.options.s3.max_concurrency)
        store = self.transport(path)

        async def one(batch: list[str]) -> None:
            async with semaphore:
                result = await store.delete([f"{bucket}/{k}" for k in batch])
            if confirmed is not None:
                confirmed.extend(paths.split(p)[1] for p in result.deleted)
            result.raise_errors(path)
            callback.relative_update(len(batch))

        # every batch runs to its end (the confirmed keys of each are recorded) before
        # the first failure is raised
        outcomes = await asyncio.gather(*(one(b) for b in batches), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def first_keys(self, path: str, prefix: str, limit: int = 1) -> list[str]:
        """Up to ``limit`` keys under ``prefix`` of ``path``'s bucket, as its persistent
        stack lists them (one short LIST, the probe of a directory's children or markers;
        with the consistent view on, less what it tombstoned, plus its live rows)."""
        bucket = paths.split(path)[0]
        found: list[str] = []
        async for page in self.persistent_stack(path).list(f"{bucket}/{prefix}", limit=limit):
            found += [o.key for o in page.objects]
            found += [paths.split(p)[1] for p in page.prefixes]
        return found

    async def path_status(self, path: str) -> dict | None:
        """``path``'s status through its stack (None: nothing there): a file's from the
        stack's ``head`` (checked against the consistent view; the plaintext size under
        CSE), else a directory's (:meth:`dir_probe`), else what the tier's staged rows
        say (:attr:`beside`).  A tier path's status is the tier store's, through the
        router, marked ``ephemeral``."""
        stack = self.stacks.for_path(path)
        tier = self.in_tier(path)
        try:
            meta = await (stack.head(path) if tier else self._file_meta(path, stack))
        except FileNotFoundError:
            found = await self.dir_probe(path, *paths.split(path), stack)
            if found is None:
                return await self.beside(path)
            if tier:
                found["ephemeral"] = True
            return found
        info = self.file_from_meta(meta)
        if tier:  # local plaintext (sealed at rest by the tier itself)
            info.update(ephemeral=True, replication=self.tier_replication)
            return info
        if is_encrypted(meta.metadata):  # the tail's GET met an envelope (past the stack)
            return with_sealed(info, await self.encrypted.store(path).describe(path, meta))
        for layer in self.stacks.layers(path):
            cse = layer if isinstance(layer, EncryptingStore) else None
            if isinstance(layer, EnvelopeGuard) and layer.sealing(path):
                cse = layer.decrypting  # sealed elsewhere, where no CSE is configured
            if cse is not None:
                # the version the head just described (remembered there: no request)
                return with_sealed(info, await cse.sealed(path, meta.etag))
        return info

    async def _file_meta(self, path: str, stack: ObjectStore) -> ObjectMeta:
        """The stack's ``head`` of ``path``; where reads fetch a plaintext file's tail with
        its status (no CSE, no block cache: the transport, maybe under the consistent
        view), that one GET answers for the transport (its tail kept for the reads)."""
        if not self.reads.fetches_tail(path):
            return await stack.head(path)

        async def with_tail() -> ObjectMeta:
            meta, tail = await self.transport(path).head_tail(path, self.reads.tail_bytes(path))
            self.reads.keep_tail(meta, tail)
            return meta

        for layer in self.stacks.layers(path):
            if isinstance(layer, ConsistentStore):
                return await layer.checked_head(path, with_tail)
        return await with_tail()

    def file_from_meta(self, meta: ObjectMeta) -> dict[str, Any]:
        return self.status.file(
            meta.path,
            meta.size,
            etag=meta.etag,
            last_modified=meta.last_modified,
            version_id=meta.version_id,
            ContentType=meta.content_type,
        )

    async def dir_probe(
        self, path: str, bucket: str, key: str, stack: ObjectStore | None = None
    ) -> dict | None:
        """Directory status if ``path`` is a directory: something below it (its ``dir/``
        marker or children: one short LIST through the stack, so the consistent view
        leaves out deletions S3 still lists and adds writes it does not list yet), its
        EMRFS ``dir_$folder$`` marker, or, with the consistent view on, its live row."""
        stack = stack or self.stacks.for_path(path)
        if self.in_tier(path):  # real directories: no EMRFS markers, no rows of the view
            try:
                return await self._listed_dir(path, bucket, key, stack)
            except FileNotFoundError:  # the tier holds nothing in this bucket
                return None
        view = self.views(path)
        # the view's row of the directory, read while the stack lists below it
        reading = None
        if view is not None:
            reading = asyncio.ensure_future(run_blocking(view.store.get, path))
        try:
            listed = await self._listed_dir(path, bucket, key, stack)
            if listed is not None:
                return listed
            row = None if reading is None else await reading
        finally:
            if reading is not None:
                reading.cancel()
        if row is not None and row.is_dir and row.deleted:
            return None  # deleted: a folder marker S3 still shows is a deletion it lingers on
        try:
            head = await stack.head(path + paths.EMRFS_FOLDER_SUFFIX)
        except FileNotFoundError:
            pass
        else:
            return self.status.directory(
                path, marker=key + paths.EMRFS_FOLDER_SUFFIX, last_modified=head.last_modified
            )
        if row is not None and row.is_dir:  # recorded (mkdir) before S3 shows its marker
            return as_status(self.status, row.info())
        return None

    async def _listed_dir(
        self, path: str, bucket: str, key: str, stack: ObjectStore
    ) -> dict | None:
        """Directory status if the stack lists something below ``path`` (one short LIST:
        its ``dir/`` marker, which dates it, or a child)."""
        async for page in stack.list(f"{bucket}/{key}/", limit=1):
            if page.objects or page.prefixes:
                first = page.objects[0] if page.objects else None
                marker = first.key if first is not None and first.key == key + "/" else None
                moment = first.last_modified if first is not None and marker else None
                return self.status.directory(path, marker=marker, last_modified=moment)
        return None

    def persistent_stack(self, path: str) -> ObjectStore:
        """``path``'s stack below the tier's router (an override's own region of a
        listing: the router merged the tier's entries already)."""
        stack = self.stacks.for_path(path)
        return stack.persistent if isinstance(stack, RoutingStore) else stack

    async def listed(self, path: str, list_prefix: str, *, recursive: bool) -> Listing:
        """What the stack of directory ``path`` lists from ``list_prefix`` (a key prefix
        of its bucket; one level, or the whole tree if ``recursive``) as files and
        directories (markers of both kinds, common prefixes, implied parents; the
        consistent view's checks and table-only directories; CSE plaintext lengths).
        Where an override starts inside ``path``, the paths below it are listed by their
        own stack (their own CSE lengths and instruction files)."""
        bucket, key = paths.split(path)
        listing = Listing()
        scope = f"{bucket}/{list_prefix}"
        regions = _Regions(self.options, path, scope)
        # through the router: the tier's entries merged in (out/_temporary), or alone
        pages = self.stacks.for_path(path).list(scope, delimiter=None if recursive else "/")
        try:
            async for page in read_ahead(pages):
                if regions:
                    page = await regions.outside(page, recursive, self.persistent_stack)
                add_page(listing, bucket, key, page, self.status, recursive=recursive)
        except FileNotFoundError:
            if not self.in_tier(path):
                raise
            return listing  # the tier holds nothing in this bucket
        for region in regions.listed_apart(recursive):
            own = self.persistent_stack(region)
            async for page in own.list(max(scope, region + "/"), delimiter=None):
                add_page(
                    listing, bucket, key, regions.inside(page, region), self.status, recursive=True
                )
        return listing

    async def child_dirs(self, parent: str) -> set[str]:
        bucket, key = paths.split(parent)
        if not bucket:
            return set()
        try:  # under the consistent view, subdirectories whose listing is delayed too
            listing = await self.listed(parent, key + "/" if key else "", recursive=False)
        except FileNotFoundError:  # no such bucket: the writes will say so
            return set()
        return set(listing.dirs)


def _nowhere(path: str) -> bool:
    return False


async def _nothing_beside(path: str) -> dict | None:
    return None


class _Regions:
    """The overrides that start strictly inside a listed directory, and which of them
    owns each listed path (the longest that holds it): such paths are read by their
    own stack, not the listed directory's."""

    def __init__(self, options: Options, path: str, scope: str):
        self.scope = scope
        self.prefixes = sorted(
            (
                prefix
                for prefix, _ in options.overrides
                if prefix != path
                and paths.is_within(prefix, path)
                and (scope.startswith(prefix + "/") or (prefix + "/").startswith(scope))
            ),
            key=len,
            reverse=True,
        )

    def __bool__(self) -> bool:
        return bool(self.prefixes)

    def owner(self, name: str) -> str | None:
        for prefix in self.prefixes:  # longest first
            if name == prefix or name.startswith(prefix + "/"):
                return prefix
        return None

    async def outside(
        self, page: ListPage, recursive: bool, stack: Callable[[str], ObjectStore]
    ) -> ListPage:
        """``page`` without the objects a region owns: listed apart (recursive), or, one
        level down, asked of their own stack (an override naming one object)."""
        objects: list[ObjectMeta] = []
        for meta in page.objects:
            if self.owner(meta.path) is None:
                objects.append(meta)
            elif not recursive:
                try:
                    objects.append(await stack(meta.path).head(meta.path))
                except FileNotFoundError:
                    pass
        return ListPage(objects, page.prefixes)

    def listed_apart(self, recursive: bool) -> list[str]:
        return self.prefixes if recursive else []

    def inside(self, page: ListPage, region: str) -> ListPage:
        """``page`` (of ``region``'s own stack) cut to what ``region`` owns in the scope."""
        return ListPage(
            [
                m
                for m in page.objects
                if m.path.startswith(self.scope) and self.owner(m.path) == region
            ],
            [p for p in page.prefixes if p.startswith(self.scope)],
        )

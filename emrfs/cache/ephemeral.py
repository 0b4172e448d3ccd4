"""The ephemeral tier: files and directories kept only in local blocks, never in S3.

Like HDFS on an EMR cluster: fast, optionally replicated across cache
directories, and gone when the tier terminates.

Layout (in each of the first ``replication`` cache directories)::

    <dir>/eph/ns/<bucket>/<key...>      the namespace: real directories, and one
                                        small JSON manifest per file
    <dir>/eph/members.lock              flock: shared by every process using the tier
    <dir>/eph/created                   creation time (for ``lifetime_seconds``)

File data lives in the block store's ``e`` space under a random file id, with
``replication`` copies in distinct directories, never evicted.

Guarantees with several processes on one machine (Spark's Python workers):

* every namespace change is one POSIX operation per replica (manifest written
  to a temp name, then renamed; ``rename`` is ``os.rename``): a reader sees a
  file whole or not at all, never half written; concurrent writers of one
  path: the last ``close`` wins;
* a file's blocks are written before its manifest, so a writer killed
  half-way leaves no visible file (its blocks go when the tier terminates);
* the tier terminates when the last process using it exits (or its lifetime
  ends, or ``emrfs cache clear --ephemeral``); a process that joins after
  every earlier user died starts with an empty tier;
* replicas of the namespace are updated one after the other, so a crash in
  the middle of a rename can leave them disagreeing; reads use the first
  directory that still exists.
* reading a file that another process deletes or overwrites at the same time
  may fail with ``FileNotFoundError``.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import io
import json
import os
import shutil
import time
import uuid
import weakref
from collections.abc import Callable, Iterator

from ..errors import IntegrityError, exists, is_a_directory, not_a_directory, not_empty, not_found
from ..paths import validate
from .store import BlockId, BlockStore, makedirs_private

TMP_MARK = ".emrfs~tmp~"
TRASH_MARK = ".emrfs~trash~"


class EphemeralTier:
    """Files and directories of the ephemeral tier over a :class:`BlockStore`.

    Parameters
    ----------
    store
        The block store (its directories hold the tier too).
    block_size
        Size of the blocks files are cut into.
    replication
        Copies of every block and of the namespace, in distinct directories.
    lifetime_seconds
        0: the tier ends when the last process using it exits; > 0: it ends
        this many seconds after it was created (checked on every operation).
    sealer
        A :class:`~emrfs.crypto.atrest.BlockSealer` to encrypt the tier's
        blocks; ``encrypt=True`` without one makes a key on ``/dev/shm`` that is
        destroyed with the tier.
    must_seal
        ``must_seal(path)`` is True for paths whose bytes may never be on local
        disk in plaintext (client-side encrypted paths): their files are sealed
        even with ``encrypt`` off (same key as above), including a file renamed
        to such a path.
    clock
        ``time.time`` replacement for tests.
    """

    def __init__(self, store: BlockStore, *, block_size: int, replication: int = 1,
                 lifetime_seconds: float = 0.0, encrypt: bool = False, sealer=None,
                 must_seal: Callable[[str], bool] | None = None,
                 clock: Callable[[], float] = time.time):
        if replication < 1:
            raise ValueError(f"ephemeral.replication must be at least 1, got {replication}")
        if replication > len(store.directories):
            raise ValueError(
                f"ephemeral.replication is {replication} but there are only "
                f"{len(store.directories)} cache directories; add cache.directories or lower it")
        self.store = store
        self.block_size = block_size
        self.replication = replication
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock
        self._bases = [os.path.join(d, "eph") for d in store.directories[:replication]]
        self._key = None
        self.encrypt = encrypt or sealer is not None or store.encrypt_all
        self._sealer = sealer
        self._must_seal = must_seal or _never
        self._pid = -1
        self._lock_fd = -1
        self._join()

    # --- lifetime ---------------------------------------------------------------------

    def _join(self) -> None:
        """Become a member: a shared flock held for as long as this process uses the tier."""
        base = self._bases[0]
        makedirs_private(base)
        fd = os.open(os.path.join(base, "members.lock"),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        if alone and self.lifetime_seconds <= 0:
            self._wipe()  # every earlier user is gone: so is their tier
        fcntl.flock(fd, fcntl.LOCK_SH)
        self._lock_fd, self._pid = fd, os.getpid()
        for b in self._bases:
            makedirs_private(os.path.join(b, "ns"))
        created = os.path.join(base, "created")
        if not os.path.exists(created):
            _atomic_write(created, json.dumps({"created": self._clock()}).encode())
        self._check_lifetime()
        atexit.register(_leave_at_exit, weakref.ref(self))

    def _ensure_member(self) -> None:
        if self._pid != os.getpid():  # a forked child: join on its own
            self._join()
        self._check_lifetime()

    def _check_lifetime(self) -> None:
        if self.lifetime_seconds <= 0:
            return
        try:
            with open(os.path.join(self._bases[0], "created")) as f:
                created = float(json.load(f)["created"])
        except (OSError, ValueError, KeyError):
            return
        if self._clock() - created >= self.lifetime_seconds:
            self.terminate()

    def leave(self) -> None:
        """Stop using the tier; the last process to leave (lifetime 0) terminates it."""
        if self._pid != os.getpid() or self._lock_fd < 0:
            return
        fd, self._lock_fd = self._lock_fd, -1
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
            if self.lifetime_seconds <= 0:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # others still use it
                self._wipe()
        finally:
            os.close(fd)

    def terminate(self) -> None:
        """Remove every file of the tier now, whoever uses it."""
        self._wipe()
        for b in self._bases:
            makedirs_private(os.path.join(b, "ns"))
        _atomic_write(os.path.join(self._bases[0], "created"),
                      json.dumps({"created": self._clock()}).encode())

    def _wipe(self) -> None:
        self.store.clear(("e",))
        for b in self._bases:
            for name in ("ns", "created"):
                p = os.path.join(b, name)
                if os.path.isdir(p):
                    _rmtree_atomic(p)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(p)
        key, self._key = self._key, None
        if key is not None:
            key.destroy()
            self._sealer = None

    def sealer_for(self, path: str):
        """The sealer for a file written at ``path``, or None when it may stay plaintext."""
        if self.encrypt or self._must_seal(path):
            return self._get_sealer()
        return None

    def _get_sealer(self):
        """The tier's sealer (made on first use; read sealed files with it whatever ``encrypt``)."""
        if self._sealer is None:
            from ..crypto.atrest import BlockSealer, CacheKey

            self._key = CacheKey.shared_memory("eph-" + uuid.uuid5(
                uuid.NAMESPACE_URL, self._bases[0]).hex)
            self._sealer = BlockSealer(self._key)
        return self._sealer

    # --- namespace helpers ------------------------------------------------------------

    def _roots(self) -> list[str]:
        live = [os.path.join(b, "ns") for b in self._bases if os.path.isdir(os.path.join(b, "ns"))]
        if not live:
            raise not_found(self._bases[0], "every directory of the ephemeral tier is gone")
        return live

    def _local(self, root: str, path: str) -> str:
        norm = validate(path)
        if not norm:
            return root
        return os.path.join(root, *norm.split("/"))

    def _manifest(self, path: str) -> dict:
        local = self._local(self._roots()[0], path)
        try:
            with open(local, "rb") as f:
                return json.loads(f.read())
        except IsADirectoryError:
            raise is_a_directory(path, "it is a directory in the ephemeral tier") from None
        except (FileNotFoundError, NotADirectoryError):
            raise not_found(path) from None
        except ValueError as exc:
            raise IntegrityError(f"ephemeral manifest of {path!r} is damaged", path) from exc

    def _refuse_file_ancestor(self, norm: str) -> None:
        """HDFS: nothing can be created below a file (NotADirectoryError, as for S3 paths)."""
        root = self._roots()[0]
        parts = norm.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            above = "/".join(parts[:i])
            if os.path.isfile(self._local(root, above)):
                raise not_a_directory(norm, f"{above!r} is a file in the ephemeral tier, so "
                                            "nothing can be created below it")

    # --- verbs ------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        self._ensure_member()
        return os.path.lexists(self._local(self._roots()[0], path))

    def isdir(self, path: str) -> bool:
        return os.path.isdir(self._local(self._roots()[0], path))

    def info(self, path: str) -> dict:
        """``{"name", "size", "type", "mtime", "replication", "ephemeral"}`` of a file or directory."""
        self._ensure_member()
        norm = validate(path)
        local = self._local(self._roots()[0], norm)
        try:
            st = os.stat(local)
        except (FileNotFoundError, NotADirectoryError):
            raise not_found(norm) from None
        if os.path.isdir(local):
            return {"name": norm, "size": 0, "type": "directory", "mtime": st.st_mtime,
                    "replication": self.replication, "ephemeral": True}
        m = self._manifest(norm)
        return {"name": norm, "size": m["size"], "type": "file", "mtime": m["mtime"],
                "replication": self.replication, "ephemeral": True}

    def ls(self, path: str, detail: bool = True) -> list:
        """Entries directly under directory ``path`` (or the file itself), sorted by name."""
        self._ensure_member()
        norm = validate(path)
        local = self._local(self._roots()[0], norm)
        if os.path.isfile(local):
            entries = [self.info(norm)]
        else:
            try:
                names = sorted(n for n in os.listdir(local)
                               if TMP_MARK not in n and TRASH_MARK not in n)
            except (FileNotFoundError, NotADirectoryError):
                raise not_found(norm) from None
            entries = []
            for n in names:
                with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                    entries.append(self.info(f"{norm}/{n}" if norm else n))
        return entries if detail else [e["name"] for e in entries]

    def walk_files(self, path: str) -> Iterator[str]:
        """Every file at or below ``path``."""
        norm = validate(path)
        local = self._local(self._roots()[0], norm)
        if os.path.isfile(local):
            yield norm
            return
        for dirpath, dirnames, filenames in os.walk(local):
            dirnames[:] = [d for d in dirnames if TRASH_MARK not in d]
            rel = os.path.relpath(dirpath, local)
            for n in filenames:
                if TMP_MARK not in n:
                    yield "/".join(p for p in (norm, "" if rel == "." else rel, n) if p)

    def mkdir(self, path: str, create_parents: bool = True, exist_ok: bool = True) -> None:
        self._ensure_member()
        norm = validate(path)
        self._refuse_file_ancestor(norm)
        for root in self._roots():
            local = self._local(root, norm)
            if os.path.isfile(local):
                raise exists(norm, "a file of that name exists in the ephemeral tier")
            if os.path.isdir(local) and not exist_ok:
                raise exists(norm)
            if create_parents:
                makedirs_private(local)
            else:
                try:
                    os.mkdir(local, 0o700)
                    os.chmod(local, 0o700)  # exactly, whatever the umask
                except FileExistsError:
                    pass
                except FileNotFoundError:
                    raise not_found(norm, "its parent does not exist") from None

    def open_write(self, path: str, overwrite: bool = True) -> EphemeralWriter:
        """A binary writer; the file appears (whole) when the writer is closed."""
        self._ensure_member()
        norm = validate(path)
        local = self._local(self._roots()[0], norm)
        if os.path.isdir(local):
            raise is_a_directory(norm, "cannot write a file over a directory")
        self._refuse_file_ancestor(norm)
        if not overwrite and os.path.lexists(local):
            raise exists(norm)
        return EphemeralWriter(self, norm)

    def write_bytes(self, path: str, data: bytes) -> None:
        with self.open_write(path) as w:
            w.write(data)

    def open_read(self, path: str) -> EphemeralReader:
        """A seekable binary reader of a whole file."""
        self._ensure_member()
        norm = validate(path)
        return EphemeralReader(self, norm, self._manifest(norm))

    #: The reader the filesystem streams to S3 when a file is renamed out of the tier.
    open_for_upload = open_read

    def read_bytes(self, path: str, start: int = 0, end: int | None = None) -> bytes:
        with self.open_read(path) as r:
            r.seek(start)
            return r.read(-1 if end is None else max(0, end - start))

    def rename(self, src: str, dst: str) -> None:
        """Rename a file or directory inside the tier (a local metadata change).

        A file replaces an existing file at ``dst``; a directory needs ``dst`` absent.
        """
        self._ensure_member()
        s, d = validate(src), validate(dst)
        if s == d:
            return
        self._refuse_file_ancestor(d)  # also a file renamed below itself
        if d.startswith(s + "/"):
            raise ValueError(f"cannot rename {s!r} into itself ({d!r})")
        roots = self._roots()
        src0, dst0 = self._local(roots[0], s), self._local(roots[0], d)
        if not os.path.lexists(src0):
            raise not_found(s)
        replaced = None
        if os.path.isdir(src0):
            if os.path.lexists(dst0):
                raise exists(d, "rename a directory only to a path that does not exist")
        elif os.path.isdir(dst0):
            raise is_a_directory(d, "a directory of that name exists")
        elif os.path.isfile(dst0):
            replaced = self._manifest(d)
        for root in roots:
            a, b = self._local(root, s), self._local(root, d)
            makedirs_private(os.path.dirname(b))
            try:
                os.rename(a, b)
            except FileNotFoundError:
                if root == roots[0]:
                    raise not_found(s) from None
            except NotADirectoryError:
                raise not_a_directory(d, "a parent of it is a file") from None
        if replaced is not None:
            self._drop_blocks(replaced)
        self._seal_moved(d)

    def _seal_moved(self, path: str) -> None:
        """Files renamed to where they must be sealed are rewritten sealed (a rename moves
        only the manifest, so the blocks would otherwise stay as they were written)."""
        if self.encrypt or self._must_seal is _never:
            return  # every file is sealed already, or none must be: no walk
        for f in list(self.walk_files(path)):
            if self.sealer_for(f) is None:
                continue
            manifest = self._manifest(f)
            if manifest.get("sealed"):
                continue
            with EphemeralReader(self, f, manifest) as r, EphemeralWriter(self, f) as w:
                while chunk := r.read(8 * self.block_size):
                    w.write(chunk)

    def remove_empty_dirs(self, path: str, top: str) -> None:
        """Remove directory ``path``, then its ancestors up to ``top``, while they are empty.

        ``rmdir`` is the test, so a directory something arrives in stays (and a
        writer that loses its fresh parent makes it again: see ``_publish``).
        """
        norm, top = validate(path), validate(top)
        roots = self._roots()
        while norm == top or norm.startswith(top + "/"):
            try:
                os.rmdir(self._local(roots[0], norm))
            except FileNotFoundError:
                pass
            except OSError:
                return  # not empty, or not a directory
            for root in roots[1:]:
                with contextlib.suppress(OSError):
                    os.rmdir(self._local(root, norm))
            if norm == top or "/" not in norm:
                return
            norm = norm.rpartition("/")[0]

    def delete(self, path: str, recursive: bool = False) -> None:
        """Delete a file, or a directory (non-empty ones with ``recursive=True``)."""
        self._ensure_member()
        norm = validate(path)
        roots = self._roots()
        local = self._local(roots[0], norm)
        if not os.path.lexists(local):
            raise not_found(norm)
        if os.path.isdir(local):
            if not recursive and any(n for n in os.listdir(local) if TMP_MARK not in n):
                raise not_empty(norm, "use recursive=True")
            manifests = [self._manifest(f) for f in self.walk_files(norm)]
            for root in roots:
                target = self._local(root, norm)
                if os.path.isdir(target):
                    _rmtree_atomic(target)
        else:
            manifests = [self._manifest(norm)]
            for root in roots:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._local(root, norm))
        for m in manifests:
            self._drop_blocks(m)

    def _drop_blocks(self, manifest: dict) -> None:
        self.store.drop_owner("e", manifest["id"])

    # --- used by the writer and reader -----------------------------------------------

    def _block(self, file_id: str, index: int) -> BlockId:
        return BlockId("e", file_id, "0", index)

    def _publish(self, path: str, manifest: dict) -> None:
        replaced = None
        roots = self._roots()
        local0 = self._local(roots[0], path)
        if os.path.isfile(local0):
            with contextlib.suppress(FileNotFoundError, IntegrityError):
                replaced = self._manifest(path)
        body = json.dumps(manifest).encode()
        for root in roots:
            local = self._local(root, path)
            for attempt in range(3):
                makedirs_private(os.path.dirname(local))
                if os.path.isdir(local):
                    raise is_a_directory(path, "a directory of that name was created meanwhile")
                try:
                    _atomic_write(local, body)
                    break
                except FileNotFoundError:  # an empty parent was pruned meanwhile: again
                    if attempt == 2:
                        raise
        if replaced is not None and replaced.get("id") != manifest["id"]:
            self._drop_blocks(replaced)


class EphemeralWriter(io.RawIOBase):
    """Streams a file into tier blocks; publishes it on ``close()``."""

    def __init__(self, tier: EphemeralTier, path: str):
        super().__init__()
        self.tier, self.path = tier, path
        self.file_id = uuid.uuid4().hex
        self._sealer = tier.sealer_for(path)  # decided once: every block alike
        self._buf = bytearray()
        self._index = 0
        self._size = 0
        self._done = False

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.closed or self._done:
            raise ValueError(f"write to closed ephemeral file {self.path!r}")
        view = memoryview(data).cast("B")
        self._buf += view
        bs = self.tier.block_size
        while len(self._buf) >= bs:
            self._put(memoryview(self._buf)[:bs])
            del self._buf[:bs]
        return len(view)

    def tell(self) -> int:
        return self._size + len(self._buf)

    def _put(self, block) -> None:
        t = self.tier
        sealer = self._sealer
        t.store.put(t._block(self.file_id, self._index), block, copies=t.replication,
                    evictable=False, sealed=sealer is not None, sealer=sealer, where=self.path)
        self._index += 1
        self._size += len(block)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._done:
                self._done = True
                try:
                    if self._buf or self._index == 0:
                        self._put(memoryview(self._buf))
                    self._buf = bytearray()
                    self.tier._publish(self.path, {
                        "id": self.file_id, "size": self._size, "mtime": self.tier._clock(),
                        "block_size": self.tier.block_size, "blocks": self._index,
                        "sealed": self._sealer is not None,
                    })
                except BaseException:
                    self.tier.store.drop_owner("e", self.file_id)
                    raise
        finally:
            super().close()

    def abort(self) -> None:
        """Drop what was written; nothing appears."""
        self._done = True
        self.tier.store.drop_owner("e", self.file_id)
        super().close()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        else:
            self.close()


class EphemeralReader(io.RawIOBase):
    """A seekable reader over a file's blocks (tries each replica)."""

    def __init__(self, tier: EphemeralTier, path: str, manifest: dict):
        super().__init__()
        self.tier, self.path, self.manifest = tier, path, manifest
        self.size = int(manifest["size"])
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position in {self.path!r}")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self._pos + n)
        if self._pos >= end:
            return b""
        bs = int(self.manifest["block_size"])
        parts = []
        pos = self._pos
        t = self.tier
        sealer = t._get_sealer() if self.manifest.get("sealed") else None
        while pos < end:
            i = pos // bs
            lo = pos - i * bs
            hi = min(end - i * bs, bs)
            data = t.store.read(t._block(self.manifest["id"], i), lo, hi, copies=t.replication,
                                where=self.path, sealer=sealer)
            if data is None:
                raise not_found(self.path, f"block {i} of this ephemeral file is lost from every "
                                           "replica (deleted, evicted or its directory removed)")
            parts.append(data)
            pos += len(data)
        self._pos = end
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


def _atomic_write(path: str, body: bytes) -> None:
    tmp = os.path.join(os.path.dirname(path), f"{TMP_MARK}{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with open(fd, "wb") as f:
        f.write(body)
    os.replace(tmp, path)


def _rmtree_atomic(path: str) -> None:
    """Take ``path`` out of the namespace at once (rename), then delete it."""
    trash = os.path.join(os.path.dirname(path), f"{TRASH_MARK}{uuid.uuid4().hex}")
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _never(path: str) -> bool:
    return False


def _leave_at_exit(ref) -> None:
    tier = ref()
    if tier is not None:
        with contextlib.suppress(Exception):
            tier.leave()

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

import contextlib
import json
import os
from collections.abc import Iterator

from ..errors import (
    IntegrityError,
    exists,
    is_a_directory,
    not_a_directory,
    not_empty,
    not_found,
)
from ..paths import validate
from .diskutil import makedirs_private
from .ephemeral_io import EphemeralReader, EphemeralWriter
from .ephemeral_life import (
    TMP_MARK,
    TRASH_MARK,
    TierMembership,
    atomic_write,
    rmtree_atomic,
    seal_nothing,
)

__all__ = ["TMP_MARK", "TRASH_MARK", "EphemeralReader", "EphemeralTier", "EphemeralWriter"]


class EphemeralTier(TierMembership):
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
                raise not_a_directory(
                    norm,
                    f"{above!r} is a file in the ephemeral tier, so "
                    "nothing can be created below it",
                )

    # --- verbs ------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        self._ensure_member()
        return os.path.lexists(self._local(self._roots()[0], path))

    def isdir(self, path: str) -> bool:
        return os.path.isdir(self._local(self._roots()[0], path))

    def info(self, path: str) -> dict:
        """A file's or directory's ``name, size, type, mtime, replication, ephemeral``."""
        self._ensure_member()
        norm = validate(path)
        local = self._local(self._roots()[0], norm)
        try:
            st = os.stat(local)
        except (FileNotFoundError, NotADirectoryError):
            raise not_found(norm) from None
        if os.path.isdir(local):
            return {
                "name": norm,
                "size": 0,
                "type": "directory",
                "mtime": st.st_mtime,
                "replication": self.replication,
                "ephemeral": True,
            }
        m = self._manifest(norm)
        return {
            "name": norm,
            "size": m["size"],
            "type": "file",
            "mtime": m["mtime"],
            "replication": self.replication,
            "ephemeral": True,
        }

    def ls(self, path: str, detail: bool = True) -> list:
        """Entries directly under directory ``path`` (or the file itself), sorted by name."""
        self._ensure_member()
        norm = validate(path)
        local = self._local(self._roots()[0], norm)
        if os.path.isfile(local):
            entries = [self.info(norm)]
        else:
            try:
                names = sorted(
                    n for n in os.listdir(local) if TMP_MARK not in n and TRASH_MARK not in n
                )
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

    def open_write(
        self, path: str, overwrite: bool = True, extra: dict | None = None
    ) -> EphemeralWriter:
        """A binary writer; the file appears (whole) when the writer is closed.  ``extra``:
        more fields for the file's manifest (:meth:`manifest` returns them)."""
        self._ensure_member()
        norm = validate(path)
        local = self._local(self._roots()[0], norm)
        if os.path.isdir(local):
            raise is_a_directory(norm, "cannot write a file over a directory")
        self._refuse_file_ancestor(norm)
        if not overwrite and os.path.lexists(local):
            raise exists(norm)
        return EphemeralWriter(self, norm, self._publish, extra)

    def manifest(self, path: str) -> dict:
        """The manifest of the file at ``path``: ``id`` (new with every write), ``size``,
        ``mtime`` and the ``extra`` fields it was written with."""
        self._ensure_member()
        return self._manifest(validate(path))

    def open_manifest(self, path: str, manifest: dict) -> EphemeralReader:
        """A reader of the version ``manifest`` describes (its blocks go when it is replaced:
        the read then fails with ``FileNotFoundError``)."""
        return EphemeralReader(self, validate(path), manifest)

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
        if self.encrypt or self._must_seal is seal_nothing:
            return  # every file is sealed already, or none must be: no walk
        for f in list(self.walk_files(path)):
            if self.sealer_for(f) is None:
                continue
            manifest = self._manifest(f)
            if manifest.get("sealed"):
                continue
            with (
                EphemeralReader(self, f, manifest) as r,
                EphemeralWriter(self, f, self._publish) as w,
            ):
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
                    rmtree_atomic(target)
        else:
            manifests = [self._manifest(norm)]
            for root in roots:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._local(root, norm))
        for m in manifests:
            self._drop_blocks(m)

    def _drop_blocks(self, manifest: dict) -> None:
        self.store.drop_owner("e", manifest["id"])

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
                    atomic_write(local, body)
                    break
                except FileNotFoundError:  # an empty parent was pruned meanwhile: again
                    if attempt == 2:
                        raise
        if replaced is not None and replaced.get("id") != manifest["id"]:
            self._drop_blocks(replaced)

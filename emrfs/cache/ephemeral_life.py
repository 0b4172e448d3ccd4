"""The ephemeral tier's life: membership of processes, lifetime, wipe, and its sealing key.

:class:`TierMembership` is the base of :class:`~emrfs.cache.ephemeral.EphemeralTier`:
every process using the tier holds a shared ``flock`` on ``members.lock``; the last
one to leave (lifetime 0) wipes the tier, and one that joins after every earlier
user died starts empty.  It also owns the tier's block ids and sealer, which the
file reader and writer (:mod:`.ephemeral_io`) use.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from .blockfile import BlockId
from .diskutil import makedirs_private
from .store import BlockStore

if TYPE_CHECKING:  # made on first use (_get_sealer)
    from ..crypto.atrest import CacheKey

TMP_MARK = ".emrfs~tmp~"
TRASH_MARK = ".emrfs~trash~"


class TierMembership:
    """Membership, lifetime and keys of the ephemeral tier over a :class:`BlockStore`
    (parameters: see :class:`~emrfs.cache.ephemeral.EphemeralTier`)."""

    def __init__(
        self,
        store: BlockStore,
        *,
        block_size: int,
        replication: int = 1,
        lifetime_seconds: float = 0.0,
        encrypt: bool = False,
        sealer=None,
        must_seal: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        if replication < 1:
            raise ValueError(f"ephemeral.replication must be at least 1, got {replication}")
        if replication > len(store.directories):
            raise ValueError(
                f"ephemeral.replication is {replication} but there are only "
                f"{len(store.directories)} cache directories; add cache.directories or lower it"
            )
        self.store = store
        self.block_size = block_size
        self.replication = replication
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock
        self._bases = [os.path.join(d, "eph") for d in store.directories[:replication]]
        self._key: CacheKey | None = None
        self.encrypt = encrypt or sealer is not None or store.encrypt_all
        self._sealer = sealer
        self._must_seal = must_seal or seal_nothing
        self._pid = -1
        self._lock_fd = -1
        self._join()

    # --- lifetime ---------------------------------------------------------------------

    def _join(self) -> None:
        """Become a member: a shared flock held for as long as this process uses the tier."""
        base = self._bases[0]
        makedirs_private(base)
        fd = os.open(
            os.path.join(base, "members.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
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
            atomic_write(created, json.dumps({"created": self._clock()}).encode())
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
        atomic_write(
            os.path.join(self._bases[0], "created"), json.dumps({"created": self._clock()}).encode()
        )

    def _wipe(self) -> None:
        self.store.clear(("e",))
        for b in self._bases:
            for name in ("ns", "created"):
                p = os.path.join(b, name)
                if os.path.isdir(p):
                    rmtree_atomic(p)
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

            self._key = CacheKey.shared_memory(
                "eph-" + uuid.uuid5(uuid.NAMESPACE_URL, self._bases[0]).hex
            )
            self._sealer = BlockSealer(self._key)
        return self._sealer

    def _block(self, file_id: str, index: int) -> BlockId:
        return BlockId("e", file_id, "0", index)


def atomic_write(path: str, body: bytes) -> None:
    tmp = os.path.join(os.path.dirname(path), f"{TMP_MARK}{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with open(fd, "wb") as f:
        f.write(body)
    os.replace(tmp, path)


def rmtree_atomic(path: str) -> None:
    """Take ``path`` out of the namespace at once (rename), then delete it."""
    trash = os.path.join(os.path.dirname(path), f"{TRASH_MARK}{uuid.uuid4().hex}")
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def seal_nothing(path: str) -> bool:
    return False


def _leave_at_exit(ref) -> None:
    tier = ref()
    if tier is not None:
        with contextlib.suppress(Exception):
            tier.leave()

"""Encryption at rest for the local block cache (EMR's local disk encryption).

Each sealed unit is AES-256-GCM with a random 96-bit nonce and the unit's
identity (object, version, block, chunk) as associated data, so a sealed chunk
moved to another place in the cache fails to open rather than serving the
wrong bytes.  Layout of a sealed unit: ``nonce (12) || ciphertext || tag (16)``.

The key lives exactly as long as the cache is meant to:

* :meth:`CacheKey.in_memory` - a random key held by this process only;
* :meth:`CacheKey.shared_memory` - a 0600 key file on a memory filesystem
  (``/dev/shm``), shared by the processes of one machine and gone at reboot or
  when :meth:`CacheKey.destroy` removes it (the ephemeral tier);
* :meth:`CacheKey.load_or_create` - a 0600 key file for a persistent cache.

Once the key is gone, what is left on disk is unreadable.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import EncryptionError, IntegrityError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
#: bytes a sealed unit adds to its plaintext
OVERHEAD = NONCE_BYTES + TAG_BYTES
SHM_DIR = "/dev/shm"


class CacheKey:
    """A 256-bit cache key and where (if anywhere) it is stored."""

    def __init__(self, key: bytes, path: str | None = None):
        if len(key) != KEY_BYTES:
            raise EncryptionError(
                f"cache key must be {KEY_BYTES} bytes, got {len(key)}"
                + (f" from {path!r}; delete the key file and the cache with it" if path else ""),
                path,
            )
        self.key = bytes(key)
        self.path = path

    @classmethod
    def in_memory(cls, urandom: Callable[[int], bytes] = os.urandom) -> CacheKey:
        """A fresh key known only to this process."""
        return cls(urandom(KEY_BYTES))

    @classmethod
    def load_or_create(cls, path: str, urandom: Callable[[int], bytes] = os.urandom) -> CacheKey:
        """Read the key file at ``path``, creating it (mode 0600) if absent.

        Several processes may race to create it: the first link wins and the
        others read the winner's key.
        """
        try:
            return cls._read(path)
        except FileNotFoundError:
            pass
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".key-", dir=directory)  # mkstemp: mode 0600
        try:
            os.write(fd, urandom(KEY_BYTES))
            os.fsync(fd)
            os.close(fd)
            fd = -1
            try:
                os.link(tmp, path)  # atomic, and fails if another process won
            except FileExistsError:
                pass
        finally:
            if fd >= 0:
                os.close(fd)
            os.unlink(tmp)
        return cls._read(path)

    @classmethod
    def shared_memory(cls, name: str, urandom: Callable[[int], bytes] = os.urandom) -> CacheKey:
        """A key file named ``name`` on the memory filesystem (falls back to in-memory)."""
        if not os.path.isdir(SHM_DIR) or not os.access(SHM_DIR, os.W_OK):
            return cls.in_memory(urandom)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return cls.load_or_create(os.path.join(SHM_DIR, f"emrfs-{os.getuid()}-{safe}.key"), urandom)

    @classmethod
    def _read(cls, path: str) -> CacheKey:
        st = os.stat(path)
        if st.st_mode & 0o077:
            raise EncryptionError(
                f"cache key file {path!r} is readable by others (mode {st.st_mode & 0o777:o}); "
                "chmod 600 it or delete it and the cache",
                path,
            )
        with open(path, "rb") as f:
            return cls(f.read(), path)

    def destroy(self) -> None:
        """Remove the key file (if any): everything sealed with it becomes unreadable."""
        if self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


class BlockSealer:
    """AES-256-GCM sealing of cache units with their identity as associated data."""

    def __init__(self, key: CacheKey | bytes, urandom: Callable[[int], bytes] = os.urandom):
        raw = key.key if isinstance(key, CacheKey) else CacheKey(key).key
        self._aead = AESGCM(raw)
        self._urandom = urandom

    def seal(self, data: bytes | memoryview, aad: bytes) -> bytes:
        """``nonce || ciphertext || tag`` of ``data`` bound to ``aad``."""
        return self.seal_with_nonce(data, aad, self._urandom(NONCE_BYTES))

    def seal_with_nonce(self, data: bytes | memoryview, aad: bytes, nonce: bytes) -> bytes:
        if len(nonce) != NONCE_BYTES:
            raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
        return nonce + self._aead.encrypt(nonce, data, aad)

    def open(self, sealed: bytes | memoryview, aad: bytes, where: str | None = None) -> bytes:
        """Plaintext of a sealed unit.

        :class:`IntegrityError` if the key, identity or bytes differ.
        """
        if len(sealed) < OVERHEAD:
            raise IntegrityError(f"sealed cache unit for {where!r} is truncated", where)
        view = memoryview(sealed)
        try:
            return self._aead.decrypt(view[:NONCE_BYTES], view[NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise IntegrityError(
                f"cache block for {where!r} does not decrypt: wrong key, moved or corrupted", where
            ) from exc

"""Reading and writing one file of the ephemeral tier: its blocks, then its manifest."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

from ..errors import not_found
from .ephemeral_life import TierMembership


class EphemeralWriter(io.RawIOBase):
    """Streams a file into tier blocks; publishes it on ``close()``."""

    def __init__(
        self,
        tier: TierMembership,
        path: str,
        publish: Callable[[str, dict], None],
        extra: dict | None = None,
    ):
        super().__init__()
        self.extra = dict(extra or {})  # more fields of the manifest (a store's metadata)
        self.tier, self.path = tier, path
        self._publish = publish  # makes the file visible from its manifest
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
        t.store.put(
            t._block(self.file_id, self._index),
            block,
            copies=t.replication,
            evictable=False,
            sealed=sealer is not None,
            sealer=sealer,
            where=self.path,
        )
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
                    self._publish(
                        self.path,
                        {
                            "id": self.file_id,
                            "size": self._size,
                            "mtime": self.tier._clock(),
                            "block_size": self.tier.block_size,
                            "blocks": self._index,
                            "sealed": self._sealer is not None,
                            **self.extra,
                        },
                    )
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

    def __init__(self, tier: TierMembership, path: str, manifest: dict):
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
            data = t.store.read(
                t._block(self.manifest["id"], i),
                lo,
                hi,
                copies=t.replication,
                where=self.path,
                sealer=sealer,
            )
            if data is None:
                raise not_found(
                    self.path,
                    f"block {i} of this ephemeral file is lost from every "
                    "replica (deleted, evicted or its directory removed)",
                )
            parts.append(data)
            pos += len(data)
        self._pos = end
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

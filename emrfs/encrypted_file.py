"""The file object of every persistent path: :class:`EncryptedFile`, an
:class:`~emrfs.files.EmrFile` that encrypts as bytes are written where CSE is on and
reads CSE objects through their range source (the CSE layer, :mod:`emrfs.crypto.store`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fsspec.asyn import sync

from . import paths
from .crypto import ContentEncryptor
from .crypto.guard import EnvelopeGuard
from .crypto.store import EncryptingStore, Sealed
from .errors import is_a_directory
from .files import EmrFile
from .store.protocol import ObjectStore

__all__ = ["CseWriter", "EncryptedFile", "StoreRanges"]


class CseWriter:
    """One CSE object being streamed by :class:`EncryptedFile`: ciphertext out, tag last."""

    def __init__(self, encryptor: ContentEncryptor):
        self.encryptor = encryptor
        self._finished = False

    @property
    def metadata(self) -> dict[str, str]:
        return self.encryptor.metadata

    def update(self, data: bytes | memoryview) -> bytes:
        return bytes(self.encryptor.update(data))

    def finish(self) -> bytes:
        """The trailing ciphertext, the first time; ``b""`` after (flush may repeat)."""
        if self._finished:
            return b""
        self._finished = True
        return self.encryptor.finalize()


class StoreRanges:
    """Ranges of one CSE object version, read through its :class:`EncryptingStore`
    (segments or CTR fetched as needed; AWS formats otherwise verified whole once and
    served from a sealed spool: the open file holds its version, so the spool serves it
    without asking whether it is still the current one)."""

    def __init__(self, store: EncryptingStore, path: str, sealed: Sealed):
        self.store, self.path, self.sealed = store, path, sealed

    async def read(self, start: int, end: int) -> bytes:
        return await self.store.read_sealed(self.path, self.sealed, start, end, recheck=False)


def _decrypting(layers: list[ObjectStore]) -> EncryptingStore:
    """The layer of a path's stack that decrypts: its encryption layer, or where no CSE
    is configured, the one the guard decrypts objects sealed elsewhere with."""
    for layer in layers:
        if isinstance(layer, EncryptingStore):
            return layer
        if isinstance(layer, EnvelopeGuard):
            return layer.decrypting
    raise RuntimeError(f"no encryption layer or envelope guard among {layers}")


class EncryptedFile(EmrFile):
    """:class:`~emrfs.files.EmrFile` with SSE on every request and CSE where it applies.

    Writes under CSE encrypt as bytes are written: the buffer holds
    ciphertext, so parts (and memory) stay as for plaintext, and the GCM
    stream runs across all parts.  Reads of CSE objects go through the
    object's range source (segmented / CTR ranges, or the verified spool).
    """

    def __init__(self, fs, path: str, mode: str = "rb", **kwargs: Any):
        self._cse: CseWriter | None = None
        self._ranges: StoreRanges | None = None
        if mode in ("wb", "xb", "ab"):
            self._cse = sync(fs.loop, fs._encrypted.writer, paths.validate(path))
        super().__init__(fs, path, mode, **kwargs)
        if mode == "rb":
            self._ranges = fs._encrypted.range_source(
                self.path, self.details, _decrypting(fs._stacks.layers(self.path))
            )

    # --- reading --------------------------------------------------------------------

    async def _fetch_range_async(self, start: int, end: int) -> bytes:
        if self._ranges is None:
            return await super()._fetch_range_async(start, end)
        return await self._ranges.read(start, end)

    # --- writing --------------------------------------------------------------------

    def write(self, data) -> int:
        if self._cse is None:
            return super().write(data)
        if not self.writable():
            raise ValueError("File not in write mode")
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        if self.forced:
            raise ValueError("This file has been force-flushed, can only close")
        n = memoryview(data).nbytes
        self.buffer.write(self._cse.update(data))
        self.loc += n
        if self.buffer.tell() >= self.blocksize:
            self.flush()
        return n

    def _prepare_append(self) -> None:
        if self._cse is None:
            return super()._prepare_append()
        try:
            info = self.fs.info(self.path)
        except FileNotFoundError:
            return
        if info["type"] != "file":
            raise is_a_directory(self.path, "cannot append to a directory")
        # An encrypted object cannot be extended in place (one GCM stream, its tag at the
        # end): its plaintext streams into this writer, encrypted afresh, parts going up
        # as they fill; the new object replaces the old one whole when the file closes.
        with self.fs.open(self.path, "rb") as old:
            while chunk := old.read(self.blocksize):
                self.write(chunk)

    def _upload_chunk(self, final: bool = False):
        if final and self._cse is not None:
            self.buffer.seek(0, 2)
            self.buffer.write(self._cse.finish())
        return super()._upload_chunk(final)

    def _put_whole(self, data: bytes) -> None:
        if self._cse is not None:
            data = data + self._cse.finish()
        super()._put_whole(data)

    def _object_metadata(self) -> dict[str, str] | None:
        return None if self._cse is None else self._cse.metadata

    def instruction_file(self) -> tuple[bytes, Mapping[str, str]] | None:
        """The CSE instruction file (body, metadata) this object needs beside it, if any."""
        if self._cse is None or self._cse.encryptor.instruction is None:
            return None
        return self._cse.encryptor.instruction, self._cse.encryptor.instruction_metadata or {}

    def _stored(self, size: int, response: dict) -> None:
        if self._cse is not None:
            sync(self.fs.loop, self.fs._encrypted.finish_object, self.path, self._cse.encryptor)
            size = self.loc  # the plaintext length (the body had the tag too)
        super()._stored(size, response)

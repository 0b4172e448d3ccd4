"""The file object of every persistent path: :class:`EncryptedFile`, an
:class:`~emrfs.files.EmrFile` that reads CSE objects through their range source (the
CSE layer, :mod:`emrfs.crypto.store`); its writes go through the path's stack, whose
CSE layer encrypts them.
"""

from __future__ import annotations

from typing import Any

from .crypto.guard import EnvelopeGuard
from .crypto.store import EncryptingStore, Sealed
from .files import EmrFile
from .store.protocol import ObjectStore

__all__ = ["EncryptedFile", "StoreRanges"]


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
    """:class:`~emrfs.files.EmrFile` reading CSE objects through the object's range
    source (segmented / CTR ranges, or the verified spool).  Writes are EmrFile's: in
    parts through the path's stack, whose CSE layer runs one cipher stream across them.
    """

    def __init__(self, fs, path: str, mode: str = "rb", **kwargs: Any):
        self._ranges: StoreRanges | None = None
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

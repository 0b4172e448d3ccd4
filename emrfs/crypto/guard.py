"""Where no client-side encryption is configured: :class:`EnvelopeGuard`.

A path whose options name no CSE (off, no key) reads its objects as they are
stored.  One written sealed elsewhere (by an AWS S3 Encryption Client, or by emrfs
under another prefix's options) still carries its envelope in its user metadata,
and its key (KMS) names itself there: such an object is decrypted, never handed
out as ciphertext.  The guard sees the envelope in what one GET returns (no HEAD
first), so a plaintext object costs what the transport costs; an envelope sends
the read to an :class:`~emrfs.crypto.store.EncryptingStore` made on first need.

A block cache above the guard is told which paths hold sealed objects
(:meth:`EnvelopeGuard.sealing`) so their plaintext is sealed at rest; a fill that
meets an envelope on a path the cache did not know as sealed is refused as
:class:`~emrfs.errors.ChangedError` (the cache looks again, then seals).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING

from ..config import CSEOptions
from ..errors import ChangedError
from ..store.protocol import (
    ObjectMeta,
    ObjectStore,
    StagedUpload,
    WrapperStore,
    check_chunk_size,
)
from .envelope import instruction_file_required, is_encrypted
from .sealed import bare_etag, remember

if TYPE_CHECKING:
    from . import ContentCrypto
    from .store import EncryptingStore

__all__ = ["EnvelopeGuard"]

#: Paths remembered as holding sealed objects (most recent kept).
MAX_SEALED = 4096
#: The first GET of a stream (its envelope, and the whole of a smaller object).
FIRST_WINDOW = 8 * 1024 * 1024


def _sealed(meta: ObjectMeta) -> bool:
    metadata = meta.metadata
    return bool(metadata) and (is_encrypted(metadata) or instruction_file_required(metadata))


class EnvelopeGuard(WrapperStore):
    """Plaintext passes; an object with a CSE envelope is decrypted (see the module doc).

    ``crypto``: the :class:`ContentCrypto` for ``options`` (made at the first sealed
    object).  ``refuse_unknown``: a block cache sits above, so a sealed object met on
    a path not yet reported by :meth:`sealing` is refused once (``ChangedError``)
    rather than handed to a cache that would keep its plaintext unsealed.
    """

    def __init__(
        self,
        inner: ObjectStore,
        options: CSEOptions,
        crypto: Callable[[], ContentCrypto],
        *,
        refuse_unknown: bool = False,
    ):
        super().__init__(inner)
        self.options = options
        self._crypto = crypto
        self.refuse_unknown = refuse_unknown
        self._decrypting: EncryptingStore | None = None
        self._sealed: OrderedDict[str, None] = OrderedDict()
        # versions (path, bare ETag) a read here found plaintext: a stream pinned to one
        # streams from its first byte (no first window read whole to look for an envelope)
        self._plain: OrderedDict[tuple[str, str], None] = OrderedDict()

    @property
    def decrypting(self) -> EncryptingStore:
        if self._decrypting is None:
            from .store import EncryptingStore

            self._decrypting = EncryptingStore(self.inner, self.options, crypto=self._crypto())
        return self._decrypting

    def sealing(self, path: str) -> bool:
        """``path`` held a sealed object when last read here (its plaintext is sensitive)."""
        return path in self._sealed

    def note_sealed(self, path: str) -> None:
        """``path`` holds an object sealed elsewhere (its status said so, maybe read under
        another stack): a copy of it through this layer carries its envelope."""
        self._met_sealed(path)

    def _met_sealed(self, path: str) -> bool:
        """Remember ``path`` as sealed; True if it was already."""
        known = path in self._sealed
        remember(self._sealed, path, None, MAX_SEALED)
        return known

    def _read_sealed(self, path: str, etag: str | None, if_match: str | None) -> None:
        """A read met a sealed object: refused once if the cache above did not know."""
        if not self._met_sealed(path) and self.refuse_unknown:
            raise ChangedError(path, if_match or "(a plaintext version)", etag)

    def _met_plain(self, meta: ObjectMeta) -> None:
        if meta.etag:
            remember(self._plain, (meta.path, bare_etag(meta.etag)), None, MAX_SEALED)

    async def head(self, path: str) -> ObjectMeta:
        meta = await self.inner.head(path)
        if not _sealed(meta):
            self._met_plain(meta)
            return meta
        self._met_sealed(path)  # a head only describes: the cache above learns to seal
        return (await self.decrypting.describe(path, meta)).meta()

    async def get(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> tuple[ObjectMeta, bytes]:
        stored, raw = await self.inner.get(path, start, end, if_match=if_match)
        if not _sealed(stored):
            self._met_plain(stored)
            return stored, raw
        self._read_sealed(path, stored.etag, if_match)
        # found sealed: a whole body is decrypted and verified, a range read again by its
        # format (pinned to that version)
        sealed = await self.decrypting.describe(path, stored)
        if not sealed.encrypted:
            return stored, raw
        if start == 0 and end is None:
            return sealed.meta(), await self.decrypting.reads.decrypt_body(path, sealed, raw)
        return sealed.meta(), await self.decrypting.reads.read(path, sealed, start, end)

    async def get_range(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> bytes:
        return (await self.get(path, start, end, if_match=if_match))[1]

    async def get_stream(
        self,
        path: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 8 * 1024 * 1024,
    ) -> AsyncIterator[bytes]:
        check_chunk_size(path, chunk_size)
        if if_match and (path, bare_etag(if_match)) in self._plain:
            async for chunk in self.inner.get_stream(
                path, start, end, if_match=if_match, chunk_size=chunk_size
            ):
                yield chunk
            return
        window = max(chunk_size, FIRST_WINDOW)
        first_end = start + window if end is None else min(end, start + window)
        stored, first = await self.inner.get(path, start, first_end, if_match=if_match)
        if _sealed(stored):
            self._read_sealed(path, stored.etag, if_match)
            async for chunk in self.decrypting.get_stream(
                path, start, end, if_match=stored.etag, chunk_size=chunk_size
            ):
                yield chunk
            return
        self._met_plain(stored)
        if first:
            yield first
        stop = stored.size if end is None else min(end, stored.size)
        if stop > start + len(first):
            async for chunk in self.inner.get_stream(
                path, start + len(first), stop, if_match=stored.etag, chunk_size=chunk_size
            ):
                yield chunk

    async def complete_staged(self, staged: StagedUpload) -> ObjectMeta:
        if staged.instruction is None:
            return await self.inner.complete_staged(staged)
        # staged sealed (under other CSE options): its instruction file goes beside it
        return await self.decrypting.complete_staged(staged)

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
    ) -> ObjectMeta:
        if not self.sealing(src):
            return await self.inner.copy(src, dst, metadata=metadata, source_size=source_size)
        # sealed elsewhere: the envelope kept, its instruction file copied beside the copy,
        # the meta returned giving the size readers see (what a layer above records)
        return await self.decrypting.copy(src, dst, metadata=metadata, source_size=source_size)

    def drop_local(self) -> None:
        """Drop the decrypting layer's spools and remembered versions."""
        self._plain.clear()
        if self._decrypting is not None:
            self._decrypting.drop_local()

"""Reads of one described object version under client-side encryption: :class:`Sealed`
(what :class:`~emrfs.crypto.store.EncryptingStore` knows of a version) and
:class:`SealedReads` (its plaintext, whole and verified, or ranged: the segmented
format's segments, CTR for AWS formats where allowed, else a verified whole read kept
in a :class:`~emrfs.crypto.spool.SealedSpool`).  Every read is pinned to the version.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from typing import Any

from ..errors import ChangedError, EncryptionError, IntegrityError
from ..store.protocol import ObjectMeta, ObjectStore, check_range
from . import ContentCrypto, RangeReader
from .envelope import without_envelope
from .inplace import read_whole
from .spool import SealedSpool, Spools
from .stream import ContentDecryptor, adecrypt_whole, averified_chunks

__all__ = ["KNOWN", "Sealed", "SealedReads", "bare_etag", "clip_range", "remember"]

#: Descriptions (and range readers) of object versions kept for pinned reads.
KNOWN = 256


@dataclasses.dataclass(frozen=True)
class Sealed:
    """One stored object version as this layer sees it.

    ``stored`` is the meta of the store below (stored size, every metadata name);
    ``size`` the plaintext size.  ``encrypted`` False: a plaintext object, passed
    through.  ``damaged``: why no plaintext length fits (truncated); reads raise it.
    """

    stored: ObjectMeta
    size: int
    encrypted: bool
    instruction: bytes | None = None
    damaged: str | None = None

    @property
    def etag(self) -> str | None:
        return self.stored.etag

    def meta(self) -> ObjectMeta:
        """What a reader of this layer sees: plaintext size, the user's own metadata."""
        if not self.encrypted:
            return self.stored
        return dataclasses.replace(
            self.stored, size=self.size, metadata=without_envelope(self.stored.metadata)
        )


def bare_etag(etag: str | None) -> str:
    return (etag or "").strip('"')


def clip_range(path: str, start: int, end: int | None, size: int) -> tuple[int, int]:
    check_range(path, start, end)
    end = size if end is None else min(end, size)
    return start, max(start, end)


def remember(table: OrderedDict, ident: Hashable, value: Any, limit: int = KNOWN) -> None:
    """Keep ``value`` under ``ident``, the oldest dropped beyond ``limit`` entries."""
    table[ident] = value
    table.move_to_end(ident)
    while len(table) > limit:
        table.popitem(last=False)


class SealedReads:
    """The plaintext of described versions of objects in ``inner`` (the store below the
    CSE layer), decrypted with ``crypto``; keeps range readers and sealed spools."""

    def __init__(self, inner: ObjectStore, crypto: ContentCrypto):
        self.inner = inner
        self.crypto = crypto
        self._spools = Spools()
        self._readers: OrderedDict[tuple[str, str], RangeReader | None] = OrderedDict()

    async def decrypt_body(self, path: str, sealed: Sealed, body: bytes) -> bytes:
        """The plaintext of the whole stored ``body`` of ``sealed``, once it verified."""
        if sealed.damaged:
            raise IntegrityError(sealed.damaged, path)
        decryptor = await self.crypto.decryptor(path, sealed.stored.metadata, sealed.instruction)

        async def whole() -> AsyncIterator[bytes]:
            yield body

        return await adecrypt_whole(decryptor, whole(), len(body))

    async def read(
        self, path: str, sealed: Sealed, start: int, end: int | None, *, recheck: bool = True
    ) -> bytes:
        """Plaintext ``[start, end)`` of the version ``sealed`` describes (pinned to it).

        ``recheck=False``: the caller holds that version (an open file) and takes it from
        the spool, if spooled, without asking the store below whether it is still there."""
        etag = sealed.etag
        if not sealed.encrypted:
            return await self.inner.get_range(path, start, end, if_match=etag)
        if sealed.damaged:
            raise IntegrityError(sealed.damaged, path)
        whole = start == 0 and (end is None or end >= sealed.size)
        start, end = clip_range(path, start, end, sealed.size)
        if whole:  # verified, even when empty: a tampered tag fails here too
            decryptor = await self.crypto.decryptor(
                path, sealed.stored.metadata, sealed.instruction
            )

            async def opener(_: ObjectMeta) -> tuple[ObjectMeta, ContentDecryptor]:
                return sealed.meta(), decryptor

            return (await read_whole(self.inner, path, opener, etag))[1]
        if end <= start:
            return b""
        reader = await self._range_reader(path, sealed)
        if reader is None:
            return await self._spooled(path, sealed, start, end, recheck)
        plan = reader.plan(start, end)
        if plan.fetch_end <= plan.fetch_start:
            return b""
        data = await self.inner.get_range(path, plan.fetch_start, plan.fetch_end, if_match=etag)
        return reader.decrypt(plan, data)

    async def _range_reader(self, path: str, sealed: Sealed) -> RangeReader | None:
        """Ranged reads of the object (segmented, or CTR when allowed); None: read it whole
        and verified, then serve ranges from a sealed spool."""
        ident = (path, bare_etag(sealed.etag))
        if ident in self._readers:
            return self._readers[ident]
        metadata = sealed.stored.metadata
        try:
            reader: RangeReader | None = await self.crypto.range_reader(
                path, metadata, sealed.stored.size, sealed.instruction
            )
        except IntegrityError:
            raise
        except EncryptionError:
            if self.crypto.needs_instruction_file(metadata) and sealed.instruction is None:
                raise
            reader = None  # an AWS format without the CTR opt-in (or legacy CBC)
        if sealed.etag:
            remember(self._readers, ident, reader)
        return reader

    async def _spooled(
        self, path: str, sealed: Sealed, start: int, end: int, recheck: bool = True
    ) -> bytes:
        """A range of the verified plaintext, spooled sealed on first need.  A spool
        filled earlier serves only while its version is still the one stored (one HEAD):
        a pinned read of a version gone is :class:`ChangedError`, as everywhere."""
        filled = False

        async def fill(spool: SealedSpool) -> None:
            nonlocal filled
            filled = True
            async for plain in self.verified_chunks(path, sealed):
                spool.write(plain)

        spool = await self._spools.get(path, sealed.etag, fill)
        if recheck and not filled:
            now = await self.inner.head(path)
            if bare_etag(now.etag) != bare_etag(sealed.etag):
                raise ChangedError(path, sealed.etag or "", now.etag)
        return spool.read(start, end)

    async def verified_chunks(
        self, path: str, sealed: Sealed, chunk_size: int = 8 * 1024 * 1024
    ) -> AsyncIterator[bytes]:
        """The whole plaintext of ``sealed``, streamed; the last chunk is held back until
        the object verifies, so a consumer that commits at the end never keeps unverified
        plaintext."""
        body = self.inner.get_stream(path, if_match=sealed.etag, chunk_size=chunk_size)
        if not sealed.encrypted:
            async for chunk in body:
                yield chunk
            return
        if sealed.damaged:
            raise IntegrityError(sealed.damaged, path)
        decryptor = await self.crypto.decryptor(path, sealed.stored.metadata, sealed.instruction)
        async for plain in averified_chunks(decryptor, body):
            yield plain if isinstance(plain, bytes) else bytes(plain)

    def drop_local(self) -> None:
        """Drop the spools and range readers; the store below stays open."""
        self._spools.close()
        self._readers.clear()

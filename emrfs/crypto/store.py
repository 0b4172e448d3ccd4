"""Client-side encryption as a layer of the stack: :class:`EncryptingStore`.

A :class:`~emrfs.store.protocol.WrapperStore` over the store below it (the
transport, or any :class:`~emrfs.store.protocol.ObjectStore`), made from the
CSE options in force for a path.  Above it every object reads as plaintext;
below it, objects written here are in the AWS S3 Encryption Client format
(v2, v3) or the emrfs segmented format (``notes/cse-format.md``,
``docs/cse-segmented-format.md``):

* ``put`` and ``writer`` encrypt (one GCM stream across all parts; the tag or
  last segment ends the last part), the envelope as user metadata or, in
  ``InstructionFile`` mode, the instruction file written after the object;
* ``get_range`` and ``get_stream`` decrypt: a whole object is verified before
  its last bytes are handed out; ranges come from the segmented format's
  segments (verified), from CTR for AWS formats behind
  ``cse.unauthenticated_range_reads``, else from a verified whole read kept in
  a :class:`~emrfs.crypto.spool.SealedSpool`;
* ``head`` and ``list`` report plaintext sizes; ``head`` hides the envelope
  names from the user metadata, listings hide instruction files;
* ``copy`` keeps the envelope (and copies the instruction file); ``delete``
  removes instruction files with their objects.

Objects below without an envelope pass through unchanged (mixed buckets).
Every read of an object is pinned to the version whose envelope it uses.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from collections.abc import AsyncIterator, Container, Mapping, Sequence
from functools import partial
from typing import Any

from ..config import CSEOptions
from ..errors import ChangedError, EncryptionError, IntegrityError
from ..store.protocol import (
    DeleteResult,
    ListPage,
    ObjectMeta,
    ObjectStore,
    ObjectWriter,
    StagedUpload,
    WrapperStore,
    check_chunk_size,
)
from . import ContentCrypto
from .envelope import (
    INSTRUCTION_MARKER,
    caller_metadata,
    envelope_names,
    instruction_file_required,
    instruction_fits,
    is_encrypted,
    parse_instruction,
    without_envelope,
)
from .inplace import read_whole
from .keys import KeyProvider
from .sealed import Sealed, SealedReads, bare_etag, clip_range, remember
from .stream import (
    ContentDecryptor,
    ContentEncryptor,
    adjusted_length,
    averified_chunks,
    plaintext_length,
)
from .writer import EncryptingWriter

__all__ = ["EncryptingStore", "Sealed"]

#: Attempts of a read not pinned by its caller that meets a write between HEAD and GET.
_ATTEMPTS = 3


class EncryptingStore(WrapperStore):
    """Client-side encryption over ``inner`` with the CSE options of one path.

    ``provider``: the key materials provider (default: the one the options name,
    built on first use).  ``crypto``: an existing :class:`ContentCrypto` to share
    (its providers and KMS client); it resolves the options itself.
    ``list_concurrency``: HEADs at once when a listing needs exact plaintext sizes.
    """

    def __init__(
        self,
        inner: ObjectStore,
        options: CSEOptions,
        *,
        provider: KeyProvider | None = None,
        kms_client: Any = None,
        crypto: ContentCrypto | None = None,
        list_concurrency: int = 16,
    ):
        super().__init__(inner)
        self.options = options
        if crypto is None:
            providers = {options: provider} if provider is not None else None
            crypto = ContentCrypto(options, kms_client, providers=providers)
        self.crypto = crypto
        self.list_concurrency = list_concurrency
        #: ranged and verified reads of versions (the guard layer's too)
        self.reads = SealedReads(inner, crypto)
        self._known: OrderedDict[tuple[str, str], Sealed] = OrderedDict()

    # --- what is below -------------------------------------------------------------------

    def instruction_path(self, path: str) -> str:
        return path + self.options.instruction_suffix

    async def _instruction(self, path: str) -> bytes | None:
        try:
            return await self.inner.get_range(self.instruction_path(path))
        except FileNotFoundError:
            return None

    async def describe(self, path: str, stored: ObjectMeta) -> Sealed:
        """How the object ``stored`` (a meta of the store below, with its metadata) reads."""
        metadata = stored.metadata
        plain = Sealed(stored, stored.size, False)
        if INSTRUCTION_MARKER in {k.lower() for k in metadata}:
            return plain  # an instruction file is an object of its own
        fetch = self.crypto.should_fetch_instruction(path, metadata)
        if not fetch and not is_encrypted(metadata):
            return self._kept(path, plain)
        instruction = None
        if fetch:
            instruction = await self._instruction(path)
            if instruction is None:
                if instruction_file_required(metadata):
                    raise EncryptionError(
                        f"{path!r} is client-side encrypted with its key in an instruction "
                        f"file, but {self.instruction_path(path)!r} is missing; restore it "
                        "(copy or rename the object together with it)",
                        path,
                    )
                return plain
            if not instruction_fits(metadata, parse_instruction(instruction, path)):
                return plain  # a plaintext object over an encrypted one left this file
        try:
            size = plaintext_length(stored.size, metadata, instruction, path)
        except IntegrityError as exc:
            # truncated: head, list, delete and copy still work (the size shown is what the
            # store holds, never a made-up 0); every read raises this
            return self._kept(path, Sealed(stored, stored.size, True, instruction, str(exc)))
        return self._kept(path, Sealed(stored, size, True, instruction))

    def _kept(self, path: str, sealed: Sealed) -> Sealed:
        """``sealed``, remembered by version: a read pinned to it, or a status asking what
        a ``head`` above just described (:meth:`sealed`), needs no request."""
        if sealed.etag:
            remember(self._known, (path, bare_etag(sealed.etag)), sealed)
        return sealed

    async def sealed(
        self, path: str, if_match: str | None = None, *, fresh: bool = False
    ) -> Sealed:
        """The object at ``path`` (at ``if_match``: :class:`ChangedError` if another
        version is there); a version seen before costs no request, unless ``fresh``."""
        if if_match and not fresh:
            known = self._known.get((path, bare_etag(if_match)))
            if known is not None:
                return known
        stored = await self.inner.head(path)
        if if_match and bare_etag(stored.etag) != bare_etag(if_match):
            raise ChangedError(path, if_match, stored.etag)
        return await self.describe(path, stored)

    # --- reading -------------------------------------------------------------------------

    async def head(self, path: str) -> ObjectMeta:
        return (await self.sealed(path)).meta()

    async def get_range(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> bytes:
        if start == 0 and end is None:
            # the whole object: one GET brings the envelope with the body (no HEAD first)
            return (await self.get(path, if_match=if_match))[1]
        return (await self._range(path, start, end, if_match, fresh=False))[1]

    async def get(
        self, path: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> tuple[ObjectMeta, bytes]:
        if start == 0 and end is None:
            return await self._whole(path, if_match)
        # a get answers the version too: asked of the store below, even when seen before
        return await self._range(path, start, end, if_match, fresh=True)

    async def _range(
        self, path: str, start: int, end: int | None, if_match: str | None, *, fresh: bool
    ) -> tuple[ObjectMeta, bytes]:
        """Plaintext ``[start, end)`` read by the object's format (a sealed object's stored
        bytes at those offsets are no use), with the version it read."""
        for attempt in range(1, _ATTEMPTS + 1):
            sealed = await self.sealed(path, if_match, fresh=fresh)
            # a version a HEAD just found needs no second look at its spool; one known from
            # before (pinned) is asked whether it is still there
            recheck = bool(if_match) and not fresh
            try:
                return sealed.meta(), await self.reads.read(
                    path, sealed, start, end, recheck=recheck
                )
            except ChangedError:
                # unpinned by the caller: a write landed between our HEAD and GET; the
                # envelope read belongs to the old version, so start again from the HEAD
                if if_match or attempt == _ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def _whole(self, path: str, if_match: str | None) -> tuple[ObjectMeta, bytes]:
        """The whole object, in one buffer: the store below writes the body there as it
        arrives (its first response brings the envelope: no HEAD first) and each prefix is
        decrypted in place behind the download (:mod:`~emrfs.crypto.inplace`); returned
        once it verified."""
        return await read_whole(self.inner, path, partial(self._opened, path), if_match)

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
        if start == 0 and end is None:
            async for chunk in self._whole_stream(path, if_match, chunk_size):
                yield chunk
            return
        sealed = await self.sealed(path, if_match)
        if not sealed.encrypted:
            async for chunk in self.inner.get_stream(
                path, start, end, if_match=sealed.etag, chunk_size=chunk_size
            ):
                yield chunk
            return
        if sealed.damaged:
            raise IntegrityError(sealed.damaged, path)
        whole = start == 0 and (end is None or end >= sealed.size)
        start, end = clip_range(path, start, end, sealed.size)
        if whole:
            async for chunk in self.reads.verified_chunks(path, sealed, chunk_size):
                yield chunk
            return
        for offset in range(start, end, chunk_size):
            # one version per stream: a pinned one checked at its first chunk (a spool
            # filled earlier is asked once whether its version is still there)
            first = offset == start and bool(if_match)
            yield await self.reads.read(
                path, sealed, offset, min(end, offset + chunk_size), recheck=first
            )

    async def _whole_stream(
        self, path: str, if_match: str | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        """The whole object, streamed: the first chunk's GET brings the envelope (no HEAD
        first), the rest streams pinned to that version; a sealed one is decrypted, its
        last chunk held back until it verifies (a consumer that commits at the end, a
        temporary file renamed, never keeps unverified plaintext)."""
        stored, first = await self.inner.get(path, 0, chunk_size, if_match=if_match)
        _, decryptor = await self._opened(path, stored)

        async def body() -> AsyncIterator[bytes]:
            if first:
                yield first
            if stored.size > len(first):
                async for chunk in self.inner.get_stream(
                    path,
                    len(first),
                    stored.size,
                    if_match=stored.etag or if_match,
                    chunk_size=chunk_size,
                ):
                    yield chunk

        if decryptor is None:
            async for chunk in body():
                yield chunk
            return
        async for plain in averified_chunks(decryptor, body()):
            yield plain if isinstance(plain, bytes) else bytes(plain)

    async def _opened(
        self, path: str, stored: ObjectMeta
    ) -> tuple[ObjectMeta, ContentDecryptor | None]:
        """The meta readers see of the version ``stored``, and a sealed one's decryptor."""
        sealed = await self.describe(path, stored)
        if not sealed.encrypted:
            return stored, None
        if sealed.damaged:
            raise IntegrityError(sealed.damaged, path)
        decryptor = await self.crypto.decryptor(path, stored.metadata, sealed.instruction)
        return sealed.meta(), decryptor

    # --- writing ---------------------------------------------------------------------------

    async def put(
        self,
        path: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectMeta:
        if not self.options.enabled:
            return await super().put(
                path,
                data,
                if_none_match=if_none_match,
                metadata=metadata,
                content_type=content_type,
            )
        user = caller_metadata(path, metadata)
        encryptor = await self.crypto.new_encryptor(path)
        body = encryptor.encrypt_whole([data], len(data))
        stored = await self.inner.put(
            path,
            body,
            if_none_match=if_none_match,
            metadata={**user, **encryptor.metadata},
            content_type=content_type,
        )
        await self.finish(path, encryptor)
        return dataclasses.replace(stored, size=len(data), metadata=user)

    async def finish(self, path: str, encryptor: ContentEncryptor) -> None:
        """After the object is stored: its instruction file (InstructionFile mode).

        Written after the object, as AWS's clients do.  If it cannot be written,
        the object is removed: an object without its key would be unreadable.
        """
        if encryptor.instruction is None:
            return
        try:
            await self.inner.put(
                self.instruction_path(path),
                encryptor.instruction,
                metadata=encryptor.instruction_metadata,
            )
        except BaseException:
            try:
                await self.inner.delete([path])
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
            raise

    async def writer(
        self,
        path: str,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectWriter:
        if not self.options.enabled:
            return await super().writer(
                path, if_none_match=if_none_match, metadata=metadata, content_type=content_type
            )
        user = caller_metadata(path, metadata)
        encryptor = await self.crypto.new_encryptor(path)
        inner = await self.inner.writer(
            path,
            if_none_match=if_none_match,
            metadata={**user, **encryptor.metadata},
            content_type=content_type,
        )
        return EncryptingWriter(self.finish, inner, encryptor, user)

    async def complete_staged(self, staged: StagedUpload) -> ObjectMeta:
        # the staged size is the plaintext's (the writer staged it so)
        meta = await self.inner.complete_staged(staged)
        if staged.instruction is not None:  # InstructionFile mode: the key, beside it now
            body, instruction_metadata = staged.instruction
            await self.inner.put(
                self.instruction_path(staged.path), body, metadata=instruction_metadata
            )
        return dataclasses.replace(meta, size=staged.size, metadata=without_envelope(meta.metadata))

    # --- copy, delete, list ----------------------------------------------------------------

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
    ) -> ObjectMeta:
        source = await self.sealed(src)
        if not source.encrypted:  # plaintext: the size the caller knows is the stored one
            return await self.inner.copy(src, dst, metadata=metadata, source_size=source_size)
        replaced = None
        if metadata is not None:  # new user metadata, the source's envelope kept
            replaced = {
                **caller_metadata(dst, metadata),
                **envelope_names(source.stored.metadata),
            }
        copied = await self.inner.copy(src, dst, metadata=replaced, source_size=source.stored.size)
        if source.instruction is not None:
            try:
                await self.inner.copy(self.instruction_path(src), self.instruction_path(dst))
            except BaseException:
                try:  # a copy without its key would be unreadable
                    await self.inner.delete([dst])
                except Exception:  # noqa: BLE001 - the first error is the one to report
                    pass
                raise
        return dataclasses.replace(
            copied, size=source.size, metadata=without_envelope(copied.metadata)
        )

    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        asked = list(paths)
        if self.options.storage_mode != "InstructionFile" or not asked:
            return await self.inner.delete(asked)
        suffix = self.options.instruction_suffix
        companions = [self.instruction_path(p) for p in asked if not p.endswith(suffix)]
        wanted = set(asked)
        # (a tree's listing names instruction files too: each is asked for once)
        done = await self.inner.delete(list(dict.fromkeys([*asked, *companions])))
        # every failure is kept (an instruction file left behind is one too)
        return DeleteResult([p for p in done.deleted if p in wanted], done.errors)

    async def list(
        self, prefix: str, *, delimiter: str | None = None, limit: int | None = None
    ) -> AsyncIterator[ListPage]:
        semaphore = asyncio.Semaphore(self.list_concurrency)
        async for page in self.inner.list(prefix, delimiter=delimiter, limit=limit):
            if not self.options.enabled or not page.objects:
                yield page
                continue
            objects: Sequence[ObjectMeta]
            if self.options.listing_lengths == "head":
                found = await asyncio.gather(*(self._exact(o, semaphore) for o in page.objects))
                objects = [o for o in found if o is not None]
            else:
                objects = self._adjusted(page.objects)
            yield ListPage(objects, page.prefixes)

    async def _exact(self, listed: ObjectMeta, semaphore: asyncio.Semaphore) -> ObjectMeta | None:
        """The listed object with its plaintext size (one HEAD); None to hide it."""
        if listed.size == 0:
            return listed  # no envelope fits in nothing: plaintext (or a marker)
        async with semaphore:
            sealed = await self.as_listed(listed)
        if sealed is None:
            return None
        # a HEAD that met another version than the LIST describes that version whole
        # (never the LIST's ETag with the HEAD's size and envelope)
        return dataclasses.replace(listed, size=sealed.size, etag=sealed.etag or listed.etag)

    async def as_listed(self, listed: ObjectMeta) -> Sealed | None:
        """What one HEAD says of a listed object now; None to hide it from the listing
        (an instruction file, or an object gone since the LIST)."""
        try:
            stored = await self.inner.head(listed.path)
        except FileNotFoundError:
            return None
        if INSTRUCTION_MARKER in {k.lower() for k in stored.metadata}:
            return None
        return await self.describe(listed.path, stored)

    def instruction_beside(self, path: str, names: Container[str]) -> bool:
        """``path`` is the instruction file of an object among ``names`` (a listing
        hides it without a HEAD)."""
        suffix = self.options.instruction_suffix
        return (
            self.options.storage_mode == "InstructionFile"
            and path.endswith(suffix)
            and path[: -len(suffix)] in names
        )

    def _adjusted(self, objects: Sequence[ObjectMeta]) -> Sequence[ObjectMeta]:
        """Sizes less the configured format's overhead, no requests (exact only when every
        object there is in that format); instruction files beside their objects hidden."""
        names = {o.path for o in objects}
        return [
            dataclasses.replace(o, size=adjusted_length(o.size, self.options))
            for o in objects
            if not self.instruction_beside(o.path, names)
        ]

    def drop_local(self) -> None:
        """Drop the spools and remembered versions; the store below stays open."""
        self.reads.drop_local()
        self._known.clear()

    async def close(self) -> None:
        self.drop_local()
        await self.inner.close()

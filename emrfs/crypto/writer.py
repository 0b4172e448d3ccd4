"""The write in parts of :class:`~emrfs.crypto.store.EncryptingStore`: parts encrypted in
the order written, one cipher stream across all of them, the tag (or last segment)
ending the last part."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from ..store.protocol import ObjectMeta, ObjectWriter, StagedUpload
from .stream import ContentEncryptor

__all__ = ["EncryptingWriter"]


class EncryptingWriter(ObjectWriter):
    """Parts encrypted in the order written, one cipher stream across them all.

    Ciphertext is cut at the plaintext parts' sizes (so every part but the last
    is as large as the caller's, which the store below accepted), and the last
    part waits for the next one or the end: it carries the tag or last segment.
    """

    def __init__(
        self,
        finish: Callable[[str, ContentEncryptor], Awaitable[None]],
        inner: ObjectWriter,
        encryptor: ContentEncryptor,
        metadata: Mapping[str, str],
    ):
        # ``finish`` stores what the object needs besides its bytes (its instruction
        # file); passed in rather than the store, so this module does not import it
        self._finish = finish
        self.path = inner.path
        self._inner = inner
        self._encryptor = encryptor
        self._metadata = dict(metadata)
        self._next = 1  # the plaintext part expected next
        self._sent = 0  # parts handed to the store below
        # ciphertext not yet sent, as the cipher handed it out: a part is one of these
        # pieces as it is when their sizes agree (AES-GCM's output matches its input)
        self._held: deque[bytes | bytearray] = deque()
        self._held_size = 0
        self._sizes: deque[int] = deque()  # plaintext sizes of the parts not yet sent
        self._plain = 0
        self._finished = False

    def _hold(self, ciphertext: bytes | bytearray) -> None:
        if ciphertext:
            self._held.append(ciphertext)
            self._held_size += len(ciphertext)

    def _take(self, size: int) -> bytes:
        """The first ``size`` bytes held, as ``bytes`` (the piece itself when it is that
        long: no copy for a cipher whose output matches the part)."""
        if not size:
            return b""
        first = self._held[0]
        if len(first) == size:
            self._held.popleft()
            self._held_size -= size
            return first if isinstance(first, bytes) else bytes(first)
        pieces: list[bytes | bytearray | memoryview] = []
        wanted = size
        while wanted:
            piece = self._held.popleft()
            if len(piece) > wanted:
                view = memoryview(piece)
                pieces.append(view[:wanted])
                self._held.appendleft(bytes(view[wanted:]))
                wanted = 0
            else:
                pieces.append(piece)
                wanted -= len(piece)
        self._held_size -= size
        return b"".join(pieces)

    def _cut(self, final: bool) -> list[tuple[int, bytes]]:
        """Parts ready to send: each earlier part once its size of ciphertext is there;
        with ``final`` (the encryptor finalized) the last part takes the rest."""
        parts = []
        while len(self._sizes) > 1 and self._held_size >= self._sizes[0]:
            self._sent += 1
            parts.append((self._sent, self._take(self._sizes.popleft())))
        if final:  # ciphertext is never shorter than plaintext: every earlier part fitted
            self._sizes.clear()
            self._sent += 1
            parts.append((self._sent, self._take(self._held_size) if self._held else b""))
        return parts

    async def write_part(self, number: int, data: bytes) -> None:
        if self._finished:
            raise ValueError(f"the encrypted write of {self.path!r} already ended")
        if number != self._next:
            raise ValueError(
                f"client-side encrypted writes of {self.path!r} take parts in order "
                f"(one cipher stream): part {self._next} comes next, not {number}"
            )
        # encrypted and cut before any await: concurrent callers keep their order
        self._next += 1
        self._plain += len(data)
        self._hold(self._encryptor.update(data))
        self._sizes.append(len(data))
        del data  # the plaintext part is not held while the previous one goes out
        for n, part in self._cut(final=False):
            await self._inner.write_part(n, part)

    async def _flush(self) -> None:
        if self._finished:
            raise ValueError(f"the encrypted write of {self.path!r} already ended")
        self._finished = True
        self._hold(self._encryptor.finalize())
        try:
            for n, part in self._cut(final=True):
                await self._inner.write_part(n, part)
        except BaseException:
            await self._inner.abort()
            raise

    async def complete(self) -> ObjectMeta:
        await self._flush()
        stored = await self._inner.complete()
        await self._finish(self.path, self._encryptor)
        return dataclasses.replace(stored, size=self._plain, metadata=self._metadata)

    async def abort(self) -> None:
        self._finished = True
        await self._inner.abort()

    async def stage(self) -> StagedUpload:
        await self._flush()
        staged = await self._inner.stage()
        # the key travels with the staged upload (whoever completes it may be elsewhere);
        # its instruction file is written when the upload is published, not before
        encryptor = self._encryptor
        instruction = None
        if encryptor.instruction is not None:
            instruction = (encryptor.instruction, dict(encryptor.instruction_metadata or {}))
        return dataclasses.replace(staged, size=self._plain, instruction=instruction)

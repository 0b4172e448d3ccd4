"""A whole object read into the buffer it is returned in, decrypted where it lands.

:class:`WholeRead` is the :class:`~emrfs.store.targets.ReadTarget` of a whole read
through :class:`~emrfs.crypto.store.EncryptingStore`: the store below writes the
stored body straight into one buffer of the plaintext's length (its parts in
parallel), and each prefix is decrypted in place as it completes, behind the
download.  One allocation, no copy per chunk: a 64 MiB object costs the client what
its plaintext read costs plus the AES pass (a fresh buffer's page faults and the
body's copies out of the transport are the same either way).

* AWS GCM formats: ciphertext and plaintext have the same offsets; the 16-byte tag
  lands in a buffer of its own and is checked once every byte was decrypted.
* Segmented: each segment is opened (verified) where its ciphertext lies, then slid
  down to its plaintext offset (16 bytes less per segment before it); the few
  segments that run past the plaintext's length, and the last one, are gathered.
* Anything else (legacy CBC) is decrypted once the body is all there.

The buffer is handed out only after the whole object verified; after an error
:meth:`WholeRead.discard` drops it unread.  Nothing goes to disk.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from ..errors import IntegrityError
from ..store.buffers import FilledBytes
from ..store.protocol import ObjectStore
from ..store.shapes import ObjectMeta
from ..store.targets import ReadTarget
from . import segmented
from .content import TAG_BYTES, GcmDecryptor
from .stream import ContentDecryptor

__all__ = ["WholeRead", "Opener", "read_whole"]

#: what a whole read learns from the object's meta: the meta to report (plaintext size)
#: and the decryptor of a sealed body (None: the object is plaintext)
Opener = Callable[[ObjectMeta], Awaitable[tuple[ObjectMeta, ContentDecryptor | None]]]


class _Layout:
    """Where a body lands and how it becomes plaintext: as it is (plaintext)."""

    def __init__(self, stored: int):
        self.out = FilledBytes(stored)
        self.views: list[memoryview] = [self.out.view]

    def filled(self, upto: int) -> None:
        """Bytes ``[0, upto)`` of the body are in place."""

    def finish(self) -> bytes:
        """The plaintext, verified (the body is all in place)."""
        return self.out.value()

    def release(self) -> None:
        self.out.view.release()


class _GcmInPlace(_Layout):
    """One GCM stream: decrypted where it lies, the tag kept apart."""

    def __init__(self, cipher: GcmDecryptor, stored: int, path: str):
        if stored < TAG_BYTES:
            raise IntegrityError(f"{path!r} is shorter than its 16-byte GCM tag", path)
        self.cipher = cipher
        self.plain = stored - TAG_BYTES
        self.out = FilledBytes(self.plain)
        self.tag = bytearray(TAG_BYTES)
        self.views = [self.out.view, memoryview(self.tag)]
        self.done = 0

    def filled(self, upto: int) -> None:
        upto = min(upto, self.plain)
        if upto > self.done:
            with self.out.view[self.done : upto] as ciphertext:
                self.cipher.update_in_place(ciphertext)
            self.done = upto

    def finish(self) -> bytes:
        if self.done != self.plain:
            raise IntegrityError(f"{self.cipher.path!r} was not read to its end", self.cipher.path)
        self.cipher.update(bytes(self.tag))  # held back as the tag
        self.cipher.finalize()  # IntegrityError unless it verifies
        return self.out.value()


class _SegmentsInPlace(_Layout):
    """Segments opened where their ciphertext lies, then slid to their plaintext offset."""

    def __init__(self, key: segmented.SegmentedKey, stored: int, path: str):
        self.key = key
        self.p = key.segment_size
        self.c = self.p + TAG_BYTES
        self.stored = stored
        self.plain = segmented.plaintext_length(stored, self.p, path)
        self.count = segmented.segment_count(self.plain, self.p)
        self.out = FilledBytes(self.plain)
        # the body's last bytes (16 per segment) lie past the plaintext's length
        self.side = bytearray(stored - self.plain)
        self.views = [self.out.view, memoryview(self.side)]
        self.next = 0  # the next segment to open

    def _gathered(self, lo: int, hi: int) -> bytes:
        """Stored bytes ``[lo, hi)``, from the buffer and the side buffer."""
        head = bytes(self.out.view[lo : min(hi, self.plain)]) if lo < self.plain else b""
        return head + bytes(self.side[max(lo, self.plain) - self.plain : hi - self.plain])

    def filled(self, upto: int) -> None:
        view, p, c = self.out.view, self.p, self.c
        # every segment but the last, once its ciphertext is all in
        while self.next < self.count - 1 and (self.next + 1) * c <= upto:
            i = self.next
            lo = i * c
            if lo + c <= self.plain:
                with view[lo : lo + c] as sealed:
                    self.key.open(i, False, sealed, sealed)
                if i:  # slide down (memoryview assignment moves overlapping bytes safely)
                    view[i * p : i * p + p] = view[lo : lo + p]
            else:
                self.key.open(i, False, self._gathered(lo, lo + c), view[i * p : i * p + p])
            self.next += 1

    def finish(self) -> bytes:
        last = self.count - 1
        if self.next != last:
            raise IntegrityError(f"{self.key.path!r} was not read to its end", self.key.path)
        tail = self.key.open(last, True, self._gathered(last * self.c, self.stored))
        self.out.view[last * self.p : self.plain] = tail
        return self.out.value()


class _AtTheEnd(_Layout):
    """A cipher that cannot work in place (legacy CBC): decrypted once the body is in."""

    def __init__(self, decryptor: ContentDecryptor, stored: int):
        super().__init__(stored)
        self.decryptor = decryptor

    def finish(self) -> bytes:
        plain = self.decryptor.decrypt(self.out.value())
        return plain if isinstance(plain, bytes) else bytes(plain)


class WholeRead(ReadTarget):
    """The target of one whole read: ``opener`` says, from the object's meta, what it is
    (the meta to report, the decryptor of a sealed body); :meth:`value` is the plaintext
    once the read ended, verified."""

    def __init__(self, path: str, opener: Opener):
        self.path = path
        self._opener = opener
        self.meta: ObjectMeta | None = None
        self._layout: _Layout | None = None

    async def open(self, meta: ObjectMeta, length: int) -> Sequence[memoryview]:
        self.meta, decryptor = await self._opener(meta)
        if decryptor is None:
            self._layout = _Layout(length)
            return self._layout.views
        cipher = decryptor.cipher
        if isinstance(cipher, GcmDecryptor):
            self._layout = _GcmInPlace(cipher, length, self.path)
        elif isinstance(cipher, segmented.SegmentDecryptor):
            self._layout = _SegmentsInPlace(cipher.key, length, self.path)
        else:
            self._layout = _AtTheEnd(decryptor, length)
        return self._layout.views

    def filled(self, upto: int) -> None:
        assert self._layout is not None
        self._layout.filled(upto)

    def value(self) -> tuple[ObjectMeta, bytes]:
        """The meta and plaintext, once the read ended (verified: raises if not)."""
        assert self.meta is not None and self._layout is not None
        try:
            return self.meta, self._layout.finish()
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Drop the buffer unread (the read failed)."""
        if self._layout is not None:
            self._layout.release()
            self._layout = None


async def read_whole(
    store: ObjectStore, path: str, opener: Opener, if_match: str | None = None
) -> tuple[ObjectMeta, bytes]:
    """The whole object at ``path`` in ``store`` through a :class:`WholeRead`: the meta
    ``opener`` reports and the plaintext, verified."""
    target = WholeRead(path, opener)
    try:
        await store.get_into(path, target, if_match=if_match)
    except BaseException:
        target.discard()
        raise
    return target.value()

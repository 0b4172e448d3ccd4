"""Whole reads decrypted where they land (emrfs.crypto.inplace.WholeRead).

Driven as a transport drives a ReadTarget: the body's parts written into the buffers
it gave in any order, the target told of each prefix as it completes.  What it hands
out is the plaintext, for every format, every length and every way of cutting the
body; any change to the body (a flipped byte, a truncation) raises and hands out
nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings, strategies as st

from emrfs.crypto import Suite, decryptor_from_parts, encryptor_from_parts
from emrfs.crypto.content import CbcDecryptor
from emrfs.crypto.inplace import WholeRead
from emrfs.crypto.stream import ContentDecryptor
from emrfs.errors import IntegrityError
from emrfs.store.obstore_drain import Prefix
from emrfs.store.protocol import ObjectMeta
from emrfs.store.targets import Scatter

FORMATS = {"v3": Suite.V3_GCM_COMMIT, "v2": Suite.V2_GCM, "segmented": Suite.SEGMENTED}
DATA_KEY = bytes(range(32))
SEGMENT = 4096


def _sealed(fmt: str, data: bytes) -> tuple[bytes, Callable[[], ContentDecryptor]]:
    """The body of ``data`` in ``fmt`` and a maker of decryptors for it."""
    enc = encryptor_from_parts(
        FORMATS[fmt],
        DATA_KEY,
        b"wrapped",
        "AES/GCM",
        {},
        path="b/obj",
        segment_size=SEGMENT,
    )
    body = bytes(enc.update(data)) + enc.finalize()
    return body, lambda: decryptor_from_parts(enc.envelope, DATA_KEY, "b/obj")


def _read(body: bytes, decryptor: ContentDecryptor | None, cuts: list[int], seed: int) -> bytes:
    """``body`` read through a WholeRead as a transport would: parts cut at ``cuts``,
    landing in an order ``seed`` picks (each in two pieces), each prefix told as it grows
    (within a part too, as a transport's drains report)."""
    stored = ObjectMeta("b/obj", len(body), '"e"')
    reported = ObjectMeta("b/obj", 0, '"e"')

    async def opener(meta: ObjectMeta):
        assert meta is stored
        return reported, decryptor

    async def go() -> bytes:
        target = WholeRead("b/obj", opener)
        scatter = Scatter(await target.open(stored, len(body)))
        edges = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
        parts = list(itertools.pairwise(edges))
        order = list(range(len(parts)))
        random.Random(seed).shuffle(order)
        prefix = Prefix([hi - lo for lo, hi in parts], target.filled)
        try:
            for k in order:
                lo, hi = parts[k]
                for a, b in ((lo, (lo + hi) // 2), ((lo + hi) // 2, hi)):
                    scatter.write(a, body[a:b])
                    prefix.landed(k, b - lo)
            if not parts:
                target.filled(0)
        except BaseException:
            target.discard()
            raise
        meta, value = target.value()
        assert meta is reported and type(value) is bytes
        return value

    return asyncio.run(go())


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=30, deadline=None)
@given(
    length=st.integers(0, 12 * SEGMENT + 50),
    cuts=st.lists(st.integers(0, 60_000), max_size=7),
    seed=st.integers(0, 1000),
)
def test_every_format_read_whole_in_place_is_its_plaintext(fmt, length, cuts, seed):
    data = os.urandom(length)
    body, decryptor = _sealed(fmt, data)
    assert _read(body, decryptor(), cuts, seed) == data


@settings(max_examples=10, deadline=None)
@given(length=st.integers(0, 9_000), cuts=st.lists(st.integers(0, 9_000), max_size=4))
def test_a_plaintext_object_is_read_as_it_is(length, cuts):
    data = os.urandom(length)
    assert _read(data, None, cuts, 0) == data


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_changed_body_raises_and_hands_out_nothing(fmt):
    data = os.urandom(5 * SEGMENT + 77)  # segments in the buffer and past the plaintext's end
    body, decryptor = _sealed(fmt, data)
    # a flipped byte at the start, in the middle, in the bytes past the plaintext's length
    # (segments' tags, the GCM tag) and at the very end
    for at in (0, len(body) // 2, len(data) + 3, len(body) - 1, random.randrange(len(body))):
        changed = bytearray(body)
        changed[at] ^= 0x40
        with pytest.raises(IntegrityError, match="b/obj"):
            _read(bytes(changed), decryptor(), [SEGMENT * 2 + 5], 1)
    # truncated: a byte short, or (segmented) a whole last segment short
    for cut in (len(body) - 1, 4 * (SEGMENT + 16)):
        with pytest.raises(IntegrityError, match="b/obj"):
            _read(body[:cut], decryptor(), [], 0)


def test_a_legacy_cbc_object_is_decrypted_once_it_is_all_in():
    data = b"legacy bytes " * 1000
    key, iv = os.urandom(32), os.urandom(16)
    padder = padding.PKCS7(128).padder()
    ctx = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    body = ctx.update(padder.update(data) + padder.finalize()) + ctx.finalize()
    envelope = _sealed("v2", b"")[1]().envelope
    decryptor = ContentDecryptor(envelope, CbcDecryptor(key, iv, "b/obj"), "b/obj")
    assert _read(body, decryptor, [1000, 5000], 3) == data

"""The emrfs segmented format (docs/cse-segmented-format.md)."""

import asyncio
import base64
import hashlib
import hmac
import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings, strategies as st

from emrfs.crypto import ContentCrypto, plaintext_length, segmented as seg
from emrfs.errors import EncryptionError, IntegrityError

from .conftest import aes_options, decrypt, encrypt

P = 4096
C = P + 16
DATA_KEY = bytes(range(32))
SALT = bytes(range(0x80, 0xA0))
PREFIX = bytes(range(0xF0, 0xF7))


def _hkdf_sha256_by_hand(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + block, i + 1
    return out[:length]


def test_header_bytes_and_vector_by_hand():
    key = seg.SegmentedKey.new(DATA_KEY, P, salt=SALT, nonce_prefix=PREFIX)
    header = key.header.to_bytes()
    assert len(header) == seg.HEADER_BYTES == 83
    assert header[:4] == b"ESG1" and header[4:8] == bytes([1, 1, 1, 0])
    assert struct.unpack(">I", header[8:12]) == (P,)
    assert header[12:44] == SALT and header[44:51] == PREFIX
    okm = _hkdf_sha256_by_hand(DATA_KEY, SALT, b"emrfs-seg1" + header[:51], 64)
    assert header[51:] == okm[32:]
    # segment 0 of 2 and segment 1 (last): AES-GCM(okm[:32], prefix || be32(i) || last)
    data = bytes(range(256)) * 20  # 5120 bytes: two segments
    enc = key.encryptor()
    body = bytes(enc.update(data)) + enc.finalize()
    aead = AESGCM(okm[:32])
    assert body[:C] == aead.encrypt(PREFIX + b"\0\0\0\0\0", data[:P], None)
    assert body[C:] == aead.encrypt(PREFIX + b"\0\0\0\1\1", data[P:], None)


@pytest.mark.parametrize("size", [0, 1, P - 1, P, P + 1, 3 * P, 3 * P + 5])
@pytest.mark.parametrize("chunk", [1, 1000, P, P + 1, 1 << 20])
def test_round_trip(size, chunk):
    key = seg.SegmentedKey.new(DATA_KEY, P)
    data = os.urandom(size)
    enc = key.encryptor()
    body = b"".join(bytes(enc.update(data[i : i + chunk])) for i in range(0, size, chunk))
    body += enc.finalize()
    assert len(body) == seg.stored_length(size, P)
    assert seg.plaintext_length(len(body), P) == size
    dec = key.decryptor()
    got = b"".join(dec.update(body[i : i + chunk]) for i in range(0, len(body), chunk))
    assert got + dec.finalize() == data


@given(st.integers(0, 10 * P))
def test_lengths_invert(size):
    assert seg.plaintext_length(seg.stored_length(size, P), P) == size


@pytest.mark.parametrize("stored", [0, 1, 15, C + 1, C + 15])
def test_impossible_lengths_are_truncation(stored):
    with pytest.raises(IntegrityError, match="truncated"):
        seg.plaintext_length(stored, P, "b/k")


def _body(size=3 * P + 100):
    key = seg.SegmentedKey.new(DATA_KEY, P)
    data = os.urandom(size)
    enc = key.encryptor()
    return key, data, bytes(enc.update(data)) + enc.finalize()


def _decrypt_all(key, body):
    dec = key.decryptor()
    return dec.update(body) + dec.finalize()


@pytest.mark.parametrize(
    "case", ["swap", "drop_last", "cut_boundary", "cut_inside", "flip", "append", "dup"]
)
def test_reorder_truncate_tamper_detected(case):
    key, _data, body = _body()
    segs = [body[i : i + C] for i in range(0, len(body), C)]
    bad = {
        "swap": segs[1] + segs[0] + b"".join(segs[2:]),
        "drop_last": b"".join(segs[:-1]),
        "cut_boundary": b"".join(segs[:2]),
        "cut_inside": body[:-7],
        "flip": body[:5000] + bytes([body[5000] ^ 1]) + body[5001:],
        "append": body + segs[-1],
        "dup": segs[0] + b"".join(segs),
    }[case]
    with pytest.raises(IntegrityError):
        _decrypt_all(key, bad)


def test_wrong_key_and_altered_header():
    key = _body()[0]
    with pytest.raises(IntegrityError, match="key commitment"):
        seg.SegmentedKey(os.urandom(32), key.header, "b/k")
    altered = bytearray(key.header.to_bytes())
    altered[20] ^= 1  # the salt
    with pytest.raises(IntegrityError, match="key commitment"):
        seg.SegmentedKey(DATA_KEY, seg.Header.from_bytes(bytes(altered)), "b/k")
    other_size = seg.Header(8192, key.header.salt, key.header.nonce_prefix, key.header.commitment)
    with pytest.raises(IntegrityError):
        seg.SegmentedKey(DATA_KEY, other_size, "b/k")
    with pytest.raises(EncryptionError, match="unknown segmented-format header"):
        seg.Header.from_bytes(b"XXXX" + key.header.to_bytes()[4:], "b/k")
    with pytest.raises(EncryptionError, match="83"):
        seg.Header.from_bytes(b"short", "b/k")


@settings(max_examples=80, deadline=None)
@given(size=st.integers(0, 6 * P), a=st.integers(-5, 6 * P + 5), b=st.integers(-5, 6 * P + 5))
def test_plan_fetches_only_the_segments_needed(size, a, b):
    key = seg.SegmentedKey.new(DATA_KEY, P)
    data = bytes(i % 253 for i in range(size))
    enc = key.encryptor()
    body = bytes(enc.update(data)) + enc.finalize()
    start, end = min(a, b), max(a, b)
    plan = seg.plan(start, end, len(body), P)
    assert plan.fetch_start % C == 0
    assert plan.fetch_length <= plan.length + 2 * C
    got = key.decrypt_plan(plan, body[plan.fetch_start : plan.fetch_end])
    assert got == data[max(0, start) : max(0, end)]


def test_one_mib_of_one_gib_fetches_about_one_mib():
    stored = seg.stored_length(1 << 30, 64 * 1024)
    plan = seg.plan(500_000_001, 500_000_001 + (1 << 20), stored, 64 * 1024)
    assert (1 << 20) <= plan.fetch_length <= (1 << 20) + 2 * (64 * 1024 + 16)


def test_ranged_segment_tamper_and_truncated_object_detected():
    key, _data, body = _body()
    plan = seg.plan(P + 10, P + 20, len(body), P)
    bad = bytearray(body)
    bad[C + 50] ^= 1
    with pytest.raises(IntegrityError, match="segment 1"):
        key.decrypt_plan(plan, bytes(bad[plan.fetch_start : plan.fetch_end]))
    # the object cut after segment 2: segment 1 is now asked for as "last" and fails
    cut = body[: 2 * C]
    plan = seg.plan(C + 10, C + 20, len(cut), P)
    with pytest.raises(IntegrityError):
        key.decrypt_plan(plan, cut[plan.fetch_start : plan.fetch_end])


def test_through_the_facade(master_key):
    crypto = ContentCrypto(aes_options(master_key, format="segmented", segment_size=P))
    data = os.urandom(5 * P + 3)
    body, enc = encrypt(crypto, data)
    assert enc.metadata["x-emrfs-c"] == "seg1" and len(body) == len(data) + 6 * 16
    assert plaintext_length(len(body), enc.metadata) == len(data)
    assert decrypt(crypto, body, enc.metadata) == data
    reader = asyncio.run(crypto.range_reader("b/obj", enc.metadata, len(body)))
    assert reader.authenticated and reader.plaintext_length == len(data)
    plan = reader.plan(2 * P - 1, 2 * P + 1)
    assert plan.fetch_length == 2 * C
    assert (
        reader.decrypt(plan, body[plan.fetch_start : plan.fetch_end]) == data[2 * P - 1 : 2 * P + 1]
    )
    header = base64.b64decode(enc.metadata["x-emrfs-h"])
    assert header[:4] == b"ESG1"
    with pytest.raises(EncryptionError, match="b/obj"):  # another master key
        decrypt(ContentCrypto(aes_options(os.urandom(32), format="segmented")), body, enc.metadata)
    with pytest.raises(EncryptionError, match="segment_size"):
        encrypt(ContentCrypto(aes_options(master_key, format="segmented", segment_size=100)), b"")


@pytest.mark.parametrize("chunk", [1, 17, C - 1, C, C + 1, 3 * C + 5])
def test_decrypt_update_into_preallocated(chunk):
    key, data, body = _body()
    dec = key.decryptor()
    out = bytearray(len(body) + P)
    n = 0
    for i in range(0, len(body), chunk):
        n += dec.update_into(body[i : i + chunk], memoryview(out)[n:])
    tail = dec.finalize()
    assert bytes(out[:n]) + tail == data


@pytest.mark.parametrize("fmt", ["v3", "segmented"])
def test_whole_body_decrypt_into(master_key, fmt):
    crypto = ContentCrypto(aes_options(master_key, format=fmt, segment_size=P))
    data = os.urandom(3 * P + 1)
    body, enc = encrypt(crypto, data)
    dec = asyncio.run(crypto.decryptor("b/obj", enc.metadata))
    out = bytearray(len(body) + P)
    n = dec.decrypt_into(body, out)
    assert out[:n] == data
    dec = asyncio.run(crypto.decryptor("b/obj", enc.metadata))
    with pytest.raises(IntegrityError, match="b/obj"):
        dec.decrypt_into(body[:-1], bytearray(len(body) + P))

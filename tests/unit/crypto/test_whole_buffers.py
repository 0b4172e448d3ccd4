"""Whole-body CSE buffers: encrypt_whole and adecrypt_whole.

They fill ``bytes`` in place (the PUT body botocore streams cheaply); the
ciphertext must be exactly the streaming encryptor's, and every failure must
still raise.
"""

import asyncio

import pytest
from hypothesis import given, settings, strategies as st

from emrfs.crypto import Suite, decryptor_from_parts, encryptor_from_parts
from emrfs.crypto.stream import adecrypt_whole
from emrfs.errors import EncryptionError, IntegrityError

FORMATS = {"v3": Suite.V3_GCM_COMMIT, "v2": Suite.V2_GCM, "segmented": Suite.SEGMENTED}
DATA_KEY = bytes(range(32))


def _pair(fmt: str):
    """A maker of encryptors with the same key and randomness (the same ciphertext), and a
    decryptor for their bodies."""
    suite = FORMATS[fmt]

    def make():
        return encryptor_from_parts(
            suite,
            DATA_KEY,
            b"wrapped",
            "AES/GCM",
            {},
            path="b/obj",
            segment_size=4096,
            iv=b"\x07" * 12,
            message_id=b"\x09" * 28,
            salt=b"\x05" * 32,
            nonce_prefix=b"\x03" * 7,
        )

    def decryptor():
        return decryptor_from_parts(make().envelope, DATA_KEY, "b/obj")

    return make, decryptor


def _streamed(enc, data: bytes) -> bytes:
    return (
        b"".join(bytes(enc.update(data[i : i + 1000])) for i in range(0, len(data), 1000))
        + enc.finalize()
    )


def _chunks(data: bytes, sizes: list[int]):
    view, at = memoryview(data), 0
    for size in sizes:
        yield view[at : at + size]
        at += size
    yield view[at:]


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=25, deadline=None)
@given(length=st.integers(0, 40_000), cuts=st.lists(st.integers(0, 9_000), max_size=6))
def test_encrypt_whole_is_the_streamed_ciphertext_as_bytes(fmt, length, cuts):
    make, decryptor = _pair(fmt)
    data = bytes(range(256)) * (length // 256) + bytes(length % 256)
    body = make().encrypt_whole(_chunks(data, cuts), len(data))
    assert type(body) is bytes  # a bytearray body costs 2.6x the client CPU of the PUT
    assert body == _streamed(make(), data)
    assert decryptor().decrypt(body) == data


@pytest.mark.parametrize("fmt", FORMATS)
def test_encrypt_whole_refuses_more_or_fewer_bytes_than_announced(fmt):
    make, _ = _pair(fmt)
    with pytest.raises(EncryptionError, match="b/obj"):
        make().encrypt_whole([b"x" * 10_000, b"y" * 10_000], 10_000)
    # fewer: the buffer is not filled in the write (uninitialised bytes never go out)
    with pytest.raises(EncryptionError, match="b/obj"):
        make().encrypt_whole([b"x" * 9_000], 10_000)


async def _agen(body: bytes, step: int):
    for i in range(0, len(body), step):
        yield body[i : i + step]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("step", [1, 17, 4096 + 16, 1 << 20])
def test_adecrypt_whole_round_trips_into_bytes(fmt, step):
    make, decryptor = _pair(fmt)
    data = bytes(i % 249 for i in range(30_000))
    body = make().encrypt_whole([data], len(data))
    plain = asyncio.run(adecrypt_whole(decryptor(), _agen(body, step), len(body)))
    assert type(plain) is bytes and plain == data


@pytest.mark.parametrize("fmt", FORMATS)
def test_adecrypt_whole_raises_on_tampering_and_on_a_longer_body(fmt):
    make, decryptor = _pair(fmt)
    data = bytes(30_000)
    body = bytearray(make().encrypt_whole([data], len(data)))
    body[100] ^= 1
    with pytest.raises(IntegrityError, match="b/obj"):
        asyncio.run(adecrypt_whole(decryptor(), _agen(bytes(body), 4096), len(body)))
    body[100] ^= 1
    with pytest.raises(IntegrityError, match="longer than S3 reported"):
        asyncio.run(
            adecrypt_whole(decryptor(), _agen(bytes(body) + bytes(50_000), 8192), len(body))
        )


@pytest.mark.parametrize("fmt", ["v3", "segmented"])
def test_a_large_body_faulted_in_behind_the_encryption_is_the_same_ciphertext(fmt):
    """From 16 MiB the body's later pages are faulted in on a helper thread (advice
    only): the ciphertext is the streamed one, and the buffer is freed cleanly after."""
    from emrfs.crypto import populate

    make, decryptor = _pair(fmt)
    data = bytes(range(256)) * (17 * 1024 * 1024 // 256) + b"tail"
    body = make().encrypt_whole([data], len(data))
    assert body == _streamed(make(), data)
    assert decryptor().decrypt(body) == data
    buffer = bytearray(populate._FROM)
    buffer[-1] = 7
    view = memoryview(buffer)
    thread = populate.populate_behind(view)
    if thread is not None:  # Linux: the advice leaves the bytes as they are
        thread.join()
    assert buffer[-1] == 7 and not any(buffer[:-1])
    view.release()  # nothing still holds the buffer exported

"""The request shape of whole client-side encrypted reads over the obstore transport,
counted on the wire by a :class:`FaultProxy` in front of moto (the side channel): a
sealed object is its plaintext's size plus a tag (16 bytes, or 16 a segment), and its
read costs the GETs a plaintext object of its size costs, never one more for the last
few bytes; the parts' GETs go out while the object's key is being resolved."""

from __future__ import annotations

import asyncio
import base64
import os
import time

import pytest

pytest.importorskip("obstore")

from emrfs import EmrFileSystem
from emrfs.crypto.store import EncryptingStore
from emrfs.testing import FaultProxy

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
PART = MiB  # the transport's part size in these tests (16 MiB by default)
AES = {
    "enabled": True,
    "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
    "aes_key": base64.b64encode(bytes(range(32))).decode(),
}
FORMATS = {"v3": AES, "segmented": {**AES, "format": "segmented"}}


@pytest.fixture
def proxy(emrfs_endpoint, monkeypatch):
    import emrfs.store.obstore as transport

    monkeypatch.setattr(transport, "_GET_PART", PART)
    with FaultProxy(emrfs_endpoint) as proxy:
        yield proxy


def _fs(proxy: FaultProxy, cse: dict | None) -> EmrFileSystem:
    return EmrFileSystem(
        endpoint_url=proxy.url,
        skip_instance_cache=True,
        transport="obstore",
        **({"cse": cse} if cse else {}),
    )


def _gets(proxy: FaultProxy) -> int:
    return proxy.counters().operations.get("GetObject", 0)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("parts", [1, 4])
def test_a_sealed_read_costs_the_gets_of_its_plaintext(proxy, emrfs_s3, emrfs_bucket, fmt, parts):
    """A sealed object of ``parts`` whole parts of plaintext is read in as many GETs as a
    plaintext object of that size (no GET of the tag or the last segments alone), and
    no stored byte is fetched twice."""
    data = os.urandom(parts * PART)
    plain, sealed = _fs(proxy, None), _fs(proxy, FORMATS[fmt])
    plain.pipe_file(f"{emrfs_bucket}/plain", data)
    sealed.pipe_file(f"{emrfs_bucket}/sealed", data)
    stored = emrfs_s3.head_object(Bucket=emrfs_bucket, Key="sealed")["ContentLength"]
    assert stored > len(data)  # the side channel: ciphertext and its tags
    proxy.reset_counters()
    assert plain.cat_file(f"{emrfs_bucket}/plain") == data
    plain_gets = _gets(proxy)
    assert plain_gets == parts
    proxy.reset_counters()
    assert sealed.cat_file(f"{emrfs_bucket}/sealed") == data
    counters = proxy.counters()
    assert _gets(proxy) == plain_gets, dict(counters.operations)
    assert counters.requests == plain_gets  # no HEAD either: the envelope came with a GET
    assert counters.response_bytes == stored


def test_the_parts_are_asked_for_while_the_key_is_resolved(proxy, emrfs_bucket):
    """A key that takes long to resolve (a KMS round trip) holds no part back: every GET
    of a sealed read is made before its data key is known."""
    data = os.urandom(4 * PART)
    fs = _fs(proxy, AES)
    path = f"{emrfs_bucket}/sealed"
    fs.pipe_file(path, data)
    (layer,) = [s for s in fs._stacks.layers(path) if isinstance(s, EncryptingStore)]
    crypto = layer.crypto
    unwrapped = crypto.decryptor
    seen: list[int] = []

    async def slow_key(*args, **kwargs):
        deadline = time.monotonic() + 10  # the GETs go out at once: never waited for long
        while _gets(proxy) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        seen.append(_gets(proxy))
        return await unwrapped(*args, **kwargs)

    crypto.decryptor = slow_key
    proxy.reset_counters()
    assert fs.cat_file(path) == data
    assert seen == [4] and _gets(proxy) == 4


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_sealed_stream_costs_the_gets_of_its_plaintext(
    proxy, emrfs_bucket, fmt, monkeypatch, tmp_path
):
    """Streamed whole (a download), a sealed object comes in the parts a plaintext one of
    its size does: its tag or last segments come with the last part."""
    import emrfs.store.obstore as transport

    monkeypatch.setattr(transport, "_STREAM_PART", PART)
    data = os.urandom(4 * PART)
    plain, sealed = _fs(proxy, None), _fs(proxy, FORMATS[fmt])
    plain.pipe_file(f"{emrfs_bucket}/plain", data)
    sealed.pipe_file(f"{emrfs_bucket}/sealed", data)
    gets = []
    for fs, name in ((plain, "plain"), (sealed, "sealed")):
        proxy.reset_counters()
        fs.get_file(f"{emrfs_bucket}/{name}", str(tmp_path / name))
        assert (tmp_path / name).read_bytes() == data
        gets.append(_gets(proxy))
    assert gets == [4, 4]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_sealed_read_in_parts_that_meets_a_changed_byte_returns_nothing(
    proxy, emrfs_s3, emrfs_bucket, fmt, monkeypatch
):
    """Parts are decrypted as they land, before the whole object verified: a byte changed
    in any part (or the tag) still fails the read with IntegrityError, whole-object and
    streamed, and nothing of the plaintext is handed out."""
    from emrfs.errors import IntegrityError
    from emrfs.store import obstore_drain

    monkeypatch.setattr(obstore_drain, "REPORT_STEP", 64 * 1024)  # within parts too
    data = os.urandom(4 * PART)
    fs = _fs(proxy, FORMATS[fmt])
    fs.pipe_file(f"{emrfs_bucket}/good", data)
    raw = emrfs_s3.get_object(Bucket=emrfs_bucket, Key="good")
    body, envelope = raw["Body"].read(), raw["Metadata"]
    for at in (10, 2 * PART + 5, len(body) - 1):
        changed = bytearray(body)
        changed[at] ^= 0x01
        emrfs_s3.put_object(Bucket=emrfs_bucket, Key="bad", Body=bytes(changed), Metadata=envelope)
        with pytest.raises(IntegrityError):
            fs.cat_file(f"{emrfs_bucket}/bad")
        with pytest.raises(IntegrityError), fs.open(f"{emrfs_bucket}/bad", "rb") as f:
            f.read()
    assert fs.cat_file(f"{emrfs_bucket}/good") == data

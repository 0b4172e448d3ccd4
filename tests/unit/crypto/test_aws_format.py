"""The AWS S3 Encryption Client formats: vectors, round trips, bad input."""

import asyncio
import base64
import hashlib
import hmac
import json
import os

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from hypothesis import given, settings, strategies as st

from emrfs.crypto import (
    ContentCrypto,
    Suite,
    is_encrypted,
    needs_instruction_file,
    plaintext_length,
    verified_chunks,
)
from emrfs.crypto.content import derive_v3
from emrfs.crypto.envelope import parse
from emrfs.crypto.ranges import ctr_decrypt, ctr_plan
from emrfs.errors import ConfigurationError, EncryptionError, IntegrityError

from .conftest import aes_options, decrypt, encrypt


def _hkdf_expand_by_hand(prk: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 expand written out: T(i) = HMAC(prk, T(i-1) || info || i)."""
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha512).digest()
        out += block
        counter += 1
    return out[:length]


DATA_KEY = bytes(range(32))
MESSAGE_ID = bytes(range(0x40, 0x40 + 28))


def test_v3_derivation_matches_the_note_by_hand():
    prk = hmac.new(MESSAGE_ID, DATA_KEY, hashlib.sha512).digest()
    dek = _hkdf_expand_by_hand(prk, b"\x00\x73DERIVEKEY", 32)
    commit = _hkdf_expand_by_hand(prk, b"\x00\x73COMMITKEY", 28)
    assert derive_v3(DATA_KEY, MESSAGE_ID) == (dek, commit)
    # pinned, so a change of either implementation shows
    assert commit.hex() == "0e7419e5cfb7c60d57a748d87c03278749350c9bb4c973f4f40831f4"


def test_v3_body_is_aesgcm_of_derived_key(master_key):
    crypto = ContentCrypto(aes_options(master_key))
    data = os.urandom(50_000)
    body, enc = encrypt(crypto, data, _message_id=MESSAGE_ID)
    envelope = parse(enc.metadata, "b/obj")
    assert envelope.message_id == MESSAGE_ID
    data_key = asyncio.run(crypto.provider("b/obj").decrypt(envelope, "b/obj"))
    dek, commit = derive_v3(data_key, MESSAGE_ID)
    assert base64.b64decode(enc.metadata["x-amz-d"]) == commit
    assert body == AESGCM(dek).encrypt(b"\x01" * 12, data, b"\x00\x73")
    # the AES/GCM key wrap: nonce || AESGCM(master, nonce, key, aad=b"115")
    wrapped = base64.b64decode(enc.metadata["x-amz-3"])
    assert AESGCM(master_key).decrypt(wrapped[:12], wrapped[12:], b"115") == data_key
    assert enc.metadata["x-amz-c"] == "115" and enc.metadata["x-amz-w"] == "02"


def test_v2_body_and_names(master_key):
    crypto = ContentCrypto(
        aes_options(master_key, format="v2", commitment_policy="FORBID_ENCRYPT_ALLOW_DECRYPT")
    )
    iv = bytes(range(12))
    body, enc = encrypt(crypto, b"hello v2", _iv=iv)
    meta = enc.metadata
    assert meta["x-amz-cek-alg"] == "AES/GCM/NoPadding" and meta["x-amz-wrap-alg"] == "AES/GCM"
    assert meta["x-amz-tag-len"] == "128" and base64.b64decode(meta["x-amz-iv"]) == iv
    wrapped = base64.b64decode(meta["x-amz-key-v2"])
    data_key = AESGCM(master_key).decrypt(wrapped[:12], wrapped[12:], b"AES/GCM/NoPadding")
    assert body == AESGCM(data_key).encrypt(iv, b"hello v2", None)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 65536, 200_003])
@pytest.mark.parametrize("fmt", ["v2", "v3"])
def test_round_trip_any_chunking(master_key, size, fmt):
    policy = "FORBID_ENCRYPT_ALLOW_DECRYPT" if fmt == "v2" else "REQUIRE_ENCRYPT_ALLOW_DECRYPT"
    crypto = ContentCrypto(aes_options(master_key, format=fmt, commitment_policy=policy))
    data = os.urandom(size)
    body, enc = encrypt(crypto, data, chunk=4099)
    assert len(body) == size + 16 == enc.stored_length(size)
    for chunk in (1, 13, 16, 4096, 1 << 20):
        assert decrypt(crypto, body, enc.metadata, chunk=chunk) == data
    assert plaintext_length(len(body), enc.metadata) == size


def test_update_into_preallocated(master_key):
    crypto = ContentCrypto(aes_options(master_key))
    data = os.urandom(1 << 20)
    enc = asyncio.run(crypto.new_encryptor("b/obj"))
    out = bytearray(len(data) + 16)
    n = 0
    for i in range(0, len(data), 300_000):
        piece = data[i : i + 300_000]
        n += enc.update_into(piece, memoryview(out)[n : n + enc.max_output(len(piece))])
    tag = enc.finalize()
    out[n:] = tag
    dec = asyncio.run(crypto.decryptor("b/obj", enc.metadata))
    plain = bytearray(len(data))
    m = 0
    for i in range(0, len(out), 250_000):
        m += dec.update_into(memoryview(out)[i : i + 250_000], memoryview(plain)[m:])
    dec.finalize()
    assert m == len(data) and plain == data


def _bad_bodies(body: bytes):
    flipped = bytearray(body)
    flipped[len(body) // 2] ^= 0x40
    tag = bytearray(body)
    tag[-1] ^= 1
    return {
        "flipped": bytes(flipped),
        "tag": bytes(tag),
        "truncated1": body[:-1],
        "truncated16": body[:-16],
        "empty": b"",
        "extended": body + b"\0",
    }


@pytest.mark.parametrize(
    "case", ["flipped", "tag", "truncated1", "truncated16", "empty", "extended"]
)
def test_tampered_or_truncated_body_fails_naming_object(master_key, case):
    crypto = ContentCrypto(aes_options(master_key))
    body, enc = encrypt(crypto, os.urandom(10_000))
    with pytest.raises(IntegrityError, match="b/obj"):
        decrypt(crypto, _bad_bodies(body)[case], enc.metadata)


def test_verified_chunks_holds_the_last_chunk_back(master_key):
    crypto = ContentCrypto(aes_options(master_key))
    data = os.urandom(100_000)
    body, enc = encrypt(crypto, data)
    bad = _bad_bodies(body)["tag"]
    dec = asyncio.run(crypto.decryptor("b/obj", enc.metadata))
    got = []
    with pytest.raises(IntegrityError):
        for piece in verified_chunks(
            dec, (bad[i : i + 10_000] for i in range(0, len(bad), 10_000))
        ):
            got.append(piece)
    assert len(b"".join(got)) < len(data)  # the final piece never came out
    dec = asyncio.run(crypto.decryptor("b/obj", enc.metadata))
    assert b"".join(verified_chunks(dec, [body[:5], body[5:]])) == data


def test_wrong_master_key(master_key):
    body, enc = encrypt(ContentCrypto(aes_options(master_key)), b"secret")
    with pytest.raises(EncryptionError, match="b/obj"):
        decrypt(ContentCrypto(aes_options(os.urandom(32))), body, enc.metadata)


@pytest.mark.parametrize(
    "change,error,match",
    [
        ({"x-amz-d": base64.b64encode(b"\0" * 28).decode()}, IntegrityError, "key commitment"),
        ({"x-amz-i": base64.b64encode(b"\1" * 28).decode()}, IntegrityError, "key commitment"),
        ({"x-amz-c": "116"}, EncryptionError, "content suite '116'"),
        ({"x-amz-w": "99"}, EncryptionError, "wrap algorithm code '99'"),
        ({"x-amz-3": "%%%"}, EncryptionError, "malformed"),
        ({"x-amz-i": base64.b64encode(b"short").decode()}, EncryptionError, "28 bytes"),
        ({"x-amz-key-v2": "AAAA"}, EncryptionError, "several formats"),
        ({"x-amz-iv": "AAAA"}, EncryptionError, "mixes"),
        ({"x-amz-3": None}, EncryptionError, "instruction file"),
        (
            {
                "x-amz-3": None,
                "x-amz-c": None,
                "x-amz-i": None,
                "x-amz-d": None,
                "x-amz-w": None,
                "x-amz-m": None,
            },
            EncryptionError,
            "no client-side encryption envelope",
        ),
    ],
)
def test_altered_envelope(master_key, change, error, match):
    crypto = ContentCrypto(aes_options(master_key))
    body, enc = encrypt(crypto, b"x" * 1000)
    meta = dict(enc.metadata)
    for name, value in change.items():
        if value is None:
            meta.pop(name)
        else:
            meta[name] = value
    with pytest.raises(error, match=match) as info:
        decrypt(crypto, body, meta)
    assert "b/obj" in str(info.value)


def test_commitment_policy(master_key):
    v2 = ContentCrypto(
        aes_options(master_key, format="v2", commitment_policy="FORBID_ENCRYPT_ALLOW_DECRYPT")
    )
    body, enc = encrypt(v2, b"old object")
    strict = ContentCrypto(aes_options(master_key))
    with pytest.raises(EncryptionError, match="REQUIRE_ENCRYPT_REQUIRE_DECRYPT"):
        decrypt(strict, body, enc.metadata)
    lenient = ContentCrypto(
        aes_options(master_key, commitment_policy="REQUIRE_ENCRYPT_ALLOW_DECRYPT")
    )
    assert decrypt(lenient, body, enc.metadata) == b"old object"
    for fmt, policy in (
        ("v2", "REQUIRE_ENCRYPT_ALLOW_DECRYPT"),
        ("v3", "FORBID_ENCRYPT_ALLOW_DECRYPT"),
        ("v9", "FORBID_ENCRYPT_ALLOW_DECRYPT"),
        ("v3", "SOMETIMES"),
    ):
        with pytest.raises(ConfigurationError):
            encrypt(
                ContentCrypto(aes_options(master_key, format=fmt, commitment_policy=policy)), b""
            )


def _legacy_v1(master_key: bytes, data: bytes, wrap: str):
    data_key, iv = os.urandom(32), os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    ctx = Cipher(algorithms.AES(data_key), modes.CBC(iv)).encryptor()
    body = ctx.update(padded) + ctx.finalize()
    if wrap == "AESWrap":
        wrapped = aes_key_wrap(master_key, data_key)
    else:
        p = padding.PKCS7(128).padder()
        e = Cipher(algorithms.AES(master_key), modes.ECB()).encryptor()
        wrapped = e.update(p.update(data_key) + p.finalize()) + e.finalize()
    meta = {
        "x-amz-key": base64.b64encode(wrapped).decode(),
        "x-amz-iv": base64.b64encode(iv).decode(),
        "x-amz-matdesc": "{}",
        "x-amz-unencrypted-content-length": str(len(data)),
    }
    if wrap == "AESWrap":
        meta["x-amz-wrap-alg"] = "AESWrap"
    return body, meta


@pytest.mark.parametrize("wrap", ["AESWrap", "unnamed"])
def test_legacy_v1_only_behind_opt_in(master_key, wrap):
    data = b"legacy bytes " * 100
    body, meta = _legacy_v1(master_key, data, wrap)
    with pytest.raises(EncryptionError, match="allow_legacy"):
        decrypt(ContentCrypto(aes_options(master_key)), body, meta)
    opted = ContentCrypto(
        aes_options(
            master_key, allow_legacy=True, commitment_policy="REQUIRE_ENCRYPT_ALLOW_DECRYPT"
        )
    )
    assert decrypt(opted, body, meta) == data
    assert plaintext_length(len(body), meta) == len(data)
    assert parse(meta, "p").suite is Suite.V1_CBC


def test_instruction_file_layouts(master_key):
    for fmt, policy, on_object in (
        ("v3", "REQUIRE_ENCRYPT_REQUIRE_DECRYPT", {"x-amz-c", "x-amz-i", "x-amz-d"}),
        ("v2", "FORBID_ENCRYPT_ALLOW_DECRYPT", set()),
    ):
        crypto = ContentCrypto(
            aes_options(
                master_key,
                format=fmt,
                commitment_policy=policy,
                storage_mode="InstructionFile",
                instruction_suffix=".instr",
            )
        )
        body, enc = encrypt(crypto, b"abc" * 99)
        assert set(enc.metadata) == on_object
        assert needs_instruction_file(enc.metadata)
        assert crypto.instruction_key("b/obj") == "b/obj.instr"
        assert enc.instruction_metadata == {"x-amz-crypto-instr-file": ""}
        if fmt == "v2":
            crypto = ContentCrypto(
                aes_options(master_key, commitment_policy="REQUIRE_ENCRYPT_ALLOW_DECRYPT")
            )
        assert decrypt(crypto, body, enc.metadata, enc.instruction) == b"abc" * 99
        with pytest.raises(EncryptionError, match="b/obj"):
            decrypt(crypto, body, enc.metadata)  # instruction file not passed
        # an instruction file that smuggles object-only names is refused
        bad = json.loads(enc.instruction)
        bad["x-amz-c"] = "115"
        with pytest.raises(EncryptionError, match="altered"):
            decrypt(crypto, body, enc.metadata, json.dumps(bad).encode())
        with pytest.raises(EncryptionError, match="not valid JSON"):
            decrypt(crypto, body, enc.metadata, b"{nope")


def test_rsa_key_pair_and_pluggable_provider(monkeypatch, master_key):
    import sys
    import types

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding as ap, rsa

    from emrfs.config import CSEOptions
    from emrfs.crypto import EncryptionMaterialsProvider, Materials

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    class Provider(EncryptionMaterialsProvider):
        def encryption_materials(self, path):
            return Materials({"kid": "rsa-1"}, public_key=private.public_key())

        async def decryption_materials(self, description, path):
            return (
                Materials(description, private_key=private)
                if description == {"kid": "rsa-1"}
                else None
            )

    module = types.ModuleType("emrfs_test_provider")
    module.Provider = Provider
    monkeypatch.setitem(sys.modules, "emrfs_test_provider", module)
    crypto = ContentCrypto(
        CSEOptions(enabled=True, materials_provider="emrfs_test_provider:Provider")
    )
    body, enc = encrypt(crypto, b"rsa wrapped")
    assert enc.metadata["x-amz-w"] == "22"
    assert json.loads(enc.metadata["x-amz-m"]) == {"kid": "rsa-1"}
    pseudo = private.decrypt(
        base64.b64decode(enc.metadata["x-amz-3"]),
        ap.OAEP(ap.MGF1(hashes.SHA1()), hashes.SHA1(), None),
    )
    assert pseudo[0] == 32 and pseudo[33:] == b"115"
    assert decrypt(crypto, body, enc.metadata) == b"rsa wrapped"
    meta = dict(enc.metadata, **{"x-amz-m": json.dumps({"kid": "other"})})
    with pytest.raises(EncryptionError, match="no key for the materials description"):
        decrypt(crypto, body, meta)
    with pytest.raises(ConfigurationError, match="cannot load"):
        ContentCrypto(CSEOptions(enabled=True, materials_provider="nope.nope:X")).provider("b/k")


def test_is_encrypted_and_lengths():
    assert not is_encrypted({"owner": "me"})
    assert plaintext_length(100, {"owner": "me"}) == 100
    assert plaintext_length(116, {"x-amz-c": "115", "x-amz-3": "a"}) == 100


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 5000), a=st.integers(-10, 5100), b=st.integers(-10, 5100))
def test_ctr_range_mapping(size, a, b):
    key, iv = bytes(32), bytes(range(12))
    data = bytes(i % 251 for i in range(size))
    body = AESGCM(key).encrypt(iv, data, None)
    start, end = min(a, b), max(a, b)
    plan = ctr_plan(start, end, len(body))
    assert plan.fetch_start % 16 == 0 and plan.fetch_start <= max(0, min(start, size))
    assert plan.fetch_end <= size and plan.fetch_end - plan.fetch_start < plan.length + 16
    got = ctr_decrypt(key, iv, plan, body[plan.fetch_start : plan.fetch_end])
    assert got == data[max(0, start) : max(0, end)]


def test_range_reader_needs_opt_in_for_aws_formats(master_key):
    crypto = ContentCrypto(aes_options(master_key))
    data = os.urandom(70_000)
    body, enc = encrypt(crypto, data)
    with pytest.raises(EncryptionError, match="unauthenticated_range_reads"):
        asyncio.run(crypto.range_reader("b/obj", enc.metadata, len(body)))
    opted = ContentCrypto(aes_options(master_key, unauthenticated_range_reads=True))
    reader = asyncio.run(opted.range_reader("b/obj", enc.metadata, len(body)))
    assert not reader.authenticated and reader.plaintext_length == len(data)
    plan = reader.plan(12_345, 23_456)
    assert reader.decrypt(plan, body[plan.fetch_start : plan.fetch_end]) == data[12_345:23_456]


def test_rsa_provider_from_pem_files(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from emrfs.config import CSEOptions

    def pem_pair(name):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        priv, pub = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub"
        priv.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        pub.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return str(priv), str(pub)

    priv, pub = pem_pair("a")
    other_priv, _ = pem_pair("b")
    base = dict(
        enabled=True,
        materials_provider="emrfs.crypto.keys:RsaKeyProvider",
        materials_description='{"owner": "etl"}',
    )
    writer = ContentCrypto(CSEOptions(rsa_public_key_file=pub, **base))
    body, enc = encrypt(writer, b"rsa from files")
    assert json.loads(enc.metadata["x-amz-m"]) == {"owner": "etl"}
    with pytest.raises(EncryptionError, match="private key"):
        decrypt(writer, body, enc.metadata)
    reader = ContentCrypto(CSEOptions(rsa_private_key_file=priv, **base))
    assert decrypt(reader, body, enc.metadata) == b"rsa from files"
    wrong = ContentCrypto(CSEOptions(rsa_private_key_file=other_priv, **base))
    with pytest.raises(EncryptionError, match="cannot unwrap"):
        decrypt(wrong, body, enc.metadata)
    with pytest.raises(ConfigurationError, match="cannot read"):
        missing = CSEOptions(rsa_private_key_file=str(tmp_path / "none"), **base)
        ContentCrypto(missing).provider("b/k")


@pytest.mark.parametrize(
    "key,match",
    [
        (None, "needs cse.aes_key"),
        ("!!", "not valid base64"),
        (base64.b64encode(b"short").decode(), "5 bytes"),
    ],
)
def test_aes_provider_bad_configuration(key, match):
    from emrfs.config import CSEOptions

    options = CSEOptions(
        enabled=True, materials_provider="emrfs.crypto.keys:AesKeyProvider", aes_key=key
    )
    with pytest.raises(ConfigurationError, match=match):
        ContentCrypto(options).provider("b/k")


def test_per_prefix_cse_overrides_and_instruction_fetch_rule(master_key):
    from emrfs import config

    key = base64.b64encode(master_key).decode()
    options = config.load(
        {
            "cse": {
                "enabled": True,
                "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
                "aes_key": key,
            },
            "overrides": {
                "b/seg": {"cse": {"format": "segmented"}},
                "b/instr": {"fs.s3.cse.cryptoStorageMode": "InstructionFile"},
            },
        },
        environ={},
    )
    crypto = ContentCrypto(options)
    _, plain_enc = encrypt(crypto, b"x", path="b/plain/x")
    _, seg_enc = encrypt(crypto, b"x", path="b/seg/x")
    body, instr_enc = encrypt(crypto, b"abc", path="b/instr/x")
    assert plain_enc.suite is Suite.V3_GCM_COMMIT and seg_enc.suite is Suite.SEGMENTED
    assert instr_enc.instruction is not None
    assert crypto.should_fetch_instruction("b/instr/x", instr_enc.metadata)
    assert not crypto.should_fetch_instruction("b/plain/x", plain_enc.metadata)
    assert not crypto.should_fetch_instruction("b/plain/y", {})  # plaintext object
    assert crypto.should_fetch_instruction("b/instr/y", {})  # maybe a v2 one
    assert (
        decrypt(crypto, body, instr_enc.metadata, instr_enc.instruction, path="b/instr/x") == b"abc"
    )

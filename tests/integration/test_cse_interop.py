"""CSE objects cross both ways with AWS's own client, on the local S3 + KMS.

emrfs's side writes/reads raw bodies and metadata with boto3 (the side
channel), using only :mod:`emrfs.crypto`; AWS's side is
``amazon-s3-encryption-client-python`` with its KMS keyring.
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from emrfs.config import CSEOptions
from emrfs.crypto import ContentCrypto
from emrfs.errors import EncryptionError, IntegrityError

pytestmark = pytest.mark.integration

s3ec = pytest.importorskip(
    "s3_encryption",
    reason="amazon-s3-encryption-client-python is not installed "
    "(pip install amazon-s3-encryption-client-python==4.0.0)",
)
from s3_encryption import S3EncryptionClient, S3EncryptionClientConfig  # noqa: E402
from s3_encryption.materials.kms_keyring import KmsKeyring  # noqa: E402
from s3_encryption.materials.materials import AlgorithmSuite, CommitmentPolicy  # noqa: E402

REGION = "us-east-1"


@pytest.fixture(scope="module")
def kms_key(emrfs_endpoint):
    import boto3

    kms = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name=REGION)
    return kms, kms.create_key(Description="emrfs cse interop")["KeyMetadata"]["KeyId"]


class AioKms:
    """An aiobotocore KMS client opened on first use, closed by the test."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self._ctx = None

    async def __call__(self):
        from aiobotocore.session import get_session

        self._ctx = get_session().create_client(
            "kms", endpoint_url=self.endpoint, region_name=REGION
        )
        return await self._ctx.__aenter__()

    async def close(self):
        if self._ctx is not None:
            await self._ctx.__aexit__(None, None, None)


def aws_client(
    s3,
    kms,
    key_id,
    suite=AlgorithmSuite.ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
):
    """AWS's client on a boto3 client of its own: it hooks every call of the client it wraps."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3.meta.endpoint_url, region_name=REGION)
    config = S3EncryptionClientConfig(
        keyring=KmsKeyring(kms_client=kms, kms_key_id=key_id),
        encryption_algorithm=suite,
        commitment_policy=policy,
    )
    return S3EncryptionClient(wrapped_s3_client=s3, config=config)


def run(coro_fn):
    return asyncio.run(coro_fn())


def _options(key_id, **kw):
    return CSEOptions(enabled=True, kms_key_id=key_id, **kw)


async def _emrfs_put(crypto, s3, bucket, key, data, chunk=100_000):
    enc = await crypto.new_encryptor(f"{bucket}/{key}")
    parts = [bytes(enc.update(data[i : i + chunk])) for i in range(0, len(data), chunk)]
    body = b"".join(parts) + enc.finalize()
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=enc.metadata)
    if enc.instruction is not None:
        s3.put_object(
            Bucket=bucket,
            Key=crypto.instruction_key(key),
            Body=enc.instruction,
            Metadata=enc.instruction_metadata,
        )
    return body, enc


async def _emrfs_get(crypto, s3, bucket, key):
    obj = s3.get_object(Bucket=bucket, Key=key)
    instruction = None
    if crypto.needs_instruction_file(obj["Metadata"]):
        instruction = s3.get_object(Bucket=bucket, Key=crypto.instruction_key(key))["Body"].read()
    dec = await crypto.decryptor(f"{bucket}/{key}", obj["Metadata"], instruction)
    return dec.decrypt(obj["Body"].read()), obj


@pytest.mark.parametrize(
    "fmt,policy,storage",
    [
        ("v3", "REQUIRE_ENCRYPT_REQUIRE_DECRYPT", "ObjectMetadata"),
        ("v3", "REQUIRE_ENCRYPT_REQUIRE_DECRYPT", "InstructionFile"),
        ("v2", "FORBID_ENCRYPT_ALLOW_DECRYPT", "ObjectMetadata"),
        ("v2", "FORBID_ENCRYPT_ALLOW_DECRYPT", "InstructionFile"),
    ],
)
def test_emrfs_writes_aws_reads(
    emrfs_endpoint, emrfs_s3, emrfs_bucket, kms_key, fmt, policy, storage
):
    kms, key_id = kms_key
    data = os.urandom(300_001)
    aio = AioKms(emrfs_endpoint)

    async def go():
        crypto = ContentCrypto(
            _options(key_id, format=fmt, commitment_policy=policy, storage_mode=storage), aio
        )
        try:
            body, enc = await _emrfs_put(crypto, emrfs_s3, emrfs_bucket, "obj", data)
        finally:
            await aio.close()
        return body, enc

    body, _enc = run(go)
    # side channel: the stored body is ciphertext + tag, not the plaintext
    raw = emrfs_s3.get_object(Bucket=emrfs_bucket, Key="obj")
    assert raw["ContentLength"] == len(data) + 16 and raw["Body"].read() == body != data
    aws_policy = (
        CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        if fmt == "v3"
        else CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT
    )
    client = aws_client(emrfs_s3, kms, key_id, policy=aws_policy)
    assert client.get_object(Bucket=emrfs_bucket, Key="obj")["Body"].read() == data


@pytest.mark.parametrize("fmt", ["v3", "v2"])
def test_aws_writes_emrfs_reads(emrfs_endpoint, emrfs_s3, emrfs_bucket, kms_key, fmt):
    kms, key_id = kms_key
    data = os.urandom(250_000)
    if fmt == "v3":
        client = aws_client(emrfs_s3, kms, key_id)
        options = _options(key_id)
    else:
        client = aws_client(
            emrfs_s3,
            kms,
            key_id,
            AlgorithmSuite.ALG_AES_256_GCM_IV12_TAG16_NO_KDF,
            CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
        )
        options = _options(key_id, commitment_policy="REQUIRE_ENCRYPT_ALLOW_DECRYPT")
    client.put_object(Bucket=emrfs_bucket, Key="aws", Body=data)
    aio = AioKms(emrfs_endpoint)

    async def go():
        crypto = ContentCrypto(options, aio)
        try:
            plain, obj = await _emrfs_get(crypto, emrfs_s3, emrfs_bucket, "aws")
            assert crypto.plaintext_length(obj["ContentLength"], obj["Metadata"]) == len(data)
            # the default policy refuses v2 (no key commitment)
            if fmt == "v2":
                strict = ContentCrypto(_options(key_id), aio)
                with pytest.raises(EncryptionError, match="key commitment"):
                    await strict.decryptor(f"{emrfs_bucket}/aws", obj["Metadata"])
            return plain
        finally:
            await aio.close()

    assert run(go) == data


def test_aws_multipart_upload_emrfs_streams(emrfs_endpoint, emrfs_s3, emrfs_bucket, kms_key):
    """AWS's multipart upload (one GCM stream over parts) decrypts chunk by chunk."""
    kms, key_id = kms_key
    data = os.urandom(11 * 1024 * 1024 + 7)
    client = aws_client(emrfs_s3, kms, key_id)
    upload = client.create_multipart_upload(Bucket=emrfs_bucket, Key="mp")
    step = 5 * 1024 * 1024
    parts = []
    for number, start in enumerate(range(0, len(data), step), 1):
        last = start + step >= len(data)
        response = client.upload_part(
            Bucket=emrfs_bucket,
            Key="mp",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data[start : start + step],
            IsLastPart=last,
        )
        parts.append({"PartNumber": number, "ETag": response["ETag"]})
    client.complete_multipart_upload(
        Bucket=emrfs_bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    aio = AioKms(emrfs_endpoint)

    async def go():
        from emrfs.crypto import verified_chunks

        crypto = ContentCrypto(_options(key_id), aio)
        try:
            obj = emrfs_s3.get_object(Bucket=emrfs_bucket, Key="mp")
            dec = await crypto.decryptor(f"{emrfs_bucket}/mp", obj["Metadata"])
            return b"".join(verified_chunks(dec, obj["Body"].iter_chunks(1 << 20)))
        finally:
            await aio.close()

    assert run(go) == data


def test_wrong_kms_key_and_tamper_are_clear_errors(emrfs_endpoint, emrfs_s3, emrfs_bucket, kms_key):
    kms, key_id = kms_key
    other = kms.create_key(Description="other")["KeyMetadata"]["KeyId"]
    data = os.urandom(40_000)
    aio = AioKms(emrfs_endpoint)
    path = f"{emrfs_bucket}/obj"

    async def go():
        crypto = ContentCrypto(_options(key_id), aio)
        try:
            body, enc = await _emrfs_put(crypto, emrfs_s3, emrfs_bucket, "obj", data)
            wrong = ContentCrypto(_options(other), aio)
            with pytest.raises(EncryptionError, match="obj"):
                await wrong.decryptor(path, enc.metadata)
            # altered encryption context: KMS refuses the key
            altered = dict(enc.metadata)
            altered["x-amz-t"] = json.dumps({"aws:x-amz-cek-alg": "115", "x": "y"})
            with pytest.raises(EncryptionError, match="obj"):
                await crypto.decryptor(path, altered)
            tampered = bytearray(body)
            tampered[1000] ^= 1
            dec = await crypto.decryptor(path, enc.metadata)
            with pytest.raises(IntegrityError, match="obj"):
                dec.decrypt(bytes(tampered))
        finally:
            await aio.close()

    run(go)


def test_encryption_context_crosses_both_ways(emrfs_endpoint, emrfs_s3, emrfs_bucket, kms_key):
    kms, key_id = kms_key
    context = {"dataset": "events", "team": "data"}
    options = _options(key_id, encryption_context=json.dumps(context))
    client = aws_client(emrfs_s3, kms, key_id)
    client.put_object(Bucket=emrfs_bucket, Key="aws", Body=b"from aws", EncryptionContext=context)
    aio = AioKms(emrfs_endpoint)

    async def go():
        crypto = ContentCrypto(options, aio)
        try:
            await _emrfs_put(crypto, emrfs_s3, emrfs_bucket, "ours", b"from emrfs")
            plain, obj = await _emrfs_get(crypto, emrfs_s3, emrfs_bucket, "aws")
            assert plain == b"from aws"
            # a reader configured with another context refuses the object
            other = ContentCrypto(_options(key_id, encryption_context='{"team": "x"}'), aio)
            with pytest.raises(EncryptionError, match="encryption context"):
                await other.decryptor(f"{emrfs_bucket}/aws", obj["Metadata"])
        finally:
            await aio.close()

    run(go)
    got = client.get_object(Bucket=emrfs_bucket, Key="ours", EncryptionContext=context)
    assert got["Body"].read() == b"from emrfs"

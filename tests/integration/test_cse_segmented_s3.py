"""The segmented format and SSE kwargs against the local S3 + KMS (raw boto3 side channel)."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from emrfs.config import CSEOptions, SSEOptions
from emrfs.crypto import ContentCrypto, sse
from emrfs.errors import IntegrityError

pytestmark = pytest.mark.integration

REGION = "us-east-1"


def _aio_kms(endpoint):
    from aiobotocore.session import get_session

    return get_session().create_client("kms", endpoint_url=endpoint, region_name=REGION)


def test_segmented_kms_ranged_reads_fetch_only_their_segments(
    emrfs_endpoint, emrfs_s3, emrfs_bucket
):
    import boto3

    key_id = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name=REGION).create_key()[
        "KeyMetadata"
    ]["KeyId"]
    data = os.urandom(6 * 1024 * 1024 + 123)
    path = f"{emrfs_bucket}/seg"
    options = CSEOptions(
        enabled=True,
        kms_key_id=key_id,
        format="segmented",
        encryption_context='{"dataset": "events"}',
    )

    async def go():
        async with _aio_kms(emrfs_endpoint) as kms:
            crypto = ContentCrypto(options, kms)
            enc = await crypto.new_encryptor(path)
            body = (
                b"".join(
                    bytes(enc.update(data[i : i + (5 << 20)])) for i in range(0, len(data), 5 << 20)
                )
                + enc.finalize()
            )
            emrfs_s3.put_object(Bucket=emrfs_bucket, Key="seg", Body=body, Metadata=enc.metadata)
            head = emrfs_s3.head_object(Bucket=emrfs_bucket, Key="seg")
            assert head["ContentLength"] == len(body) > len(data)
            assert crypto.plaintext_length(head["ContentLength"], head["Metadata"]) == len(data)
            reader = await crypto.range_reader(path, head["Metadata"], head["ContentLength"])
            for start, length in ((0, 10), (3_000_000, 1 << 20), (len(data) - 5, 100)):
                plan = reader.plan(start, start + length)
                got = emrfs_s3.get_object(
                    Bucket=emrfs_bucket,
                    Key="seg",
                    Range=f"bytes={plan.fetch_start}-{plan.fetch_end - 1}",
                )
                fetched = got["Body"].read()
                assert len(fetched) == got["ContentLength"] <= length + 2 * (64 * 1024 + 16)
                assert reader.decrypt(plan, fetched) == data[start : start + length]
            # a tampered object, written through the side channel, fails on read
            bad = bytearray(body)
            bad[2_000_000] ^= 1
            emrfs_s3.put_object(
                Bucket=emrfs_bucket, Key="seg", Body=bytes(bad), Metadata=enc.metadata
            )
            plan = reader.plan(1_990_000, 2_010_000)
            got = emrfs_s3.get_object(
                Bucket=emrfs_bucket,
                Key="seg",
                Range=f"bytes={plan.fetch_start}-{plan.fetch_end - 1}",
            )
            with pytest.raises(IntegrityError, match="seg"):
                reader.decrypt(plan, got["Body"].read())
            dec = await crypto.decryptor(path, head["Metadata"])
            with pytest.raises(IntegrityError, match="seg"):
                dec.decrypt(bytes(bad))

    asyncio.run(go())


@pytest.mark.parametrize(
    "options,expected",
    [
        (SSEOptions(enabled=True), {"ServerSideEncryption": "AES256"}),
        (
            SSEOptions(enabled=True, kms_key_id="KEY", bucket_key_enabled=True),
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "KEY"},
        ),
    ],
)
def test_sse_kwargs_reach_s3(emrfs_endpoint, emrfs_s3, emrfs_bucket, options, expected):
    import dataclasses

    import boto3

    if options.kms_key_id:
        key_id = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name=REGION).create_key()[
            "KeyMetadata"
        ]["KeyId"]
        options = dataclasses.replace(options, kms_key_id=key_id)
        expected = dict(expected, SSEKMSKeyId=key_id)
    emrfs_s3.put_object(Bucket=emrfs_bucket, Key="one", Body=b"x", **sse.write_kwargs(options))
    upload = emrfs_s3.create_multipart_upload(
        Bucket=emrfs_bucket, Key="multi", **sse.write_kwargs(options)
    )
    part = emrfs_s3.upload_part(
        Bucket=emrfs_bucket,
        Key="multi",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"y",
        **sse.part_kwargs(options),
    )
    emrfs_s3.complete_multipart_upload(
        Bucket=emrfs_bucket,
        Key="multi",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    emrfs_s3.copy_object(
        Bucket=emrfs_bucket,
        Key="copy",
        CopySource={"Bucket": emrfs_bucket, "Key": "one"},
        **sse.copy_kwargs(options, options),
    )
    for key in ("one", "multi", "copy"):
        head = emrfs_s3.head_object(Bucket=emrfs_bucket, Key=key, **sse.read_kwargs(options))
        for name, value in expected.items():
            assert value in str(head.get(name)), (key, name, head.get(name))


def test_kms_errors_and_legacy_v1_kms_object(emrfs_endpoint):
    """Legacy v1 (CBC body, key wrapped with 'kms' and no cek context) only behind the opt-in;
    a KMS key that does not exist is a clear error naming the object."""
    import base64

    import boto3
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from emrfs.errors import EncryptionError

    kms = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name=REGION)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    context = {"kms_cmk_id": key_id}
    generated = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=context)
    iv, data = os.urandom(16), b"written by a v1 client" * 10
    padder = padding.PKCS7(128).padder()
    ctx = Cipher(algorithms.AES(generated["Plaintext"]), modes.CBC(iv)).encryptor()
    body = ctx.update(padder.update(data) + padder.finalize()) + ctx.finalize()
    meta = {
        "x-amz-key": base64.b64encode(generated["CiphertextBlob"]).decode(),
        "x-amz-iv": base64.b64encode(iv).decode(),
        "x-amz-wrap-alg": "kms",
        "x-amz-matdesc": json.dumps(context),
        "x-amz-cek-alg": "AES/CBC/PKCS5Padding",
    }

    async def go():
        async with _aio_kms(emrfs_endpoint) as client:
            strict = ContentCrypto(CSEOptions(kms_key_id=key_id), client)
            with pytest.raises(EncryptionError, match="allow_legacy"):
                await strict.decryptor("b/v1", meta)
            legacy = ContentCrypto(
                CSEOptions(allow_legacy=True, commitment_policy="REQUIRE_ENCRYPT_ALLOW_DECRYPT"),
                client,
            )
            dec = await legacy.decryptor("b/v1", meta)
            assert dec.decrypt(body) == data
            missing = ContentCrypto(CSEOptions(enabled=True, kms_key_id="no-such-key"), client)
            with pytest.raises(EncryptionError, match="b/new") as info:
                await missing.new_encryptor("b/new")
            assert info.value.code

    asyncio.run(go())

"""The full stack (SSE, CSE, consistent view, block cache, tier) that Stacks builds from
options alone, on the embedded moto server: a write checked with raw boto3 (SSE applied,
ciphertext and envelope at rest) and a raw DynamoDB scan (recorded), then read back
through a second, fresh set of stacks."""

from __future__ import annotations

import asyncio
import base64
import uuid

import boto3
import pytest

from emrfs.config import load
from emrfs.stacks import Stacks

AES_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def table_name(emrfs_endpoint):
    name = f"emrfs-stacks-{uuid.uuid4().hex[:12]}"
    yield name
    ddb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    try:
        ddb.delete_table(TableName=name)
    except ddb.exceptions.ResourceNotFoundException:
        pass


def test_a_write_through_the_full_stack_on_s3_is_encrypted_recorded_and_read_back(
    emrfs_endpoint, emrfs_s3, emrfs_bucket, table_name, tmp_path
):
    options = load(
        {
            "endpoint_url": emrfs_endpoint,
            # SSE where CSE is off (EMRFS allows one of them per path)
            "overrides": {
                f"{emrfs_bucket}/plain": {"cse": {"enabled": False}, "sse": {"enabled": True}}
            },
            "cse": {
                "enabled": True,
                "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
                "aes_key": AES_KEY,
            },
            "consistency": {
                "enabled": True,
                "table_name": table_name,
                "retry_policy_type": "fixed",
                "retry_count": 2,
                "retry_period_seconds": 0.01,
            },
            "cache": {
                "enabled": True,
                "directories": [str(tmp_path / "cache")],
                "free_space_floor": 0.0,
            },
        },
        environ={},
    )
    path, sse_path = f"{emrfs_bucket}/out/part-0", f"{emrfs_bucket}/plain/part-0"
    plaintext = b"secret rows\n" * 1000

    async def write() -> None:
        stacks = Stacks(options)
        await stacks.for_path(path).put(path, plaintext)
        await stacks.for_path(sse_path).put(sse_path, b"server side")
        await stacks.close()

    async def read() -> bytes:
        stacks = Stacks(options)  # nothing remembered from the write
        try:
            return await stacks.for_path(path).get_range(path, 0, None)
        finally:
            await stacks.close()

    asyncio.run(write())
    raw = emrfs_s3.get_object(Bucket=emrfs_bucket, Key="out/part-0")
    body = raw["Body"].read()
    assert "ServerSideEncryption" not in raw
    assert b"secret rows" not in body and len(body) >= len(plaintext)
    assert any(name.startswith("x-amz-") for name in raw["Metadata"])  # the envelope
    sse = emrfs_s3.head_object(Bucket=emrfs_bucket, Key="plain/part-0")
    assert sse["ServerSideEncryption"] == "AES256" and sse["ContentLength"] == len(b"server side")
    ddb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    rows = ddb.scan(TableName=table_name)["Items"]
    recorded = sorted(r["parent"]["S"] for r in rows if r["child"]["S"] == "part-0")
    assert recorded == [f"{emrfs_bucket}/out", f"{emrfs_bucket}/plain"]
    assert asyncio.run(read()) == plaintext

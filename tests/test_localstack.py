"""A small S3 + DynamoDB + KMS round trip against LocalStack (``localstack/launch.py``).

Skipped, with the reason, when no LocalStack answers.
"""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

pytestmark = [pytest.mark.localstack, pytest.mark.integration]


@pytest.fixture
def aws(emrfs_localstack):
    boto3 = pytest.importorskip("boto3")
    kw = dict(
        endpoint_url=emrfs_localstack,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    return {name: boto3.client(name, **kw) for name in ("s3", "dynamodb", "kms")}


def test_s3_dynamodb_kms_round_trip(aws):
    s3, ddb, kms = aws["s3"], aws["dynamodb"], aws["kms"]
    name = f"emrfs-ls-{uuid.uuid4().hex[:12]}"

    # KMS: a data key whose plaintext the service gives back from the wrapped form.
    key_id = kms.create_key(Description=name)["KeyMetadata"]["KeyId"]
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert (
        kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]
    )

    # S3: an object under SSE-KMS with that key, read back whole.
    s3.create_bucket(Bucket=name)
    try:
        body = uuid.uuid4().bytes * 1000
        s3.put_object(
            Bucket=name,
            Key="dir/obj",
            Body=body,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=key_id,
        )
        got = s3.get_object(Bucket=name, Key="dir/obj")
        assert got["Body"].read() == body
        assert got["ServerSideEncryption"] == "aws:kms"
        listed = s3.list_objects_v2(Bucket=name, Prefix="dir/")["Contents"]
        etag = listed[0]["ETag"]
        assert [o["Key"] for o in listed] == ["dir/obj"]
    finally:
        s3.delete_object(Bucket=name, Key="dir/obj")
        s3.delete_bucket(Bucket=name)

    # DynamoDB: the kind of metadata row a consistent view keeps, with a conditional put.
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "path", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "path", "AttributeType": "S"}],
    )
    try:
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
        item = {"path": {"S": f"{name}/dir/obj"}, "etag": {"S": etag}}
        ddb.put_item(
            TableName=name,
            Item=item,
            ConditionExpression="attribute_not_exists(#p)",
            ExpressionAttributeNames={"#p": "path"},
        )
        with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
            ddb.put_item(
                TableName=name,
                Item=item,
                ConditionExpression="attribute_not_exists(#p)",
                ExpressionAttributeNames={"#p": "path"},
            )
        row = ddb.get_item(TableName=name, Key={"path": item["path"]}, ConsistentRead=True)
        assert row["Item"]["etag"]["S"] == etag
    finally:
        ddb.delete_table(TableName=name)


def test_sse_c_is_enforced_through_emrfs(aws, emrfs_localstack):
    """moto records SSE-C but does not enforce it; LocalStack does: the key is required."""
    import base64
    import os

    from emrfs import EmrFileSystem

    s3 = aws["s3"]
    name = f"emrfs-ssec-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    key = base64.b64encode(os.urandom(32)).decode()
    creds = {
        "endpoint_url": emrfs_localstack,
        "key": "test",
        "secret": "test",
        "skip_instance_cache": True,
    }
    fs = EmrFileSystem(sse={"enabled": True, "algorithm": "SSE-C", "customer_key": key}, **creds)
    try:
        fs.pipe_file(f"{name}/secret", b"only with the key")
        assert fs.cat_file(f"{name}/secret") == b"only with the key"
        fs.mv(f"{name}/secret", f"{name}/moved")  # copies send the source key too
        assert fs.cat_file(f"{name}/moved") == b"only with the key"
        with pytest.raises(ClientError):
            s3.get_object(Bucket=name, Key="moved")  # no key: refused by the server
        plain = EmrFileSystem(**creds)
        with pytest.raises(OSError):
            plain.cat_file(f"{name}/moved")
    finally:
        fs.rm(name, recursive=True)

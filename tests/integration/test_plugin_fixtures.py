"""The pytest plugin's own helpers, checked against the server with raw boto3."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from emrfs.testing.pytest_plugin import empty_and_delete_bucket, new_bucket_name


@pytest.mark.slow
def test_empty_and_delete_bucket_beyond_one_listing_page(emrfs_s3):
    """More than 1,000 keys: deleting page by page while paginating lost moto's place and
    left the bucket behind (BucketNotEmpty)."""
    bucket = new_bucket_name()
    emrfs_s3.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: emrfs_s3.put_object(Bucket=bucket, Key=f"k/{i:04d}", Body=b""),
                range(1003),
            )
        )
    empty_and_delete_bucket(emrfs_s3, bucket)
    names = [b["Name"] for b in emrfs_s3.list_buckets()["Buckets"]]
    assert bucket not in names


def test_the_embedded_server_keeps_nothing_it_deleted(emrfs_endpoint, emrfs_s3):
    """moto's dashboard list held every S3 key and DynamoDB table it ever made (deleted
    or not): the session's server grew to 0.4-0.65 GiB per xdist worker and its garbage
    collector walked all of it.  The dashboard (moto's own view of what it holds) must
    not list what was deleted."""
    import json
    import urllib.request
    import uuid

    import boto3

    from emrfs.testing.localserver import endpoint_from_env

    if endpoint_from_env() is not None:
        pytest.skip("EMRFS_ENDPOINT_URL names an external server")
    bucket, key, table = new_bucket_name(), f"k-{uuid.uuid4().hex}", new_bucket_name()
    emrfs_s3.create_bucket(Bucket=bucket)
    emrfs_s3.put_object(Bucket=bucket, Key=key, Body=b"x" * 1024)
    empty_and_delete_bucket(emrfs_s3, bucket)
    ddb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName=table, Item={"k": {"S": key}})
    ddb.delete_table(TableName=table)
    with urllib.request.urlopen(emrfs_endpoint + "/moto-api/data.json") as response:
        held = json.loads(response.read())
    assert key not in [k.get("name") for k in held.get("s3", {}).get("FakeKey", [])]
    assert table not in [t.get("name") for t in held.get("dynamodb", {}).get("Table", [])]

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

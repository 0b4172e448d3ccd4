"""SSE through the filesystem: every write path, per bucket and prefix, seen by raw boto3.

moto records SSE-S3 and SSE-KMS on the object (``head_object`` shows them).
It does not enforce SSE-C keys, so the SSE-C tests check what emrfs sends,
with a spy on ``fs.s3.call`` (the one door to S3).
"""

from __future__ import annotations

import base64
import os

import pytest

from emrfs import EmrFileSystem
from emrfs.errors import ConfigurationError
from tests.helpers import record_s3_calls

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def kms_key(emrfs_endpoint):
    import boto3

    kms = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    return kms.create_key(Description="emrfs sse")["KeyMetadata"]["KeyId"]


def make_fs(endpoint, **options):
    return EmrFileSystem(
        endpoint_url=endpoint,
        skip_instance_cache=True,
        part_size=5 * MiB,
        multipart_threshold=5 * MiB,
        **options,
    )


def sse_of(s3, bucket, key):
    head = s3.head_object(Bucket=bucket, Key=key)
    return head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")


def write_every_way(fs, base, tmp_path):
    """Each write path once; returns the keys written (relative to the bucket)."""
    bucket = base.split("/")[0]
    fs.pipe_file(f"{base}/pipe", b"small")
    fs.pipe_file(f"{base}/pipe-multipart", os.urandom(5 * MiB + 1))
    local = tmp_path / "local"
    local.write_bytes(os.urandom(5 * MiB + 1))
    fs.put_file(str(local), f"{base}/put-multipart")
    with fs.open(f"{base}/open-small", "wb") as f:
        f.write(b"x" * 1000)
    with fs.open(f"{base}/open-multipart", "wb") as f:
        for _ in range(5):
            f.write(os.urandom(MiB))
        f.write(b"+")
    fs.mkdir(f"{base}/emptydir")
    fs.cp_file(f"{base}/pipe", f"{base}/copied")
    fs.mv(f"{base}/open-small", f"{base}/renamed")
    prefix = base[len(bucket) + 1 :]
    return [
        f"{prefix}/{k}"
        for k in (
            "pipe",
            "pipe-multipart",
            "put-multipart",
            "open-multipart",
            "emptydir/",
            "copied",
            "renamed",
        )
    ]


def test_sse_s3_on_every_write_path(emrfs_endpoint, emrfs_s3, emrfs_bucket, tmp_path):
    fs = make_fs(emrfs_endpoint, **{"fs.s3.enableServerSideEncryption": "true"})
    for key in write_every_way(fs, f"{emrfs_bucket}/d", tmp_path):
        assert sse_of(emrfs_s3, emrfs_bucket, key)[0] == "AES256", key
    assert fs.cat_file(f"{emrfs_bucket}/d/renamed") == b"x" * 1000


def test_sse_kms_with_key_on_every_write_path(
    emrfs_endpoint, emrfs_s3, emrfs_bucket, kms_key, tmp_path
):
    fs = make_fs(
        emrfs_endpoint, sse={"enabled": True, "kms_key_id": kms_key, "bucket_key_enabled": True}
    )
    for key in write_every_way(fs, f"{emrfs_bucket}/k", tmp_path):
        algorithm, key_id = sse_of(emrfs_s3, emrfs_bucket, key)
        assert algorithm == "aws:kms" and key_id and key_id.endswith(kms_key), key


def test_per_prefix_and_per_bucket_overrides(emrfs_endpoint, emrfs_s3, emrfs_bucket, kms_key):
    fs = make_fs(
        emrfs_endpoint,
        overrides={
            f"{emrfs_bucket}/secure": {
                "sse": {"enabled": True, "algorithm": "aws:kms", "kms_key_id": kms_key}
            }
        },
    )
    fs.pipe_file(f"{emrfs_bucket}/secure/a", b"1")
    fs.pipe_file(f"{emrfs_bucket}/open/a", b"1")
    assert sse_of(emrfs_s3, emrfs_bucket, "secure/a")[0] == "aws:kms"
    # S3 (and LocalStack) apply SSE-S3 to everything by default; moto reports none
    assert sse_of(emrfs_s3, emrfs_bucket, "open/a")[0] in (None, "AES256")
    # a copy takes the encryption its destination asks for, both ways
    fs.cp_file(f"{emrfs_bucket}/open/a", f"{emrfs_bucket}/secure/b")
    fs.mv(f"{emrfs_bucket}/secure/a", f"{emrfs_bucket}/open/c")
    assert sse_of(emrfs_s3, emrfs_bucket, "secure/b")[0] == "aws:kms"
    assert sse_of(emrfs_s3, emrfs_bucket, "open/c")[0] in (None, "AES256")

    # EMRFS/S3A-style per-bucket property
    by_bucket = make_fs(
        emrfs_endpoint, **{f"fs.s3.bucket.{emrfs_bucket}.fs.s3.enableServerSideEncryption": "true"}
    )
    by_bucket.pipe_file(f"{emrfs_bucket}/x", b"1")
    assert sse_of(emrfs_s3, emrfs_bucket, "x")[0] == "AES256"


def test_rename_of_a_tree_sets_destination_encryption(emrfs_endpoint, emrfs_s3, emrfs_bucket):
    fs = make_fs(emrfs_endpoint, overrides={f"{emrfs_bucket}/enc": {"sse": {"enabled": True}}})
    fs.pipe({f"{emrfs_bucket}/plain/t/{i}": b"v" for i in range(3)})
    fs.mkdir(f"{emrfs_bucket}/plain/t/empty")
    fs.mv(f"{emrfs_bucket}/plain/t", f"{emrfs_bucket}/enc/t", recursive=True)
    keys = [o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=emrfs_bucket)["Contents"]]
    assert sorted(keys) == ["enc/t/0", "enc/t/1", "enc/t/2", "enc/t/empty/", "plain/"]
    for key in keys:
        if key.startswith("enc/"):
            assert sse_of(emrfs_s3, emrfs_bucket, key)[0] == "AES256", key


SSE_C_KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()


def test_sse_c_key_sent_on_writes_reads_and_copies(emrfs_endpoint, emrfs_bucket, tmp_path):
    """moto does not enforce SSE-C: check the key goes out on every request that needs it.
    The recorder sees the botocore client's calls, so the botocore transport is pinned
    (the obstore transport's SSE-C requests never pass through that client)."""
    fs = make_fs(
        emrfs_endpoint,
        transport="botocore",
        overrides={
            f"{emrfs_bucket}/a": {
                "sse": {"enabled": True, "algorithm": "SSE-C", "customer_key": SSE_C_KEY}
            },
            f"{emrfs_bucket}/b": {
                "sse": {"enabled": True, "algorithm": "SSE-C", "customer_key": OTHER_KEY}
            },
        },
    )
    calls = record_s3_calls(fs, methods_only=False)
    data = os.urandom(5 * MiB + 1)
    fs.pipe_file(f"{emrfs_bucket}/a/small", b"secret")
    fs.pipe_file(f"{emrfs_bucket}/a/big", data)
    assert fs.cat_file(f"{emrfs_bucket}/a/big", start=10, end=20) == data[10:20]
    assert fs.cat_file(f"{emrfs_bucket}/a/small") == b"secret"
    with fs.open(f"{emrfs_bucket}/a/big", "rb") as f:
        f.seek(MiB)
        assert f.read(100) == data[MiB : MiB + 100]
    fs.get_file(f"{emrfs_bucket}/a/small", str(tmp_path / "got"))
    assert fs.info(f"{emrfs_bucket}/a/small")["size"] == 6
    fs.cp_file(f"{emrfs_bucket}/a/small", f"{emrfs_bucket}/b/copied")

    md5 = base64.b64encode(__import__("hashlib").md5(bytes(range(32))).digest()).decode()
    for method, kwargs in calls:
        if method in (
            "put_object",
            "create_multipart_upload",
            "upload_part",
            "head_object",
            "get_object",
        ) and kwargs.get("Key", "").startswith("a/"):
            assert kwargs.get("SSECustomerKey") == SSE_C_KEY, (method, kwargs.get("Key"))
            assert kwargs.get("SSECustomerKeyMD5") == md5
            assert kwargs.get("SSECustomerAlgorithm") == "AES256"
    methods = {m for m, kw in calls if kw.get("SSECustomerKey") == SSE_C_KEY}
    assert {
        "put_object",
        "create_multipart_upload",
        "upload_part",
        "head_object",
        "get_object",
    } <= methods
    (copy,) = [c for c in calls if c[0] == "copy_object"]
    assert copy[1]["CopySourceSSECustomerKey"] == SSE_C_KEY
    assert copy[1]["SSECustomerKey"] == OTHER_KEY


def test_sse_c_key_must_be_256_bits(emrfs_endpoint, emrfs_bucket):
    # refused at construction (it used to pass until the first write)
    with pytest.raises(ConfigurationError, match=r"customer_key.*256-bit"):
        make_fs(
            emrfs_endpoint,
            sse={
                "enabled": True,
                "algorithm": "SSE-C",
                "customer_key": base64.b64encode(b"short").decode(),
            },
        )

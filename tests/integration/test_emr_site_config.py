"""An EMR cluster's own encryption settings load unchanged and work (gateway/EMR issue, item 5).

EMR writes CSE-KMS into ``emrfs-site`` with its Java materials provider class;
S3A spells encryption as ``fs.s3a.encryption.algorithm`` + ``.key``.  Each is
written and read back through emrfs and checked through raw boto3 (the stored
bytes are ciphertext, the data key is wrapped by the configured KMS key).
"""

from __future__ import annotations

import base64
import json
import os

import pytest

from emrfs import EmrFileSystem

pytestmark = pytest.mark.integration

EMR_KMS_PROVIDER = "com.amazon.ws.emr.hadoop.fs.cse.KMSEncryptionMaterialsProvider"


@pytest.fixture(scope="module")
def kms_key(emrfs_endpoint):
    import boto3

    kms = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    return kms.create_key(Description="emrfs emr-site")["KeyMetadata"]["KeyId"]


def emr_cse_kms_configuration(key_id: str) -> list[dict]:
    """The configuration classification EMR applies for CSE-KMS (as `aws emr
    describe-cluster` shows it, and as a security configuration's CSE-KMS mode sets)."""
    return [
        {
            "Classification": "emrfs-site",
            "Properties": {
                "fs.s3.cse.enabled": "true",
                "fs.s3.cse.encryptionMaterialsProvider": EMR_KMS_PROVIDER,
                "fs.s3.cse.kms.keyId": key_id,
            },
            "Configurations": [],
        }
    ]


def assert_kms_wrapped(emrfs_endpoint, emrfs_s3, bucket, key, data, kms_key):
    import boto3

    stored = emrfs_s3.get_object(Bucket=bucket, Key=key)
    body, meta = stored["Body"].read(), stored["Metadata"]
    assert data[:64] not in body and len(body) == len(data) + 16  # GCM tag: ciphertext
    kms = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    context = json.loads(meta["x-amz-t"]) if "x-amz-t" in meta else {}
    unwrapped = kms.decrypt(
        CiphertextBlob=base64.b64decode(meta["x-amz-3"]), EncryptionContext=context
    )
    assert unwrapped["KeyId"].endswith(kms_key)  # the data key is wrapped by the EMR key


def test_emr_cse_kms_classification_loads_unchanged_and_round_trips(
    emrfs_endpoint, emrfs_s3, emrfs_bucket, kms_key, tmp_path
):
    site = tmp_path / "configurations.json"
    site.write_text(json.dumps(emr_cse_kms_configuration(kms_key), indent=2))
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, site=str(site), skip_instance_cache=True)
    assert fs.options.cse.enabled and fs.options.cse.kms_key_id == kms_key
    assert fs.options.cse.materials_provider is None  # emrfs's own CSE-KMS provider

    data = os.urandom(100_000)
    fs.pipe_file(f"{emrfs_bucket}/emr/part-0", data)
    assert fs.cat_file(f"{emrfs_bucket}/emr/part-0") == data
    assert fs.info(f"{emrfs_bucket}/emr/part-0")["size"] == len(data)
    assert_kms_wrapped(emrfs_endpoint, emrfs_s3, emrfs_bucket, "emr/part-0", data, kms_key)

    # the same properties as a Hadoop emrfs-site.xml, and through EMRFS_SITE
    xml = tmp_path / "emrfs-site.xml"
    xml.write_text(
        "<configuration>"
        + "".join(
            f"<property><name>{k}</name><value>{v}</value></property>"
            for k, v in emr_cse_kms_configuration(kms_key)[0]["Properties"].items()
        )
        + "</configuration>"
    )
    reader = EmrFileSystem(endpoint_url=emrfs_endpoint, site=str(xml), skip_instance_cache=True)
    assert reader.cat_file(f"{emrfs_bucket}/emr/part-0") == data


@pytest.mark.parametrize("spelling", ["fs.s3a.encryption", "fs.s3a.server-side-encryption"])
def test_s3a_cse_kms_round_trips(emrfs_endpoint, emrfs_s3, emrfs_bucket, kms_key, spelling):
    algorithm, key = (
        (f"{spelling}.algorithm", f"{spelling}.key")
        if spelling == "fs.s3a.encryption"
        else (f"{spelling}-algorithm", f"{spelling}.key")
    )
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        **{algorithm: "CSE-KMS", key: kms_key},
    )
    data = os.urandom(5000)
    fs.pipe_file(f"{emrfs_bucket}/s3a-cse/x", data)
    assert fs.cat_file(f"{emrfs_bucket}/s3a-cse/x") == data
    assert_kms_wrapped(emrfs_endpoint, emrfs_s3, emrfs_bucket, "s3a-cse/x", data, kms_key)


def test_s3a_and_emr_sse_kms_reach_s3(emrfs_endpoint, emrfs_s3, emrfs_bucket, kms_key):
    for prefix, props in {
        "s3a": {"fs.s3a.encryption.algorithm": "SSE-KMS", "fs.s3a.encryption.key": kms_key},
        "emr": {
            "fs.s3.enableServerSideEncryption": "true",
            "fs.s3.serverSideEncryption.kms.keyId": kms_key,
        },
    }.items():
        fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True, **props)
        fs.pipe_file(f"{emrfs_bucket}/{prefix}/x", b"secret")
        head = emrfs_s3.head_object(Bucket=emrfs_bucket, Key=f"{prefix}/x")
        assert head["ServerSideEncryption"] == "aws:kms", prefix
        assert head["SSEKMSKeyId"].endswith(kms_key), prefix
        assert fs.cat_file(f"{emrfs_bucket}/{prefix}/x") == b"secret"

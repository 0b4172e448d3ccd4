"""Copies, renames and deletes through the path's stack of layers.

CSE objects with their envelope in an instruction file, under the consistent view:
``cp_file``, ``mv`` (a file and a tree) and ``rm`` carry the instruction file with
its object, record plaintext sizes at the destination and tombstone what went.  A
copy of a client-side encrypted object to a prefix with no CSE key is refused,
naming the destination, and writes nothing.  Checked through raw boto3 and a raw
DynamoDB scan.
"""

from __future__ import annotations

import base64
import uuid

import boto3
import pytest

from emrfs import EmrFileSystem
from emrfs.errors import EncryptionError

pytestmark = pytest.mark.integration

AES_KEY = base64.b64encode(bytes(range(32))).decode()
CSE = {
    "enabled": True,
    "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
    "aes_key": AES_KEY,
    "storage_mode": "InstructionFile",
}


def keys(s3, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def rows(endpoint: str, table: str) -> dict[str, tuple[bool, int | None]]:
    """path -> (deleted, length), from a raw DynamoDB scan."""
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    out = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for r in page["Items"]:
            parent, child = r["parent"]["S"], r["child"]["S"]
            if parent.startswith(".."):
                continue
            length = r.get("length", {}).get("N")
            out[f"{parent}/{child}"] = (
                r.get("is_deleted", {}).get("BOOL", False),
                None if length is None else int(length),
            )
    return out


def test_instruction_files_travel_with_copies_renames_and_deletes(
    emrfs_endpoint, emrfs_s3, emrfs_bucket
):
    table = f"emrfs-meta-{uuid.uuid4().hex[:12]}"
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        consistent=True,
        **{"consistency.table_name": table},
        cse=CSE,
    )
    b = emrfs_bucket
    fs.pipe({f"{b}/t/a": b"alpha", f"{b}/t/sub/b": b"bee"})
    fs.cp_file(f"{b}/t/a", f"{b}/c")
    fs.mv(f"{b}/c", f"{b}/m")
    fs.mv(f"{b}/t", f"{b}/u", recursive=True)
    assert keys(emrfs_s3, b) == [
        "m",
        "m.instruction",
        "u/a",
        "u/a.instruction",
        "u/sub/b",
        "u/sub/b.instruction",
    ]
    raw = emrfs_s3.get_object(Bucket=b, Key="u/a")["Body"].read()
    assert b"alpha" not in raw and len(raw) == len(b"alpha") + 16  # ciphertext and GCM tag
    assert fs.cat(f"{b}/m") == b"alpha" and fs.cat(f"{b}/u/sub/b") == b"bee"
    recorded = rows(emrfs_endpoint, table)
    # the copies' rows hold what readers see (plaintext sizes); the sources are tombstoned
    assert recorded[f"{b}/m"] == (False, 5)
    assert recorded[f"{b}/u/a"] == (False, 5)
    assert recorded[f"{b}/u/sub/b"] == (False, 3)
    assert recorded[f"{b}/c"][0] and recorded[f"{b}/t/a"][0] and recorded[f"{b}/t/sub/b"][0]
    assert not any(p.endswith(".instruction") and not d for p, (d, _) in recorded.items())
    fs.rm(f"{b}/m")
    fs.rm(f"{b}/u", recursive=True)
    assert keys(emrfs_s3, b) == []
    recorded = rows(emrfs_endpoint, table)
    assert all(recorded[p][0] for p in (f"{b}/m", f"{b}/u/a", f"{b}/u/sub/b"))


def test_a_cse_object_copied_where_no_cse_key_is_configured_is_refused(
    emrfs_endpoint, emrfs_s3, emrfs_bucket
):
    """The copy would hold ciphertext that the destination's options cannot read (it used
    to be made silently, its instruction file beside it)."""
    b = emrfs_bucket
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        overrides={f"{b}/secure": {"cse": CSE}},
    )
    fs.pipe({f"{b}/secure/x": b"secret", f"{b}/secure/t/y": b"why"})
    with pytest.raises(EncryptionError, match=rf"{b}/plain/x.*no CSE key"):
        fs.cp_file(f"{b}/secure/x", f"{b}/plain/x")
    with pytest.raises(EncryptionError, match=rf"{b}/plain/x.*no CSE key"):
        fs.mv(f"{b}/secure/x", f"{b}/plain/x")
    with pytest.raises(EncryptionError, match=rf"{b}/plain/t.*no CSE key"):
        fs.mv(f"{b}/secure/t", f"{b}/plain/t", recursive=True)
    # nothing written at the destination, nothing lost at the source
    assert keys(emrfs_s3, b) == [
        "secure/t/y",
        "secure/t/y.instruction",
        "secure/x",
        "secure/x.instruction",
    ]
    assert fs.cat(f"{b}/secure/x") == b"secret"


@pytest.mark.parametrize("storage", ["ObjectMetadata", "InstructionFile"])
def test_a_kms_sealed_object_is_copied_where_no_cse_is_configured(
    emrfs_endpoint, emrfs_s3, emrfs_bucket, storage
):
    """Its envelope names its KMS key, so it reads as plaintext where no CSE key is
    configured: copies there (one stack, and across an SSE override) carry the envelope
    and the instruction file, and report the plaintext size."""
    kms = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    key_id = kms.create_key(Description="emrfs stack moves")["KeyMetadata"]["KeyId"]
    b = emrfs_bucket
    writer = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        cse={"enabled": True, "kms_key_id": key_id, "storage_mode": storage},
    )
    writer.pipe_file(f"{b}/in/x", b"sealed by kms")
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        overrides={f"{b}/sse": {"sse": {"enabled": True}}},
    )
    fs.cp_file(f"{b}/in/x", f"{b}/in/y")  # the same stack
    fs.cp_file(f"{b}/in/x", f"{b}/sse/z")  # another stack (its SSE)
    for key in ("in/y", "sse/z"):
        assert b"sealed by kms" not in emrfs_s3.get_object(Bucket=b, Key=key)["Body"].read()
        assert fs.cat(f"{b}/{key}") == b"sealed by kms"
        assert fs.info(f"{b}/{key}")["size"] == len(b"sealed by kms")
    instruction = [k for k in keys(emrfs_s3, b) if k.endswith(".instruction")]
    expected = ["in/x.instruction", "in/y.instruction", "sse/z.instruction"]
    assert instruction == (expected if storage == "InstructionFile" else [])

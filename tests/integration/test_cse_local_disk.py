"""Client-side encrypted paths never reach local disk unsealed, whatever the cache options.

With CSE on and ``cache.encrypt`` off, the bytes written to the ephemeral tier
for a CSE path and the blocks the read cache keeps of CSE objects must be
sealed.  Checked through the side channel: every file under the cache
directories is read raw and searched for a marker plaintext.
"""

from __future__ import annotations

import base64
import os

import pytest

from emrfs import EmrFileSystem

pytestmark = pytest.mark.integration

KiB = 1024
AES_KEY = base64.b64encode(bytes(range(32))).decode()
AES_PROVIDER = "emrfs.crypto.keys:AesKeyProvider"
MARKER = b"EMRFS-PLAINTEXT-MARKER-5f1c"


def marked(size: int) -> bytes:
    """``size`` bytes holding the marker many times (at block and chunk edges too)."""
    body = bytearray(os.urandom(size))
    for at in range(0, size - len(MARKER), 4 * KiB):
        body[at : at + len(MARKER)] = MARKER
    return bytes(body)


def files_with_marker(root) -> list[str]:
    hits = []
    for top, _, names in os.walk(root):
        for name in names:
            path = os.path.join(top, name)
            with open(path, "rb") as f:
                if MARKER in f.read():
                    hits.append(path)
    return hits


def make_fs(endpoint, cache_root, cse: bool = True, **cache):
    options = (
        {"cse": {"enabled": True, "materials_provider": AES_PROVIDER, "aes_key": AES_KEY}}
        if cse
        else {}
    )
    return EmrFileSystem(
        endpoint_url=endpoint,
        skip_instance_cache=True,
        cache={
            "enabled": True,
            "encrypt": False,
            "block_size": 64 * KiB,
            "directories": [str(cache_root / "c0"), str(cache_root / "c1")],
            **cache,
        },
        **options,
    )


@pytest.fixture
def cse_cached(emrfs_endpoint, tmp_path):
    fs = make_fs(emrfs_endpoint, tmp_path)
    yield fs
    fs._cached.local.tier.terminate()


def test_tier_files_of_cse_paths_are_sealed_on_disk(cse_cached, bucket, tmp_path, emrfs_s3):
    fs = cse_cached
    attempt = f"{bucket}/out/_temporary/0/_temporary/attempt_0"
    data = marked(300 * KiB)
    fs.pipe(f"{attempt}/part-0", data)
    with fs.open(f"{attempt}/part-1", "wb") as f:
        f.write(data)
    local = tmp_path / "local-input"
    local.write_bytes(data)
    fs.put_file(str(local), f"{attempt}/part-2")
    fs.pipe(f"{bucket}/in/source", data)  # in S3 (encrypted), then copied into the tier
    fs.cp(f"{bucket}/in/source", f"{attempt}/part-3")
    fs.mv(f"{attempt}/part-0", f"{bucket}/out/_temporary/0/task_0/part-0")  # a local rename
    assert emrfs_s3.list_objects_v2(Bucket=bucket, Prefix="out/").get("KeyCount", 0) == 0
    assert files_with_marker(tmp_path / "c0") + files_with_marker(tmp_path / "c1") == []
    for name in (
        "_temporary/attempt_0/part-1",
        "_temporary/attempt_0/part-2",
        "_temporary/attempt_0/part-3",
        "task_0/part-0",
    ):
        assert fs.cat_file(f"{bucket}/out/_temporary/0/{name}") == data
        assert (
            fs.cat_file(f"{bucket}/out/_temporary/0/{name}", 1000, 70 * KiB)
            == data[1000 : 70 * KiB]
        )
    assert files_with_marker(tmp_path / "c0") + files_with_marker(tmp_path / "c1") == []


def test_read_cache_blocks_of_cse_objects_are_sealed_on_disk(cse_cached, bucket, tmp_path):
    fs = cse_cached
    data = marked(200 * KiB)
    fs.pipe(f"{bucket}/data/secret", data)
    fs.invalidate_cache()
    assert fs.cat_file(f"{bucket}/data/secret", 100, 150 * KiB) == data[100 : 150 * KiB]
    with fs.open(f"{bucket}/data/secret", "rb") as f:
        assert f.read() == data
    assert fs.cat_file(f"{bucket}/data/secret") == data
    fs._cached.local.store.close()  # queued block writes done
    blocks = [p for top, _, names in os.walk(tmp_path / "c0") for p in names] + [
        p for top, _, names in os.walk(tmp_path / "c1") for p in names
    ]
    assert any("." in b and b.split(".")[-1].isdigit() for b in blocks), blocks  # it cached
    assert files_with_marker(tmp_path / "c0") + files_with_marker(tmp_path / "c1") == []


def test_the_marker_check_sees_plaintext_blocks(emrfs_endpoint, bucket, tmp_path):
    # The same writes without CSE do keep plaintext blocks (cache.encrypt is off):
    # the search above would find the marker if it were there.
    fs = make_fs(emrfs_endpoint, tmp_path, cse=False)
    try:
        fs.pipe(f"{bucket}/out/_temporary/0/part-0", marked(100 * KiB))
        assert files_with_marker(tmp_path / "c0") + files_with_marker(tmp_path / "c1")
    finally:
        fs._cached.local.tier.terminate()


def test_objects_sealed_elsewhere_read_through_a_cache_without_cse_stay_sealed_on_disk(
    emrfs_endpoint, bucket, tmp_path
):
    # A path with no CSE configured reads an object written sealed (CSE-KMS: the key id
    # travels in the envelope) as plaintext; its blocks in the read cache are sealed too.
    import boto3

    kms = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    key_id = kms.create_key(Description="emrfs sealed elsewhere")["KeyMetadata"]["KeyId"]
    writer = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        cse={"enabled": True, "kms_key_id": key_id},
    )
    data = marked(200 * KiB)
    path = f"{bucket}/elsewhere/secret"
    writer.pipe_file(path, data)
    fs = make_fs(emrfs_endpoint, tmp_path, cse=False)
    try:
        assert fs.cat_file(path, 100, 150 * KiB) == data[100 : 150 * KiB]
        assert fs.cat_file(path) == data
        fs.info(path)  # the status shows a sealed version: open reads it decrypted
        with fs.open(path, "rb") as f:
            assert f.read() == data
        assert fs.cat_file(path, -1000) == data[-1000:]
        fs._cached.local.store.close()  # queued block writes done
        blocks = [n for top in ("c0", "c1") for _, _, ns in os.walk(tmp_path / top) for n in ns]
        assert any("." in b and b.split(".")[-1].isdigit() for b in blocks), blocks  # cached
        assert files_with_marker(tmp_path / "c0") + files_with_marker(tmp_path / "c1") == []
    finally:
        fs._cached.local.tier.terminate()

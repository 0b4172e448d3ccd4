"""Reads at the edges of a file: ranges at or past its end, and CSE objects cut below
their tag.  The same answer in every mode (plain, SSE-C, CSE, the block cache, the
consistent view), checked against what raw boto3 sees in S3.
"""

from __future__ import annotations

import base64
import uuid

import pytest

from emrfs import EmrFileSystem
from emrfs.errors import IntegrityError

pytestmark = pytest.mark.integration

AES = {
    "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
    "aes_key": base64.b64encode(bytes(range(32))).decode(),
}
SSE_C = {
    "enabled": True,
    "algorithm": "SSE-C",
    "customer_key": base64.b64encode(bytes(range(1, 33))).decode(),
}
MODES = ["plain", "sse-c", "cse", "cache", "consistent"]


def make_fs(endpoint, mode, tmp_path):
    options = {
        "plain": {},
        "sse-c": {"sse": SSE_C},
        "cse": {"cse": {"enabled": True, **AES}},
        "cache": {"cache": {"enabled": True, "directories": [str(tmp_path / "cache")]}},
        "consistent": {
            "consistent": True,
            "consistency.table_name": f"emrfs-meta-{uuid.uuid4().hex[:12]}",
        },
    }[mode]
    return EmrFileSystem(endpoint_url=endpoint, skip_instance_cache=True, **options)


# (start, end) -> what fsspec's local files give for b"0123456789"
RANGES = [
    ((10, 20), b""),
    ((12, 20), b""),
    ((5, 20), b"56789"),
    ((8, 100), b"89"),
    ((10, None), b""),
    ((-3, None), b"789"),
    ((-30, 2), b"01"),
    ((3, 3), b""),
]


@pytest.mark.parametrize("mode", MODES)
def test_ranges_at_and_past_the_end_read_as_a_local_file(
    emrfs_endpoint, emrfs_s3, bucket, tmp_path, mode
):
    fs = make_fs(emrfs_endpoint, mode, tmp_path)
    data = b"0123456789"
    local = tmp_path / "local"
    local.write_bytes(data)
    (tmp_path / "empty").write_bytes(b"")
    fs.pipe_file(f"{bucket}/f", data)
    fs.pipe_file(f"{bucket}/empty", b"")
    for (start, end), want in RANGES:
        with open(local, "rb") as f:  # the convention, as Python's own files have it
            f.seek(start if start >= 0 else max(0, len(data) + start))
            stop = len(data) if end is None else end
            assert f.read(max(0, stop - f.tell())) == want
        assert fs.cat_file(f"{bucket}/f", start, end) == want, (mode, start, end)
    for start, end in [(0, 5), (3, 9), (0, None)]:
        assert fs.cat_file(f"{bucket}/empty", start, end) == b"", (mode, start, end)
    with fs.open(f"{bucket}/f", "rb") as f:
        f.seek(8)
        assert f.read(100) == b"89"
        assert f.read(5) == b""
    # side channel: S3 holds the object as written (ciphertext under CSE, keyed under SSE-C)
    extra = {}
    if mode == "sse-c":
        extra = {
            "SSECustomerAlgorithm": "AES256",
            "SSECustomerKey": base64.b64decode(SSE_C["customer_key"]),
        }
    head = emrfs_s3.head_object(Bucket=bucket, Key="f", **extra)
    assert head["ContentLength"] == len(data) + (16 if mode == "cse" else 0)
    if mode == "cache":
        fs._cached.close()


@pytest.mark.parametrize("mode", MODES)
def test_an_empty_range_of_a_missing_file_is_not_found(emrfs_endpoint, bucket, tmp_path, mode):
    """An empty range asks for no bytes, but still names a file: a missing one is
    FileNotFoundError, a directory IsADirectoryError, as a local file's open is."""
    fs = make_fs(emrfs_endpoint, mode, tmp_path)
    fs.mkdir(f"{bucket}/d")
    for start, end in [(50, 2), (3, 3), (0, 0)]:
        with pytest.raises(FileNotFoundError, match="missing"):
            fs.cat_file(f"{bucket}/missing", start, end)
        with pytest.raises(IsADirectoryError):
            fs.cat_file(f"{bucket}/d", start, end)
    if mode == "cache":
        fs._cached.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_file_opened_with_its_size_reads_as_one_opened_without(
    emrfs_endpoint, emrfs_s3, bucket, tmp_path, mode
):
    """``open(path, size=n)`` (fsspec's: the caller knows the size, no status is asked)
    reads the same bytes through the same stack; 8d365ac failed every such read."""
    fs = make_fs(emrfs_endpoint, mode, tmp_path)
    data = bytes(range(256)) * 40
    fs.pipe_file(f"{bucket}/f", data)
    with fs.open(f"{bucket}/f", "rb", size=len(data)) as f:
        f.seek(1000)
        assert f.read(100) == data[1000:1100]
        assert f.read() == data[1100:]
    if mode != "cse":  # and the bytes are S3's (under CSE, its ciphertext)
        assert emrfs_s3.get_object(Bucket=bucket, Key="f")["Body"].read() == data
    if mode == "cache":
        fs._cached.close()


@pytest.mark.parametrize("mode", ["v3", "v2", "segmented", "cache"])
def test_cse_object_cut_below_its_tag_fails_every_read(
    emrfs_endpoint, emrfs_s3, bucket, tmp_path, mode
):
    cse = {"enabled": True, **AES, "format": "v3" if mode == "cache" else mode}
    if mode == "v2":
        cse["commitment_policy"] = "FORBID_ENCRYPT_ALLOW_DECRYPT"
    extra = {}
    if mode == "cache":
        extra["cache"] = {"enabled": True, "directories": [str(tmp_path / "cache")]}
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True, cse=cse, **extra)
    path = f"{bucket}/d/cut"
    fs.pipe_file(path, b"sixteen bytes or more of secrets")
    stored = emrfs_s3.get_object(Bucket=bucket, Key="d/cut")
    body = stored["Body"].read()
    # the body cut to 10 bytes, the envelope kept (raw boto3: what a broken copy leaves)
    emrfs_s3.put_object(Bucket=bucket, Key="d/cut", Body=body[:10], Metadata=stored["Metadata"])
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True, cse=cse, **extra)
    local = tmp_path / "local"
    reads = {
        "cat": lambda: fs.cat_file(path),
        "range": lambda: fs.cat_file(path, 0, 5),
        "tail": lambda: fs.cat_file(path, -3),
        "from": lambda: fs.cat_file(path, 2),
        "open": lambda: fs.open(path, "rb").read(),
        "get": lambda: fs.get_file(path, str(local)),
    }
    for name, read in reads.items():
        with pytest.raises(IntegrityError, match="truncated") as raised:
            read()
        assert path in str(raised.value), name
    assert not local.exists()  # nothing half-written left behind
    # info and listings show the bytes S3 holds, not a quiet 0; the object can be removed
    assert fs.info(path)["size"] == 10
    assert [e["size"] for e in fs.ls(f"{bucket}/d")] == [10]
    fs.rm(path)
    listed = emrfs_s3.list_objects_v2(Bucket=bucket, Prefix="d/").get("Contents", [])
    assert [o["Key"] for o in listed] == ["d/"]  # the object is gone; its directory stays
    if mode == "cache":
        fs._cached.close()

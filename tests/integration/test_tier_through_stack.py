"""The ephemeral tier's paths go through the same verbs as S3's: the filesystem has no
tier branches; the router at the top of each path's stack sends tier paths to the tier
store.  So what S3 paths get, tier paths get too (a copy's progress, its CSE on the
way out), and nothing of the tier reaches S3 but a copy out of it.

S3 is checked through raw boto3 (the side channel).
"""

from __future__ import annotations

import base64

import pytest
from fsspec.callbacks import Callback

from emrfs import EmrFileSystem

KiB = 1024
AES_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(params=["plain", "cse"])
def fs(request, emrfs_endpoint, tmp_path):
    extra = {}
    if request.param == "cse":
        extra["cse"] = {
            "enabled": True,
            "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
            "aes_key": AES_KEY,
        }
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        cache={"enabled": True, "directories": [str(tmp_path / "c0")], "block_size": 64 * KiB},
        **extra,
    )
    fs.cse_on = request.param == "cse"
    yield fs
    fs._cached.local.tier.terminate()


class Bytes(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.told = 0

    def relative_update(self, inc: int = 1) -> None:
        self.told += inc


def test_copies_across_the_tier_report_progress_and_seal_what_reaches_s3(fs, bucket, emrfs_s3):
    """Before, a copy with a tier path on either side went beside the stack: no progress
    told to the callback (S3 paths tell their bytes)."""
    data = bytes(range(256)) * 40
    tier = f"{bucket}/out/_temporary/0/part-0"
    fs.pipe_file(tier, data)
    for src, dst in ((tier, f"{bucket}/out/part-0"), (f"{bucket}/out/part-0", f"{tier}-back")):
        told = Bytes()
        fs.cp_file(src, dst, callback=told)
        assert told.size == told.told == len(data)
        assert fs.cat_file(dst) == data
    raw = emrfs_s3.get_object(Bucket=bucket, Key="out/part-0")["Body"].read()
    assert (raw != data) if fs.cse_on else (raw == data)
    keys = [o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert [k for k in keys if "_temporary" in k] == []
    assert fs.info(f"{tier}-back")["ephemeral"] and not fs.info(f"{bucket}/out/part-0").get(
        "ephemeral"
    )


def test_a_tier_path_is_the_tiers_in_listings_as_in_info(fs, bucket, emrfs_s3):
    """An S3 object under a tier pattern (written while the tier was off) is not the
    tier path's: info and cat never saw it, and now ls and find agree (before, find
    listed a file that info then said was not there).  It must not hide the rest:
    before, with nothing in the tier, its directory's probe stopped at it (``info``
    said not found, ``rm -r`` left every key in S3)."""
    emrfs_s3.put_object(Bucket=bucket, Key="out/_temporary/old", Body=b"from before")
    emrfs_s3.put_object(Bucket=bucket, Key="out/kept", Body=b"s3")
    assert fs.info(f"{bucket}/out")["type"] == "directory"  # was: not found
    fs.pipe_file(f"{bucket}/out/_temporary/new", b"tier")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{bucket}/out/_temporary/old")
    found = fs.find(f"{bucket}/out")
    assert found == [f"{bucket}/out/_temporary/new", f"{bucket}/out/kept"]
    assert all(fs.exists(p) for p in found)
    assert fs.ls(f"{bucket}/out/_temporary", detail=False) == [f"{bucket}/out/_temporary/new"]
    fs.rm(f"{bucket}/out", recursive=True)
    assert emrfs_s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []

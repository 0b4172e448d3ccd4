"""``pipe`` of many files: the checks every write needs are made once per parent
directory before any write, and a write that fails does not stop the others
(checked through raw boto3)."""

from __future__ import annotations

import pytest

from emrfs import EmrFileSystem
from emrfs.namespace.markers import Markers

pytestmark = pytest.mark.integration


def _keys(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_parents_are_checked_once_per_directory_not_once_per_write(
    emrfs_endpoint, emrfs_s3, bucket, monkeypatch
):
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    asked: list[tuple] = []  # each time a write asked whether an ancestor is a file
    once = Markers.once

    async def counted(self, key, make):
        if key[0] == "is_file":
            asked.append(key)
        return await once(self, key, make)

    monkeypatch.setattr(Markers, "once", counted)
    fs.pipe({f"{bucket}/{d}/f{i:02d}": b"x" for d in ("a", "b/c") for i in range(30)})
    assert len(_keys(emrfs_s3, bucket)) == 60
    # a, b and b/c, each asked once before the writes (not by each of 60 writes at once)
    assert sorted(k[1].split("/", 1)[1] for k in asked) == ["a", "b", "b/c"]


def test_below_a_file_nothing_is_written(emrfs_endpoint, emrfs_s3, bucket):
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    fs.pipe_file(f"{bucket}/f", b"file")
    with pytest.raises(NotADirectoryError, match=f"{bucket}/f"):
        fs.pipe({f"{bucket}/ok/x": b"1", f"{bucket}/f/y": b"2", f"{bucket}/f/z": b"3"})
    assert _keys(emrfs_s3, bucket) == ["f"]


def test_a_failed_write_is_raised_after_the_others_landed(emrfs_endpoint, emrfs_s3, bucket):
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    fs.pipe_file(f"{bucket}/d/taken", b"old")
    targets = {f"{bucket}/d/n{i}": b"new" for i in range(10)}
    with pytest.raises(FileExistsError, match="taken"):
        fs.pipe({**targets, f"{bucket}/d/taken": b"new"}, mode="create")
    assert _keys(emrfs_s3, bucket) == sorted(["d/taken", *(f"d/n{i}" for i in range(10))])
    assert emrfs_s3.get_object(Bucket=bucket, Key="d/taken")["Body"].read() == b"old"

"""A status remembered from info/ls (read planning, emrfs.readplan) never serves a stale
read: an open after another writer replaced the file reads the new version; under the
consistent view an open reads the version the view records now."""

from __future__ import annotations

import uuid

import pytest

from emrfs import EmrFileSystem


def _fs(endpoint: str, **options) -> EmrFileSystem:
    return EmrFileSystem(endpoint_url=endpoint, skip_instance_cache=True, **options)


@pytest.mark.parametrize("size", [10, 40 * 1024, 300 * 1024])
@pytest.mark.parametrize("how", ["exists", "info", "ls"])
def test_open_after_an_outside_overwrite_reads_the_new_version(
    emrfs_endpoint, emrfs_s3, bucket, how, size
):
    old, new = b"o" * size, b"N" * (size + 77)
    emrfs_s3.put_object(Bucket=bucket, Key="d/f", Body=old)
    fs = _fs(emrfs_endpoint)
    path = f"{bucket}/d/f"
    {"exists": fs.exists, "info": fs.info, "ls": lambda p: fs.ls(f"{bucket}/d")}[how](path)
    emrfs_s3.put_object(Bucket=bucket, Key="d/f", Body=new)  # another writer, raw boto3
    with fs.open(path, "rb") as f:
        assert f.read() == new
    with fs.open(path, "rb") as f:
        assert f.read(5) == new[:5]
    assert fs.cat(path) == new


def test_open_under_the_consistent_view_reads_what_the_view_records_now(emrfs_endpoint, bucket):
    table = f"emrfs-remembered-{uuid.uuid4().hex[:12]}"
    options = {
        "consistent": True,
        "consistency.table_name": table,
        "consistency.retry_count": 2,
        "consistency.retry_period_seconds": 0.05,
    }
    reader, writer = _fs(emrfs_endpoint, **options), _fs(emrfs_endpoint, **options)
    path = f"{bucket}/v/f"
    writer.pipe(path, b"one" * 30_000)
    assert reader.info(path)["size"] == 90_000
    writer.pipe(path, b"TWO" * 40_000)  # recorded in the view by the other instance
    with reader.open(path, "rb") as f:
        assert f.read() == b"TWO" * 40_000


def test_find_and_ls_of_names_make_no_status_dicts_yet_remember_the_files(
    emrfs_endpoint, emrfs_s3, bucket, monkeypatch
):
    from emrfs.status import StatusFactory

    for i in range(4):
        emrfs_s3.put_object(Bucket=bucket, Key=f"t/f{i}", Body=b"x" * i)
    emrfs_s3.put_object(Bucket=bucket, Key="t/sub/", Body=b"")  # a marker: a directory
    fs = _fs(emrfs_endpoint)
    made: list = []
    build = StatusFactory.add_listed_files

    def counted(self, files, rows):
        rows = list(rows)
        made.extend(rows)
        build(self, files, rows)

    monkeypatch.setattr(StatusFactory, "add_listed_files", counted)
    files = [f"{bucket}/t/f{i}" for i in range(4)]
    assert fs.find(f"{bucket}/t") == files
    assert fs.ls(f"{bucket}/t", detail=False) == [*files, f"{bucket}/t/sub"]
    assert made == []  # names only: no file's status dict was made
    remembered = fs._reads.known(f"{bucket}/t/f3")  # an open needs no HEAD
    detail = fs.find(f"{bucket}/t", detail=True, withdirs=True)
    assert remembered == detail[f"{bucket}/t/f3"] and remembered["size"] == 3
    assert detail[f"{bucket}/t/sub"]["type"] == "directory"
    assert fs.ls(f"{bucket}/t", detail=True)[3] == remembered
    # names of a file, of an empty directory, of nothing: as with detail
    assert fs.ls(f"{bucket}/t/f1", detail=False) == [f"{bucket}/t/f1"]
    assert fs.ls(f"{bucket}/t/sub", detail=False) == []
    with pytest.raises(FileNotFoundError):
        fs.ls(f"{bucket}/t/none", detail=False)

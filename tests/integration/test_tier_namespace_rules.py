"""The HDFS rules are the namespace's, for the ephemeral tier's paths as for S3's: the
same verb on a tier path and on a persistent path refuses the same things with the same
error and message (before, the tier kept its own copy of mkdir/makedirs/rmdir/rm/mv's
rules, and it had drifted from the namespace's in the cases below).

Each test runs one scenario under a tier root (``out/_temporary``) and under a
persistent one (``data``); S3 is checked through raw boto3 (the side channel).
"""

from __future__ import annotations

import uuid

import pytest

from emrfs import EmrFileSystem

KiB = 1024


@pytest.fixture
def fs(emrfs_endpoint, tmp_path):
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        cache={"enabled": True, "directories": [str(tmp_path / "c0")], "block_size": 64 * KiB},
    )
    yield fs
    fs._cached.local.tier.terminate()


ROOTS = {"tier": "out/_temporary", "persistent": "data"}


@pytest.fixture(params=sorted(ROOTS))
def root(request, bucket) -> str:
    return f"{bucket}/{ROOTS[request.param]}"


def s3_keys(s3, bucket) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_makedirs_in_a_missing_bucket_names_the_bucket(fs, root):
    """Before, the tier made ``nobucket/out/_temporary/0`` locally while S3 paths were
    refused: a tier directory in a bucket that does not exist."""
    missing = f"emrfs-missing-{uuid.uuid4().hex[:12]}"
    path = f"{missing}/{root.split('/', 1)[1]}/0"
    with pytest.raises(FileNotFoundError, match=f"bucket '{missing}' does not exist"):
        fs.makedirs(path)
    assert not fs.exists(path)


def test_mv_into_a_directory_named_with_a_slash(fs, root, bucket, emrfs_s3):
    """``mv(f, "d/")`` moves ``f`` into ``d`` (created by the move); before, the tier
    ignored the slash and renamed the file to ``d``."""
    fs.pipe_file(f"{root}/f", b"data")
    fs.mv(f"{root}/f", f"{root}/sub/")
    assert fs.cat_file(f"{root}/sub/f") == b"data"
    assert fs.info(f"{root}/sub")["type"] == "directory"
    assert not fs.exists(f"{root}/f")
    if root.endswith("_temporary"):
        assert s3_keys(emrfs_s3, bucket) == []  # nothing of the tier reached S3


def test_mv_of_a_directory_over_a_directory_names_what_is_there(fs, root):
    """Before, the tier said "over an existing file" of an existing directory."""
    fs.pipe_file(f"{root}/a/x", b"x")
    fs.pipe_file(f"{root}/b/a/y", b"y")
    with pytest.raises(FileExistsError, match="over an existing directory"):
        fs.mv(f"{root}/a", f"{root}/b")
    assert fs.cat_file(f"{root}/a/x") == b"x" and fs.cat_file(f"{root}/b/a/y") == b"y"


def test_mv_of_a_missing_path_names_the_destination(fs, root):
    with pytest.raises(FileNotFoundError, match="nothing to rename to"):
        fs.mv(f"{root}/missing", f"{root}/elsewhere")
    assert not fs.exists(f"{root}/elsewhere")


def test_the_same_refusals_on_both_sides(fs, root):
    """The rules both sides always shared, now from one place: a guard against drift."""
    fs.pipe_file(f"{root}/file", b"f")
    fs.pipe_file(f"{root}/full/file/x", b"x")
    fs.makedirs(f"{root}/empty")
    cases = [
        (lambda: fs.mkdir(f"{root}/file"), FileExistsError, "a file"),
        (lambda: fs.mkdir(f"{root}/empty"), FileExistsError, "the directory exists"),
        (lambda: fs.makedirs(f"{root}/file", exist_ok=True), FileExistsError, "in the way"),
        (lambda: fs.makedirs(f"{root}/empty"), FileExistsError, "exist_ok=True"),
        (lambda: fs.mkdir(f"{root}/none/x", create_parents=False), FileNotFoundError, "parent"),
        (lambda: fs.mkdir(f"{root}/file/x", create_parents=False), NotADirectoryError, "below"),
        (lambda: fs.rmdir(f"{root}/file"), NotADirectoryError, "use rm for files"),
        (lambda: fs.rmdir(f"{root}/full"), OSError, "only empty directories"),
        (lambda: fs.rm(f"{root}/full"), IsADirectoryError, "recursive=True"),
        (lambda: fs.mv(f"{root}/file", f"{root}/full"), IsADirectoryError, "replace"),
        (lambda: fs.mv(f"{root}/full", f"{root}/full/in"), ValueError, "into itself"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
    fs.rmdir(f"{root}/empty")
    fs.rm(f"{root}/full", recursive=True)
    assert fs.ls(root, detail=False) == [f"{root}/file"]

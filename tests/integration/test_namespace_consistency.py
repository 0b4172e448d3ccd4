"""The persistent namespace rules under the consistent view, while S3's listings lag:
a directory keeps its marker when its last child goes, a write over a directory is
refused (and one over a directory already deleted is not), and a copy onto itself
changes nothing.

Each outcome is checked through raw boto3 against moto (not through the proxy).
"""

from __future__ import annotations

import pytest

from emrfs import EmrFileSystem
from emrfs.testing import FaultPolicy, FaultProxy
from emrfs.testing.faults import Inconsistency


def keys(s3, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def consistent_fs(endpoint: str, table: str) -> EmrFileSystem:
    return EmrFileSystem(
        endpoint_url=endpoint,
        skip_instance_cache=True,
        consistent=True,
        **{
            "consistency.table_name": table,
            "consistency.retry_policy_type": "fixed",
            "consistency.retry_period_seconds": 0.2,
            "consistency.retry_count": 20,
        },
    )


def lagging(
    endpoint: str, *, list_delay: bool = False, lingering_deletes: bool = False
) -> FaultProxy:
    """A proxy whose listings lag for 30 s: new keys hidden and/or deleted keys still listed."""
    return FaultProxy(
        endpoint,
        FaultPolicy(
            inconsistency=Inconsistency(
                delay=30.0,
                list_delay=list_delay,
                lingering_deletes=lingering_deletes,
                stale_reads=False,
            )
        ),
    )


# --- a directory keeps its marker when its last child goes --------------------------------


def test_a_file_moved_out_of_its_directory_leaves_the_directory_marked(
    emrfs_endpoint, bucket, emrfs_s3, table
):
    with lagging(emrfs_endpoint, lingering_deletes=True) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs.pipe(f"{bucket}/a/sub/x", b"x")
        fs.mv(f"{bucket}/a/sub/x", f"{bucket}/y")  # S3 still lists a/sub/x a while
        assert fs.isdir(f"{bucket}/a/sub")
    assert keys(emrfs_s3, bucket) == ["a/sub/", "y"]


def test_rmdir_leaves_its_parent_marked(emrfs_endpoint, bucket, emrfs_s3, table):
    with lagging(emrfs_endpoint, lingering_deletes=True) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs.mkdir(f"{bucket}/a/x/x")
        fs.rmdir(f"{bucket}/a/x/x")  # S3 still lists the marker a/x/x/ a while
        assert fs.isdir(f"{bucket}/a/x")
    assert keys(emrfs_s3, bucket) == ["a/x/"]


def test_a_directory_whose_other_child_is_not_listed_yet_gets_no_marker(
    emrfs_endpoint, bucket, emrfs_s3, table
):
    with lagging(emrfs_endpoint, list_delay=True) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs.pipe({f"{bucket}/d/keep": b"k", f"{bucket}/d/gone": b"g"})  # neither listed
        fs.rm(f"{bucket}/d/gone")
        assert fs.cat(f"{bucket}/d/keep") == b"k"
    # d/keep implies d: a marker beside it would be a stale one (S3A deletes them)
    assert keys(emrfs_s3, bucket) == ["d/keep"]


# --- a write over a directory ----------------------------------------------------------------


@pytest.mark.parametrize("how", ["pipe_create", "pipe", "open_wb"])
def test_a_write_over_a_directory_not_listed_yet_is_refused(
    emrfs_endpoint, bucket, emrfs_s3, table, how
):
    with lagging(emrfs_endpoint, list_delay=True) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs.pipe(f"{bucket}/out/part-0", b"p")  # S3 does not list out/ yet
        with pytest.raises(IsADirectoryError, match=f"{bucket}/out"):
            if how == "open_wb":
                with fs.open(f"{bucket}/out", "wb") as f:
                    f.write(b"over")
            else:
                fs.pipe_file(
                    f"{bucket}/out", b"over", mode="create" if how == "pipe_create" else "overwrite"
                )
    assert keys(emrfs_s3, bucket) == ["out/part-0"]


def test_a_bulk_write_over_a_directory_not_listed_yet_is_refused(
    emrfs_endpoint, bucket, emrfs_s3, table
):
    with lagging(emrfs_endpoint, list_delay=True) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs.pipe(f"{bucket}/out/d/part-0", b"p")
        with pytest.raises(IsADirectoryError, match=f"{bucket}/out/d"):
            fs.pipe({f"{bucket}/out/d": b"over", f"{bucket}/out/e": b"e"})
    assert "out/d" not in keys(emrfs_s3, bucket)


def test_a_write_where_a_deleted_directory_is_still_listed_succeeds(
    emrfs_endpoint, bucket, emrfs_s3, table
):
    with lagging(emrfs_endpoint, lingering_deletes=True) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs.pipe(f"{bucket}/out/part-0", b"p")
        fs.rm(f"{bucket}/out", recursive=True)  # S3 still lists out/part-0 a while
        fs.pipe_file(f"{bucket}/out", b"now a file", mode="create")
        assert fs.cat(f"{bucket}/out") == b"now a file"
    assert keys(emrfs_s3, bucket) == ["out"]


# --- a copy onto itself ----------------------------------------------------------------------

AES_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 bytes


@pytest.mark.parametrize("encryption", ["none", "sse", "cse"])
def test_a_copy_onto_itself_changes_nothing(emrfs_endpoint, bucket, emrfs_s3, encryption):
    options = {
        "none": {},
        "sse": {"fs.s3.enableServerSideEncryption": True},
        "cse": {
            "cse": {
                "enabled": True,
                "aes_key": AES_KEY,
                "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
            }
        },
    }[encryption]
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True, **options)
    fs.pipe(f"{bucket}/b é/ü", b"data")
    stored = emrfs_s3.get_object(Bucket=bucket, Key="b é/ü")["Body"].read()
    fs.cp_file(f"{bucket}/b é/ü", f"{bucket}/b é/ü")
    fs.copy(f"{bucket}/b é/ü", f"{bucket}/b é/ü")
    assert fs.cat(f"{bucket}/b é/ü") == b"data"
    assert keys(emrfs_s3, bucket) == ["b é/ü"]
    assert emrfs_s3.get_object(Bucket=bucket, Key="b é/ü")["Body"].read() == stored
    with pytest.raises(FileNotFoundError, match="nope"):
        fs.cp_file(f"{bucket}/nope", f"{bucket}/nope")


# --- a deleted directory S3 still lists ------------------------------------------------------


def test_find_leaves_out_a_deleted_directory_s3_still_lists(
    emrfs_endpoint, bucket, emrfs_s3, table
):
    with lagging(emrfs_endpoint, lingering_deletes=True) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs.mkdir(f"{bucket}/d/sub")
        fs.pipe(f"{bucket}/d/other/f", b"f")
        fs.rm(f"{bucket}/d/sub", recursive=True)  # S3 still lists d/sub/ a while
        assert fs.find(f"{bucket}/d", withdirs=True) == [
            f"{bucket}/d",
            f"{bucket}/d/other",
            f"{bucket}/d/other/f",
        ]
    assert keys(emrfs_s3, bucket) == ["d/other/f"]


# --- a write below a file, after the name became a file --------------------------------------


@pytest.mark.parametrize("how", ["pipe", "cp_file", "mv_file", "mv_directory"])
def test_a_name_checked_as_no_file_is_checked_again_once_a_file_lands_there(
    fs, bucket, emrfs_s3, how
):
    fs.pipe(f"{bucket}/f", b"file")
    with pytest.raises(NotADirectoryError):
        fs.pipe(f"{bucket}/f/x/y", b"refused")  # f/x was looked at: not a file then
    fs.rm(f"{bucket}/f")
    fs.pipe({f"{bucket}/src/x": b"x", f"{bucket}/other": b"o"})
    if how == "pipe":
        fs.pipe(f"{bucket}/f/x", b"x")
    elif how == "cp_file":
        fs.cp_file(f"{bucket}/src/x", f"{bucket}/f/x")
    elif how == "mv_file":
        fs.mv(f"{bucket}/src/x", f"{bucket}/f/x")
    else:
        fs.mv(f"{bucket}/src", f"{bucket}/f")
    with pytest.raises(NotADirectoryError, match=f"{bucket}/f/x"):
        fs.pipe(f"{bucket}/f/x/y", b"below a file")
    assert "f/x/y" not in keys(emrfs_s3, bucket)
    assert emrfs_s3.get_object(Bucket=bucket, Key="f/x")["Body"].read() == b"x"


def test_an_instruction_file_s3_still_lists_does_not_keep_a_directory_unmarked(
    emrfs_endpoint, bucket, emrfs_s3, table
):
    cse = {
        "fs.s3.cse.enabled": True,
        "fs.s3.cse.cryptoStorageMode": "InstructionFile",
        "fs.s3.cse.encryptionMaterialsProvider": "emrfs.crypto.keys:AesKeyProvider",
        "cse": {"aes_key": AES_KEY},
    }
    with lagging(emrfs_endpoint, lingering_deletes=True) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs = EmrFileSystem(**{**fs.storage_options, **cse})
        fs.pipe(f"{bucket}/a/sub/x", b"secret")
        assert keys(emrfs_s3, bucket) == ["a/sub/x", "a/sub/x.instruction"]
        fs.mv(f"{bucket}/a/sub/x", f"{bucket}/y")  # S3 still lists both source keys
        assert fs.isdir(f"{bucket}/a/sub")
        assert fs.cat(f"{bucket}/y") == b"secret"
    assert keys(emrfs_s3, bucket) == ["a/sub/", "y", "y.instruction"]


# --- a directory rename while S3 still lists a marker that went ------------------------------


@pytest.mark.parametrize("marked", ["own marker", "subdirectory marker"])
def test_a_directory_renamed_while_s3_still_lists_its_removed_marker(
    emrfs_endpoint, bucket, emrfs_s3, table, marked
):
    """A child's arrival removes its ancestors' markers (as S3A does); S3 still lists
    the removed marker a while.  The rename must not copy that marker (NoSuchKey: the
    rename failed with FileNotFoundError, found by the model workload, configuration
    ``consistent``, seed 3001): the directory is there, so its marker is written anew."""
    sub = "" if marked == "own marker" else "sub/"
    with lagging(emrfs_endpoint, lingering_deletes=True) as proxy:
        fs = consistent_fs(proxy.url, table)
        fs.mkdir(f"{bucket}/d/{sub}")
        fs.pipe(f"{bucket}/d/{sub}f", b"f")  # removes d/ (or d/sub/): S3 still lists it
        assert f"d/{sub}" not in keys(emrfs_s3, bucket)
        fs.mv(f"{bucket}/d", f"{bucket}/e")
        assert fs.cat(f"{bucket}/e/{sub}f") == b"f"
    # moved, and no marker beside e/.../f (it implies its directories)
    assert keys(emrfs_s3, bucket) == [f"e/{sub}f"]

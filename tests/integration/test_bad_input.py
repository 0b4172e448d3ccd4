"""Bad input: a clear error naming the path or key, and nothing written."""

from __future__ import annotations

import pytest

from emrfs import EmrFileSystem
from emrfs.errors import ConfigurationError, InvalidPathError


def keys(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.mark.parametrize("name", ["Bad_Bucket", "ab", "-x-"])
def test_invalid_bucket_names(fs, name):
    with pytest.raises(InvalidPathError, match="invalid bucket name") as info:
        fs.pipe_file(f"emrfs://{name}/k", b"x")
    assert name in str(info.value)
    with pytest.raises(InvalidPathError):
        fs.ls(f"s3://{name}")


def test_dot_dot_segments(fs, bucket, emrfs_s3):
    with pytest.raises(InvalidPathError, match=r"'\.\.'") as info:
        fs.pipe_file(f"{bucket}/a/../b", b"x")
    assert f"{bucket}/a/../b" in str(info.value)
    assert keys(emrfs_s3, bucket) == []


def test_opening_a_directory_as_a_file(fs, bucket):
    fs.mkdir(f"{bucket}/d")
    with pytest.raises(IsADirectoryError) as info:
        fs.open(f"{bucket}/d", "rb")
    assert f"{bucket}/d" in str(info.value)
    with pytest.raises(IsADirectoryError):
        fs.cat_file(f"{bucket}/d")
    with pytest.raises(IsADirectoryError):
        fs.open(bucket, "rb")


def test_writing_under_a_path_that_is_a_file(fs, bucket, emrfs_s3):
    fs.pipe_file(f"{bucket}/f", b"x")
    for write in (
        lambda p: fs.pipe_file(p, b"y"),
        lambda p: fs.open(p, "wb"),
        lambda p: fs.mkdir(p),
    ):
        with pytest.raises(NotADirectoryError, match=f"'{bucket}/f' is a file"):
            write(f"{bucket}/f/deeper/g")
    assert keys(emrfs_s3, bucket) == ["f"]


def test_writing_over_a_directory(fs, bucket, emrfs_s3):
    fs.pipe_file(f"{bucket}/d/child", b"x")
    with pytest.raises(IsADirectoryError):
        fs.pipe_file(f"{bucket}/d", b"y")
    with pytest.raises(IsADirectoryError):
        fs.open(f"{bucket}/d", "wb")
    assert keys(emrfs_s3, bucket) == ["d/child"]


def test_missing_paths_name_the_path(fs, bucket):
    with pytest.raises(FileNotFoundError) as info:
        fs.info(f"{bucket}/nope")
    assert info.value.filename == f"{bucket}/nope"
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{bucket}/nope")
    with pytest.raises(FileNotFoundError, match="nonexistent-bucket-zz"):
        fs.ls("nonexistent-bucket-zz/x")


def test_unreadable_config_names_the_file(tmp_path, emrfs_endpoint):
    with pytest.raises(ConfigurationError, match=r"missing-site\.xml"):
        EmrFileSystem(
            endpoint_url=emrfs_endpoint,
            site=str(tmp_path / "missing-site.xml"),
            skip_instance_cache=True,
        )
    with pytest.raises(ConfigurationError, match="no_such_option"):
        EmrFileSystem(endpoint_url=emrfs_endpoint, no_such_option=1, skip_instance_cache=True)


def test_text_mode_is_refused_clearly(fs, bucket):
    with pytest.raises(ValueError, match="binary"):
        fs._open(f"{bucket}/t", "w")


def test_bulk_write_over_a_directory_writes_nothing(fs, bucket, emrfs_s3):
    fs.pipe_file(f"{bucket}/d/sub/child", b"x")
    with pytest.raises(IsADirectoryError, match=f"{bucket}/d/sub"):
        fs.pipe({f"{bucket}/d/ok": b"1", f"{bucket}/d/sub": b"2"})
    assert keys(emrfs_s3, bucket) == ["d/sub/child"]


@pytest.mark.parametrize(
    "name, what",
    [
        ("a\x00b", "control character"),
        ("a\x01b", "control character"),
        ("a\nb", "control character"),
        ("a\ufffeb", "non-character"),
        ("a\udc80b", "lone surrogate"),
    ],
)
def test_keys_s3_cannot_list_or_delete_are_refused_before_any_request(
    fs, bucket, emrfs_s3, name, what
):
    # S3 stores such a key, then answers 500 to every listing and bulk delete naming it
    # (XML 1.0 cannot carry it), so the object could never be removed through emrfs.
    path = f"{bucket}/dir/{name}"
    for verb in (
        lambda: fs.pipe(path, b"x"),
        lambda: fs.open(path, "wb"),
        lambda: fs.rm(path),
        lambda: fs.info(path),
        lambda: fs.mkdir(path),
    ):
        with pytest.raises(InvalidPathError, match=what) as info:
            verb()
        assert info.value.path == path
        assert repr(path) in str(info.value)
        str(info.value).encode("utf-8")  # printable: the bad character is escaped
    assert keys(emrfs_s3, bucket) == []


def test_key_over_1024_utf8_bytes_is_refused_before_any_request(fs, bucket, emrfs_s3):
    path = f"{bucket}/" + "é" * 513  # 1026 bytes in UTF-8, 513 characters
    with pytest.raises(InvalidPathError, match="1026 bytes") as info:
        fs.pipe(path, b"x")
    assert info.value.path == path
    assert keys(emrfs_s3, bucket) == []

"""Buckets are the top-level directories: the gateway never creates, deletes or renames
one (refused with ``AccessControlException``), and works freely below them.

Every case is checked through the side channel (raw boto3 for emrfs, the directory
for a local root): the bucket is still there, or was never made.
"""

from __future__ import annotations

import uuid

import pytest
import requests


def _call(gateway, method: str, path: str, op: str, **params) -> requests.Response:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return requests.request(
        method, f"{gateway.url}/webhdfs/v1{path}?op={op}&{query}", allow_redirects=False
    )


def _refused(response: requests.Response, path: str, *words: str) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["RemoteException"]
    assert error["exception"] == "AccessControlException"
    assert path in error["message"]
    for word in words:
        assert word in error["message"]


def _new_name() -> str:
    return f"gw-new-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def filled(served, gateway):
    served.fs.makedirs(f"{served.bucket}/dir", exist_ok=True)
    served.fs.pipe({f"{served.bucket}/dir/a.txt": b"a", f"{served.bucket}/top.txt": b"t"})
    return served


def test_delete_of_a_bucket_is_refused_and_leaves_it_whole(filled, gateway):
    bucket = filled.bucket
    for recursive in ("true", "false"):
        _refused(
            _call(gateway, "DELETE", f"/{bucket}", "DELETE", recursive=recursive),
            f"/{bucket}",
            f"/{bucket}/*",
            "S3 tooling",
        )
    assert filled.bucket_exists(bucket)
    assert filled.read_raw(f"{bucket}/dir/a.txt") == b"a"
    assert filled.read_raw(f"{bucket}/top.txt") == b"t"


def test_what_is_in_a_bucket_can_be_deleted_and_the_bucket_stays(filled, gateway, client):
    bucket = filled.bucket
    for entry in client.ls(f"/{bucket}", detail=False):  # what `rm -r /bucket/*` does
        assert _call(gateway, "DELETE", entry, "DELETE", recursive="true").json() == {
            "boolean": True
        }
    assert client.ls(f"/{bucket}", detail=False) == []
    assert filled.bucket_exists(bucket)
    with pytest.raises(PermissionError, match="bucket"):  # fsspec's reading of the refusal
        client.rm(f"/{bucket}", recursive=True)


def test_delete_of_a_missing_bucket_is_false(served, gateway):
    name = _new_name()
    assert _call(gateway, "DELETE", f"/{name}", "DELETE", recursive="true").json() == {
        "boolean": False
    }
    assert not served.bucket_exists(name)


def test_mkdirs_never_makes_a_bucket(served, gateway):
    name = _new_name()
    for path in (f"/{name}", f"/{name}/a/b"):
        _refused(
            _call(gateway, "PUT", path, "MKDIRS"), path, f"/{name} does not exist", "aws s3 mb"
        )
    assert not served.bucket_exists(name)
    # an existing bucket is a directory that exists; below it, directories are made
    assert _call(gateway, "PUT", f"/{served.bucket}", "MKDIRS").json() == {"boolean": True}
    assert _call(gateway, "PUT", f"/{served.bucket}/x/y", "MKDIRS").json() == {"boolean": True}
    assert served.fs.isdir(f"{served.bucket}/x/y")


def test_create_never_makes_a_bucket(served, gateway):
    name = _new_name()
    _refused(
        _call(gateway, "PUT", f"/{name}/f.txt", "CREATE"),
        f"/{name}/f.txt",
        f"/{name} does not exist",
    )
    assert not served.bucket_exists(name)


def test_rename_of_a_bucket_or_onto_the_top_level_is_refused(filled, gateway):
    bucket = filled.bucket
    other = _new_name()
    filled.make_bucket(other)
    _refused(
        _call(gateway, "PUT", f"/{bucket}", "RENAME", destination=f"/{bucket}-moved"),
        f"/{bucket}",
        "cannot be renamed",
    )
    _refused(
        _call(gateway, "PUT", f"/{bucket}", "RENAME", destination=f"/{other}/inside"),
        f"/{bucket}",
        "cannot be renamed",
    )
    new = _new_name()
    _refused(
        _call(gateway, "PUT", f"/{bucket}/dir", "RENAME", destination=f"/{new}"),
        f"/{new}",
        "new bucket",
    )
    _refused(
        _call(
            gateway,
            "PUT",
            f"/{bucket}/top.txt",
            "RENAME",
            destination=f"/{other}",
            renameoptions="OVERWRITE",
        ),
        f"/{other}",
        "replace the bucket",
    )
    assert filled.bucket_exists(bucket) and filled.bucket_exists(other)
    assert not filled.bucket_exists(new) and not filled.bucket_exists(f"{bucket}-moved")
    assert filled.read_raw(f"{bucket}/dir/a.txt") == b"a"
    # into an existing bucket is a move below it, as into any directory
    assert _call(gateway, "PUT", f"/{bucket}/dir", "RENAME", destination=f"/{other}").json() == {
        "boolean": True
    }
    assert filled.read_raw(f"{other}/dir/a.txt") == b"a"
    assert filled.bucket_exists(bucket)

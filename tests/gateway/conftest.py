"""Fixtures: a filesystem to serve, a gateway serving it, clients talking to it.

``served`` is parametrised over a local directory (``DirFileSystem``, a
blocking filesystem) and, when emrfs's filesystem exists, an
``EmrFileSystem`` on the local moto server (an async one), checked through
raw boto3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.dirfs import DirFileSystem

from emrfs.gateway import serve_in_thread
from emrfs.testing.pytest_plugin import empty_and_delete_bucket


@dataclass
class Served:
    """A filesystem behind a gateway, the bucket to work in, and a side channel."""

    fs: Any
    bucket: str
    read_raw: Callable[[str], bytes]  # "bucket/key" -> bytes, bypassing the gateway
    kind: str
    bucket_exists: Callable[[str], bool]  # by the side channel: boto3, or the directory
    make_bucket: Callable[[str], None]  # another bucket, removed after the test
    pending_uploads: Callable[[], list] = list  # unfinished multipart uploads (S3 only)


def _emrfs_available() -> bool:
    # Only this tree's filesystem: an editable install elsewhere must not leak in.
    import emrfs

    return (Path(emrfs.__file__).parent / "filesystem.py").exists()


BACKENDS = ["local"] + (["emrfs"] if _emrfs_available() else [])
# emrfs runs against the local moto server: an integration test
_PARAMS = [pytest.param(b, marks=pytest.mark.integration) if b == "emrfs" else b for b in BACKENDS]


@pytest.fixture(params=_PARAMS)
def served(request, tmp_path):
    yield from _served(request.param, request, tmp_path)


@pytest.fixture
def served_one(request, tmp_path):
    """Just one backend: emrfs when it exists (for the slow JVM-driven tests)."""
    yield from _served(BACKENDS[-1], request, tmp_path)


def _served(kind: str, request, tmp_path):
    if kind == "local":
        bucket = "bucket"
        (tmp_path / bucket).mkdir()
        fs = DirFileSystem(str(tmp_path), fs=fsspec.filesystem("file"))
        yield Served(
            fs,
            bucket,
            lambda p: (tmp_path / p).read_bytes(),
            "local",
            bucket_exists=lambda name: (tmp_path / name).is_dir(),
            make_bucket=lambda name: (tmp_path / name).mkdir(),
        )
    else:
        from emrfs.filesystem import EmrFileSystem

        endpoint = request.getfixturevalue("emrfs_endpoint")
        s3 = request.getfixturevalue("emrfs_s3")
        bucket = request.getfixturevalue("emrfs_bucket")
        fs = EmrFileSystem(endpoint_url=endpoint, skip_instance_cache=True)

        def read_raw(path: str) -> bytes:
            b, _, key = path.partition("/")
            return s3.get_object(Bucket=b, Key=key)["Body"].read()

        def pending_uploads() -> list:
            return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])

        def bucket_exists(name: str) -> bool:
            return any(b["Name"] == name for b in s3.list_buckets()["Buckets"])

        made: list[str] = []

        def make_bucket(name: str) -> None:
            s3.create_bucket(Bucket=name)
            made.append(name)

        yield Served(fs, bucket, read_raw, "emrfs", bucket_exists, make_bucket, pending_uploads)
        for name in made:
            empty_and_delete_bucket(s3, name)


@pytest.fixture
def gateway(request):
    served = request.getfixturevalue(
        "served_one" if "served_one" in request.fixturenames else "served"
    )
    running = serve_in_thread(served.fs, append_idle_seconds=30)
    yield running
    running.stop()


@pytest.fixture
def client(gateway):
    return fsspec.filesystem(
        "webhdfs",
        host="127.0.0.1",
        port=gateway.port,
        use_https=False,
        user="alice",
        skip_instance_cache=True,
    )

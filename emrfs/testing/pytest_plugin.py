"""pytest fixtures for code that uses emrfs (registered via the pytest11 entry point).

* ``emrfs_endpoint`` (session): URL of moto on a free port, or ``EMRFS_ENDPOINT_URL``.
* ``emrfs_s3`` (session): a raw boto3 S3 client on that endpoint (the side channel).
* ``emrfs_bucket`` (function): a fresh uuid-named bucket, emptied and removed after.
* ``emrfs_table`` (function): a fresh uuid name for the consistent view's DynamoDB
  table (emrfs creates it on first use); the table is deleted after.
* ``emrfs_fs`` (function): an ``EmrFileSystem`` on that endpoint, no instance cache.
* ``emrfs_localstack`` (session): URL of a running LocalStack
  (``EMRFS_TEST_LOCALSTACK``, else ``http://127.0.0.1:4566`` if it answers);
  tests marked ``@pytest.mark.localstack`` skip with the reason when none is up.
* ``emrfs_fault_proxy`` (function): a :class:`~emrfs.testing.faults.FaultProxy` in
  front of that endpoint, injecting nothing until the test calls ``set_policy``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid

import pytest

LOCALSTACK_DEFAULT_URL = "http://127.0.0.1:4566"


@pytest.fixture(scope="session")
def emrfs_endpoint():
    from .localserver import LocalServers

    servers = LocalServers()
    try:
        url = servers.start()
    except RuntimeError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    yield url
    servers.stop()


@pytest.fixture(scope="session")
def emrfs_s3(emrfs_endpoint):
    boto3 = pytest.importorskip("boto3")
    return boto3.client(
        "s3",
        endpoint_url=emrfs_endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def new_bucket_name(prefix: str = "emrfs-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def empty_and_delete_bucket(s3, bucket: str) -> None:
    try:
        paginator = s3.get_paginator("list_object_versions")
        # listed whole before deleting: moto loses its place when the marker key is gone
        objs = [
            {"Key": o["Key"], "VersionId": o["VersionId"]}
            for page in paginator.paginate(Bucket=bucket)
            for o in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for i in range(0, len(objs), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objs[i : i + 1000], "Quiet": True})
        for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        s3.delete_bucket(Bucket=bucket)
    except s3.exceptions.NoSuchBucket:
        pass


@pytest.fixture
def emrfs_bucket(emrfs_s3):
    bucket = new_bucket_name()
    emrfs_s3.create_bucket(Bucket=bucket)
    yield bucket
    empty_and_delete_bucket(emrfs_s3, bucket)


@pytest.fixture
def emrfs_table(emrfs_endpoint):
    boto3 = pytest.importorskip("boto3")
    table = f"emrfs-meta-{uuid.uuid4().hex[:12]}"
    yield table
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=emrfs_endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    try:
        ddb.delete_table(TableName=table)
    except ddb.exceptions.ResourceNotFoundException:
        pass  # the test never made it


@pytest.fixture
def emrfs_fs(emrfs_endpoint):
    from emrfs import EmrFileSystem

    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)
    yield fs


def localstack_status() -> tuple[str | None, str]:
    """(URL of a LocalStack that answers its health check, or None; why not)."""
    url = (os.environ.get("EMRFS_TEST_LOCALSTACK") or LOCALSTACK_DEFAULT_URL).rstrip("/")
    try:
        with urllib.request.urlopen(url + "/_localstack/health", timeout=2) as resp:
            json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        named = "EMRFS_TEST_LOCALSTACK" in os.environ
        return None, (
            f"LocalStack is not answering at {url} ({exc}); start it with "
            "`python localstack/launch.py` (or docker compose -f "
            "localstack/compose.yaml up)"
            + ("" if named else ", or name it with EMRFS_TEST_LOCALSTACK")
        )
    return url, ""


_localstack_probe: list[tuple[str | None, str]] = []


def _localstack_once() -> tuple[str | None, str]:
    if not _localstack_probe:  # probe once per session: a dead port costs up to 2 s
        _localstack_probe.append(localstack_status())
    return _localstack_probe[0]


def pytest_runtest_setup(item):
    if item.get_closest_marker("localstack") is not None:
        url, reason = _localstack_once()
        if url is None:
            pytest.skip(reason)


@pytest.fixture(scope="session")
def emrfs_localstack():
    url, reason = _localstack_once()
    if url is None:
        pytest.skip(reason)
    return url


@pytest.fixture
def emrfs_fault_proxy(emrfs_endpoint):
    """A fault-injection proxy in front of the session server (``proxy.url``).

    It injects nothing until the test calls ``proxy.set_policy(FaultPolicy(...))``;
    it is stopped, and its state dropped, after the test.
    """
    from .faults import FaultProxy

    with FaultProxy(emrfs_endpoint) as proxy:
        yield proxy

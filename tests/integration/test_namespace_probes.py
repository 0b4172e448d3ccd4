"""The namespace's directory probes through each path's stack (issue 12): "is anything
below d/" is the stack's short listing, which the consistent layer merges with its table
(deletions S3 still lists left out, writes it does not list yet added) and the CSE layer
reads as plaintext.  S3 is checked with raw boto3, the table with a DynamoDB scan.

The fault proxy's clock only moves when the test says so: its delayed listings and
lingering deletes last as long as the test needs, however slow the machine.
"""

from __future__ import annotations

import base64

import boto3
import pytest

from emrfs import EmrFileSystem
from emrfs.testing import FaultPolicy, FaultProxy
from emrfs.testing.faults import Inconsistency

pytestmark = pytest.mark.integration

AES = {
    "enabled": True,
    "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
    "aes_key": base64.b64encode(bytes(range(32))).decode(),
}


@pytest.fixture(params=["plain", "cse"])
def probed(request, emrfs_endpoint, bucket, table):
    """(fs through a proxy whose listings lag 60 s of a clock that stands still, bucket)."""
    clock = [1000.0]
    policy = FaultPolicy(
        inconsistency=Inconsistency(
            delay=60.0, list_delay=True, lingering_deletes=True, stale_reads=False
        )
    )
    with FaultProxy(emrfs_endpoint, policy, clock=lambda: clock[0]) as proxy:
        fs = EmrFileSystem(
            endpoint_url=proxy.url,
            skip_instance_cache=True,
            consistent=True,
            consistency={"table_name": table},
            **({"cse": AES} if request.param == "cse" else {}),
        )
        yield fs, bucket


def keys(endpoint, bucket) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_the_last_child_gone_brings_the_marker_back_while_s3_still_lists_it(probed, emrfs_endpoint):
    fs, bucket = probed
    fs.pipe_file(f"{bucket}/d/a", b"1")
    fs.pipe_file(f"{bucket}/d/b", b"2")
    fs.rm(f"{bucket}/d/a")
    assert keys(emrfs_endpoint, bucket) == ["d/b"]  # a sibling is left: no marker
    fs.rm(f"{bucket}/d/b")  # S3 still lists both deleted children through the proxy
    assert keys(emrfs_endpoint, bucket) == ["d/"]  # the marker, written anew
    assert fs.isdir(f"{bucket}/d") and fs.ls(f"{bucket}/d") == []


def test_a_file_is_refused_where_a_directory_is_not_listed_yet(probed, emrfs_endpoint):
    fs, bucket = probed
    fs.pipe_file(f"{bucket}/e/x", b"1")  # S3 does not list it for a while
    fs.mkdir(f"{bucket}/f")  # an empty directory: its marker not listed yet either
    for name in ("e", "f"):
        with pytest.raises(IsADirectoryError, match=name):
            fs.pipe_file(f"{bucket}/{name}", b"a file named as a directory")
    assert keys(emrfs_endpoint, bucket) == ["e/x", "f/"]  # nothing written in their place

"""OPEN over emrfs streams one GET per read: bounded, resumable, version-pinned.

The gateway's S3 traffic goes through a :class:`FaultProxy`, which counts the
GETs and the body bytes S3 sent, and can cut bodies mid-way.
"""

from __future__ import annotations

import os
import time

import pytest
import requests

from emrfs.gateway import serve_in_thread
from emrfs.streamed_read import WINDOW_SIZE
from emrfs.testing import FaultPolicy, FaultProxy
from emrfs.testing.faults import Failure
from tests.helpers import get_headers_then_drop

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


@pytest.fixture
def proxied(emrfs_endpoint, emrfs_s3, emrfs_bucket):
    from emrfs.filesystem import EmrFileSystem

    with FaultProxy(emrfs_endpoint) as proxy:
        fs = EmrFileSystem(endpoint_url=proxy.url, skip_instance_cache=True)
        with serve_in_thread(fs) as gateway:
            yield gateway, proxy, emrfs_s3, emrfs_bucket, fs


def _data_url(gateway, path: str, query: str = "") -> str:
    step = requests.get(f"{gateway.url}/webhdfs/v1/{path}?op=OPEN{query}", allow_redirects=False)
    assert step.status_code == 307, step.text
    return step.headers["Location"]


def test_open_is_one_get_and_ranges_are_exact(proxied):
    gateway, proxy, s3, bucket, _fs = proxied
    data = os.urandom(5 * MiB + 123)
    s3.put_object(Bucket=bucket, Key="f.bin", Body=data)
    proxy.reset_counters()
    whole = requests.get(_data_url(gateway, f"{bucket}/f.bin", "&offset=0"))
    assert whole.content == data
    # one GET streams the body; the two statuses (redirect, data step) are a HEAD or a GET
    # of the last 64 KiB each (emrfs.readplan), never a second read of the body
    counters = proxy.counters()
    assert counters.requests <= 3, dict(counters.operations)
    assert counters.response_bytes <= len(data) + 2 * 64 * 1024
    for offset, length in ((0, 1), (MiB - 1, MiB + 2), (len(data) - 5, 100), (len(data), 10)):
        got = requests.get(
            _data_url(gateway, f"{bucket}/f.bin", f"&offset={offset}&length={length}")
        )
        assert got.status_code == 200
        assert got.content == data[offset : offset + length], (offset, length)


def test_a_client_that_leaves_stops_the_get(proxied, caplog):
    gateway, proxy, s3, bucket, _fs = proxied
    s3.put_object(Bucket=bucket, Key="big.bin", Body=b"\1" * (64 * MiB))
    location = _data_url(gateway, f"{bucket}/big.bin", "&offset=1000")
    proxy.reset_counters()
    head = get_headers_then_drop(location, linger=0.5)  # Hadoop's way: read a little, leave
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 67107864" in head
    time.sleep(1.0)
    # at most the window the reader left in and the next (and the 64 KiB status tail),
    # never what the socket buffers would drain of an open-ended GET
    assert proxy.counters().response_bytes <= 2 * WINDOW_SIZE + 64 * 1024
    # a client leaving is no server error (aiohttp logs unhandled handler errors)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    # the gateway still serves (the dropped GET left nothing stuck)
    tail = requests.get(f"{gateway.url}/webhdfs/v1/{bucket}/big.bin?op=OPEN&offset={64 * MiB - 3}")
    assert tail.content == b"\1" * 3


def test_no_get_asks_for_more_than_a_window(proxied, monkeypatch):
    """What a leaving reader costs is bounded by the GETs' ranges, not by how much the
    socket buffers between the gateway and S3 absorb (loopback TCP grows them to tens
    of MiB): a long OPEN is read through the stack as GETs of at most one window each,
    one version (what the transport at the stack's bottom is asked)."""
    from emrfs import streamed_read

    gateway, _proxy, s3, bucket, fs = proxied
    data = os.urandom(2 * streamed_read.WINDOW_SIZE + 5 * MiB)
    s3.put_object(Bucket=bucket, Key="long.bin", Body=data)
    asked: list[tuple[int, int, str | None]] = []
    transport = fs._stacks.layers(f"{bucket}/long.bin")[0]  # the stack's bottom
    real_get, real_stream = transport.get, transport.get_stream

    def ask(start, end, if_match):
        asked.append(((end if end is not None else len(data)) - start, start, if_match))

    async def get(path, start=0, end=None, *, if_match=None):
        ask(start, end, if_match)
        return await real_get(path, start, end, if_match=if_match)

    def get_stream(path, start=0, end=None, *, if_match=None, **kwargs):
        ask(start, end, if_match)
        return real_stream(path, start, end, if_match=if_match, **kwargs)

    monkeypatch.setattr(transport, "get", get)
    monkeypatch.setattr(transport, "get_stream", get_stream)
    got = requests.get(_data_url(gateway, f"{bucket}/long.bin", "&offset=1000"))
    assert got.content == data[1000:]
    assert asked and max(n for n, _, _ in asked) <= streamed_read.WINDOW_SIZE, asked
    assert sum(n for n, _, _ in asked) == len(data) - 1000
    etag = s3.head_object(Bucket=bucket, Key="long.bin")["ETag"]
    assert {pin for _, _, pin in asked} == {etag}  # every window pinned to one version


def test_a_body_cut_mid_way_is_resumed(proxied):
    gateway, proxy, s3, bucket, _fs = proxied
    data = os.urandom(3 * MiB)
    s3.put_object(Bucket=bucket, Key="cut.bin", Body=data)
    url = _data_url(gateway, f"{bucket}/cut.bin", "&offset=0")
    proxy.set_policy(FaultPolicy(cut_reads=Failure(1.0, limit=2), cut_fraction=0.4))
    got = requests.get(url)
    assert got.content == data
    assert proxy.counters().fault("cut_read") == 2


def test_an_object_replaced_between_status_and_read_is_served_whole(proxied):
    """The stream is pinned to the ETag OPEN saw; a replacement before the first byte
    falls back to a plain read of what is there now (never a mix of the two)."""
    gateway, _proxy, s3, bucket, _fs = proxied
    s3.put_object(Bucket=bucket, Key="v.bin", Body=b"a" * MiB)
    url = _data_url(gateway, f"{bucket}/v.bin", "&offset=0")
    new = b"b" * MiB
    s3.put_object(Bucket=bucket, Key="v.bin", Body=new)
    assert requests.get(url).content == new


def test_layers_that_transform_bytes_still_apply(emrfs_endpoint, emrfs_s3, emrfs_bucket):
    """Client-side encryption: no plain GET is streamed, the gateway serves plaintext."""
    import base64

    from emrfs.filesystem import EmrFileSystem

    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        cse={
            "enabled": True,
            "aes_key": base64.b64encode(bytes(32)).decode(),
            "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
        },
    )
    data = os.urandom(3 * MiB + 7)
    fs.pipe_file(f"{emrfs_bucket}/secret.bin", data)
    stored = emrfs_s3.get_object(Bucket=emrfs_bucket, Key="secret.bin")["Body"].read()
    assert data[:1024] not in stored  # the side channel sees ciphertext
    with serve_in_thread(fs) as gateway:
        assert (
            requests.get(_data_url(gateway, f"{emrfs_bucket}/secret.bin", "&offset=0")).content
            == data
        )
        got = requests.get(
            _data_url(gateway, f"{emrfs_bucket}/secret.bin", f"&offset={MiB + 5}&length={MiB}")
        )
        assert got.content == data[MiB + 5 : 2 * MiB + 5]

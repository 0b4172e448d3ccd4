"""Reads and writes: ranges, multipart, append, streaming memory, retries through faults."""

from __future__ import annotations

import itertools
import os

import pytest

from emrfs import EmrFileSystem
from emrfs.testing import FaultPolicy, FaultProxy
from emrfs.testing.faults import Failure
from tests.helpers import record_s3_calls

MiB = 1024 * 1024


@pytest.fixture
def small_parts(emrfs_endpoint):
    return EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        part_size="5MiB",
        upload_concurrency=2,
        multipart_threshold="5MiB",
        skip_instance_cache=True,
    )


def test_multipart_write_and_ranged_reads(small_parts, bucket, emrfs_s3):
    data = os.urandom(12 * MiB + 123)
    with small_parts.open(f"{bucket}/big", "wb") as f:
        for i in range(0, len(data), 3 * MiB):
            f.write(data[i : i + 3 * MiB])
    head = emrfs_s3.head_object(Bucket=bucket, Key="big")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")  # three parts went up
    assert small_parts.cat_file(f"{bucket}/big", 5, 105) == data[5:105]
    assert small_parts.cat_file(f"{bucket}/big", -10) == data[-10:]
    with small_parts.open(f"{bucket}/big", "rb") as f:
        f.seek(7 * MiB)
        assert f.read(MiB) == data[7 * MiB : 8 * MiB]
        assert f.read() == data[8 * MiB :]
    assert small_parts.cat_file(f"{bucket}/big") == data


def test_empty_file_and_pipe_large(small_parts, bucket):
    with small_parts.open(f"{bucket}/empty", "wb"):
        pass
    assert small_parts.cat_file(f"{bucket}/empty") == b""
    data = os.urandom(11 * MiB)
    small_parts.pipe_file(f"{bucket}/piped", data)
    assert small_parts.cat_file(f"{bucket}/piped") == data


def test_append_small_and_large(small_parts, bucket):
    small_parts.pipe_file(f"{bucket}/log", b"a")
    with small_parts.open(f"{bucket}/log", "ab") as f:
        f.write(b"b")
    assert small_parts.cat_file(f"{bucket}/log") == b"ab"
    big = os.urandom(6 * MiB)
    small_parts.pipe_file(f"{bucket}/big", big)
    with small_parts.open(f"{bucket}/big", "ab") as f:
        f.write(b"tail")
    assert small_parts.cat_file(f"{bucket}/big") == big + b"tail"


def test_failed_upload_leaves_nothing(small_parts, bucket, emrfs_s3):
    f = small_parts.open(f"{bucket}/partial", "wb")
    f.write(os.urandom(6 * MiB))
    f.flush()
    assert emrfs_s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    f.discard()
    f.closed = True
    assert not emrfs_s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert not small_parts.exists(f"{bucket}/partial")


def test_copy_above_threshold_uses_upload_part_copy(emrfs_endpoint, bucket):
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        copy_threshold="5MiB",
        copy_part_size="5MiB",
        skip_instance_cache=True,
    )
    data = os.urandom(11 * MiB)
    fs.pipe_file(f"{bucket}/src", data)
    calls = record_s3_calls(fs)
    fs.cp(f"{bucket}/src", f"{bucket}/dst")
    assert calls.count("upload_part_copy") == 3
    assert fs.cat_file(f"{bucket}/dst") == data


def test_get_and_put_files(fs, bucket, tmp_path):
    local = tmp_path / "in.bin"
    local.write_bytes(b"payload")
    fs.put_file(str(local), f"{bucket}/dir/in.bin")
    fs.get_file(f"{bucket}/dir/in.bin", str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == b"payload"
    with pytest.raises(FileNotFoundError):
        fs.get_file(f"{bucket}/dir/missing", str(tmp_path / "never"))
    assert not any(p.name.startswith(".emrfs-") for p in tmp_path.iterdir())


def test_throttling_and_cut_connections_are_retried(emrfs_endpoint, bucket):
    policy = FaultPolicy(
        slow_down=Failure(probability=1.0, limit=3),
        cut_reads=Failure(probability=1.0, limit=2),
        seed=7,
    )
    with FaultProxy(emrfs_endpoint, policy) as proxy:
        fs = EmrFileSystem(
            endpoint_url=proxy.url, skip_instance_cache=True, retry_base_seconds=0.01
        )
        data = os.urandom(3 * MiB)
        fs.pipe_file(f"{bucket}/flaky", data)
        assert fs.cat_file(f"{bucket}/flaky") == data
        assert fs.cat_file(f"{bucket}/flaky", MiB, 2 * MiB) == data[MiB : 2 * MiB]
        counters = proxy.counters()
        assert counters.fault("slow_down") == 3
        assert counters.fault("cut_read") == 2


def test_throttling_past_the_retry_budget_surfaces_as_throttled(emrfs_endpoint, bucket):
    from emrfs.errors import ThrottledError

    policy = FaultPolicy(slow_down=Failure(probability=1.0), seed=1)
    with FaultProxy(emrfs_endpoint, policy) as proxy:
        fs = EmrFileSystem(endpoint_url=proxy.url, skip_instance_cache=True, max_attempts=2)
        with pytest.raises(ThrottledError, match=f"{bucket}/x"):
            fs.pipe_file(f"{bucket}/x", b"1")


def test_streamed_write_holds_the_parts_in_flight_and_one_buffer(small_parts, bucket, emrfs_s3):
    """Memory of a streamed write is bounded by design: ``upload_concurrency`` parts in
    flight plus the buffer filling, whatever the file's size and however large one
    write() is; no copies of a part beside it (the buffer itself is the request body).
    Measured with tracemalloc (what this process allocates, not what the OS reports)."""
    import hashlib
    import tracemalloc

    part, concurrency = 5 * MiB, 2  # the small_parts options
    chunk = os.urandom(MiB)
    whole = os.urandom(12 * MiB + 7)  # one write of more than two parts
    in_flight = peak_in_flight = 0
    original = small_parts.s3.call

    async def counting(method, path, **kwargs):
        nonlocal in_flight, peak_in_flight
        if method != "upload_part":
            return await original(method, path, **kwargs)
        in_flight += 1
        peak_in_flight = max(peak_in_flight, in_flight)
        try:
            return await original(method, path, **kwargs)
        finally:
            in_flight -= 1

    small_parts.s3.call = counting
    with small_parts.open(f"{bucket}/warm", "wb") as f:  # the client and its models load
        f.write(chunk * 6)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with small_parts.open(f"{bucket}/streamed", "wb") as f:
            for _ in range(24):
                f.write(chunk)
            f.write(whole)
        held = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    body = emrfs_s3.get_object(Bucket=bucket, Key="streamed")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(chunk * 24 + whole).digest()
    assert peak_in_flight <= concurrency
    # + what the transport reads of a body at a time (SigV4's payload hash: 1 MiB pieces)
    assert held <= (concurrency + 1) * part + 4 * MiB, f"held {held / MiB:.1f} MiB"


def test_streamed_read_asks_for_the_next_pieces_ahead_one_block_at_most(
    emrfs_endpoint, bucket, emrfs_s3
):
    """A sequential read from 0 has the next pieces of its read-ahead asked for while it
    reads (the network works while the reader does), never more than one block beyond
    the piece it reads, each byte once, all from the version it opened."""
    import hashlib

    block, piece, read = 4 * MiB, MiB, 768 * 1024  # pieces: a quarter of the block
    fs = EmrFileSystem(endpoint_url=emrfs_endpoint, block_size=block, skip_instance_cache=True)
    data = os.urandom(6 * MiB + 5)
    emrfs_s3.put_object(Bucket=bucket, Key="scan", Body=data)
    asked: list[tuple[int, int, int]] = []  # (start, end, where the reader was)
    with fs.open(f"{bucket}/scan", "rb") as f:
        original = fs._reads.read

        async def spy(path, etag, size, start, end, first, fetch, **kwargs):
            asked.append((start, end, f.loc))
            return await original(path, etag, size, start, end, first, fetch, **kwargs)

        fs._reads.read = spy
        got = hashlib.sha256()
        while chunk := f.read(read):
            got.update(chunk)
    assert got.digest() == hashlib.sha256(data).digest()
    ahead = [(s, e, at) for s, e, at in asked if s > at]
    assert len(ahead) >= len(data) // piece - 2  # all but the first pieces asked ahead
    for start, end, at in asked:
        assert end - start <= piece and start >= at
        assert end - at <= block + piece + read
    spans = sorted((s, e) for s, e, _ in asked)
    assert spans[0][0] == 0 and spans[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # each byte once

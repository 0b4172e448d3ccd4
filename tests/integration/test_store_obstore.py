"""The obstore transport (emrfs.store.obstore.ObstoreStore) against moto, checked through
raw boto3 (the side channel): every verb, the keys obstore cannot hold, errors mapped
once, SSE, and the switch to botocore in a process forked after obstore was used."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Mapping, Sequence

import pytest

pytest.importorskip("obstore")

from emrfs.config import S3Options, SSEOptions
from emrfs.errors import (
    ChangedError,
    ConfigurationError,
    TransportError,
)
from emrfs.store import DeleteResult, ListPage, ObjectMeta, ObjectStore, ObjectWriter
from emrfs.store.obstore import (
    ObstoreStore,
    choose_transport,
    obstore_key,
)
from emrfs.store.protocol import ReadTarget


class BotoFallback(ObjectStore):
    """The verbs the obstore transport hands over, done with boto3 on the same server and
    recorded: what went to the fallback is what these tests check (the contract suite
    below runs with the real botocore transport, emrfs.store.s3.S3Store, as fallback)."""

    def __init__(self, s3):
        self.s3 = s3
        self.calls: list[tuple[str, str]] = []

    async def _run(self, fn, *args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def head(self, path: str) -> ObjectMeta:
        self.calls.append(("head", path))
        b, k = path.split("/", 1)
        r = await self._run(self.s3.head_object, Bucket=b, Key=k)
        return ObjectMeta(path, r["ContentLength"], etag=r["ETag"], metadata=r["Metadata"])

    async def get_range(self, path, start=0, end=None, *, if_match=None) -> bytes:
        self.calls.append(("get_range", path))
        b, k = path.split("/", 1)
        body = (await self._run(self.s3.get_object, Bucket=b, Key=k))["Body"].read()
        return body[start:end]

    async def get_stream(
        self, path, start=0, end=None, *, if_match=None, chunk_size=8 * 1024 * 1024
    ) -> AsyncIterator[bytes]:
        yield await self.get_range(path, start, end, if_match=if_match)

    async def put(self, path, data, *, if_none_match=False, metadata=None, content_type=None):
        self.calls.append(("put", path))
        b, k = path.split("/", 1)
        r = await self._run(
            self.s3.put_object,
            Bucket=b,
            Key=k,
            Body=data,
            Metadata=dict(metadata or {}),
            **({"ContentType": content_type} if content_type else {}),
        )
        return ObjectMeta(path, len(data), etag=r["ETag"])

    async def writer(
        self, path, *, if_none_match=False, metadata=None, content_type=None
    ) -> ObjectWriter:
        self.calls.append(("writer", path))
        raise NotImplementedError("recorded only")

    async def copy(self, src, dst, *, metadata: Mapping[str, str] | None = None, source_size=None):
        self.calls.append(("copy", src))
        (sb, sk), (db, dk) = src.split("/", 1), dst.split("/", 1)
        extra = {"Metadata": dict(metadata), "MetadataDirective": "REPLACE"} if metadata else {}
        await self._run(
            self.s3.copy_object, Bucket=db, Key=dk, CopySource={"Bucket": sb, "Key": sk}, **extra
        )
        return await self.head(dst)

    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        self.calls.append(("delete", ",".join(paths)))
        for path in paths:
            b, k = path.split("/", 1)
            await self._run(self.s3.delete_object, Bucket=b, Key=k)
        return DeleteResult(list(paths))

    async def list(self, prefix, *, delimiter=None, limit=None) -> AsyncIterator[ListPage]:
        self.calls.append(("list", prefix))
        b, _, p = prefix.partition("/")
        kwargs = {"Bucket": b, "Prefix": p, **({"Delimiter": delimiter} if delimiter else {})}
        if limit is not None:  # one short page, as S3's MaxKeys
            kwargs["PaginationConfig"] = {"MaxItems": limit, "PageSize": limit}
        for page in self.s3.get_paginator("list_objects_v2").paginate(**kwargs):
            yield ListPage(
                [
                    ObjectMeta(f"{b}/{o['Key']}", o["Size"], etag=o["ETag"])
                    for o in page.get("Contents", [])
                ],
                [f"{b}/{c['Prefix']}" for c in page.get("CommonPrefixes", [])],
            )


def run(coro):
    return asyncio.run(coro)


async def listing(store, prefix, delimiter=None):
    objects, prefixes = [], []
    async for page in store.list(prefix, delimiter=delimiter):
        objects += [o.path for o in page.objects]
        prefixes += list(page.prefixes)
    return objects, prefixes


@pytest.fixture
def fallback(emrfs_s3):
    return BotoFallback(emrfs_s3)


@pytest.fixture
def store(emrfs_endpoint, fallback):
    return ObstoreStore(
        S3Options(endpoint_url=emrfs_endpoint, max_attempts=2, retry_base_seconds=0.01),
        fallback=fallback,
    )


def test_a_large_get_comes_in_parallel_parts_pinned_to_one_version(
    store, fallback, emrfs_s3, bucket, monkeypatch
):
    """A whole get larger than one part: the first GET tells the size, the other parts
    come in ranged GETs pinned to the version it served, into one buffer; a write past
    the store between them fails the read (ChangedError), never mixes two versions."""
    import emrfs.store.obstore as transport

    monkeypatch.setattr(transport, "_GET_PART", 64 * 1024)
    monkeypatch.setattr(transport, "_GET_SLACK", 0)
    monkeypatch.setattr(transport, "_FILL_CHUNK", 16 * 1024)
    data = os.urandom(5 * 64 * 1024 + 123)
    emrfs_s3.put_object(Bucket=bucket, Key="big", Body=data, Metadata={"m": "1"})
    etag = emrfs_s3.head_object(Bucket=bucket, Key="big")["ETag"]
    asked: list[tuple[int, int | None, str | None]] = []
    once = store._request  # every GET (the first, which may read a small body, and parts)
    overwrite = {"after": None}

    async def spy(path, start, end, if_match, small):
        asked.append((start, end, if_match))
        result = await once(path, start, end, if_match, small)
        if overwrite["after"] == len(asked):
            emrfs_s3.put_object(Bucket=bucket, Key="big", Body=b"other version")
        return result

    monkeypatch.setattr(store, "_request", spy)
    meta, got = run(store.get(f"{bucket}/big"))
    assert got == data and isinstance(got, bytes)
    assert (meta.size, meta.etag, dict(meta.metadata)) == (len(data), etag, {"m": "1"})
    part = 64 * 1024
    assert asked[0] == (0, part, None) and len(asked) == 5
    # the 123 bytes past the last whole part come with it, not in a GET of their own
    assert sorted(asked[1:]) == [
        (i * part, len(data) if i == 4 else (i + 1) * part, etag) for i in range(1, 5)
    ]
    asked.clear()
    meta, got = run(store.get(f"{bucket}/big", 100, 3 * part + 7))
    assert got == data[100 : 3 * part + 7] and meta.size == len(data) and len(asked) == 3
    asked.clear()
    overwrite["after"] = 1
    with pytest.raises(ChangedError):
        run(store.get(f"{bucket}/big"))
    assert emrfs_s3.get_object(Bucket=bucket, Key="big")["Body"].read() == b"other version"
    assert fallback.calls == []


class Into(ReadTarget):
    """A read's target: two buffers cut at ``cut`` (a part lands across both); records
    what it is told, and gives up (raises) when told ``give_up_at`` or more."""

    def __init__(self, cut: int, give_up_at: int | None = None):
        self.cut, self.give_up_at = cut, give_up_at
        self.told: list[int] = []
        self.buffers: list[bytearray] = []

    async def open(self, meta: ObjectMeta, length: int) -> list[memoryview]:
        cut = min(self.cut, length)
        self.buffers = [bytearray(cut), bytearray(length - cut)]
        return [memoryview(b) for b in self.buffers]

    def filled(self, upto: int) -> None:
        self.told.append(upto)
        if self.give_up_at is not None and upto >= self.give_up_at:
            raise ValueError("the target gives up")

    def data(self) -> bytes:
        return b"".join(self.buffers)


def test_a_large_get_into_lands_in_parallel_parts_in_the_readers_buffers(
    store, fallback, emrfs_s3, bucket, monkeypatch
):
    """get_into an object larger than one part: the first GET tells the size and version,
    the other parts come pinned to it, written straight into the target's buffers (a part
    across two of them), the target told as each prefix completes, in order; a write
    between the parts fails the read (ChangedError), and a target that gives up ends the
    read with its error once every part stopped writing into its buffers."""
    import emrfs.store.obstore as transport
    from emrfs.store import obstore_drain

    part = 64 * 1024
    monkeypatch.setattr(transport, "_GET_PART", part)
    monkeypatch.setattr(transport, "_GET_SLACK", 0)
    monkeypatch.setattr(transport, "_FILL_CHUNK", 16 * 1024)
    data = os.urandom(5 * part + 123)
    emrfs_s3.put_object(Bucket=bucket, Key="big", Body=data, Metadata={"m": "1"})
    etag = emrfs_s3.head_object(Bucket=bucket, Key="big")["ETag"]
    asked: list[tuple[int, int | None, str | None]] = []
    once = store._get
    overwrite = {"after": None}

    async def spy(path, start, end, if_match):
        asked.append((start, end, if_match))
        result = await once(path, start, end, if_match)
        if overwrite["after"] == len(asked):
            emrfs_s3.put_object(Bucket=bucket, Key="big", Body=b"other version")
        return result

    monkeypatch.setattr(store, "_get", spy)
    target = Into(cut=2 * part + 1000)
    meta = run(store.get_into(f"{bucket}/big", target))
    assert target.data() == data
    assert (meta.size, meta.etag, dict(meta.metadata)) == (len(data), etag, {"m": "1"})
    assert target.told == [part, 2 * part, 3 * part, 4 * part, len(data)]
    assert asked[0] == (0, part, None)
    assert sorted(asked[1:]) == [
        (i * part, len(data) if i == 4 else (i + 1) * part, etag) for i in range(1, 5)
    ]
    asked.clear()
    target = Into(cut=10)
    meta = run(store.get_into(f"{bucket}/big", target, 100, 3 * part + 7))
    assert target.data() == data[100 : 3 * part + 7] and meta.size == len(data)
    assert target.told == [part, 2 * part, 3 * part - 93] and len(asked) == 3
    with pytest.raises(ValueError, match="gives up"):
        run(store.get_into(f"{bucket}/big", Into(cut=0, give_up_at=part)))
    # told within a part (as its drain reports): giving up there ends the read too, no
    # GET made again for the part it was told of
    monkeypatch.setattr(obstore_drain, "REPORT_STEP", 4096)
    asked.clear()
    with pytest.raises(ValueError, match="gives up"):
        run(store.get_into(f"{bucket}/big", Into(cut=0, give_up_at=1)))
    assert len(asked) <= 6
    asked.clear()
    overwrite["after"] = 1
    with pytest.raises(ChangedError):
        run(store.get_into(f"{bucket}/big", Into(cut=0)))
    assert emrfs_s3.get_object(Bucket=bucket, Key="big")["Body"].read() == b"other version"
    assert fallback.calls == []


class SlowOpen(Into):
    """A target whose ``open`` waits (bounded) until ``ready()``, then opens or raises."""

    def __init__(self, ready, fail: bool = False):
        super().__init__(cut=0)
        self.ready, self.fail = ready, fail
        self.opened = False

    async def open(self, meta: ObjectMeta, length: int) -> list[memoryview]:
        for _ in range(1000):  # at most ~10 s: the GETs waited for go out at once
            if self.ready():
                break
            await asyncio.sleep(0.01)
        if self.fail:
            raise ValueError("no key for this object")
        self.opened = True
        return await super().open(meta, length)


def test_get_into_asks_for_the_parts_while_the_target_opens(store, emrfs_s3, bucket, monkeypatch):
    """The parts' GETs go out while the target opens (a decrypting one resolves its key
    meanwhile); a target that fails to open ends the read with its error, and a write
    between the parts ends it with ChangedError before the target's buffers are used."""
    import emrfs.store.obstore as transport

    part = 64 * 1024
    monkeypatch.setattr(transport, "_GET_PART", part)
    monkeypatch.setattr(transport, "_GET_SLACK", 0)
    data = os.urandom(4 * part)
    emrfs_s3.put_object(Bucket=bucket, Key="big", Body=data)
    asked: list[int] = []
    once = store._get

    async def spy(path, start, end, if_match):
        result = await once(path, start, end, if_match)
        asked.append(start)
        return result

    monkeypatch.setattr(store, "_get", spy)
    target = SlowOpen(lambda: len(asked) == 4)
    run(store.get_into(f"{bucket}/big", target))
    assert target.data() == data and sorted(asked) == [0, part, 2 * part, 3 * part]
    asked.clear()
    with pytest.raises(ValueError, match="no key"):
        run(store.get_into(f"{bucket}/big", SlowOpen(lambda: len(asked) == 4, fail=True)))
    asked.clear()
    # another version lands after the first GET: the pinned parts fail, the open is dropped
    target = SlowOpen(lambda: False)
    first = spy

    async def overwrite_after_first(path, start, end, if_match):
        result = await first(path, start, end, if_match)
        if len(asked) == 1:
            emrfs_s3.put_object(Bucket=bucket, Key="big", Body=os.urandom(4 * part))
        return result

    monkeypatch.setattr(store, "_get", overwrite_after_first)
    with pytest.raises(ChangedError):
        run(store.get_into(f"{bucket}/big", target))
    assert not target.opened


def test_a_large_stream_reads_parts_ahead_pinned_to_one_version(
    store, fallback, emrfs_s3, bucket, monkeypatch
):
    """A stream longer than one part: the first GET tells the size and version, the next
    parts are read ahead (a bounded window) pinned to that version and handed out in
    order, in chunks of exactly the size asked; a consumer that stops early leaves no
    GET running; a write between the parts fails the stream, never mixes versions."""
    import emrfs.store.obstore as transport

    part = 64 * 1024
    monkeypatch.setattr(transport, "_STREAM_PART", part)
    monkeypatch.setattr(transport, "_STREAM_AHEAD", 2)
    monkeypatch.setattr(transport, "_GET_SLACK", 0)
    data = os.urandom(6 * part + 99)
    emrfs_s3.put_object(Bucket=bucket, Key="big", Body=data)
    etag = emrfs_s3.head_object(Bucket=bucket, Key="big")["ETag"]
    asked: list[tuple[int, int | None, str | None]] = []
    once = store._get
    overwrite = {"after": None}

    async def spy(path, start, end, if_match):
        asked.append((start, end, if_match))
        if overwrite["after"] == len(asked):
            emrfs_s3.put_object(Bucket=bucket, Key="big", Body=b"other version")
        return await once(path, start, end, if_match)

    monkeypatch.setattr(store, "_get", spy)

    async def stream(chunk_size, start=0, end=None, stop_after=None):
        out = []
        async for chunk in store.get_stream(f"{bucket}/big", start, end, chunk_size=chunk_size):
            out.append(chunk)
            if len(out) == stop_after:
                break
        await asyncio.sleep(0)  # the abandoned stream's clean-up has run
        return out

    chunks = run(stream(part))
    assert b"".join(chunks) == data and [len(c) for c in chunks] == [part] * 6 + [99]
    assert asked[0] == (0, part, None)
    # the 99 bytes past the last whole part come with it, not in a GET of their own
    assert sorted(asked[1:]) == [
        (i * part, len(data) if i == 5 else (i + 1) * part, etag) for i in range(1, 6)
    ]
    asked.clear()
    small = run(stream(20_000, 5, 3 * part + 1))  # parts of whole chunks, cut to the chunk size
    assert b"".join(small) == data[5 : 3 * part + 1]
    assert {len(c) for c in small[:-1]} == {20_000} and len(small[-1]) <= 20_000
    assert len(asked) == 3  # parts of 80,000 bytes (four chunks each)
    asked.clear()
    first = run(stream(part, stop_after=1))
    assert first == [data[:part]] and len(asked) <= 1 + 2 + 1  # the first, the window, a refill
    asked.clear()
    overwrite["after"] = 2
    with pytest.raises(ChangedError):
        run(stream(part))
    assert fallback.calls == []


def test_put_head_get_through_obstore_seen_by_boto3(store, fallback, emrfs_s3, bucket):
    async def go():
        meta = await store.put(
            f"{bucket}/a/b.txt", b"hello world", metadata={"Tag": "v1"}, content_type="text/plain"
        )
        head = await store.head(f"{bucket}/a/b.txt")
        return (
            meta,
            head,
            await store.get_range(f"{bucket}/a/b.txt", 6),
            await store.get_range(f"{bucket}/a/b.txt", 2, 5),
            await store.get_range(f"{bucket}/a/b.txt", 11, 20),
            await store.get_range(f"{bucket}/a/b.txt", 8, 100),
        )

    meta, head, tail, mid, past, cut = run(go())
    raw = emrfs_s3.get_object(Bucket=bucket, Key="a/b.txt")
    assert raw["Body"].read() == b"hello world"
    assert raw["Metadata"] == {"tag": "v1"} and raw["ContentType"] == "text/plain"
    assert meta.etag == raw["ETag"] == head.etag and meta.size == head.size == 11
    assert head.metadata == {"tag": "v1"} and head.content_type == "text/plain"
    assert (tail, mid, past, cut) == (b"world", b"llo", b"", b"rld")
    assert fallback.calls == []  # all of it through obstore


def test_conditional_create_and_pinned_reads(store, emrfs_s3, bucket):
    path = f"{bucket}/k"

    async def go():
        first = await store.put(path, b"one", if_none_match=True)
        with pytest.raises(FileExistsError) as exists:
            await store.put(path, b"two", if_none_match=True)
        assert await store.get_range(path, if_match=first.etag.strip('"')) == b"one"
        emrfs_s3.put_object(Bucket=bucket, Key="k", Body=b"changed")
        with pytest.raises(ChangedError) as changed:
            await store.get_range(path, if_match=first.etag)
        with pytest.raises(ChangedError):
            async for _ in store.get_stream(path, if_match=first.etag):
                pass
        return exists.value, changed.value

    exists, changed = run(go())
    assert exists.filename == path
    assert changed.path == path
    assert emrfs_s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"changed"


def test_missing_objects_and_buckets_name_the_path(store, bucket):
    async def go():
        for call in (
            lambda: store.head(f"{bucket}/nope"),
            lambda: store.get_range(f"{bucket}/nope"),
            lambda: store.head("emrfs-no-such-bucket-x1/k"),
        ):
            with pytest.raises(FileNotFoundError) as info:
                await call()
            yield info.value

    async def collect():
        return [e async for e in go()]

    missing_key, missing_get, missing_bucket = run(collect())
    assert missing_key.filename == f"{bucket}/nope" and missing_get.filename == f"{bucket}/nope"
    assert missing_bucket.filename == "emrfs-no-such-bucket-x1/k"


def test_stream_in_chunks(store, emrfs_s3, bucket):
    data = os.urandom(3 * 1024 * 1024 + 17)
    emrfs_s3.put_object(Bucket=bucket, Key="big", Body=data)

    async def go():
        return (
            [c async for c in store.get_stream(f"{bucket}/big", chunk_size=1024 * 1024)],
            [c async for c in store.get_stream(f"{bucket}/big", 5, 1000)],
            [c async for c in store.get_stream(f"{bucket}/big", len(data) + 1)],
        )

    chunks, part, beyond = run(go())
    assert b"".join(chunks) == data and len(chunks) >= 3
    assert all(len(c) >= 1024 * 1024 for c in chunks[:-1])
    assert b"".join(part) == data[5:1000] and beyond == []


def test_stream_chunks_are_bytes_of_exactly_the_size_asked(store, emrfs_s3, bucket):
    """obstore hands pieces of at least the size over; get_stream cuts them to exactly the
    size (the last one shorter), whatever the size and the pieces' boundaries."""
    data = os.urandom(2 * 1024 * 1024 + 17)
    emrfs_s3.put_object(Bucket=bucket, Key="cut", Body=data)

    async def go(size: int, start: int = 0) -> list[bytes]:
        return [c async for c in store.get_stream(f"{bucket}/cut", start, chunk_size=size)]

    for size, start in ((300_001, 0), (1024 * 1024, 0), (65_536, 3), (len(data), 0)):
        chunks = run(go(size, start))
        assert b"".join(chunks) == data[start:]
        assert all(type(c) is bytes for c in chunks)
        assert [len(c) for c in chunks[:-1]] == [size] * (len(chunks) - 1)
        assert 0 < len(chunks[-1]) <= size


def test_copy_delete_and_listing(store, fallback, emrfs_s3, bucket):
    for key in ("d/", "d/x", "d/y", "d/sub/", "d/sub/z", "dz", "e_$folder$"):
        emrfs_s3.put_object(Bucket=bucket, Key=key, Body=b"" if key.endswith("/") else b"1")

    async def go():
        copied = await store.copy(f"{bucket}/d/x", f"{bucket}/d/x2")
        shallow = await listing(store, f"{bucket}/d/", "/")
        deep = await listing(store, f"{bucket}/d/")
        root = await listing(store, f"{bucket}/", "/")
        everything = await listing(store, f"{bucket}/")
        deleted = await store.delete([f"{bucket}/d/x2", f"{bucket}/d/y", f"{bucket}/absent"])
        return copied, shallow, deep, root, everything, deleted

    copied, shallow, deep, root, everything, deleted = run(go())
    assert copied.path == f"{bucket}/d/x2" and copied.size == 1
    assert shallow == (
        [f"{bucket}/d/", f"{bucket}/d/x", f"{bucket}/d/x2", f"{bucket}/d/y"],
        [f"{bucket}/d/sub/"],
    )
    # the S3A markers keep their slash (obstore's path type drops it)
    assert deep == (
        [f"{bucket}/{k}" for k in ("d/", "d/sub/", "d/sub/z", "d/x", "d/x2", "d/y")],
        [],
    )
    assert root == ([f"{bucket}/dz", f"{bucket}/e_$folder$"], [f"{bucket}/d/"])
    assert len(everything[0]) == 8
    assert sorted(deleted.deleted) == sorted(
        [f"{bucket}/d/x2", f"{bucket}/d/y", f"{bucket}/absent"]
    )
    left = {o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert left == {"d/", "d/x", "d/sub/", "d/sub/z", "dz", "e_$folder$"}
    assert fallback.calls == []


def test_file_and_marker_of_the_same_name_stay_apart(store, emrfs_s3, bucket):
    # an empty file "f" and a marker "f/" both list as "f" in obstore's types
    for key in ("f", "f/", "g/", "h"):
        emrfs_s3.put_object(Bucket=bucket, Key=key, Body=b"")
    objects, _ = run(listing(store, f"{bucket}/"))
    assert objects == [f"{bucket}/{k}" for k in ("f", "f/", "g/", "h")]


@pytest.mark.parametrize("chunk", [2, 1000])
def test_listed_rows_carry_what_s3_lists(store, emrfs_s3, bucket, monkeypatch, chunk):
    """obstore's listing comes as Arrow batches turned into rows a column at a time:
    every row says what S3's own listing says of its key (size, ETag, modification
    time), markers' slashes kept, across batches (``chunk``: keys per batch) and in a
    delimited listing too (tests/unit/test_listing_cost.py checks the columns' values
    of every kind)."""
    from emrfs.store import obstore_listing

    monkeypatch.setattr(obstore_listing, "_LIST_CHUNK", chunk)
    bodies = {"r/a": b"abc", "r/e": b"", "r/f": b"", "r/f/": b"", "r/m/": b"", "r/m/x": b"12345"}
    for key, body in bodies.items():
        emrfs_s3.put_object(Bucket=bucket, Key=key, Body=body)
    listed = emrfs_s3.list_objects_v2(Bucket=bucket, Prefix="r/")["Contents"]
    expected = [
        (f"{bucket}/{o['Key']}", o["Size"], o["ETag"], o["LastModified"], None, None)
        for o in listed
    ]

    async def rows(delimiter):
        return [
            row
            async for page in store.list(f"{bucket}/r/", delimiter=delimiter)
            for row in page.rows
        ]

    assert run(rows(None)) == expected
    shallow = [row for row in expected if row[0].count("/") == 2 or row[0].endswith("/m/")]
    assert run(rows("/")) == [row for row in shallow if not row[0].endswith("/m/")]


def test_a_listing_folded_into_statuses_builds_no_object_meta(store, emrfs_s3, bucket):
    """A find turns each listed key into a status dict: the transport's pages are rows,
    and folding them makes no ObjectMeta (one per key cost a 10,000-key find ~20% of its
    client CPU); a layer that reads ``objects`` still gets them, markers' slashes kept."""
    from emrfs.s3.listing import Listing, add_page
    from emrfs.status import StatusFactory

    for key in ("r/a", "r/s/b", "r/m/", "r/z"):
        emrfs_s3.put_object(Bucket=bucket, Key=key, Body=b"" if key.endswith("/") else b"12")

    async def go():
        return [page async for page in store.list(f"{bucket}/r/")]

    pages = asyncio.run(go(), debug=True)  # debug: asyncio's logs repr the pages
    folded = Listing()
    for page in pages:
        add_page(folded, bucket, "r", page, StatusFactory(1), recursive=True)
    assert all(page._objects is None for page in pages)  # no ObjectMeta was made
    assert sorted(folded.files) == [f"{bucket}/r/a", f"{bucket}/r/s/b", f"{bucket}/r/z"]
    assert folded.files[f"{bucket}/r/a"]["size"] == 2
    assert sorted(folded.dirs) == [f"{bucket}/r/m", f"{bucket}/r/s"]
    assert folded.dirs[f"{bucket}/r/m"]["marker"] == "r/m/"
    objects = [o for page in pages for o in page.objects]
    assert [o.path for o in objects] == [f"{bucket}/r/{k}" for k in ("a", "m/", "s/b", "z")]
    head = emrfs_s3.head_object(Bucket=bucket, Key="r/a")
    assert objects[0].etag == head["ETag"] and objects[0].size == 2


def test_keys_obstore_cannot_hold_go_to_botocore(store, fallback, emrfs_s3, bucket):
    odd = ["m/", "a//b", "dot/./x", "tab\there"]
    for key in odd:
        emrfs_s3.put_object(Bucket=bucket, Key=key, Body=b"raw")
    emrfs_s3.put_object(Bucket=bucket, Key="plain", Body=b"p")

    async def go():
        for key in odd:
            assert await store.get_range(f"{bucket}/{key}") == b"raw"
        await store.put(f"{bucket}/new/", b"", content_type="application/x-directory")
        everything = await listing(store, f"{bucket}/")
        await store.delete([f"{bucket}/{k}" for k in odd] + [f"{bucket}/plain"])
        return everything

    everything = run(go())
    assert sorted(everything[0]) == sorted(f"{bucket}/{k}" for k in [*odd, "plain", "new/"])
    assert emrfs_s3.head_object(Bucket=bucket, Key="new/")["ContentLength"] == 0
    assert {verb for verb, _ in fallback.calls} == {"get_range", "put", "list", "delete"}
    assert ("delete", f"{bucket}/plain") not in fallback.calls  # plain keys stay on obstore
    assert {o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=bucket).get("Contents", [])} == {
        "new/"
    }


def test_what_obstore_lacks_is_delegated(store, fallback, emrfs_s3, bucket):
    emrfs_s3.put_object(Bucket=bucket, Key="src", Body=b"s", Metadata={"a": "1"})

    async def go():
        with pytest.raises(NotImplementedError):
            await store.writer(f"{bucket}/mp")
        await store.copy(f"{bucket}/src", f"{bucket}/dst", metadata={"b": "2"})
        await listing(store, f"{bucket}/sr")  # not a directory prefix

    run(go())
    assert [verb for verb, _ in fallback.calls] == ["writer", "copy", "head", "list"]
    assert emrfs_s3.head_object(Bucket=bucket, Key="dst")["Metadata"] == {"b": "2"}


class HeaderRecorder:
    """A plain HTTP relay in front of moto that records each request's method, path and
    headers (moto does not enforce SSE-C: what goes out on the wire is what counts)."""

    def __init__(self, upstream: str):
        import http.client
        import http.server
        import threading
        from urllib.parse import urlsplit

        target = urlsplit(upstream)
        seen = self.seen = []

        class Relay(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                seen.append((self.command, self.path, headers))
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _relay

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_sse_kms_and_sse_c_from_the_store_config(emrfs_endpoint, fallback, emrfs_s3, bucket):
    relay = HeaderRecorder(emrfs_endpoint)
    key = os.urandom(32)
    key64 = base64.b64encode(key).decode()
    md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
    kms = ObstoreStore(
        S3Options(endpoint_url=relay.url),
        SSEOptions(enabled=True, algorithm="aws:kms", kms_key_id="alias/k"),
        fallback=fallback,
    )
    customer = ObstoreStore(
        S3Options(endpoint_url=relay.url),
        SSEOptions(enabled=True, algorithm="SSE-C", customer_key=key64),
        fallback=fallback,
    )

    emrfs_s3.put_object(Bucket=bucket, Key="plain", Body=b"p")

    async def go():
        await kms.copy(f"{bucket}/plain", f"{bucket}/kms-copy")
        await kms.put(f"{bucket}/kms", b"k")
        await customer.put(f"{bucket}/ssec", b"c")
        await customer.head(f"{bucket}/ssec")
        return await customer.get_range(f"{bucket}/ssec")

    try:
        assert run(go()) == b"c"
    finally:
        relay.close()
    for key in ("kms", "kms-copy"):  # a copy states the destination's SSE too
        head = emrfs_s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms" and "alias/k" in head["SSEKMSKeyId"]
    assert fallback.calls == []  # the copy, too, went through obstore
    ssec = [(method, headers) for method, path, headers in relay.seen if path.endswith("/ssec")]
    assert [m for m, _ in ssec] == ["PUT", "HEAD", "GET"]
    for method, headers in ssec:  # the key goes out on the write and on every read
        assert headers.get("x-amz-server-side-encryption-customer-key") == key64, method
        assert headers.get("x-amz-server-side-encryption-customer-key-md5") == md5
        assert headers.get("x-amz-server-side-encryption-customer-algorithm") == "AES256"


def test_connection_failures_are_transport_errors(fallback):
    dead = ObstoreStore(
        S3Options(
            endpoint_url="http://127.0.0.1:9",
            max_attempts=2,
            retry_base_seconds=0.01,
            connect_timeout=0.5,
        ),
        fallback=fallback,
    )
    with pytest.raises(TransportError) as info:
        run(dead.head("b/k"))
    assert "b/k" in str(info.value)


def test_throttling_after_retries_is_throttled_error(emrfs_fault_proxy, fallback, bucket):
    from emrfs.errors import ThrottledError
    from emrfs.testing.faults import Failure, FaultPolicy

    emrfs_fault_proxy.set_policy(FaultPolicy(slow_down=Failure(1.0)))
    proxied = ObstoreStore(
        S3Options(
            endpoint_url=emrfs_fault_proxy.url,
            max_attempts=2,
            retry_base_seconds=0.01,
            retry_max_seconds=0.02,
        ),
        fallback=fallback,
    )
    with pytest.raises(ThrottledError) as info:
        run(proxied.head(f"{bucket}/k"))
    assert info.value.path == f"{bucket}/k"


def test_a_cut_body_is_resumed_on_the_same_version(emrfs_fault_proxy, emrfs_s3, fallback, bucket):
    from emrfs.testing.faults import Failure, FaultPolicy

    data = os.urandom(2 * 1024 * 1024)
    emrfs_s3.put_object(Bucket=bucket, Key="cut", Body=data)
    emrfs_fault_proxy.set_policy(FaultPolicy(cut_reads=Failure(1.0, limit=2)))
    proxied = ObstoreStore(
        S3Options(endpoint_url=emrfs_fault_proxy.url, max_attempts=4, retry_base_seconds=0.01),
        fallback=fallback,
    )

    async def go():
        return b"".join(
            [c async for c in proxied.get_stream(f"{bucket}/cut", chunk_size=256 * 1024)]
        )

    assert run(go()) == data
    emrfs_fault_proxy.set_policy(FaultPolicy(cut_reads=Failure(1.0, limit=2)))
    target = Into(cut=12345)  # a read into the reader's buffers resumes where it broke too
    run(proxied.get_into(f"{bucket}/cut", target))
    assert target.data() == data and target.told[-1] == len(data)
    assert fallback.calls == []


def test_transport_choice(emrfs_endpoint):
    s3 = S3Options(endpoint_url=emrfs_endpoint)
    assert choose_transport(s3, SSEOptions()) == "obstore"
    assert choose_transport(S3Options(transport="botocore"), SSEOptions()) == "botocore"
    key = base64.b64encode(os.urandom(32)).decode()
    read_only_key = SSEOptions(enabled=False, algorithm="SSE-C", customer_key=key)
    assert choose_transport(s3, read_only_key) == "botocore"
    with pytest.raises(ConfigurationError):
        ObstoreStore(S3Options(endpoint_url="http://x:1", require_tls=True))
    assert obstore_key("a/b.txt") and not obstore_key("a/") and not obstore_key("a//b")


def test_no_obstore_thread_enters_python(store, fallback, emrfs_s3, bucket, monkeypatch):
    """obstore's async API wakes the event loop from a tokio thread; at interpreter exit
    that thread could take the GIL during finalization and abort the process (SIGABRT
    after all its work was done: CI met it in a short child process).  Every verb's
    answer must come back through a thread Python made (and joins before it finalizes)."""
    wakers: list[threading.Thread] = []
    original = asyncio.BaseEventLoop.call_soon_threadsafe

    def recording(loop, *args, **kwargs):
        wakers.append(threading.current_thread())
        return original(loop, *args, **kwargs)

    monkeypatch.setattr(asyncio.BaseEventLoop, "call_soon_threadsafe", recording)
    emrfs_s3.put_object(Bucket=bucket, Key="d/", Body=b"")  # settled by a HEAD when listed

    async def go():
        await store.put(f"{bucket}/d/a", b"0123456789")
        meta = await store.head(f"{bucket}/d/a")
        part = await store.get_range(f"{bucket}/d/a", 2, 5, if_match=meta.etag)
        whole = await store.get(f"{bucket}/d/a")
        chunks = [c async for c in store.get_stream(f"{bucket}/d/a", chunk_size=4)]
        await store.copy(f"{bucket}/d/a", f"{bucket}/d/b")
        shallow = await listing(store, f"{bucket}/d/", "/")
        deep = await listing(store, f"{bucket}/")
        await store.delete([f"{bucket}/d/b"])
        return part, whole[1], chunks, shallow, deep

    part, whole, chunks, shallow, deep = run(go())
    assert (part, whole, chunks) == (b"234", b"0123456789", [b"0123", b"4567", b"89"])
    assert shallow == ([f"{bucket}/d/", f"{bucket}/d/a", f"{bucket}/d/b"], [])
    assert deep == ([f"{bucket}/d/", f"{bucket}/d/a", f"{bucket}/d/b"], [])
    assert fallback.calls == []  # obstore served every verb
    assert {o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=bucket)["Contents"]} == {"d/", "d/a"}
    assert wakers, "no verb woke the loop from another thread: the check saw nothing"
    foreign = {t.name for t in wakers if isinstance(t, threading._DummyThread)}
    assert not foreign, f"threads Python did not make woke the event loop: {foreign}"


FORK_SCRIPT = textwrap.dedent("""
    import asyncio, logging, multiprocessing, os, sys
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(message)s")
    for name in ("botocore", "urllib3", "asyncio", "aiobotocore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    sys.path.insert(0, {root!r})
    from emrfs.config import S3Options
    from emrfs.store.obstore import ObstoreStore, choose_transport
    from tests.integration.test_store_obstore import BotoFallback
    import boto3
    endpoint, bucket = sys.argv[1], sys.argv[2]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    fallback = BotoFallback(s3)
    store = ObstoreStore(S3Options(endpoint_url=endpoint), fallback=fallback)
    asyncio.run(store.put(bucket + "/parent", b"from the parent"))  # obstore's runtime starts

    def child(queue):
        fresh = ObstoreStore(S3Options(endpoint_url=endpoint), fallback=fallback)
        got = asyncio.run(store.get_range(bucket + "/parent"))
        asyncio.run(fresh.put(bucket + "/child", b"from the child"))
        queue.put((got, choose_transport(S3Options(endpoint_url=endpoint), fresh.sse),
                   [verb for verb, _ in fallback.calls]))

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=child, args=(queue,))
    proc.start()
    # hang guards only (a loaded machine can take many seconds to start and end a child)
    print(queue.get(timeout=150))
    proc.join(150)
    print("exit", proc.exitcode)
    print(asyncio.run(store.get_range(bucket + "/child")))  # the parent keeps obstore
""")


def test_forked_child_switches_to_botocore_by_itself(emrfs_endpoint, emrfs_s3, bucket, tmp_path):
    script = tmp_path / "fork_child.py"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script.write_text(FORK_SCRIPT.format(root=root))
    done = subprocess.run(
        [sys.executable, str(script), emrfs_endpoint, bucket],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "(b'from the parent', 'botocore', ['get_range', 'put'])"
    assert lines[1] == "exit 0" and lines[2] == "b'from the child'"
    assert "forked from one that used obstore" in done.stderr
    assert emrfs_s3.get_object(Bucket=bucket, Key="child")["Body"].read() == b"from the child"


# --- the store contract suite (emrfs.testing.store) over ObstoreStore ---------------------

from emrfs.store.s3 import S3Store  # noqa: E402
from emrfs.testing.pytest_plugin import empty_and_delete_bucket, new_bucket_name  # noqa: E402
from emrfs.testing.store import StoreTests  # noqa: E402

from .test_store_s3 import S3SideChannel, seaweedfs  # noqa: E402, F401 - fixture


def obstore_transport(s3: S3Options) -> ObstoreStore:
    """ObstoreStore with the botocore transport (S3Store) as its fallback."""
    return ObstoreStore(s3, SSEOptions(), fallback=lambda: S3Store.from_options(s3))


class TestObstoreStoreOnMoto(S3SideChannel, StoreTests):
    many_keys = 25  # obstore pages by S3's 1,000 keys; the slow class below crosses one

    @pytest.fixture
    def store(self, emrfs_endpoint, emrfs_s3) -> ObstoreStore:
        self.raw = emrfs_s3
        return obstore_transport(S3Options(endpoint_url=emrfs_endpoint))

    @pytest.fixture
    def root(self, emrfs_bucket) -> str:
        return emrfs_bucket


@pytest.mark.slow
class TestObstoreStoreListsBeyondOneS3Page(TestObstoreStoreOnMoto):
    many_keys = 1005

    @pytest.fixture(autouse=True)
    def _only_the_listing(self, request):
        if request.node.originalname != "test_list_beyond_one_page":
            pytest.skip("run by TestObstoreStoreOnMoto")


@pytest.mark.slow
class TestObstoreStoreOnSeaweedFS(S3SideChannel, StoreTests):
    @pytest.fixture
    def store(self, seaweedfs) -> ObstoreStore:  # noqa: F811 - the imported fixture
        import boto3

        keys = {
            "aws_access_key_id": seaweedfs.access_key,
            "aws_secret_access_key": seaweedfs.secret_key,
        }
        self.raw = boto3.client(
            "s3", endpoint_url=seaweedfs.endpoint_url, region_name="us-east-1", **keys
        )
        return obstore_transport(
            S3Options(
                endpoint_url=seaweedfs.endpoint_url,
                access_key_id=keys["aws_access_key_id"],
                secret_access_key=keys["aws_secret_access_key"],
            )
        )

    @pytest.fixture
    def root(self, store):
        bucket = new_bucket_name()
        self.raw.create_bucket(Bucket=bucket)
        yield bucket
        empty_and_delete_bucket(self.raw, bucket)


def test_transport_for_picks_obstore_by_default_and_botocore_when_asked(emrfs_endpoint):
    from emrfs.config import load
    from emrfs.store import transport_for

    auto = transport_for(load({"endpoint_url": emrfs_endpoint}))
    chosen = transport_for(load({"endpoint_url": emrfs_endpoint, "fs.s3.transport": "botocore"}))
    assert isinstance(auto, ObstoreStore) and isinstance(chosen, S3Store)
    assert isinstance(auto.fallback, S3Store)  # made on first need, from the same options
    asyncio.run(auto.close())
    asyncio.run(chosen.close())


from .test_tls import tls_endpoint  # noqa: E402, F401 - fixture: an HTTPS relay with its own CA


def test_https_endpoint_with_the_ca_bundle_and_without(tls_endpoint, fallback, emrfs_s3, bucket):  # noqa: F811
    url, ca = tls_endpoint
    trusted = ObstoreStore(
        S3Options(endpoint_url=url, ca_bundle=ca, require_tls=True), fallback=fallback
    )
    untrusted = ObstoreStore(S3Options(endpoint_url=url, max_attempts=1), fallback=fallback)
    run(trusted.put(f"{bucket}/over-tls", b"in transit"))
    assert emrfs_s3.get_object(Bucket=bucket, Key="over-tls")["Body"].read() == b"in transit"
    with pytest.raises(TransportError) as info:
        run(untrusted.head(f"{bucket}/over-tls"))
    assert "(InvalidCertificate UnknownIssuer)" in str(info.value)  # the cause, not only "error"
    assert fallback.calls == []


def test_a_small_read_is_one_trip_through_the_pool(store, fallback, emrfs_s3, bucket, monkeypatch):
    """A read that one GET answers whole makes one blocking call: the headers and the
    body come on the same pool thread (they took two, one for each: 20% of the client
    CPU of ``cat`` of 2,000 small objects)."""
    import emrfs.store.obstore as transport

    data = os.urandom(4096)
    emrfs_s3.put_object(Bucket=bucket, Key="small", Body=data)
    calls: list[str] = []
    blocking = transport.blocking

    async def counted(fn, *args, **kwargs):
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await blocking(fn, *args, **kwargs)

    monkeypatch.setattr(transport, "blocking", counted)
    meta, got = run(store.get(f"{bucket}/small"))
    assert (got, meta.size, len(calls)) == (data, 4096, 1)
    assert run(store.get(f"{bucket}/small", 10, 20))[1] == data[10:20] and len(calls) == 2
    assert run(store.get_range(f"{bucket}/small", 100, 300)) == data[100:300] and len(calls) == 3
    assert run(store.get_range(f"{bucket}/small", 5000, 6000)) == b"" and len(calls) == 4
    assert run(store.get(f"{bucket}/small", 4000))[1] == data[4000:]

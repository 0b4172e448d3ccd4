"""Client-side encryption through the filesystem, checked through raw boto3.

Writes (pipe/put/open, single PUT and multipart, both storage modes), reads
(cat, get, open; whole and ranged in each format), info and listings,
copy/rename/delete, plaintext beside CSE objects, bad input, and one round
trip each way with AWS's own client.
"""

from __future__ import annotations

import base64
import json
import os

import pytest

from emrfs import EmrFileSystem
from emrfs.errors import ChangedError, EncryptionError, IntegrityError
from emrfs.testing import FaultProxy

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
AES_KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_AES_KEY = base64.b64encode(bytes(range(5, 37))).decode()
AES_PROVIDER = "emrfs.crypto.keys:AesKeyProvider"


@pytest.fixture(scope="module")
def kms_key(emrfs_endpoint):
    import boto3

    kms = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    return kms.create_key(Description="emrfs cse fs")["KeyMetadata"]["KeyId"]


def cse_fs(endpoint, **cse):
    cse.setdefault("enabled", True)
    return EmrFileSystem(
        endpoint_url=endpoint,
        skip_instance_cache=True,
        part_size=5 * MiB,
        multipart_threshold=5 * MiB,
        cse=cse,
    )


def aes_fs(endpoint, key=AES_KEY, **cse):
    return cse_fs(endpoint, materials_provider=AES_PROVIDER, aes_key=key, **cse)


def raw(s3, bucket, key):
    obj = s3.get_object(Bucket=bucket, Key=key)
    return obj["Body"].read(), obj


@pytest.mark.parametrize("storage", ["ObjectMetadata", "InstructionFile"])
def test_kms_write_paths_store_ciphertext_and_read_back(
    emrfs_endpoint, emrfs_s3, emrfs_bucket, kms_key, tmp_path, storage
):
    fs = cse_fs(emrfs_endpoint, kms_key_id=kms_key, storage_mode=storage)
    small, big = os.urandom(1000), os.urandom(5 * MiB + 3)
    fs.pipe_file(f"{emrfs_bucket}/d/pipe", small)
    fs.pipe_file(f"{emrfs_bucket}/d/pipe-big", big)
    local = tmp_path / "big"
    local.write_bytes(big)
    fs.put_file(str(local), f"{emrfs_bucket}/d/put-big")
    with fs.open(f"{emrfs_bucket}/d/open-big", "wb") as f:
        for i in range(0, len(big), 700_000):  # writes that do not line up with parts
            f.write(big[i : i + 700_000])
    with fs.open(f"{emrfs_bucket}/d/open-small", "xb") as f:
        f.write(small)
    expected = {
        "pipe": small,
        "pipe-big": big,
        "put-big": big,
        "open-big": big,
        "open-small": small,
    }
    for name, data in expected.items():
        body, obj = raw(emrfs_s3, emrfs_bucket, f"d/{name}")
        assert obj["ContentLength"] == len(data) + 16 and data[:64] not in body
        if storage == "ObjectMetadata":
            assert "x-amz-3" in obj["Metadata"] and "x-amz-c" in obj["Metadata"]
        else:  # the key lives in the instruction file; content names stay on the object
            assert "x-amz-3" not in obj["Metadata"] and obj["Metadata"]["x-amz-c"] == "115"
            instr, iobj = raw(emrfs_s3, emrfs_bucket, f"d/{name}.instruction")
            assert "x-amz-3" in json.loads(instr) and "x-amz-crypto-instr-file" in iobj["Metadata"]
        assert fs.cat_file(f"{emrfs_bucket}/d/{name}") == data
        assert fs.info(f"{emrfs_bucket}/d/{name}")["size"] == len(data)
    # multipart objects really are multipart (one GCM stream across parts)
    assert (
        emrfs_s3.head_object(Bucket=emrfs_bucket, Key="d/open-big", PartNumber=1)["PartsCount"] == 2
    )
    # listings: plaintext lengths, instruction files hidden
    listed = {e["name"].rsplit("/", 1)[1]: e["size"] for e in fs.ls(f"{emrfs_bucket}/d")}
    assert listed == {k: len(v) for k, v in expected.items()}
    found = fs.find(f"{emrfs_bucket}", detail=True)
    assert {n.rsplit("/", 1)[1]: i["size"] for n, i in found.items()} == listed
    # get_file and open('rb') read plaintext
    fs.get_file(f"{emrfs_bucket}/d/open-big", str(tmp_path / "got"))
    assert (tmp_path / "got").read_bytes() == big
    with fs.open(f"{emrfs_bucket}/d/put-big", "rb") as f:
        assert f.size == len(big)
        f.seek(len(big) - 8)
        assert f.read() == big[-8:]
        f.seek(5 * MiB - 3)
        assert f.read(10) == big[5 * MiB - 3 : 5 * MiB + 3]
    # rename and delete take the instruction file along
    fs.mv(f"{emrfs_bucket}/d/pipe", f"{emrfs_bucket}/e/moved")
    fs.cp_file(f"{emrfs_bucket}/d/open-small", f"{emrfs_bucket}/e/copied")
    assert fs.cat_file(f"{emrfs_bucket}/e/moved") == small
    assert fs.cat_file(f"{emrfs_bucket}/e/copied") == small
    fs.rm(f"{emrfs_bucket}/d/open-small")
    keys = {o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=emrfs_bucket)["Contents"]}
    suffix = ".instruction" if storage == "InstructionFile" else None
    for gone in ("d/pipe", "d/open-small"):
        assert gone not in keys and (suffix is None or gone + suffix not in keys)
    if suffix:
        assert {"e/moved.instruction", "e/copied.instruction"} <= keys


def test_copy_and_tree_rename_keep_the_envelope(emrfs_endpoint, emrfs_s3, emrfs_bucket):
    fs = aes_fs(emrfs_endpoint)
    data = os.urandom(5 * MiB + 1)
    fs.pipe_file(f"{emrfs_bucket}/t/a", data)
    fs.pipe_file(f"{emrfs_bucket}/t/sub/b", b"bee")
    fs.mv(f"{emrfs_bucket}/t", f"{emrfs_bucket}/u", recursive=True)
    assert fs.cat_file(f"{emrfs_bucket}/u/a") == data
    assert fs.cat_file(f"{emrfs_bucket}/u/sub/b") == b"bee"
    # a multipart copy (UploadPartCopy) states the envelope on the new upload
    small_copies = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        copy_threshold=MiB,
        copy_part_size=5 * MiB,
        cse={"enabled": True, "materials_provider": AES_PROVIDER, "aes_key": AES_KEY},
    )
    small_copies.cp_file(f"{emrfs_bucket}/u/a", f"{emrfs_bucket}/v/a")
    assert emrfs_s3.head_object(Bucket=emrfs_bucket, Key="v/a", PartNumber=1)["PartsCount"] == 2
    assert "x-amz-3" in emrfs_s3.head_object(Bucket=emrfs_bucket, Key="v/a")["Metadata"]
    assert small_copies.cat_file(f"{emrfs_bucket}/v/a") == data


def test_plaintext_objects_stay_readable_and_sized(emrfs_endpoint, emrfs_s3, emrfs_bucket):
    emrfs_s3.put_object(Bucket=emrfs_bucket, Key="p/plain", Body=b"plain text")
    for mode in ("ObjectMetadata", "InstructionFile"):
        fs = aes_fs(emrfs_endpoint, storage_mode=mode)
        assert fs.cat_file(f"{emrfs_bucket}/p/plain") == b"plain text"
        assert fs.cat_file(f"{emrfs_bucket}/p/plain", 6, 10) == b"text"
        assert fs.info(f"{emrfs_bucket}/p/plain")["size"] == 10
        assert fs.ls(f"{emrfs_bucket}/p", detail=True)[0]["size"] == 10
        with fs.open(f"{emrfs_bucket}/p/plain") as f:
            assert f.read() == b"plain text"
    # a CSE object read where CSE is off but the key is known
    aes_fs(emrfs_endpoint).pipe_file(f"{emrfs_bucket}/p/enc", b"secret")
    reader = aes_fs(emrfs_endpoint, enabled=False)
    assert reader.cat_file(f"{emrfs_bucket}/p/enc") == b"secret"
    assert reader.cat_file(f"{emrfs_bucket}/p/enc", 1, 3) == b"ec"


@pytest.mark.parametrize("fmt", ["v3", "segmented"])
def test_empty_objects(emrfs_endpoint, emrfs_s3, emrfs_bucket, fmt):
    fs = aes_fs(emrfs_endpoint, format=fmt)
    fs.pipe_file(f"{emrfs_bucket}/piped", b"")
    with fs.open(f"{emrfs_bucket}/opened", "wb"):
        pass
    for name in ("piped", "opened"):
        assert emrfs_s3.head_object(Bucket=emrfs_bucket, Key=name)["ContentLength"] == 16
        assert fs.cat_file(f"{emrfs_bucket}/{name}") == b""
        assert fs.info(f"{emrfs_bucket}/{name}")["size"] == 0
        with fs.open(f"{emrfs_bucket}/{name}") as f:
            assert f.read() == b""


def test_listing_lengths_adjust_mode(emrfs_endpoint, emrfs_bucket):
    fs = aes_fs(emrfs_endpoint, listing_lengths="adjust")
    seg = aes_fs(emrfs_endpoint, listing_lengths="adjust", format="segmented", segment_size=4096)
    fs.pipe_file(f"{emrfs_bucket}/a/x", b"a" * 100)
    seg.pipe_file(f"{emrfs_bucket}/a/y", b"b" * 10_000)
    assert {e["name"][-1]: e["size"] for e in fs.ls(f"{emrfs_bucket}/a")}["x"] == 100
    assert {e["name"][-1]: e["size"] for e in seg.ls(f"{emrfs_bucket}/a")}["y"] == 10_000


def _fetched(proxy, fn):
    proxy.reset_counters()
    result = fn()
    return result, proxy.counters()


@pytest.mark.parametrize("mode", ["aws-authenticated", "aws-ctr", "segmented"])
def test_ranged_reads_fetch_what_each_format_needs(emrfs_endpoint, emrfs_bucket, mode):
    size = 6 * MiB
    data = os.urandom(size)
    options = {"materials_provider": AES_PROVIDER, "aes_key": AES_KEY}
    if mode == "segmented":
        options["format"] = "segmented"
    if mode == "aws-ctr":
        options["unauthenticated_range_reads"] = True
    with FaultProxy(emrfs_endpoint) as proxy:
        fs = cse_fs(proxy.url, **options)
        path = f"{emrfs_bucket}/big"
        fs.pipe_file(path, data)
        start = 3 * MiB + 12345
        got, counters = _fetched(proxy, lambda: fs.cat_file(path, start, start + MiB))
        assert got == data[start : start + MiB]
        if mode == "aws-authenticated":
            # verified whole once (the whole object comes down) ...
            assert counters.response_bytes >= size
            # ... then later ranges come from the sealed spool: nothing more is fetched
            again, counters = _fetched(proxy, lambda: fs.cat_file(path, 3, 3 + MiB))
            assert again == data[3 : 3 + MiB]
            assert counters.operations.get("GetObject", 0) == 0
        else:
            assert MiB <= counters.response_bytes <= MiB + 2 * (64 * 1024 + 16)
            assert counters.operations.get("GetObject") == 1
        with fs.open(path, "rb") as f:  # seek-and-read, as a Parquet reader does
            f.seek(size - 8)
            assert f.read(8) == data[-8:]
            f.seek(start)
            assert f.read(1000) == data[start : start + 1000]


def test_an_open_file_reads_its_spooled_ranges_through_the_stack_pinned(
    emrfs_endpoint, emrfs_s3, emrfs_bucket
):
    """An open file's ranges of a v3 object come from the verified spool through the
    path's stack, pinned to the version opened: overwritten since (here past emrfs), its
    next read fails as a plaintext file's does, never serving the gone version."""
    fs = aes_fs(emrfs_endpoint)
    data = os.urandom(3 * MiB)
    path = f"{emrfs_bucket}/held"
    fs.pipe_file(path, data)
    with fs.open(path, "rb", cache_type="none") as f:
        for offset in (MiB, 2 * MiB, 5):  # the first fills the spool, the others read it
            f.seek(offset)
            assert f.read(100) == data[offset : offset + 100]
        emrfs_s3.put_object(Bucket=emrfs_bucket, Key="held", Body=b"written past emrfs")
        f.seek(MiB + 7)
        with pytest.raises(ChangedError):
            f.read(100)
    assert raw(emrfs_s3, emrfs_bucket, "held")[0] == b"written past emrfs"


def test_spool_is_sealed_on_disk(emrfs_endpoint, emrfs_bucket, tmp_path, monkeypatch):
    """The verified plaintext an authenticated range read keeps never sits on disk in clear."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen = []
    real = tempfile.TemporaryFile

    def spy(*args, **kwargs):
        f = real(*args, **kwargs)
        seen.append(f)
        return f

    monkeypatch.setattr(tempfile, "TemporaryFile", spy)
    fs = aes_fs(emrfs_endpoint)
    data = b"0123456789abcdef" * 70_000
    fs.pipe_file(f"{emrfs_bucket}/s", data)
    assert fs.cat_file(f"{emrfs_bucket}/s", 100, 200) == data[100:200]
    (spool,) = seen
    on_disk = os.pread(spool.fileno(), 2 * len(data), 0)
    assert len(on_disk) >= len(data) and b"0123456789abcdef" not in on_disk
    assert os.listdir(tmp_path) == []  # anonymous: nothing to leave behind


# --- bad input -----------------------------------------------------------------------------


def _assert_refused(fs, path, tmp_path, exc=EncryptionError, match=None):
    name = path.rsplit("/", 1)[1]
    with pytest.raises(exc, match=match or name):
        fs.cat_file(path)
    local = tmp_path / "out"
    with pytest.raises(exc, match=match or name):
        fs.get_file(path, str(local))
    assert os.listdir(tmp_path) == []  # no partial file, no temp file
    with pytest.raises(exc, match=match or name), fs.open(path, "rb") as f:
        f.read(10)


def test_bad_input_is_a_clear_error(emrfs_endpoint, emrfs_s3, emrfs_bucket, tmp_path):
    fs = aes_fs(emrfs_endpoint)
    data = os.urandom(300_000)
    fs.pipe_file(f"{emrfs_bucket}/good", data)
    body, obj = raw(emrfs_s3, emrfs_bucket, "good")
    meta = obj["Metadata"]
    out = tmp_path / "out"
    out.mkdir()

    def put(key, body=body, metadata=meta):
        emrfs_s3.put_object(Bucket=emrfs_bucket, Key=key, Body=body, Metadata=metadata)
        return f"{emrfs_bucket}/{key}"

    # a wrong key
    _assert_refused(aes_fs(emrfs_endpoint, key=OTHER_AES_KEY), f"{emrfs_bucket}/good", out)
    # a missing part of the envelope, an altered one, an unknown algorithm
    _assert_refused(
        fs, put("no-key", metadata={k: v for k, v in meta.items() if k != "x-amz-3"}), out
    )
    altered = dict(meta, **{"x-amz-i": base64.b64encode(os.urandom(28)).decode()})
    _assert_refused(fs, put("altered", metadata=altered), out, IntegrityError)
    _assert_refused(fs, put("unknown-alg", metadata=dict(meta, **{"x-amz-c": "999"})), out)
    # a truncated body and a tampered one: the tag does not verify
    _assert_refused(fs, put("truncated", body=body[:-5]), out, IntegrityError)
    bad = bytearray(body)
    bad[150_000] ^= 1
    _assert_refused(fs, put("tampered", body=bytes(bad)), out, IntegrityError)
    # a v3 object whose instruction file went missing
    inst = aes_fs(emrfs_endpoint, storage_mode="InstructionFile")
    inst.pipe_file(f"{emrfs_bucket}/inst", b"x" * 100)
    emrfs_s3.delete_object(Bucket=emrfs_bucket, Key="inst.instruction")
    _assert_refused(fs, f"{emrfs_bucket}/inst", out, match="instruction file")


def test_tampered_segment_fails_the_range_that_holds_it(emrfs_endpoint, emrfs_s3, emrfs_bucket):
    fs = aes_fs(emrfs_endpoint, format="segmented", segment_size=4096)
    data = os.urandom(100_000)
    fs.pipe_file(f"{emrfs_bucket}/seg", data)
    body, obj = raw(emrfs_s3, emrfs_bucket, "seg")
    bad = bytearray(body)
    bad[50_000] ^= 1
    emrfs_s3.put_object(Bucket=emrfs_bucket, Key="seg", Body=bytes(bad), Metadata=obj["Metadata"])
    assert fs.cat_file(f"{emrfs_bucket}/seg", 0, 1000) == data[:1000]  # untouched segment
    with pytest.raises(IntegrityError, match="seg"):
        fs.cat_file(f"{emrfs_bucket}/seg", 49_000, 51_000)


# --- AWS's own client, through the filesystem ------------------------------------------------


def test_aws_client_round_trips_through_the_filesystem(
    emrfs_endpoint, emrfs_s3, emrfs_bucket, kms_key
):
    s3ec = pytest.importorskip(
        "s3_encryption", reason="amazon-s3-encryption-client-python is not installed"
    )
    import boto3
    from s3_encryption.materials.kms_keyring import KmsKeyring

    kms = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    aws = s3ec.S3EncryptionClient(
        wrapped_s3_client=boto3.client("s3", endpoint_url=emrfs_endpoint, region_name="us-east-1"),
        config=s3ec.S3EncryptionClientConfig(
            keyring=KmsKeyring(kms_client=kms, kms_key_id=kms_key)
        ),
    )
    fs = cse_fs(emrfs_endpoint, kms_key_id=kms_key)
    ours, theirs = os.urandom(5 * MiB + 1), os.urandom(200_001)
    fs.pipe_file(f"{emrfs_bucket}/ours", ours)  # multipart: one GCM stream over two parts
    assert aws.get_object(Bucket=emrfs_bucket, Key="ours")["Body"].read() == ours
    aws.put_object(Bucket=emrfs_bucket, Key="theirs", Body=theirs)
    assert fs.cat_file(f"{emrfs_bucket}/theirs") == theirs
    assert fs.info(f"{emrfs_bucket}/theirs")["size"] == len(theirs)


@pytest.mark.parametrize("recorded", [True, False], ids=["rows-at-source", "unrecorded-source"])
def test_directory_rename_records_plaintext_sizes(emrfs_endpoint, emrfs_bucket, recorded):
    """The consistent view's rows after a directory rename carry the lengths readers see,
    from the source's rows, or from the objects' envelopes when the source had none."""
    import uuid

    table = {"table_name": f"emrfs-meta-{uuid.uuid4().hex[:12]}"}
    cse = {"enabled": True, "materials_provider": AES_PROVIDER, "aes_key": AES_KEY}
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        consistent=True,
        consistency=table,
        cse=cse,
    )
    writer = fs if recorded else aes_fs(emrfs_endpoint)
    writer.pipe_file(f"{emrfs_bucket}/d/a", b"hello")
    writer.pipe_file(f"{emrfs_bucket}/d/sub/b", b"world!")
    fs.mv(f"{emrfs_bucket}/d", f"{emrfs_bucket}/e", recursive=True)
    store = fs._view(emrfs_bucket).store
    assert store.get(f"{emrfs_bucket}/e/a").size == 5
    assert store.get(f"{emrfs_bucket}/e/sub/b").size == 6
    other = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        consistent=True,
        consistency=table,
        cse=cse,
    )
    assert other.info(f"{emrfs_bucket}/e/sub/b")["size"] == 6
    assert other.cat_file(f"{emrfs_bucket}/e/a") == b"hello"


@pytest.mark.parametrize("size", [3, 6 * MiB + 7], ids=["small", "multipart"])
def test_append_rewrites_the_encrypted_object(emrfs_endpoint, emrfs_s3, emrfs_bucket, size):
    """Appending to a CSE object re-encrypts it whole (one GCM stream cannot grow): the
    result is a new envelope whose plaintext is old + new, ciphertext in S3."""
    fs = aes_fs(emrfs_endpoint)
    path = f"{emrfs_bucket}/log"
    first, more = os.urandom(size), os.urandom(1000)
    fs.pipe_file(path, first)
    before = raw(emrfs_s3, emrfs_bucket, "log")[1]["Metadata"]
    with fs.open(path, "ab") as f:
        f.write(more)
    assert fs.cat_file(path) == first + more
    assert fs.info(path)["size"] == size + 1000
    stored, obj = raw(emrfs_s3, emrfs_bucket, "log")
    assert len(stored) == size + 1000 + 16 and more not in stored
    assert obj["Metadata"] != before  # a fresh data key and IV


def test_append_where_cse_is_off_rewrites_a_sealed_object_as_plaintext(
    emrfs_endpoint, emrfs_s3, emrfs_bucket
):
    """A CSE key configured but new objects plain (``cse.enabled`` off): appending to a
    large object sealed earlier re-streams its plaintext (the old parts cannot be
    copied under new bytes: they are ciphertext, and their key stays in the envelope),
    so the result is old + new, stored as every new object there is."""
    path = f"{emrfs_bucket}/sealed-log"
    first, more = os.urandom(6 * MiB + 7), os.urandom(1000)
    aes_fs(emrfs_endpoint).pipe_file(path, first)
    fs = aes_fs(emrfs_endpoint, enabled=False)
    with fs.open(path, "ab") as f:
        f.write(more)
    stored, obj = raw(emrfs_s3, emrfs_bucket, "sealed-log")
    assert stored == first + more and not obj["Metadata"]  # checked beside emrfs
    assert fs.cat_file(path) == first + more


def test_a_plaintext_overwrite_of_a_v3_object_is_not_read_with_its_stale_instruction_file(
    emrfs_endpoint, emrfs_s3, emrfs_bucket
):
    """Another client replaces a v3 object (key in an instruction file) with plaintext and
    leaves the instruction file: v3 keeps its content names on the object, so an object
    without them is not that file's object; it reads as the plaintext it is."""
    fs = aes_fs(emrfs_endpoint, storage_mode="InstructionFile")
    path = f"{emrfs_bucket}/replaced.csv"
    fs.pipe_file(path, b"encrypted once")
    assert "Metadata" in emrfs_s3.head_object(Bucket=emrfs_bucket, Key="replaced.csv.instruction")
    emrfs_s3.put_object(Bucket=emrfs_bucket, Key="replaced.csv", Body=b"plain now")
    fs.invalidate_cache()
    assert fs.info(path)["size"] == 9
    assert fs.cat_file(path) == b"plain now"
    assert fs.cat_file(path, 6, 9) == b"now"

"""Read planning (issue 13): a 2-column read of a one-row-group Parquet file costs at most
3 requests and at most 1.05x the selected column chunks' bytes, and a remembered status
that went stale never mixes two versions.

Requests and response bytes are counted on the wire by the fault proxy (it injects
nothing here).  On moto a ranged GET reads the whole object server-side: these tests
count requests and bytes, never time.  What S3 holds is written and changed through
raw boto3 (the side channel).
"""

from __future__ import annotations

import base64
import io
import os
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emrfs import EmrFileSystem
from emrfs.s3.client import ChangedError

pytestmark = pytest.mark.integration

COLUMNS = ["c0", "c5"]
ROWS = 300_000  # ~14 MiB; 64 KiB of footer is under 2% of the selected chunks
AES = {
    "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
    "aes_key": base64.b64encode(bytes(range(32))).decode(),
}


@pytest.fixture(scope="module")
def parquet():
    """(file bytes, the table, the selected columns' compressed chunk bytes)."""
    rng = np.random.default_rng(7)
    cols = {f"c{i}": rng.integers(0, 1000 * (i + 1), ROWS) for i in range(5)}
    cols.update({f"c{i}": rng.random(ROWS) for i in range(5, 10)})
    table = pa.table(cols)
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=ROWS)
    data = buf.getvalue()
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    assert meta.num_row_groups == 1
    selected = sum(
        meta.row_group(0).column(c).total_compressed_size
        for c in range(meta.num_columns)
        if meta.schema.column(c).name in COLUMNS
    )
    return data, table, selected


def s3_operations(proxy) -> dict[str, int]:
    return {
        op: n
        for op, n in proxy.counters().operations.items()
        if op.endswith("Object") or op.startswith("List")
    }


def plain_fs(url: str, **extra) -> EmrFileSystem:
    return EmrFileSystem(endpoint_url=url, skip_instance_cache=True, **extra)


def test_two_column_parquet_read_costs_three_requests(emrfs_fault_proxy, emrfs_s3, bucket, parquet):
    data, table, selected = parquet
    emrfs_s3.put_object(Bucket=bucket, Key="t.parquet", Body=data)
    fs = plain_fs(emrfs_fault_proxy.url)
    emrfs_fault_proxy.reset_counters()
    got = pq.read_table(f"{bucket}/t.parquet", columns=COLUMNS, filesystem=fs)
    c = emrfs_fault_proxy.counters()
    assert got.equals(table.select(COLUMNS))
    assert c.operations.get("HeadObject", 0) == 0, dict(c.operations)
    assert c.requests <= 3, dict(c.operations)
    assert c.response_bytes <= 1.05 * selected, (c.response_bytes, selected)


def test_pandas_read_parquet_through_fsspec_costs_three_requests(
    emrfs_fault_proxy, emrfs_s3, bucket, parquet
):
    pd = pytest.importorskip("pandas")
    data, table, selected = parquet
    emrfs_s3.put_object(Bucket=bucket, Key="p.parquet", Body=data)
    emrfs_fault_proxy.reset_counters()
    got = pd.read_parquet(
        f"emrfs://{bucket}/p.parquet",
        columns=COLUMNS,
        storage_options={"endpoint_url": emrfs_fault_proxy.url, "skip_instance_cache": True},
    )
    c = emrfs_fault_proxy.counters()
    assert got.equals(table.select(COLUMNS).to_pandas())
    assert c.requests <= 3, dict(c.operations)
    assert c.response_bytes <= 1.05 * selected, (c.response_bytes, selected)


def test_open_after_a_listing_makes_no_head(emrfs_fault_proxy, emrfs_s3, bucket, parquet):
    data, table, selected = parquet
    emrfs_s3.put_object(Bucket=bucket, Key="d/t.parquet", Body=data)
    fs = plain_fs(emrfs_fault_proxy.url)
    [entry] = fs.ls(f"{bucket}/d", detail=True)
    emrfs_fault_proxy.reset_counters()
    with fs.open(entry["name"], "rb") as f:
        got = pq.read_table(f, columns=COLUMNS)
    c = emrfs_fault_proxy.counters()
    assert got.equals(table.select(COLUMNS))
    assert c.operations.get("HeadObject", 0) == 0, dict(c.operations)
    # the footer's 8-byte length and then its body: one GET of the tail for both
    assert c.requests <= 3, dict(c.operations)
    assert c.response_bytes <= 1.05 * selected + 64 * 1024


CONFIGS = {
    "sse": {"sse": {"algorithm": "AES256"}},
    "cse": {"cse": {"enabled": True, **AES}},
    "cache": "cache",
    "consistent": "consistent",
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_other_configurations_read_the_right_columns(
    emrfs_fault_proxy, emrfs_s3, bucket, parquet, tmp_path, config, capsys
):
    """SSE, CSE, the block cache and the consistent view still read exactly the columns
    written; their request counts are printed (they may differ from plain's)."""
    data, table, selected = parquet
    extra = CONFIGS[config]
    if extra == "cache":
        extra = {"cache": {"enabled": True, "directories": [str(tmp_path / "c")]}}
    elif extra == "consistent":
        extra = {
            "consistent": True,
            "consistency.table_name": f"emrfs-meta-{uuid.uuid4().hex[:12]}",
        }
    fs = plain_fs(emrfs_fault_proxy.url, **extra)
    path = f"{bucket}/{config}.parquet"
    fs.pipe_file(path, data)  # through emrfs: encrypted, recorded, as the config says
    if config == "cse":  # side channel: S3 holds ciphertext, not the Parquet file
        stored = emrfs_s3.get_object(Bucket=bucket, Key=f"{config}.parquet")["Body"].read()
        assert b"PAR1" not in stored[-8:]
    fresh = plain_fs(emrfs_fault_proxy.url, **extra)
    emrfs_fault_proxy.reset_counters()
    got = pq.read_table(path, columns=COLUMNS, filesystem=fresh)
    assert got.equals(table.select(COLUMNS))
    c = emrfs_fault_proxy.counters()
    with capsys.disabled():
        print(
            f"\n[read planning] {config}: {c.services.get('s3', 0)} S3 requests "
            f"{dict(s3_operations(emrfs_fault_proxy))}, {c.response_bytes:,} bytes "
            f"({c.response_bytes / selected:.3f}x selected); services {dict(c.services)}"
        )
    if extra.get("cache"):
        fresh._cached.close()
        fs._cached.close()


# --- a remembered status that went stale ------------------------------------------------


def _two_versions(size: int) -> tuple[bytes, bytes]:
    return os.urandom(size), os.urandom(size)


@pytest.mark.parametrize("how", ["info", "ls"])
@pytest.mark.parametrize("new_size", ["same", "longer", "shorter"])
def test_overwritten_after_info_gives_an_error_or_the_new_bytes(
    emrfs_endpoint, emrfs_s3, bucket, how, new_size
):
    size = 300 * 1024
    old, new = _two_versions(size)
    new = {"same": new, "longer": new + b"x" * 5000, "shorter": new[: size // 2]}[new_size]
    emrfs_s3.put_object(Bucket=bucket, Key="d/f", Body=old)
    fs = plain_fs(emrfs_endpoint)
    path = f"{bucket}/d/f"
    if how == "info":
        assert fs.info(path)["size"] == size
    else:
        assert fs.ls(f"{bucket}/d", detail=True)[0]["size"] == size
    emrfs_s3.put_object(Bucket=bucket, Key="d/f", Body=new)  # behind emrfs's back
    assert fs.isfile(path)
    reads = {
        "whole": lambda f: f.read(),
        "middle": lambda f: (f.seek(1000), f.read(50_000))[1],
        "footer then middle": lambda f: (f.seek(size - 100), f.read(), f.seek(10), f.read(1000))[3],
    }
    for name, read in reads.items():
        try:
            with fs.open(path, "rb") as f:
                got = read(f)
        except ChangedError:
            continue  # detected: the caller opens again
        # never a mix: the bytes are wholly one version's, at the offsets asked for
        expected = {"whole": new, "middle": new[1000:51_000], "footer then middle": new[10:1010]}[
            name
        ]
        assert got == expected, f"{name}: bytes of neither the new version alone"
    # a fresh open after the error reads the new version
    fs.invalidate_cache(path)
    with fs.open(path, "rb") as f:
        assert f.read() == new


def test_pyarrow_read_of_a_file_replaced_after_info_is_never_mixed(
    emrfs_endpoint, emrfs_s3, bucket, parquet
):
    data, table, _ = parquet
    other = table.slice(0, ROWS // 2)
    buf = io.BytesIO()
    pq.write_table(other, buf, row_group_size=ROWS)
    emrfs_s3.put_object(Bucket=bucket, Key="r.parquet", Body=data)
    fs = plain_fs(emrfs_endpoint)
    path = f"{bucket}/r.parquet"
    fs.info(path)  # the status (and the old footer) are remembered
    emrfs_s3.put_object(Bucket=bucket, Key="r.parquet", Body=buf.getvalue())
    try:
        got = pq.read_table(path, columns=COLUMNS, filesystem=fs)
    except (ChangedError, OSError) as exc:
        assert "changed while it was read" in str(exc)
        return
    assert got.equals(other.select(COLUMNS)) or got.equals(table.select(COLUMNS)), (
        "a table of neither version"
    )
    assert got.equals(other.select(COLUMNS)), "the old version was served after it changed"


def test_own_writes_deletes_and_renames_forget_what_was_remembered(emrfs_endpoint, bucket):
    fs = plain_fs(emrfs_endpoint)
    path = f"{bucket}/own"
    fs.pipe_file(path, b"one" * 1000)
    assert fs.info(path)["size"] == 3000
    fs.pipe_file(path, b"second" * 10)
    with fs.open(path, "rb") as f:
        assert f.read() == b"second" * 10
    fs.info(path)
    with fs.open(path, "wb") as f:
        f.write(b"third")
    assert fs.cat_file(path) == b"third"
    with fs.open(path, "rb") as f:
        assert f.read() == b"third"
    fs.info(path)
    fs.rm(path)
    assert not fs.isfile(path)
    with pytest.raises(FileNotFoundError):
        fs.open(path, "rb")
    fs.pipe_file(f"{bucket}/a/x", b"from a")
    fs.pipe_file(f"{bucket}/b/x", b"from b, longer")
    fs.ls(f"{bucket}/b")
    fs.info(f"{bucket}/b/x")
    fs.rm(f"{bucket}/b", recursive=True)
    fs.mv(f"{bucket}/a", f"{bucket}/b", recursive=True)
    with fs.open(f"{bucket}/b/x", "rb") as f:
        assert f.read() == b"from a"


# --- cat_ranges: one version per file, nearby ranges in one GET ------------------------------


def test_cat_ranges_coalesce_nearby_ranges_of_one_file(emrfs_fault_proxy, emrfs_s3, bucket):
    data = os.urandom(2_000_000)
    emrfs_s3.put_object(Bucket=bucket, Key="r", Body=data)
    fs = plain_fs(emrfs_fault_proxy.url)
    path = f"{bucket}/r"
    ranges = [
        (1000, 2000),
        (2500, 9000),
        (9000, 9100),
        (30_000, 40_000),  # one GET
        (1_000_000, 1_000_050),  # another
        (-300, None),
        (5, 5),
    ]  # the tail; empty
    emrfs_fault_proxy.reset_counters()
    got = fs.cat_ranges([path] * len(ranges), [s for s, _ in ranges], [e for _, e in ranges])
    assert got == [data[s:e] for s, e in ranges]
    c = emrfs_fault_proxy.counters()
    # the status (with the tail), then the two groups
    assert c.requests == 3, dict(c.operations)
    assert c.response_bytes <= 40_000 + 50 + 64 * 1024, c.response_bytes


def test_open_parquet_file_costs_three_requests(emrfs_fault_proxy, emrfs_s3, bucket, parquet):
    from fsspec.parquet import open_parquet_file

    data, table, selected = parquet
    emrfs_s3.put_object(Bucket=bucket, Key="o.parquet", Body=data)
    fs = plain_fs(emrfs_fault_proxy.url)
    emrfs_fault_proxy.reset_counters()
    with open_parquet_file(
        f"{bucket}/o.parquet", fs=fs, columns=COLUMNS, footer_sample_size=64 * 1024
    ) as f:
        got = pq.read_table(f, columns=COLUMNS)
    c = emrfs_fault_proxy.counters()
    assert got.equals(table.select(COLUMNS))
    assert c.requests <= 3, dict(c.operations)
    assert c.response_bytes <= 1.05 * selected, (c.response_bytes, selected)


def test_cat_ranges_after_a_stale_status_read_the_new_version_whole(
    emrfs_endpoint, emrfs_s3, bucket
):
    old, new = _two_versions(500_000)
    emrfs_s3.put_object(Bucket=bucket, Key="s", Body=old)
    fs = plain_fs(emrfs_endpoint)
    path = f"{bucket}/s"
    fs.info(path)  # remembered: size, ETag and the old tail
    emrfs_s3.put_object(Bucket=bucket, Key="s", Body=new[:400_000])
    ranges = [(0, 100), (200_000, 300_000), (-50, None)]
    got = fs.cat_ranges([path] * 3, [s for s, _ in ranges], [e for _, e in ranges])
    assert got == [new[:400_000][s:e] for s, e in ranges]


def test_cat_ranges_keep_per_range_errors(emrfs_endpoint, bucket):
    fs = plain_fs(emrfs_endpoint)
    fs.pipe_file(f"{bucket}/dir/x", b"0123456789")
    got = fs.cat_ranges(
        [f"{bucket}/dir/x", f"{bucket}/nope", f"{bucket}/nope", f"{bucket}/dir", f"{bucket}/dir/x"],
        [0, 0, 1, 0, 4],
        [3, 1, 2, 1, 6],
    )
    assert got[0] == b"012" and got[4] == b"45"
    assert [type(g) for g in got[1:4]] == [FileNotFoundError, FileNotFoundError, IsADirectoryError]
    with pytest.raises(FileNotFoundError):
        fs.cat_ranges([f"{bucket}/nope"], [0], [1], on_error="raise")


def test_the_plan_can_be_turned_off_per_option(emrfs_fault_proxy, emrfs_s3, bucket):
    emrfs_s3.put_object(Bucket=bucket, Key="off", Body=b"x" * 200_000)
    fs = plain_fs(emrfs_fault_proxy.url, status_tail_bytes=0, status_reuse_seconds=0)
    path = f"{bucket}/off"
    emrfs_fault_proxy.reset_counters()
    assert fs.info(path)["size"] == 200_000
    assert fs.isfile(path)
    with fs.open(path, "rb") as f:
        f.seek(-10, 2)
        assert f.read() == b"x" * 10
    c = emrfs_fault_proxy.counters()
    assert c.operations.get("HeadObject") == 3, dict(c.operations)  # info, isfile, open
    assert c.response_bytes == 10


def test_cat_ranges_of_a_file_that_keeps_changing_fail_rather_than_read_unpinned(
    emrfs_endpoint, emrfs_s3, bucket
):
    emrfs_s3.put_object(Bucket=bucket, Key="busy", Body=b"a" * 300_000)
    fs = plain_fs(emrfs_endpoint)
    path = f"{bucket}/busy"
    fs.info(path)
    seen = []

    async def always_replaced(path_, start=0, end=None, *, if_match=None):
        seen.append(if_match)  # every read pinned; each finds yet another version
        emrfs_s3.put_object(Bucket=bucket, Key="busy", Body=os.urandom(300_000))
        raise ChangedError(path_, if_match, '"other"')

    stack = fs._stacks.for_path(path)
    stack.get_range = always_replaced  # type: ignore[method-assign]  # every ranged read
    got = fs.cat_ranges([path, path], [0, 200_000], [10, 200_010])
    assert [type(g) for g in got] == [ChangedError, ChangedError]
    assert seen and all(seen)

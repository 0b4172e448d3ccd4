"""pandas, pyarrow dataset and dask round trips through emrfs:// URLs; use after fork."""

from __future__ import annotations

import multiprocessing

import pandas as pd
import pytest


def _read_in_child(args):
    fs, path = args
    return fs.cat_file(path)


def test_process_pool_uses_the_filesystem_after_fork(fs, bucket):
    fs.pipe({f"{bucket}/p/{i}": str(i).encode() for i in range(8)})
    assert fs.ls(f"{bucket}/p")  # the parent's loop and client are live before fork
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        got = pool.map(_read_in_child, [(fs, f"{bucket}/p/{i}") for i in range(8)], chunksize=1)
    assert got == [str(i).encode() for i in range(8)]
    assert fs.cat_file(f"{bucket}/p/0") == b"0"  # and the parent still works


def frame():
    return pd.DataFrame({"k": ["a", "b", "c", "d"] * 25, "v": range(100)})


def test_pandas_round_trip(bucket, emrfs_endpoint):
    opts = {"endpoint_url": emrfs_endpoint}
    df = frame()
    for scheme in ("emrfs", "s3a"):
        url = f"{scheme}://{bucket}/pd/{scheme}.parquet"
        df.to_parquet(url, storage_options=opts)
        pd.testing.assert_frame_equal(pd.read_parquet(url, storage_options=opts), df)
    df.to_csv(f"emrfs://{bucket}/pd/x.csv", index=False, storage_options=opts)
    back = pd.read_csv(f"emrfs://{bucket}/pd/x.csv", storage_options=opts)
    pd.testing.assert_frame_equal(back, df)


def test_pyarrow_dataset_round_trip(fs, bucket):
    pa = pytest.importorskip("pyarrow")
    ds = pytest.importorskip("pyarrow.dataset")
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    pafs = PyFileSystem(FSSpecHandler(fs))
    table = pa.Table.from_pandas(frame(), preserve_index=False)
    ds.write_dataset(
        table,
        f"{bucket}/ds",
        format="parquet",
        filesystem=pafs,
        partitioning=["k"],
        partitioning_flavor="hive",
    )
    assert fs.isdir(f"{bucket}/ds/k=a")
    back = ds.dataset(f"{bucket}/ds", format="parquet", filesystem=pafs, partitioning="hive")
    got = back.to_table(filter=ds.field("k") == "b").to_pandas()
    assert sorted(got["v"]) == list(range(1, 100, 4))


def test_dask_round_trip(bucket, emrfs_endpoint):
    dd = pytest.importorskip("dask.dataframe")
    import dask

    opts = {"endpoint_url": emrfs_endpoint}
    ddf = dd.from_pandas(frame(), npartitions=3)
    with dask.config.set(scheduler="synchronous"):
        ddf.to_parquet(f"emrfs://{bucket}/dask", storage_options=opts)
        back = dd.read_parquet(f"emrfs://{bucket}/dask", storage_options=opts).compute()
    assert sorted(back["v"]) == list(range(100))


def _service_models_read_in_child(args):
    """Write a few files from a forked worker; return the botocore model files it read."""
    import botocore.loaders

    fs, bucket = args
    read: list[str] = []
    original = botocore.loaders.JSONFileLoader.load_file

    def spy(self, file_path):
        read.append(file_path)
        return original(self, file_path)

    botocore.loaders.JSONFileLoader.load_file = spy
    fs.pipe({f"{bucket}/forked/{i}": b"%d" % i for i in range(4)})
    return [p for p in read if "/s3/" in p]


def test_a_forked_writer_reuses_the_parents_parsed_models(fs, bucket, emrfs_s3):
    """A forked child speaks botocore (obstore is not fork safe); its first request must not
    parse the S3 models again (half a second per child: small writes in dask/multiprocessing
    workers ran at a third of the parent's rate)."""
    from fsspec.asyn import sync

    sync(fs.loop, fs.s3.call, "head_bucket", bucket, Bucket=bucket)  # the parent's client is live
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.map(_service_models_read_in_child, [(fs, bucket)]) == [[]]
    listed = emrfs_s3.list_objects_v2(Bucket=bucket, Prefix="forked/")["Contents"]
    assert sorted(o["Key"] for o in listed) == [f"forked/{i}" for i in range(4)]

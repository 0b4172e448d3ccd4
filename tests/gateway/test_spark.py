"""pyspark ``local[2]`` writing and reading partitioned Parquet through the gateway.

Both URL forms: ``webhdfs://host:port/bucket/path`` and ``emrfs://host:port/...``
with ``fs.emrfs.impl`` set to Hadoop's ``WebHdfsFileSystem``.  One
SparkSession for the module; output checked on the served filesystem directly.
"""

from __future__ import annotations

import base64
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.dirfs import DirFileSystem

from emrfs.gateway import serve_in_thread

pytestmark = [pytest.mark.spark, pytest.mark.integration]


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    from emrfs.testing.spark import local_session

    session = local_session("emrfs-gateway-test")
    yield session
    session.stop()


def _emrfs_available() -> bool:
    import emrfs

    return (Path(emrfs.__file__).parent / "filesystem.py").exists()


@pytest.fixture(scope="module")
def served_gateway(tmp_path_factory, request):
    """An EmrFileSystem on moto behind the gateway (a local directory before emrfs exists).

    Yields (gateway, bucket, keys, recorded): ``keys(prefix)`` lists object keys
    through a side channel (raw boto3 for emrfs, the directory for local);
    ``recorded()`` counts the consistent view's DynamoDB items (None for local).
    """
    if _emrfs_available():
        import boto3

        from emrfs.filesystem import EmrFileSystem
        from emrfs.testing.pytest_plugin import empty_and_delete_bucket, new_bucket_name

        endpoint = request.getfixturevalue("emrfs_endpoint")
        s3 = request.getfixturevalue("emrfs_s3")
        bucket = new_bucket_name("emrfs-spark")
        s3.create_bucket(Bucket=bucket)
        # the consistent view on underneath: every committer rename goes through DynamoDB
        fs = EmrFileSystem(
            endpoint_url=endpoint,
            skip_instance_cache=True,
            consistent=True,
            consistency={"table_name": f"{bucket}-meta"},
        )

        def keys(prefix: str) -> list[str]:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return [o["Key"] for page in pages for o in page.get("Contents", [])]

        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)

        def recorded() -> int:  # items the consistent view wrote: DynamoDB, read raw
            return dynamodb.scan(TableName=f"{bucket}-meta", Select="COUNT")["Count"]

        with serve_in_thread(fs) as gateway:
            yield gateway, bucket, keys, recorded
        empty_and_delete_bucket(s3, bucket)
        dynamodb.delete_table(TableName=f"{bucket}-meta")
    else:
        root = tmp_path_factory.mktemp("spark-served")
        (root / "bucket").mkdir()
        fs = DirFileSystem(str(root), fs=fsspec.filesystem("file"))

        def keys(prefix: str) -> list[str]:
            return [
                str(p.relative_to(root / "bucket"))
                for p in (root / "bucket").rglob("*")
                if p.is_file() and str(p.relative_to(root / "bucket")).startswith(prefix)
            ]

        with serve_in_thread(fs) as gateway:
            yield gateway, "bucket", keys, None


def write_and_read(spark, url: str) -> None:
    """Partitioned write, append, read back with discovery and a partition filter."""
    from pyspark.sql import functions as F

    first = spark.range(0, 200).withColumn("part", (F.col("id") % 3).cast("string"))
    first.write.mode("overwrite").partitionBy("part").parquet(url)
    more = spark.range(200, 260).withColumn("part", F.lit("9"))
    more.write.mode("append").partitionBy("part").parquet(url)
    table = spark.read.parquet(url)
    assert set(table.columns) == {"id", "part"}
    rows = table.collect()
    assert sorted(r.id for r in rows) == list(range(260))
    assert all(r.part == (9 if r.id >= 200 else r.id % 3) for r in rows)  # inferred as int
    filtered = table.filter(F.col("part") == "1").collect()  # partition pruning
    assert sorted(r.id for r in filtered) == list(range(1, 200, 3))


@pytest.mark.parametrize("scheme", ["webhdfs", "emrfs"])
def test_partitioned_parquet_round_trip(spark, served_gateway, scheme):
    gateway, bucket, keys, recorded = served_gateway
    table = f"{scheme}-table"
    write_and_read(spark, f"{scheme}://127.0.0.1:{gateway.port}/{bucket}/{table}")
    written = keys(table + "/")
    parts = {k.split("/")[1] for k in written if k.endswith(".parquet")}
    assert parts == {"part=0", "part=1", "part=2", "part=9"}, written
    assert f"{table}/_SUCCESS" in written
    assert not [k for k in written if "_temporary" in k], written  # the committer cleaned up
    if recorded is not None:
        assert recorded() >= len(written)


AES_KEY = base64.b64encode(bytes(range(32))).decode()


def test_ephemeral_commit_with_cse_and_consistent_view(
    spark, emrfs_fault_proxy, emrfs_s3, tmp_path
):
    """The committer's ``_temporary`` tree stays in the ephemeral tier: no S3 request
    ever names it, the bucket's version history holds none of it, and what does reach
    S3 is ciphertext that Spark reads back as the table it wrote."""
    if not _emrfs_available():
        pytest.skip("needs emrfs's filesystem")
    import boto3

    from emrfs.filesystem import EmrFileSystem
    from emrfs.testing.faults import Failure, FaultPolicy
    from emrfs.testing.pytest_plugin import empty_and_delete_bucket, new_bucket_name

    proxy = emrfs_fault_proxy
    bucket = new_bucket_name("emrfs-spark-eph")
    emrfs_s3.create_bucket(Bucket=bucket)
    # versioning keeps every key ever written, deleted or not: the side channel below
    emrfs_s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    # a tripwire: any S3 request whose bucket/key (or LIST prefix) names _temporary fails
    proxy.set_policy(FaultPolicy(slow_down=Failure(1.0, key_substring="_temporary"), seed=0))
    fs = EmrFileSystem(
        endpoint_url=proxy.url,
        skip_instance_cache=True,
        consistent=True,
        consistency={"table_name": f"{bucket}-meta"},
        cse={
            "enabled": True,
            "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
            "aes_key": AES_KEY,
        },
        cache={
            "enabled": True,
            "directories": [str(tmp_path / "c0"), str(tmp_path / "c1")],
            "block_size": 256 * 1024,
        },
        ephemeral={"enabled": True},
    )
    try:
        with serve_in_thread(fs) as gateway:
            write_and_read(spark, f"webhdfs://127.0.0.1:{gateway.port}/{bucket}/table")
        counts = proxy.counters()
        assert counts.fault("slow_down") == 0, dict(counts.operations)
        assert counts.operations.get("CopyObject", 0) == 0, dict(counts.operations)

        history = emrfs_s3.list_object_versions(Bucket=bucket)
        ever = {v["Key"] for v in history.get("Versions", []) + history.get("DeleteMarkers", [])}
        assert ever and not [k for k in ever if "_temporary" in k], sorted(ever)
        dynamodb = boto3.client("dynamodb", endpoint_url=proxy.upstream)
        items = dynamodb.scan(TableName=f"{bucket}-meta")["Items"]  # the consistent view
        assert len(items) >= len(ever) and "_temporary" not in repr(items)
        data = sorted(k for k in ever if k.endswith(".parquet"))
        assert {k.split("/")[1] for k in data} == {"part=0", "part=1", "part=2", "part=9"}
        for key in data:
            stored = emrfs_s3.get_object(Bucket=bucket, Key=key)
            assert stored["Body"].read(4) != b"PAR1", key  # ciphertext in S3
            assert any(k.startswith("x-amz-") for k in stored["Metadata"]), key  # CSE's
            plain = fs.cat_file(f"{bucket}/{key}")
            assert plain[:4] == plain[-4:] == b"PAR1", key
    finally:
        fs._cached.local.tier.terminate()
        empty_and_delete_bucket(emrfs_s3, bucket)
        boto3.client("dynamodb", endpoint_url=proxy.upstream).delete_table(
            TableName=f"{bucket}-meta"
        )


def test_dynamic_partition_overwrite_with_the_staged_commit(
    spark, emrfs_endpoint, emrfs_s3, tmp_path, caplog
):
    """Spark's dynamic partition overwrite writes below ``.spark-staging-*`` and renames
    partitions into the table after the job commit: with the staged task commit, the
    uploads are staged at the partitions' final keys and completed by that rename; the
    partitions not written stay, and nothing of the staging directories reaches S3."""
    if not _emrfs_available():
        pytest.skip("needs emrfs's filesystem")
    from pyspark.sql import functions as F

    from emrfs.filesystem import EmrFileSystem
    from emrfs.testing.pytest_plugin import empty_and_delete_bucket, new_bucket_name

    bucket = new_bucket_name("emrfs-spark-dyn")
    emrfs_s3.create_bucket(Bucket=bucket)
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        consistent=True,
        consistency={"table_name": f"{bucket}-meta"},
        cache={"enabled": True, "directories": [str(tmp_path / "c0")]},
        ephemeral={"task_commit": "staged"},
    )
    try:
        with serve_in_thread(fs) as gateway:
            url = f"webhdfs://127.0.0.1:{gateway.port}/{bucket}/table"
            first = spark.range(0, 90).withColumn("part", (F.col("id") % 3).cast("string"))
            first.write.mode("overwrite").partitionBy("part").parquet(url)
            spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
            try:
                again = spark.range(1000, 1010).withColumn("part", F.lit("1"))
                again.write.mode("overwrite").partitionBy("part").parquet(url)
            finally:
                spark.conf.unset("spark.sql.sources.partitionOverwriteMode")
            rows = spark.read.parquet(url).collect()
        assert sorted(r.id for r in rows if r.part == 1) == list(range(1000, 1010))
        assert sorted(r.id for r in rows if r.part != 1) == [i for i in range(90) if i % 3 != 1]
        keys = [o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert not [k for k in keys if "spark-staging" in k or "_temporary" in k], keys
        assert not emrfs_s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
        # staged at the keys the partitions ended at: completed in place, never copied
        assert "one S3 copy" not in caplog.text
    finally:
        fs._cached.local.tier.terminate()
        empty_and_delete_bucket(emrfs_s3, bucket)
        import boto3

        boto3.client("dynamodb", endpoint_url=emrfs_endpoint).delete_table(
            TableName=f"{bucket}-meta"
        )

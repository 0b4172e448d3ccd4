"""Spark ``local[4]`` through the gateway with every layer on (cache, consistent view,
CSE, tier): a table of 16 partitions keyed by a non-ASCII column, written and read
back without a timeout.  Before, the partition paths (raw UTF-8 in Hadoop's request
lines) were refused with 400, and concurrent reads of CSE objects deadlocked."""

from __future__ import annotations

import base64

import pytest

from emrfs.gateway import serve_in_thread

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]

CITIES = ["Zürich", "São Paulo", "Kraków", "東京", "Montréal", "Ørsted", "Île de Ré", "Málaga"]
#: partitions (each city twice, four writer tasks: 64 files, written and read concurrently)
PARTITIONS = 16
ROWS = 100 * PARTITIONS
AES_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(scope="module")
def spark4():
    pytest.importorskip("pyspark")
    from emrfs.testing.spark import local_session

    session = local_session(
        "emrfs-gateway-non-ascii",
        conf={"spark.master": "local[4]", "spark.sql.shuffle.partitions": "4"},
    )
    yield session
    session.stop()


def test_non_ascii_partitions_with_every_layer_on(spark4, emrfs_endpoint, emrfs_s3, tmp_path):
    import boto3
    from pyspark.sql import functions as F

    from emrfs.filesystem import EmrFileSystem
    from emrfs.testing.pytest_plugin import empty_and_delete_bucket, new_bucket_name

    bucket = new_bucket_name("emrfs-spark-utf8")
    emrfs_s3.create_bucket(Bucket=bucket)
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        consistent=True,
        consistency={"table_name": f"{bucket}-meta"},
        cse={
            "enabled": True,
            "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
            "aes_key": AES_KEY,
        },
        cache={"enabled": True, "directories": [str(tmp_path / "c0")], "block_size": 256 * 1024},
        ephemeral={"enabled": True},
    )
    names = [f"{CITIES[i % len(CITIES)]} {i}" for i in range(PARTITIONS)]
    try:
        with serve_in_thread(fs) as gateway:
            url = f"webhdfs://127.0.0.1:{gateway.port}/{bucket}/cities"
            frame = spark4.createDataFrame(
                [(i, names[i % PARTITIONS]) for i in range(ROWS)], ["id", "city"]
            )
            frame.repartition(4).write.mode("overwrite").partitionBy("city").parquet(url)
            table = spark4.read.parquet(url)
            rows = table.collect()
            one = table.filter(F.col("city") == names[3]).collect()  # partition pruning
        assert sorted(r.id for r in rows) == list(range(ROWS))
        assert all(r.city == names[r.id % PARTITIONS] for r in rows)
        assert sorted(r.id for r in one) == list(range(3, ROWS, PARTITIONS))
        keys = [
            o["Key"]
            for page in emrfs_s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix="cities/"
            )
            for o in page.get("Contents", [])
        ]
        data = [k for k in keys if k.endswith(".parquet")]
        assert {k.split("/")[1] for k in data} == {f"city={n}" for n in names}
        assert not [k for k in keys if "_temporary" in k]
        stored = emrfs_s3.get_object(Bucket=bucket, Key=data[0])
        assert stored["Body"].read(4) != b"PAR1"  # ciphertext in S3
    finally:
        fs._cached.local.tier.terminate()
        empty_and_delete_bucket(emrfs_s3, bucket)
        boto3.client("dynamodb", endpoint_url=emrfs_endpoint).delete_table(
            TableName=f"{bucket}-meta"
        )

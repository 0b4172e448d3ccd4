"""pyspark ``local[2]`` writing and reading partitioned Parquet through the gateway.

Both URL forms: ``webhdfs://host:port/bucket/path`` and ``emrfs://host:port/...``
with ``fs.emrfs.impl`` set to Hadoop's ``WebHdfsFileSystem``.  One
SparkSession for the module; output checked on the served filesystem directly.
"""

from __future__ import annotations

import os

import fsspec
import pytest
from fsspec.implementations.dirfs import DirFileSystem

from emrfs.gateway import serve_in_thread

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = (
        SparkSession.builder.master("local[2]").appName("emrfs-gateway-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "768m")
        # a short-lived driver: C1 only and the serial collector start faster
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.hadoop.fs.emrfs.impl", "org.apache.hadoop.hdfs.web.WebHdfsFileSystem")
        .config("spark.hadoop.fs.webhdfs.impl.disable.cache", "true")
        .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def local_gateway(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark-served")
    (root / "bucket").mkdir()
    fs = DirFileSystem(str(root), fs=fsspec.filesystem("file"))
    with serve_in_thread(fs) as gateway:
        yield gateway, fs


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


def check_layout(fs, path: str) -> None:
    names = {p.rpartition("/")[2] for p in fs.ls(path, detail=False)}
    assert {"part=0", "part=1", "part=2", "part=9", "_SUCCESS"} <= names, names
    assert "_temporary" not in names
    parquet = [p for p in fs.find(path) if p.endswith(".parquet")]
    assert parquet and all("_temporary" not in p for p in parquet)


@pytest.mark.parametrize("scheme", ["webhdfs", "emrfs"])
def test_partitioned_parquet_round_trip(spark, local_gateway, scheme):
    gateway, fs = local_gateway
    url = f"{scheme}://127.0.0.1:{gateway.port}/bucket/{scheme}-table"
    write_and_read(spark, url)
    check_layout(fs, f"bucket/{scheme}-table")

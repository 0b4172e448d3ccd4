"""A pyspark session for tests and benchmarks of the WebHDFS gateway.

``local_session("my-test")`` is a ``local[2]`` session on loopback that reaches
a gateway through ``webhdfs://`` and ``emrfs://`` (Hadoop's WebHDFS client under
emrfs's scheme), starts quickly (C1 compiler, serial GC) and logs errors only.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["local_session"]


def local_session(
    app_name: str, *, driver_memory: str = "768m", conf: dict[str, str] | None = None
) -> Any:
    """A new (or the running) ``local[2]`` SparkSession; needs pyspark and Java 17."""
    from pyspark.sql import SparkSession

    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    builder = (
        SparkSession.builder.master("local[2]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", driver_memory)
        # a short-lived driver: C1 only and the serial collector start faster
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.hadoop.fs.emrfs.impl", "org.apache.hadoop.hdfs.web.WebHdfsFileSystem")
        .config("spark.hadoop.fs.webhdfs.impl.disable.cache", "true")
    )
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session

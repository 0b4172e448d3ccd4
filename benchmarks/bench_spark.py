"""A Spark Parquet job through the gateway: the ephemeral tier (local or staged task
commit) against no tier.

    python -m benchmarks.bench_spark                    # 300,000 rows, 256 MiB gateway I/O
    python -m benchmarks.bench_spark --rows 100000 --gateway-mib 0   # Spark part only

pyspark ``local[2]`` writes a table partitioned on one column
(``partitionBy``) to ``webhdfs://`` on an in-process gateway and reads it back.
The gateway serves an EmrFileSystem with the block cache on, once with the
ephemeral tier keeping ``_temporary`` in local blocks (task commit ``local``: files
go up at job commit; ``staged``: they go up at task commit as open multipart
uploads recorded in the consistent view's table, and job commit completes them),
and once without it (the committer's attempt files then go to S3 and its
renames are S3 copies).
Between that filesystem and moto sits a :class:`emrfs.testing.FaultProxy`
that injects nothing and counts the S3 requests, printed by kind.

Then ``bench_gateway.py`` measures the gateway's read and write of one large
file against emrfs used directly (``--gateway-mib``, 0 skips it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: S3 operation names of the proxy's counters, by the kind reported.
KINDS = {
    "PUT": ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"),
    "GET": ("GetObject",),
    "HEAD": ("HeadObject", "HeadBucket"),
    "LIST": ("ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads"),
    "COPY": ("CopyObject", "UploadPartCopy"),
    "DELETE": ("DeleteObject", "DeleteObjects", "AbortMultipartUpload"),
}


#: the metadata table's operations (counted apart, as "DDB").
DYNAMODB_OPS = frozenset(
    {
        "GetItem",
        "PutItem",
        "DeleteItem",
        "UpdateItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "DescribeTable",
        "CreateTable",
        "UpdateTimeToLive",
        "DescribeTimeToLive",
        "ListTables",
    }
)


def by_kind(operations: dict[str, int]) -> Counter:
    """S3 requests per kind; S3 operations outside :data:`KINDS` keep their own name."""
    kind_of = {op: kind for kind, ops in KINDS.items() for op in ops}
    counts: Counter = Counter()
    for op, n in operations.items():
        if op not in DYNAMODB_OPS:
            counts[kind_of.get(op, op)] += n
    return counts


def spark_session():
    from emrfs.testing.spark import local_session

    return local_session("emrfs-bench-spark", driver_memory="1g")


def run_job(spark, url: str, rows: int, parts: int) -> tuple[float, float]:
    """Write the partitioned table, read it back whole; (write s, read s)."""
    from pyspark.sql import functions as F

    df = (
        spark.range(0, rows, numPartitions=2)
        .withColumn("part", (F.col("id") % parts).cast("string"))
        .withColumn("payload", F.sha2(F.col("id").cast("string"), 256))
    )
    start = time.perf_counter()
    df.write.mode("overwrite").partitionBy("part").parquet(url)
    wrote = time.perf_counter() - start
    start = time.perf_counter()
    got = spark.read.parquet(url).agg(F.count("*"), F.sum("id")).collect()[0]
    read = time.perf_counter() - start
    assert (got[0], got[1]) == (rows, rows * (rows - 1) // 2), got
    return wrote, read


def measure(
    spark, proxy, endpoint: str, ephemeral: bool, rows: int, parts: int, staged: bool = False
) -> dict:
    import boto3

    from emrfs.filesystem import EmrFileSystem
    from emrfs.gateway import serve_in_thread
    from emrfs.testing.pytest_plugin import empty_and_delete_bucket

    s3 = boto3.client("s3", endpoint_url=endpoint)
    bucket = f"bench-spark-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    cache_dir = tempfile.mkdtemp(prefix="bench-spark-cache-")
    extra = {"consistent": True, "consistency.table_name": f"bench-{bucket}"} if staged else {}
    fs = EmrFileSystem(
        endpoint_url=proxy.url,
        skip_instance_cache=True,
        cache={"enabled": True, "directories": [cache_dir]},
        ephemeral={"enabled": ephemeral, "task_commit": "staged" if staged else "local"},
        **extra,
    )
    try:
        with serve_in_thread(fs) as gateway:
            url = f"webhdfs://127.0.0.1:{gateway.port}/{bucket}/table"
            proxy.reset_counters()
            wrote, read = run_job(spark, url, rows, parts)
            counts = proxy.counters()
        temporary = [
            o["Key"]
            for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])
            if "_temporary" in o["Key"]
        ]
        assert not temporary, temporary  # the committer cleaned up either way
        assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
        return {
            "write": wrote,
            "read": read,
            "kinds": by_kind(dict(counts.operations)),
            "s3": counts.services.get("s3", 0),
            "ddb": counts.services.get("dynamodb", 0),
        }
    finally:
        if ephemeral:
            fs._cached.local.tier.terminate()
        shutil.rmtree(cache_dir, ignore_errors=True)
        empty_and_delete_bucket(s3, bucket)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--parts", type=int, default=4, help="values of the partition column")
    parser.add_argument(
        "--gateway-mib",
        type=int,
        default=256,
        help="file size of the gateway-vs-direct run (0: skip it)",
    )
    args = parser.parse_args(argv)

    from emrfs.testing import FaultProxy, LocalServers

    spark = spark_session()
    try:
        with LocalServers() as servers, FaultProxy(servers.endpoint_url) as proxy:
            # a warm-up write so JIT and Hadoop client start-up are not in the first figure
            measure(spark, proxy, servers.endpoint_url, True, 1000, args.parts)
            results = {
                label: measure(
                    spark, proxy, servers.endpoint_url, on, args.rows, args.parts, staged
                )
                for label, on, staged in (
                    ("tier, local", True, False),
                    ("tier, staged", True, True),
                    ("no tier", False, False),
                )
            }
    finally:
        spark.stop()
    kinds = list(KINDS) + sorted({k for r in results.values() for k in r["kinds"]} - set(KINDS))
    print(
        f"Spark local[2]: {args.rows:,} rows, partitionBy over {args.parts} values, "
        "Parquet through the gateway (cache on)"
    )
    print(
        f"  {'':15s} {'write s':>8s} {'read s':>7s} {'S3 req':>7s} {'DDB':>5s} "
        + " ".join(f"{k:>6s}" for k in kinds)
    )
    for label, r in results.items():
        print(
            f"  {label:15s} {r['write']:8.2f} {r['read']:7.2f} {r['s3']:7d} {r['ddb']:5d} "
            + " ".join(f"{r['kinds'].get(k, 0):6d}" for k in kinds)
        )
    if args.gateway_mib:
        from benchmarks import bench_gateway

        bench_gateway.main(["--size-mib", str(args.gateway_mib)])
    return 0


if __name__ == "__main__":
    sys.exit(main())

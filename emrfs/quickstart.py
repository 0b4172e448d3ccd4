"""Quickstart: what emrfs adds to S3, shown on the embedded servers in under a minute.

Run with ``python -m emrfs.quickstart`` (``pip install -e '.[quickstart]'``).
It starts moto's S3, DynamoDB and KMS on 127.0.0.1 (or uses
``EMRFS_ENDPOINT_URL`` when set) and walks through:

1. HDFS-like directories: an empty directory, a tree renamed in one call;
2. the consistent view: a change made behind emrfs's back with raw boto3 is
   caught, then ``emrfs diff`` shows it and ``emrfs sync`` mends it;
3. client-side encryption: ciphertext on S3, plaintext through emrfs;
4. the block cache: a cold read, then a warm one, and the speed-up;
5. a pandas DataFrame to Parquet and back;

then prints where to go next.  Everything it creates (a bucket, a DynamoDB
table, a KMS key's use, a cache directory) is removed at the end.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import textwrap
import time
import uuid
from typing import Any

CACHE_OBJECT_MIB = 32


class NotAsShown(Exception):
    """A step did not behave as the quickstart says it does (exit status 1)."""


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise NotAsShown(what)


def _say(step: str, text: str) -> None:
    print(f"\n== {step}: {text}", flush=True)


def _raw_keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _cli(*argv: str) -> int:
    """Run one ``emrfs`` command in this process, echoing it as a shell would."""
    from emrfs.cli import main as emrfs_main

    print("   $ emrfs " + " ".join(argv), flush=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = emrfs_main(list(argv))
    for line in out.getvalue().splitlines():
        print("     " + line)
    return code


def directories(fs: Any, s3: Any, bucket: str) -> None:
    _say("1. Directories", "real directories and tree renames, as on HDFS")
    fs.mkdir(f"{bucket}/inbox")
    print(
        f"   mkdir emrfs://{bucket}/inbox -> an empty directory: "
        f"type={fs.info(f'{bucket}/inbox')['type']!r}, ls={fs.ls(f'{bucket}/inbox')}"
    )
    print(f"   on S3 it is a marker object: {_raw_keys(s3, bucket, 'inbox')}")
    _expect(_raw_keys(s3, bucket, "inbox") == ["inbox/"], "mkdir writes the marker inbox/")
    fs.pipe(
        {
            f"{bucket}/jobs/2026-11/day=01/part-0.csv": b"a,b\n1,2\n",
            f"{bucket}/jobs/2026-11/day=02/part-0.csv": b"a,b\n3,4\n",
            f"{bucket}/jobs/2026-11/_SUCCESS": b"",
        }
    )
    fs.mv(f"{bucket}/jobs/2026-11", f"{bucket}/archive/2026-11", recursive=True)
    print("   mv jobs/2026-11 -> archive/2026-11 (one call; server-side copies in parallel):")
    for key in _raw_keys(s3, bucket):
        print(f"     s3://{bucket}/{key}")
    print(f"   jobs/ is still a directory, now empty: type={fs.info(f'{bucket}/jobs')['type']!r}")
    _expect(
        not _raw_keys(s3, bucket, "jobs/2026-11")
        and len(_raw_keys(s3, bucket, "archive/2026-11/")) == 3,
        "mv moves the whole tree",
    )


def consistent_view(endpoint: str, s3: Any, bucket: str, table: str) -> None:
    from emrfs import EmrFileSystem
    from emrfs.errors import ConsistencyError

    _say("2. Consistent view", f"every change through emrfs is recorded in DynamoDB ({table})")
    fs = EmrFileSystem(
        endpoint_url=endpoint,
        skip_instance_cache=True,
        consistent=True,
        consistency={"table_name": table, "retry_count": 2, "retry_period_seconds": 0.2},
    )
    fs.pipe(
        {
            f"{bucket}/sales/q1.csv": b"region,total\nnorth,10\n",
            f"{bucket}/sales/q2.csv": b"region,total\nnorth,12\n",
        }
    )
    print(
        f"   wrote sales/q1.csv and sales/q2.csv through emrfs; ls: "
        f"{sorted(p.rsplit('/', 1)[1] for p in fs.ls(f'{bucket}/sales', detail=False))}"
    )
    print("   now another program changes S3 behind emrfs's back (raw boto3):")
    s3.delete_object(Bucket=bucket, Key="sales/q1.csv")
    s3.put_object(Bucket=bucket, Key="sales/q3.csv", Body=b"region,total\nnorth,14\n")
    print(f"     deleted s3://{bucket}/sales/q1.csv, put s3://{bucket}/sales/q3.csv")
    emrfs_log = logging.getLogger("emrfs")
    level, emrfs_log.level = emrfs_log.level, logging.ERROR  # the error below says it all
    try:
        fs.cat(f"{bucket}/sales/q1.csv")
        _expect(False, "reading a file deleted behind emrfs's back raises ConsistencyError")
    except ConsistencyError as exc:
        print("   reading sales/q1.csv through emrfs is refused once the retries run out:")
        print(
            textwrap.fill(
                f"ConsistencyError: {exc}",
                width=100,
                initial_indent="     ",
                subsequent_indent="       ",
            )
        )
    finally:
        emrfs_log.level = level
    print("   (on plain S3 that file would just be gone, and nobody would know it had existed)")
    print("   emrfs diff compares the bucket with the table:")
    found = _cli("diff", f"s3://{bucket}/sales", "-m", table, "--endpoint-url", endpoint)
    _expect(found == 1, "emrfs diff finds the two changes (exit status 1)")
    print("   emrfs sync makes the table match S3:")
    _cli("sync", f"s3://{bucket}/sales", "-m", table, "--endpoint-url", endpoint)
    clean = _cli("diff", f"s3://{bucket}/sales", "-m", table, "--endpoint-url", endpoint)
    fs.invalidate_cache()
    names = sorted(p.rsplit("/", 1)[1] for p in fs.ls(f"{bucket}/sales", detail=False))
    _expect(clean == 0 and names == ["q2.csv", "q3.csv"], "emrfs sync mends the table")
    print(f"   mended (diff is clean): ls now shows {names}")


def client_side_encryption(endpoint: str, s3: Any, bucket: str) -> None:
    import boto3

    from emrfs import EmrFileSystem

    _say("3. Client-side encryption", "ciphertext on S3, plaintext through emrfs")
    key_id = boto3.client("kms", endpoint_url=endpoint).create_key(Description="emrfs quickstart")[
        "KeyMetadata"
    ]["KeyId"]
    fs = EmrFileSystem(
        endpoint_url=endpoint, skip_instance_cache=True, cse={"enabled": True, "kms_key_id": key_id}
    )
    secret = b"patient,diagnosis\nA-17,flu\n"
    fs.pipe_file(f"{bucket}/private/records.csv", secret)
    raw = s3.get_object(Bucket=bucket, Key="private/records.csv")
    stored = raw["Body"].read()
    print(f"   wrote {len(secret)} bytes with CSE-KMS (key {key_id[:8]}...)")
    print(f"   raw boto3 GET: {len(stored)} bytes {stored[:24]!r}...")
    print(
        f"   ... and the envelope (the data key wrapped by KMS, the IV, the algorithms) in its "
        f"metadata: {sorted(k for k in raw['Metadata'] if k.startswith('x-amz'))}"
    )
    print(f"   plaintext on S3? {secret in stored}")
    plaintext = fs.cat_file(f"{bucket}/private/records.csv")
    print(f"   through emrfs: {plaintext!r}")
    _expect(secret not in stored and plaintext == secret, "ciphertext on S3, plaintext back")


def _read_job(endpoint: str, path: str, cache_dir: str) -> None:
    """One job's read of ``path`` through the cache (run in its own process): prints JSON."""
    import json

    from emrfs import EmrFileSystem

    fs = EmrFileSystem(
        endpoint_url=endpoint,
        skip_instance_cache=True,
        cache={"enabled": True, "directories": [cache_dir]},
    )
    fs.info(path)  # connect first: the timing is the read alone
    started = time.perf_counter()
    with fs.open(path, "rb") as f:
        while f.read(4 * 1024 * 1024):
            pass
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, **fs.cache_metrics()}))
    # the interpreter's exit waits for the block writes still queued


def block_cache(endpoint: str, bucket: str, cache_dir: str) -> None:
    import json
    import subprocess

    _say("4. Block cache", f"a {CACHE_OBJECT_MIB} MiB object read by two jobs, cold then warm")
    path = f"{bucket}/big/object.bin"
    fsspec_fs(endpoint).pipe_file(path, os.urandom(1024 * 1024) * CACHE_OBJECT_MIB)
    timings = []
    for run in ("cold", "warm"):
        # each job is its own process, as two jobs on one machine are: the cache is shared
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from emrfs.quickstart import _read_job; _read_job(*sys.argv[1:])",
                endpoint,
                path,
                cache_dir,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        job = json.loads(done.stdout.strip().splitlines()[-1])
        timings.append(job["seconds"])
        _expect(run == "cold" or job.get("misses", 0) == 0, "the warm read is served locally")
        if run == "cold":
            where = "from S3; each block is also written to the local cache"
        else:
            where = f"from local blocks (cache misses: {job.get('misses', 0)})"
        print(
            f"   {run} read: {job['seconds']:6.3f} s "
            f"({CACHE_OBJECT_MIB / job['seconds']:5.0f} MiB/s) {where}"
        )
    print(
        f"   the warm read is {timings[0] / timings[1]:.0f}x faster: S3 was only asked whether "
        "the object had changed (HEAD)"
    )


def dataframes(endpoint: str, bucket: str) -> None:
    import pandas as pd

    _say("5. DataFrames", "pandas writes and reads emrfs:// URLs")
    options = {"endpoint_url": endpoint}
    frame = pd.DataFrame(
        {"city": ["Oslo", "Lima", "Pune", "Kobe"], "temp_c": [3.5, 19.0, 27.25, 12.0]}
    )
    url = f"emrfs://{bucket}/weather/readings.parquet"
    frame.to_parquet(url, storage_options=options)
    back = pd.read_parquet(url, storage_options=options)
    print(
        f"   df.to_parquet({url!r}, storage_options=...) then pd.read_parquet: "
        f"{len(back)} rows, identical: {back.equals(frame)}"
    )
    _expect(back.equals(frame), "the DataFrame reads back as written")


def next_steps() -> None:
    _say("Next", "where to go from here")
    print("   docs/recipes.md      pandas, pyarrow, dask, polars, DuckDB, UPath, zarr, Spark")
    print("   docs/gateway.md      Spark and `hadoop fs` through `emrfs gateway` (WebHDFS)")
    print("   docs/encryption.md   SSE-S3/KMS/C and client-side encryption (KMS, AES, RSA)")
    print("   docs/testing.md      FaultProxy: inject inconsistency and throttling in your tests")
    print("   emrfs --help         metadata (diff, sync, fsck...), cache, gateway, local servers")
    print("   emrfs local up       keep these servers running and print what to export")


def fsspec_fs(endpoint: str) -> Any:
    """A plain emrfs filesystem (no consistent view, no cache) on ``endpoint``."""
    import fsspec

    return fsspec.filesystem("emrfs", endpoint_url=endpoint, skip_instance_cache=True)


def _cleanup(endpoint: str, s3: Any, bucket: str, table: str) -> None:
    import boto3

    keys = _raw_keys(s3, bucket)  # not emrfs.testing's helper: that module needs pytest
    for start in range(0, len(keys), 1000):
        s3.delete_objects(
            Bucket=bucket,
            Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True},
        )
    s3.delete_bucket(Bucket=bucket)
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
    with contextlib.suppress(dynamodb.exceptions.ResourceNotFoundException):
        dynamodb.delete_table(TableName=table)


def main() -> int:
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        print(
            "the quickstart needs pandas and pyarrow: pip install 'emrfs[quickstart]'",
            file=sys.stderr,
        )
        return 2
    import boto3
    import fsspec

    from emrfs.testing import LocalServers

    started = time.perf_counter()
    with LocalServers() as servers:
        endpoint = servers.start()  # started already: returns the URL
        where = "embedded moto server" if servers.embedded else "EMRFS_ENDPOINT_URL"
        print(f"S3, DynamoDB and KMS at {endpoint} ({where})")
        s3 = boto3.client("s3", endpoint_url=endpoint)
        fs = fsspec.filesystem("emrfs", endpoint_url=endpoint, skip_instance_cache=True)
        bucket = f"quickstart-{uuid.uuid4().hex[:8]}"
        table = f"{bucket}-metadata"
        fs.mkdir(bucket)
        print(f"created bucket emrfs://{bucket}")
        try:
            with tempfile.TemporaryDirectory(prefix="emrfs-quickstart-cache-") as cache_dir:
                directories(fs, s3, bucket)
                consistent_view(endpoint, s3, bucket, table)
                client_side_encryption(endpoint, s3, bucket)
                block_cache(endpoint, bucket, cache_dir)
                dataframes(endpoint, bucket)
        except NotAsShown as exc:
            print(
                f"\nquickstart: expected that {exc}, and it did not happen; please report "
                "this with the output above",
                file=sys.stderr,
            )
            return 1
        finally:
            _cleanup(endpoint, s3, bucket, table)
        print(
            f"\nremoved emrfs://{bucket} and table {table}; "
            f"done in {time.perf_counter() - started:.1f} s"
        )
        next_steps()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Requests and bytes of a 2-column Parquet read, per client, with where each request came from.

The read-planning target (issue 13): ``pq.read_table(path, columns=[2 of 10],
filesystem=fs)`` of a one-row-group file costs at most 3 requests and at most
1.05x the selected column chunks' bytes.  This script writes such a file with
raw boto3, then reads it through emrfs (``pq.read_table`` and
``pandas.read_parquet`` with ``storage_options``) and through pyarrow's own
``S3FileSystem``, each through :class:`benchmarks.proxy.CountingProxy`, and
prints requests by method and response bytes.  ``--stacks`` prints, for every
emrfs S3 call, the operation and the caller's stack (the thread that called
into fsspec, not the event loop's).

    python -m benchmarks.parquet_requests                       # embedded moto
    python -m benchmarks.parquet_requests --rows 2000000 --stacks
    python -m benchmarks.parquet_requests --server seaweedfs    # weed mini

On moto a ranged GET makes the server read the whole object: compare requests
and bytes here, not time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import threading
import time
import traceback
import uuid

COLUMNS = ["c0", "c5"]


def parquet_file(rows: int) -> tuple[bytes, int]:
    """A 10-column, one-row-group Parquet file and its 2 selected columns' chunk bytes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(42)
    cols = {f"c{i}": rng.integers(0, 1000 * (i + 1), rows) for i in range(5)}
    cols.update({f"c{i}": rng.random(rows) for i in range(5, 10)})
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf, row_group_size=rows)
    data = buf.getvalue()
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    if meta.num_row_groups != 1:
        raise AssertionError(f"{meta.num_row_groups} row groups, expected 1")
    rg = meta.row_group(0)
    selected = sum(
        rg.column(c).total_compressed_size
        for c in range(meta.num_columns)
        if meta.schema.column(c).name in COLUMNS
    )
    return data, selected


@contextlib.contextmanager
def stack_printer(enabled: bool):
    """Print every emrfs S3 call (operation, caller stack) while the block runs."""
    if not enabled:
        yield
        return
    from emrfs.s3.client import S3Client

    main = threading.main_thread().ident
    calls = []
    original_call, original_get = S3Client.call, S3Client._conditional_get

    def note(op: str) -> None:
        caller = sys._current_frames().get(main)
        frames = traceback.extract_stack(caller)[-14:] if caller is not None else []
        calls.append((op, frames))
        print(f"--- {op}", file=sys.stderr)
        for frame in frames:
            if "site-packages/fsspec/asyn.py" in frame.filename:
                continue
            print(f"    {frame.filename}:{frame.lineno} {frame.name}", file=sys.stderr)

    async def call(self, method, path, **kwargs):
        note(method)
        return await original_call(self, method, path, **kwargs)

    async def conditional_get(self, path, **kwargs):
        note(f"get_object Range={kwargs.get('Range')} IfMatch={kwargs.get('IfMatch')}")
        return await original_get(self, path, **kwargs)

    S3Client.call, S3Client._conditional_get = call, conditional_get
    try:
        yield
    finally:
        S3Client.call, S3Client._conditional_get = original_call, original_get


def measure(name: str, proxy, read, rows: int, selected: int, stacks: bool) -> dict:
    read.forget()
    proxy.reset()
    print(f"== {name}", file=sys.stderr) if stacks else None
    with stack_printer(stacks and name.startswith("emrfs")):
        got = read()
    if got != rows:
        raise AssertionError(f"{name}: read {got} rows, expected {rows}")
    traffic = proxy.snapshot()
    row = {
        "client": name,
        "requests": traffic.total_requests,
        "by_method": dict(sorted(traffic.requests.items())),
        "bytes_from_server": traffic.bytes_from_server,
        "x_selected": traffic.bytes_from_server / selected,
    }
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (default 1000000)")
    parser.add_argument("--server", choices=("moto", "seaweedfs"), default="moto")
    parser.add_argument("--stacks", action="store_true", help="print each emrfs call's caller")
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="also time each client this many interleaved rounds, straight to "
        "the server (no relay); medians (default 0: no timing)",
    )
    args = parser.parse_args(argv)

    import boto3
    import pandas as pd
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from benchmarks.proxy import CountingProxy
    from emrfs import EmrFileSystem

    data, selected = parquet_file(args.rows)
    with contextlib.ExitStack() as stack:
        if args.server == "seaweedfs":
            from emrfs.testing.localserver import DUMMY_CREDENTIALS

            for name, value in DUMMY_CREDENTIALS.items():  # weed checks signatures with these
                os.environ.setdefault(name, value)
            from benchmarks.seaweedfs import SeaweedServer

            endpoint = stack.enter_context(SeaweedServer()).endpoint_url
        else:
            from emrfs.testing import LocalServers

            endpoint = stack.enter_context(LocalServers(use_env=False)).endpoint_url
        proxy = stack.enter_context(CountingProxy(endpoint))
        bucket = f"pq-{uuid.uuid4().hex[:12]}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="t.parquet", Body=data)
        path = f"{bucket}/t.parquet"
        print(
            f"file {len(data) / 2**20:.1f} MiB, selected column chunks {selected:,} bytes",
            file=sys.stderr,
        )

        target = {"url": proxy.url}  # the relay while counting, the server while timing

        def emrfs_fs():  # one per endpoint, kept as a user keeps it
            return EmrFileSystem(endpoint_url=target["url"])

        def forget() -> None:  # each run starts knowing no status (as another file would)
            emrfs_fs().invalidate_cache()

        def emrfs_pq():
            return pq.read_table(path, columns=COLUMNS, filesystem=emrfs_fs()).num_rows

        def emrfs_pandas():
            return len(
                pd.read_parquet(
                    f"emrfs://{path}",
                    columns=COLUMNS,
                    storage_options={"endpoint_url": target["url"]},
                )
            )

        def emrfs_open_parquet_file():  # fsspec's planner: sizes, cat_ranges (footer, columns)
            from fsspec.parquet import open_parquet_file

            with open_parquet_file(
                path, fs=emrfs_fs(), columns=COLUMNS, footer_sample_size=64 * 1024
            ) as f:
                return pq.read_table(f, columns=COLUMNS).num_rows

        pyarrow_filesystems: dict = {}

        def pyarrow_s3():  # one per endpoint, kept as a user keeps it
            url = target["url"]
            if url not in pyarrow_filesystems:
                pyarrow_filesystems[url] = pafs.S3FileSystem(
                    endpoint_override=url, scheme="http", region="us-east-1"
                )
            return pq.read_table(
                path, columns=COLUMNS, filesystem=pyarrow_filesystems[url]
            ).num_rows

        for read in (emrfs_pq, emrfs_pandas, emrfs_open_parquet_file, pyarrow_s3):
            read.forget = forget
        clients = (
            ("emrfs pq.read_table", emrfs_pq),
            ("emrfs pandas.read_parquet", emrfs_pandas),
            ("emrfs open_parquet_file", emrfs_open_parquet_file),
            ("pyarrow S3FileSystem", pyarrow_s3),
        )
        rows = [
            measure(name, proxy, read, args.rows, selected, args.stacks) for name, read in clients
        ]
        times: dict[str, list[float]] = {name: [] for name, _ in clients}
        target["url"] = endpoint
        for round_ in range(args.rounds):  # interleaved, order rotated each round
            shift = round_ % len(clients)
            for name, read in clients[shift:] + clients[:shift]:
                read.forget()
                began = time.perf_counter()
                read()
                times[name].append(time.perf_counter() - began)
        for row in rows:
            if times[row["client"]]:
                row["seconds"] = statistics.median(times[row["client"]])
    print(f"{'client':28} {'requests':>8}  {'by method':24} {'bytes':>12} {'x selected':>10}")
    for row in rows:
        methods = " ".join(f"{k}={v}" for k, v in row["by_method"].items())
        print(
            f"{row['client']:28} {row['requests']:>8}  {methods:24} "
            f"{row['bytes_from_server']:>12,} {row['x_selected']:>10.3f}"
            + (f" {row['seconds']:8.3f} s" if "seconds" in row else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

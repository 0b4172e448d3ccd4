"""S3 benchmarks: emrfs against obstore, boto3, aiobotocore, s3fs and pyarrow on one server.

    python -m benchmarks.bench_s3                         # default cases on SeaweedFS
    python -m benchmarks.bench_s3 --quick                 # smoke test: tiny sizes, 1 round
    python -m benchmarks.bench_s3 --cases large_read --size-mib 64 --rounds 3
    python -m benchmarks.bench_s3 --stream --fork         # + 1 GiB streaming, forked children
    python -m benchmarks.bench_s3 --server moto           # embedded moto
    EMRFS_ENDPOINT_URL=http://127.0.0.1:4566 python -m benchmarks.bench_s3

Every variant makes the calls a user would make with its library; emrfs is
used through the fsspec API (``fs.open``, ``cat_file``, ``pipe``, ``cat(list)``,
``find``, ``pq.read_table(path, filesystem=fs)``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from .harness import Case, CaseContext, Env, Registry, Variant
from .payload import PatternReader, pattern_chunks

MiB = 2**20
STREAM_CHUNK = 8 * MiB

REGISTRY = Registry("python -m benchmarks.bench_s3", __doc__.split("\n\n")[0])
REGISTRY.option("--size-mib", type=int, default=256, help="large object size (default 256)")
REGISTRY.option("--small-count", type=int, default=2000, help="small objects (default 2000)")
REGISTRY.option("--small-kib", type=int, default=4, help="small object size (default 4)")
REGISTRY.option("--list-count", type=int, default=10000, help="keys to list (default 10000)")
REGISTRY.option(
    "--parquet-rows", type=int, default=1_000_000, help="Parquet rows, 10 columns (default 1000000)"
)
REGISTRY.option(
    "--stream-mib", type=int, default=1024, help="streamed object size for --stream (default 1024)"
)
REGISTRY.option("--cse-mib", type=int, default=64, help="object size of the CSE cases (default 64)")
REGISTRY.option("--threads", type=int, default=8, help="threads for boto3/pyarrow batches")
REGISTRY.option(
    "--concurrency", type=int, default=32, help="aiobotocore and obstore requests in flight"
)
REGISTRY.quick(
    size_mib=1,
    small_count=20,
    list_count=30,
    parquet_rows=2000,
    stream_mib=2,
    cse_mib=1,
    threads=2,
    concurrency=4,
)


def _obstore_run(coro):
    """Run an obstore coroutine batch on a fresh loop (obstore's runtime is its own)."""
    return asyncio.run(coro)


def _fs(lib: str, env: Env):
    """The fsspec filesystem named ``lib`` ("s3fs" or "emrfs")."""
    return getattr(env.clients, lib)()


def _fsspec_variants(label: str, make, libs=("s3fs", "emrfs")) -> list[Variant]:
    """The same fsspec call through s3fs and emrfs."""
    return [Variant(f"{lib} {label}", partial(make, lib), requires=lib) for lib in libs]


def _check_size(key_of, size_of):
    def check(env: Env, variant: Variant) -> None:
        key = key_of(env, variant)
        got = env.clients.boto3().head_object(Bucket=env.bucket, Key=key)["ContentLength"]
        if got != size_of(env):
            raise AssertionError(f"{variant.name} wrote {got} bytes to {key}, not {size_of(env)}")

    return check


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


# ---------------------------------------------------------------- large objects


@REGISTRY.case("large_write")
def large_write(ctx: CaseContext) -> Case:
    size = ctx.args.size_mib * MiB

    def setup(env: Env) -> None:
        env.data["payload"] = os.urandom(size)

    def key(env: Env, name: str) -> str:
        return f"w/{_slug(name)}"

    def boto3_put(env):
        s3, body, k = env.clients.boto3(), env.data["payload"], key(env, "boto3 put_object")
        return lambda: s3.put_object(Bucket=env.bucket, Key=k, Body=body)

    def boto3_upload(env):
        s3, body, k = env.clients.boto3(), env.data["payload"], key(env, "boto3 upload_fileobj")
        return lambda: s3.upload_fileobj(io.BytesIO(body), env.bucket, k)

    def fs_pipe(lib, env):
        fs, path = _fs(lib, env), f"{env.bucket}/{key(env, f'{lib} pipe_file')}"
        return lambda: fs.pipe_file(path, env.data["payload"])

    def fs_open(lib, env):
        fs, path = _fs(lib, env), f"{env.bucket}/{key(env, f'{lib} open(wb).write')}"

        def op():
            with fs.open(path, "wb") as f:
                f.write(env.data["payload"])

        return op

    def pyarrow_stream(env):
        pafs, path = env.clients.pyarrow(), f"{env.bucket}/{key(env, 'pyarrow open_output_stream')}"

        def op():
            with pafs.open_output_stream(path) as f:
                f.write(env.data["payload"])

        return op

    def obstore_put(env):
        import obstore

        store, k = env.clients.obstore(env.bucket), key(env, "obstore put")
        return lambda: obstore.put(store, k, env.data["payload"])

    return Case(
        "large_write",
        "MB/s",
        size,
        reference="boto3 put_object",
        setup=setup,
        check=_check_size(lambda env, v: key(env, v.name), lambda env: size),
        description=f"Write one {ctx.args.size_mib} MiB object from memory.",
        variants=[
            Variant("boto3 put_object", boto3_put),
            Variant("boto3 upload_fileobj", boto3_upload),
            *_fsspec_variants("pipe_file", fs_pipe),
            *_fsspec_variants("open(wb).write", fs_open),
            Variant("pyarrow open_output_stream", pyarrow_stream, requires="pyarrow"),
            Variant("obstore put", obstore_put, requires="obstore"),
        ],
    )


@REGISTRY.case("large_read")
def large_read(ctx: CaseContext) -> Case:
    size = ctx.args.size_mib * MiB
    key = "r/large"

    def setup(env: Env) -> None:
        env.clients.boto3().put_object(Bucket=env.bucket, Key=key, Body=os.urandom(size))

    def whole(read):
        def op():
            n = len(read())
            if n != size:
                raise AssertionError(f"read {n} bytes of {key}, expected {size}")

        return op

    def boto3_get(env):
        s3 = env.clients.boto3()
        return whole(lambda: s3.get_object(Bucket=env.bucket, Key=key)["Body"].read())

    def fs_cat(lib, env):
        fs = _fs(lib, env)
        return whole(lambda: fs.cat_file(f"{env.bucket}/{key}"))

    def fs_open(lib, env):
        fs = _fs(lib, env)

        def read():
            with fs.open(f"{env.bucket}/{key}", "rb") as f:
                return f.read()

        return whole(read)

    def pyarrow_file(env):
        pafs = env.clients.pyarrow()

        def read():
            with pafs.open_input_file(f"{env.bucket}/{key}") as f:
                return f.read()

        return whole(read)

    def obstore_get(env):
        import obstore

        store = env.clients.obstore(env.bucket)
        return whole(lambda: obstore.get(store, key).bytes())

    return Case(
        "large_read",
        "MB/s",
        size,
        reference="boto3 get_object",
        setup=setup,
        description=f"Read one {ctx.args.size_mib} MiB object into memory.",
        notes=[
            "moto reads the whole object to serve a ranged GET: compare ranged "
            "variants by requests and bytes here, not by time"
        ]
        if ctx.server == "moto"
        else [],
        variants=[
            Variant("boto3 get_object", boto3_get),
            *_fsspec_variants("cat_file", fs_cat),
            *_fsspec_variants("open().read()", fs_open),
            Variant("pyarrow open_input_file", pyarrow_file, requires="pyarrow"),
            Variant("obstore get().bytes()", obstore_get, requires="obstore"),
        ],
    )


# ---------------------------------------------------------------- small objects


def _small_keys(prefix: str, n: int) -> list[str]:
    return [f"{prefix}/{i:05d}" for i in range(n)]


async def _gather_limited(calls, limit: int):
    sem = asyncio.Semaphore(limit)

    async def one(call):
        async with sem:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


def _aio_put_many(env: Env, keys: list[str], body: bytes, limit: int) -> None:
    aio = env.clients.aio()
    aio.run(
        _gather_limited(
            [partial(aio.client.put_object, Bucket=env.bucket, Key=k, Body=body) for k in keys],
            limit,
        )
    )


def _setup_put_many(env: Env, keys: list[str], body: bytes, limit: int) -> None:
    """Objects a case reads, made untimed: through obstore when installed (the fastest
    client here: set-up of 10,000 keys in seconds), else aiobotocore."""
    from .clients import unavailable

    if unavailable("obstore"):
        _aio_put_many(env, keys, body, limit)
        return
    import obstore

    store = env.clients.obstore(env.bucket)
    _obstore_run(
        _gather_limited([partial(obstore.put_async, store, k, body) for k in keys], max(limit, 64))
    )


@REGISTRY.case("small_put")
def small_put(ctx: CaseContext) -> Case:
    n, threads, limit = ctx.args.small_count, ctx.args.threads, ctx.args.concurrency

    def setup(env: Env) -> None:
        env.data["body"] = os.urandom(ctx.args.small_kib * 1024)

    def keys(name: str) -> list[str]:
        return _small_keys(f"p/{_slug(name)}", n)

    def boto3_threads(env):
        s3, body, ks = env.clients.boto3(), env.data["body"], keys(f"boto3 {threads} threads")

        def op():
            with ThreadPoolExecutor(threads) as ex:
                list(ex.map(lambda k: s3.put_object(Bucket=env.bucket, Key=k, Body=body), ks))

        return op

    def aio_gather(env):
        ks = keys(f"aiobotocore gather {limit}")
        env.clients.aio()
        return lambda: _aio_put_many(env, ks, env.data["body"], limit)

    def fs_pipe(lib, env):
        fs = _fs(lib, env)
        ks = keys(f"{lib} pipe(dict)")
        return lambda: fs.pipe({f"{env.bucket}/{k}": env.data["body"] for k in ks})

    def pyarrow_threads(env):
        pafs, body, ks = env.clients.pyarrow(), env.data["body"], keys(f"pyarrow {threads} threads")

        def put(k):
            with pafs.open_output_stream(f"{env.bucket}/{k}") as f:
                f.write(body)

        def op():
            with ThreadPoolExecutor(threads) as ex:
                list(ex.map(put, ks))

        return op

    def obstore_gather(env):
        import obstore

        store, body, ks = (
            env.clients.obstore(env.bucket),
            env.data["body"],
            keys(f"obstore put_async gather {limit}"),
        )
        return lambda: _obstore_run(
            _gather_limited([partial(obstore.put_async, store, k, body) for k in ks], limit)
        )

    def check(env: Env, variant: Variant) -> None:
        prefix = f"p/{_slug(variant.name)}/"
        pages = (
            env.clients.boto3()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=env.bucket, Prefix=prefix)
        )
        got = sum(page.get("KeyCount", 0) for page in pages)
        if got != n:
            raise AssertionError(f"{variant.name} left {got} objects under {prefix}, not {n}")

    return Case(
        "small_put",
        "ops/s",
        n,
        reference=f"aiobotocore gather {limit}",
        setup=setup,
        check=check,
        description=f"PUT {n:,} objects of {ctx.args.small_kib} KiB.",
        variants=[
            Variant(f"boto3 {threads} threads", boto3_threads),
            Variant(f"aiobotocore gather {limit}", aio_gather, requires="aiobotocore"),
            *_fsspec_variants("pipe(dict)", fs_pipe),
            Variant(f"pyarrow {threads} threads", pyarrow_threads, requires="pyarrow"),
            Variant(f"obstore put_async gather {limit}", obstore_gather, requires="obstore"),
        ],
    )


@REGISTRY.case("small_get")
def small_get(ctx: CaseContext) -> Case:
    n, threads, limit = ctx.args.small_count, ctx.args.threads, ctx.args.concurrency
    size = ctx.args.small_kib * 1024
    ks = _small_keys("g", n)

    def setup(env: Env) -> None:
        _setup_put_many(env, ks, os.urandom(size), limit)

    def total(read_all):
        def op():
            got = read_all()
            if got != n * size:
                raise AssertionError(f"read {got} bytes from {n} objects, expected {n * size}")

        return op

    def boto3_threads(env):
        s3 = env.clients.boto3()

        def get(k):
            return len(s3.get_object(Bucket=env.bucket, Key=k)["Body"].read())

        def read_all():
            with ThreadPoolExecutor(threads) as ex:
                return sum(ex.map(get, ks))

        return total(read_all)

    def aio_gather(env):
        aio = env.clients.aio()

        async def get(k):
            resp = await aio.client.get_object(Bucket=env.bucket, Key=k)
            async with resp["Body"] as body:
                return len(await body.read())

        return total(lambda: sum(aio.run(_gather_limited([partial(get, k) for k in ks], limit))))

    def fs_cat(lib, env):
        fs = _fs(lib, env)
        paths = [f"{env.bucket}/{k}" for k in ks]
        return total(lambda: sum(len(v) for v in fs.cat(paths).values()))

    def pyarrow_threads(env):
        pafs = env.clients.pyarrow()

        def get(k):
            with pafs.open_input_stream(f"{env.bucket}/{k}") as f:
                return len(f.read())

        def read_all():
            with ThreadPoolExecutor(threads) as ex:
                return sum(ex.map(get, ks))

        return total(read_all)

    def obstore_gather(env):
        import obstore

        store = env.clients.obstore(env.bucket)

        async def get(k):
            result = await obstore.get_async(store, k)
            return len(await result.bytes_async())

        return total(
            lambda: sum(_obstore_run(_gather_limited([partial(get, k) for k in ks], limit)))
        )

    return Case(
        "small_get",
        "ops/s",
        n,
        reference=f"aiobotocore gather {limit}",
        setup=setup,
        description=f"GET {n:,} objects of {ctx.args.small_kib} KiB.",
        variants=[
            Variant(f"boto3 {threads} threads", boto3_threads),
            Variant(f"aiobotocore gather {limit}", aio_gather, requires="aiobotocore"),
            *_fsspec_variants("cat(list)", fs_cat),
            Variant(f"pyarrow {threads} threads", pyarrow_threads, requires="pyarrow"),
            Variant(f"obstore get_async gather {limit}", obstore_gather, requires="obstore"),
        ],
    )


# ---------------------------------------------------------------- listing


@REGISTRY.case("partitioned_put")
def partitioned_put(ctx: CaseContext) -> Case:
    n, limit, parts = ctx.args.small_count, ctx.args.concurrency, 20

    def setup(env: Env) -> None:
        env.data["body"] = os.urandom(ctx.args.small_kib * 1024)

    def new_keys(env: Env, name: str) -> list[str]:
        runs = env.data.setdefault(f"partitioned {name}", [0])
        runs[0] += 1  # a new tree each run: every run makes its directories
        top = f"part/{_slug(name)}/{runs[0]}"
        return [f"{top}/day={i % parts:02d}/{i:05d}" for i in range(n)]

    def emrfs_pipe(env):
        fs, ks = env.clients.emrfs(), new_keys(env, "emrfs pipe(dict)")
        return lambda: fs.pipe({f"{env.bucket}/{k}": env.data["body"] for k in ks})

    def obstore_gather(env):
        import obstore

        name = f"obstore put_async gather {limit}"
        store, body, ks = env.clients.obstore(env.bucket), env.data["body"], new_keys(env, name)
        return lambda: _obstore_run(
            _gather_limited([partial(obstore.put_async, store, k, body) for k in ks], limit)
        )

    return Case(
        "partitioned_put",
        "ops/s",
        n,
        reference=f"obstore put_async gather {limit}",
        setup=setup,
        description=f"PUT {n:,} new objects of {ctx.args.small_kib} KiB into {parts} new "
        "directories of a new directory (a Hive-partitioned write; emrfs clears each "
        "new directory's markers as it goes).",
        variants=[
            Variant(f"obstore put_async gather {limit}", obstore_gather, requires="obstore"),
            Variant("emrfs pipe(dict)", emrfs_pipe, requires="emrfs"),
        ],
    )


@REGISTRY.case("list_keys")
def list_keys(ctx: CaseContext) -> Case:
    n = ctx.args.list_count
    prefix = "l"

    def setup(env: Env) -> None:
        _setup_put_many(env, _small_keys(prefix, n), b"x", ctx.args.concurrency)

    def counted(list_all):
        def op():
            got = list_all()
            if got != n:
                raise AssertionError(f"listed {got} keys under {prefix}/, expected {n}")

        return op

    def boto3_pages(env):
        s3 = env.clients.boto3()
        return counted(
            lambda: sum(
                len(page.get("Contents", []))
                for page in s3.get_paginator("list_objects_v2").paginate(
                    Bucket=env.bucket, Prefix=prefix + "/"
                )
            )
        )

    def fs_find(lib, env):
        fs = _fs(lib, env)
        return counted(lambda: len(fs.find(f"{env.bucket}/{prefix}")))

    def pyarrow_selector(env):
        from pyarrow import fs as pafs

        s3 = env.clients.pyarrow()
        return counted(
            lambda: len(
                s3.get_file_info(pafs.FileSelector(f"{env.bucket}/{prefix}", recursive=True))
            )
        )

    def obstore_list(env):
        import obstore

        store = env.clients.obstore(env.bucket)
        return counted(
            lambda: sum(
                len(batch) for batch in obstore.list(store, prefix=prefix + "/", chunk_size=1000)
            )
        )

    return Case(
        "list_keys",
        "keys/s",
        n,
        reference="boto3 paginator",
        setup=setup,
        description=f"List {n:,} keys under one prefix, recursively.",
        variants=[
            Variant("boto3 paginator", boto3_pages),
            *_fsspec_variants("find", fs_find),
            Variant("pyarrow FileSelector", pyarrow_selector, requires="pyarrow"),
            Variant("obstore list", obstore_list, requires="obstore"),
        ],
    )


# ---------------------------------------------------------------- parquet

PARQUET_KEY = "pq/table.parquet"
PARQUET_COLUMNS = ["c0", "c5"]


def _parquet_table(rows: int):
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(42)
    cols = {}
    for i in range(5):  # integers with few distinct values: dictionary-encoded, compressible
        cols[f"c{i}"] = rng.integers(0, 1000 * (i + 1), rows)
    for i in range(5, 10):
        cols[f"c{i}"] = rng.random(rows)
    return pa.table(cols)


def _parquet_filesystems(env: Env, lib: str):
    return {"s3fs": env.clients.s3fs, "emrfs": env.clients.emrfs, "pyarrow": env.clients.pyarrow}[
        lib
    ]()


def _parquet_variants(make) -> list[Variant]:
    return [
        Variant(f"{lib} pq", partial(make, lib), requires=lib)
        for lib in ("pyarrow", "s3fs", "emrfs")
    ]


def _parquet_setup(rows: int):
    def setup(env: Env) -> None:
        import pyarrow.parquet as pq

        table = _parquet_table(rows)
        env.data["table"] = table
        buf = io.BytesIO()
        pq.write_table(table, buf)
        env.clients.boto3().put_object(Bucket=env.bucket, Key=PARQUET_KEY, Body=buf.getvalue())
        meta = pq.ParquetFile(io.BytesIO(buf.getvalue())).metadata
        wanted = sum(
            meta.row_group(g).column(c).total_compressed_size
            for g in range(meta.num_row_groups)
            for c in range(meta.num_columns)
            if meta.schema.column(c).name in PARQUET_COLUMNS
        )
        env.data["file_mib"] = len(buf.getvalue()) / MiB
        env.data["columns_mib"] = wanted / MiB

    return setup


@REGISTRY.case("parquet_write")
def parquet_write(ctx: CaseContext) -> Case:
    rows = ctx.args.parquet_rows

    def setup(env: Env) -> None:
        env.data["table"] = _parquet_table(rows)

    def write(lib, env):
        import pyarrow.parquet as pq

        fs = _parquet_filesystems(env, lib)
        path = f"{env.bucket}/pqw/{lib}.parquet"
        return lambda: pq.write_table(env.data["table"], path, filesystem=fs)

    return Case(
        "parquet_write",
        "s",
        rows,
        reference="s3fs pq",
        setup=setup,
        description=f"pq.write_table of {rows:,} rows x 10 columns.",
        variants=_parquet_variants(write),
    )


def _parquet_read(name: str, ctx: CaseContext, columns: list[str] | None) -> Case:
    rows = ctx.args.parquet_rows
    base_setup = _parquet_setup(rows)
    case = Case(
        name,
        "s",
        rows,
        reference="pyarrow pq",
        variants=[],
        description=f"pq.read_table of {rows:,} rows x 10 columns"
        + (f", columns {columns}." if columns else ", all columns."),
    )

    def setup(env: Env) -> None:
        base_setup(env)
        case.notes.append(
            f"file {env.data['file_mib']:.1f} MiB; the selected columns' "
            f"chunks {env.data['columns_mib']:.1f} MiB"
        )

    def read(lib, env):
        import pyarrow.parquet as pq

        fs = _parquet_filesystems(env, lib)

        def op():
            table = pq.read_table(f"{env.bucket}/{PARQUET_KEY}", columns=columns, filesystem=fs)
            if table.num_rows != rows:
                raise AssertionError(f"read {table.num_rows} rows, expected {rows}")

        return op

    case.setup = setup
    case.variants = _parquet_variants(read)
    return case


@REGISTRY.case("parquet_read")
def parquet_read(ctx: CaseContext) -> Case:
    return _parquet_read("parquet_read", ctx, None)


@REGISTRY.case("parquet_read_2cols")
def parquet_read_2cols(ctx: CaseContext) -> Case:
    return _parquet_read("parquet_read_2cols", ctx, PARQUET_COLUMNS)


# ---------------------------------------------------------------- streaming (child processes)

STREAM_KEY = "stream/object"


def _stream_write_fs(fs, env: Env):
    path = f"{env.bucket}/{STREAM_KEY}-w"

    def op():
        with fs.open(path, "wb") as f:
            for chunk in pattern_chunks(env.data["size"], STREAM_CHUNK):
                f.write(chunk)

    return op


def _sw_boto3(env: Env):
    s3 = env.clients.boto3()
    return lambda: s3.upload_fileobj(PatternReader(env.data["size"]), env.bucket, STREAM_KEY + "-w")


def _sw_s3fs(env: Env):
    return _stream_write_fs(env.clients.s3fs(), env)


def _sw_emrfs(env: Env):
    return _stream_write_fs(env.clients.emrfs(), env)


def _sw_pyarrow(env: Env):
    pafs = env.clients.pyarrow()

    def op():
        with pafs.open_output_stream(f"{env.bucket}/{STREAM_KEY}-w") as f:
            for chunk in pattern_chunks(env.data["size"], STREAM_CHUNK):
                f.write(chunk)

    return op


def _sw_obstore(env: Env):
    import obstore

    store = env.clients.obstore(env.bucket)
    return lambda: obstore.put(
        store, STREAM_KEY + "-w", pattern_chunks(env.data["size"], STREAM_CHUNK)
    )


def _drain(f, size: int) -> None:
    got = 0
    while chunk := f.read(STREAM_CHUNK):
        got += len(chunk)
    if got != size:
        raise AssertionError(f"streamed {got} bytes of {STREAM_KEY}, expected {size}")


def _sr_boto3(env: Env):
    s3 = env.clients.boto3()

    def op():
        body = s3.get_object(Bucket=env.bucket, Key=STREAM_KEY)["Body"]
        got = sum(len(c) for c in body.iter_chunks(STREAM_CHUNK))
        if got != env.data["size"]:
            raise AssertionError(f"streamed {got} bytes, expected {env.data['size']}")

    return op


def _sr_obstore(env: Env):
    import obstore

    store = env.clients.obstore(env.bucket)

    def op():
        result = obstore.get(store, STREAM_KEY)
        got = sum(len(c) for c in result.stream(min_chunk_size=STREAM_CHUNK))
        if got != env.data["size"]:
            raise AssertionError(f"streamed {got} bytes, expected {env.data['size']}")

    return op


def _stream_read_fs(fs, env: Env):
    def op():
        with fs.open(f"{env.bucket}/{STREAM_KEY}", "rb") as f:
            _drain(f, env.data["size"])

    return op


def _sr_s3fs(env: Env):
    return _stream_read_fs(env.clients.s3fs(), env)


def _sr_emrfs(env: Env):
    return _stream_read_fs(env.clients.emrfs(), env)


def _sr_pyarrow(env: Env):
    pafs = env.clients.pyarrow()

    def op():
        with pafs.open_input_stream(f"{env.bucket}/{STREAM_KEY}") as f:
            _drain(f, env.data["size"])

    return op


@REGISTRY.case("stream_write", flag="stream")
def stream_write(ctx: CaseContext) -> Case:
    size = ctx.args.stream_mib * MiB

    def setup(env: Env) -> None:
        env.data["size"] = size

    return Case(
        "stream_write",
        "MB/s",
        size,
        reference="boto3 upload_fileobj",
        setup=setup,
        check=_check_size(lambda env, v: STREAM_KEY + "-w", lambda env: size),
        description=f"Write a {ctx.args.stream_mib} MiB object from a generator, "
        f"{STREAM_CHUNK // MiB} MiB at a time, in a child process (peak RSS).",
        variants=[
            Variant("boto3 upload_fileobj", _sw_boto3, child=True),
            Variant("s3fs open(wb)", _sw_s3fs, requires="s3fs", child=True),
            Variant("emrfs open(wb)", _sw_emrfs, requires="emrfs", child=True),
            Variant("pyarrow open_output_stream", _sw_pyarrow, requires="pyarrow", child=True),
            Variant("obstore put(iterator)", _sw_obstore, requires="obstore", child=True),
        ],
    )


@REGISTRY.case("stream_read", flag="stream")
def stream_read(ctx: CaseContext) -> Case:
    size = ctx.args.stream_mib * MiB

    def setup(env: Env) -> None:
        env.data["size"] = size
        env.clients.boto3().upload_fileobj(PatternReader(size), env.bucket, STREAM_KEY)

    slow = (
        "moto reads the whole object for every ranged GET, and pyarrow's input "
        "stream reads in small ranges: minutes per GiB here; run with --server seaweedfs"
        if ctx.server == "moto" and size > 64 * MiB
        else None
    )
    return Case(
        "stream_read",
        "MB/s",
        size,
        reference="boto3 iter_chunks",
        setup=setup,
        description=f"Read a {ctx.args.stream_mib} MiB object {STREAM_CHUNK // MiB} MiB "
        "at a time, discarding it, in a child process (peak RSS).",
        variants=[
            Variant("boto3 iter_chunks", _sr_boto3, child=True),
            Variant("s3fs open().read(8 MiB)", _sr_s3fs, requires="s3fs", child=True),
            Variant("emrfs open().read(8 MiB)", _sr_emrfs, requires="emrfs", child=True),
            Variant(
                "pyarrow open_input_stream", _sr_pyarrow, requires="pyarrow", child=True, skip=slow
            ),
            Variant("obstore get().stream()", _sr_obstore, requires="obstore", child=True),
        ],
    )


# ---------------------------------------------------------------- emrfs features against emrfs

#: CSE keys from a raw AES master key: no KMS round trip per object, so the figures are
#: of the data path (the KMS variant adds one GenerateDataKey / Decrypt per object)
_AES_KEY = base64.b64encode(bytes(range(32))).decode()
CSE_MODES = {
    "emrfs plaintext": None,
    "emrfs cse-v3": {
        "enabled": True,
        "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
        "aes_key": _AES_KEY,
    },
    "emrfs cse-segmented": {
        "enabled": True,
        "format": "segmented",
        "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
        "aes_key": _AES_KEY,
    },
    "emrfs cse-kms (v3)": "kms",
}


def _cse_fs(env: Env, mode: str):
    cse = CSE_MODES[mode]
    if cse is None:
        return env.clients.emrfs()
    if cse == "kms":
        aux = env.aux()
        key_id = env.data.get("kms_key")
        if key_id is None:
            import boto3

            kms = boto3.client("kms", endpoint_url=aux, region_name="us-east-1")
            key_id = env.data["kms_key"] = kms.create_key()["KeyMetadata"]["KeyId"]
        cse = {"enabled": True, "kms_key_id": key_id, "kms_endpoint_url": aux}
    return env.clients.emrfs_with(cse=cse)


def _cse_variants(make) -> list[Variant]:
    return [Variant(mode, partial(make, mode), requires="emrfs") for mode in CSE_MODES]


@REGISTRY.case("cse_write")
def cse_write(ctx: CaseContext) -> Case:
    size = ctx.args.cse_mib * MiB

    def setup(env: Env) -> None:
        env.data["payload"] = os.urandom(size)

    def write(mode, env):
        fs, path = _cse_fs(env, mode), f"{env.bucket}/cse/{_slug(mode)}"
        return lambda: fs.pipe_file(path, env.data["payload"])

    return Case(
        "cse_write",
        "MB/s",
        size,
        reference="emrfs plaintext",
        setup=setup,
        description=f"pipe_file of one {ctx.args.cse_mib} MiB object, client-side "
        "encrypted or not (target: >= 0.9x plaintext).",
        variants=_cse_variants(write),
    )


@REGISTRY.case("cse_read")
def cse_read(ctx: CaseContext) -> Case:
    size = ctx.args.cse_mib * MiB

    def setup(env: Env) -> None:
        env.data["payload"] = os.urandom(size)

    def read(mode, env):
        fs, path = _cse_fs(env, mode), f"{env.bucket}/cse/{_slug(mode)}"
        written = env.data.setdefault("written", [])
        if mode not in written:  # untimed, once: the object in this mode
            fs.pipe_file(path, env.data["payload"])
            written.append(mode)

        def op():
            got = fs.cat_file(path)
            if len(got) != size:
                raise AssertionError(f"read {len(got)} bytes of {path}, expected {size}")

        return op

    return Case(
        "cse_read",
        "MB/s",
        size,
        reference="emrfs plaintext",
        setup=setup,
        description=f"cat_file of one {ctx.args.cse_mib} MiB object, client-side "
        "encrypted or not (target: >= 0.95x plaintext).",
        variants=_cse_variants(read),
    )


@REGISTRY.case("cv_small_put")
def cv_small_put(ctx: CaseContext) -> Case:
    n = ctx.args.small_count
    plain, view = "emrfs", "emrfs consistent view"

    def setup(env: Env) -> None:
        env.data["body"] = os.urandom(ctx.args.small_kib * 1024)

    def variant(consistent: bool):
        def prepare(env: Env):
            if consistent:
                table = env.data.setdefault("table", f"emrfs-bench-{uuid.uuid4().hex[:10]}")
                fs = env.clients.emrfs_with(
                    **{
                        "consistent": True,
                        "consistency.table_name": table,
                        "consistency.dynamodb_endpoint": env.aux(),
                        "consistency.read_capacity": 0,
                        "consistency.write_capacity": 0,
                    }
                )
            else:
                fs = env.clients.emrfs()
            name = _slug(view if consistent else plain)
            fs.makedirs(f"{env.bucket}/{name}-warm", exist_ok=True)  # table made, untimed
            round_no = env.data.setdefault(name, [0])
            round_no[0] += 1  # fresh keys each run: every PUT creates a file
            keys = _small_keys(f"cv/{name}/{round_no[0]}", n)
            return lambda: fs.pipe({f"{env.bucket}/{k}": env.data["body"] for k in keys})

        return prepare

    return Case(
        "cv_small_put",
        "ops/s",
        n,
        reference=plain,
        setup=setup,
        description=f"PUT {n:,} new objects of {ctx.args.small_kib} KiB with "
        "pipe(dict), with the consistent view (DynamoDB on moto beside "
        "the S3 server) and without (target: >= 0.85x).",
        variants=[
            Variant(plain, variant(False), requires="emrfs"),
            Variant(view, variant(True), requires="emrfs"),
        ],
    )


if __name__ == "__main__":
    raise SystemExit(REGISTRY.main())

"""The consistent view's cost and its fast listing, against emrfs without it, on one server.

    python -m benchmarks.bench_consistency                      # all cases, embedded moto
    python -m benchmarks.bench_consistency --cases cv_list --list-count 2000 --rounds 3

The consistent variants of a case share one uuid-named DynamoDB table, made
untimed.  moto's Query cost grows with table size (perf-anchors.md section 5),
so compare figures within one run only.
"""

from __future__ import annotations

import os
import uuid

from .bench_s3 import _aio_put_many, _slug, _small_keys
from .harness import Case, CaseContext, Env, Registry, Variant

MiB = 2**20

REGISTRY = Registry("python -m benchmarks.bench_consistency", __doc__.split("\n\n")[0])
REGISTRY.option("--size-mib", type=int, default=256, help="large object size (default 256)")
REGISTRY.option("--small-count", type=int, default=2000, help="small objects (default 2000)")
REGISTRY.option("--list-count", type=int, default=10000, help="keys to list (default 10000)")


def _emrfs(env: Env, consistent: bool):
    """A fresh emrfs instance; with the view on, over the case's own table."""
    from emrfs import EmrFileSystem

    options = {}
    if consistent:
        table = env.data.setdefault("table", f"emrfs-bench-{uuid.uuid4().hex[:10]}")
        options = {
            "consistent": True,
            "consistency.table_name": table,
            "consistency.read_capacity": 0,
            "consistency.write_capacity": 0,
        }
    return EmrFileSystem(endpoint_url=env.clients.endpoint_url, skip_instance_cache=True, **options)


PLAIN, VIEW = "emrfs", "emrfs consistent view"


@REGISTRY.case("cv_small_put")
def cv_small_put(ctx: CaseContext) -> Case:
    n = ctx.args.small_count

    def setup(env: Env) -> None:
        env.data["body"] = os.urandom(4096)

    def variant(consistent: bool):
        def prepare(env: Env):
            fs = _emrfs(env, consistent)
            name = _slug(VIEW if consistent else PLAIN)
            # table created, clients warm: untimed
            fs.makedirs(f"{env.bucket}/{name}-warm", exist_ok=True)
            round_no = env.data.setdefault(name, [0])
            round_no[0] += 1
            keys = _small_keys(f"p/{name}/{round_no[0]}", n)
            return lambda: fs.pipe({f"{env.bucket}/{k}": env.data["body"] for k in keys})

        return prepare

    return Case(
        "cv_small_put",
        "ops/s",
        n,
        reference=PLAIN,
        setup=setup,
        description=f"PUT {n:,} objects of 4 KiB with fs.pipe(dict).",
        variants=[
            Variant(PLAIN, variant(False), requires="emrfs"),
            Variant(VIEW, variant(True), requires="emrfs"),
        ],
    )


@REGISTRY.case("cv_large_read")
def cv_large_read(ctx: CaseContext) -> Case:
    size = ctx.args.size_mib * MiB

    def setup(env: Env) -> None:
        env.clients.boto3().put_object(Bucket=env.bucket, Key="plain/big", Body=os.urandom(size))

    def variant(consistent: bool):
        def prepare(env: Env):
            fs = _emrfs(env, consistent)
            path = f"{env.bucket}/{'view' if consistent else 'plain'}/big"
            if consistent and "view_ready" not in env.data:  # the table must know its ETag
                fs.pipe_file(
                    path,
                    env.clients.boto3()
                    .get_object(Bucket=env.bucket, Key="plain/big")["Body"]
                    .read(),
                )
                env.data["view_ready"] = True

            def op():
                if len(fs.cat_file(path)) != size:
                    raise AssertionError("short read")

            return op

        return prepare

    return Case(
        "cv_large_read",
        "MB/s",
        size,
        reference=PLAIN,
        setup=setup,
        description=f"Read a {ctx.args.size_mib} MiB object with cat_file.",
        variants=[
            Variant(PLAIN, variant(False), requires="emrfs"),
            Variant(VIEW, variant(True), requires="emrfs"),
        ],
    )


@REGISTRY.case("cv_list")
def cv_list(ctx: CaseContext) -> Case:
    n = ctx.args.list_count

    def setup(env: Env) -> None:
        _aio_put_many(env, _small_keys("plain", n), b"x", 32)

    def plain(env: Env):
        fs = _emrfs(env, False)
        path = f"{env.bucket}/plain"

        def op():
            if len(fs.ls(path, detail=False)) != n:
                raise AssertionError("listed the wrong number of keys")

        return op

    def fast(env: Env):
        fs = _emrfs(env, True)
        path = f"{env.bucket}/view"
        if "view_ready" not in env.data:  # the same 10,000 keys, recorded in the table
            fs.pipe({f"{path}/{i:05d}": b"x" for i in range(n)})
            env.data["view_ready"] = True
        fs.ls(path)  # one consistent S3 listing marks the directory authoritative (untimed)

        def op():
            if len(fs.ls(path, detail=False)) != n:
                raise AssertionError("listed the wrong number of keys")

        return op

    return Case(
        "cv_list",
        "keys/s",
        n,
        reference="emrfs S3 LIST",
        setup=setup,
        description=f"List a directory of {n:,} keys: S3 LIST vs the table alone "
        "(fast listing of an authoritative directory).",
        variants=[
            Variant("emrfs S3 LIST", plain, requires="emrfs"),
            Variant("emrfs fast list (DynamoDB)", fast, requires="emrfs"),
        ],
    )


if __name__ == "__main__":
    raise SystemExit(REGISTRY.main())

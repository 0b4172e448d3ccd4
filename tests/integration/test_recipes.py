"""Every snippet of docs/recipes.md runs, against the embedded server, and is checked raw.

The snippets are read from the markdown (fenced blocks tagged ``python recipe
NAME [slow]``), so the document and the test cannot drift apart.  The
``python recipe-setup`` block runs first with ``EMRFS_ENDPOINT_URL`` set to
the test server; ``bucket`` is then a fresh uuid-named bucket.  After each
recipe, what it wrote is checked through raw boto3 (the side channel), not
through emrfs.  Each recipe runs twice: with the setup's options, and with the
consistent view, CSE-KMS and the block cache added to them (then every file
must be ciphertext on S3 and the DynamoDB table's live rows exactly S3's
files: a scan, not emrfs).
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"
FENCE = re.compile(r"^```python(?P<info>[^\n]*)\n(?P<code>.*?)^```$", re.M | re.S)


@dataclass(frozen=True)
class Recipe:
    name: str
    tags: tuple[str, ...]
    code: str
    line: int


def _blocks() -> tuple[str, str, list[Recipe]]:
    text = DOC.read_text()
    setup, features, recipes = None, None, []
    for match in FENCE.finditer(text):
        words = match["info"].split()
        line = text.count("\n", 0, match.start()) + 2
        if words == ["recipe-setup"]:
            setup = match["code"]
        elif words == ["recipe-features"]:
            features = match["code"]
        elif words[:1] == ["recipe"] and len(words) >= 2:
            recipes.append(Recipe(words[1], tuple(words[2:]), match["code"], line))
        else:  # an untested snippet would drift: every python block must run here
            raise AssertionError(
                f"{DOC}:{line}: python block tagged {match['info']!r}; "
                "tag it `python recipe NAME` (or recipe-setup, recipe-features)"
            )
    assert setup is not None, f"{DOC} has no `python recipe-setup` block"
    assert features is not None, f"{DOC} has no `python recipe-features` block"
    return setup, features, recipes


SETUP, FEATURES, RECIPES = _blocks()


def _keys(s3, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _body(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _check_pandas(s3, bucket: str, plain: bool) -> None:
    assert _keys(s3, bucket) == [
        "weather/csv/readings.csv.gz",
        "weather/json/readings.jsonl",
        "weather/parquet/readings.parquet",
    ]
    if plain:
        assert _body(s3, bucket, "weather/parquet/readings.parquet")[:4] == b"PAR1"
        assert _body(s3, bucket, "weather/csv/readings.csv.gz")[:2] == b"\x1f\x8b"  # gzip
        assert (
            _body(s3, bucket, "weather/json/readings.jsonl").splitlines()[0]
            == b'{"city":"Oslo","temp_c":3.5}'
        )


def _check_pyarrow_dataset(s3, bucket: str, plain: bool) -> None:
    assert _keys(s3, bucket) == [
        "events/day=2026-11-23/part-0.parquet",
        "events/day=2026-11-24/part-0.parquet",
    ]


def _check_dask(s3, bucket: str, plain: bool) -> None:
    assert _keys(s3, bucket) == ["clicks/part.0.parquet", "clicks/part.1.parquet"]


def _check_polars(s3, bucket: str, plain: bool) -> None:
    assert _keys(s3, bucket) == ["weather/readings.csv", "weather/readings.parquet"]
    if plain:
        assert _body(s3, bucket, "weather/readings.csv").startswith(b"city,temp_c\nOslo,3.5\n")
        assert _body(s3, bucket, "weather/readings.parquet")[:4] == b"PAR1"


def _check_duckdb(s3, bucket: str, plain: bool) -> None:
    keys = _keys(s3, bucket)
    days = sorted(
        re.fullmatch(r"events/day=([\d-]+)/[^/]+\.parquet", k)[1]
        for k in keys
        if k.startswith("events/")
    )
    assert days == ["2026-11-23", "2026-11-24"], keys
    assert "clicks_by_user.csv" in keys and len(keys) == 3, keys
    if plain:
        assert _body(s3, bucket, "clicks_by_user.csv").splitlines() == [
            b"usr,clicks",
            b"ann,5",
            b"bo,5",
        ]


def _check_upath(s3, bucket: str, plain: bool) -> None:
    # the empty directory is a marker object; the renamed file is gone from its old key
    assert _keys(s3, bucket) == ["notes/2026/done.txt", "notes/archive/"]
    if plain:
        assert _body(s3, bucket, "notes/2026/done.txt") == b"buy milk\n"


def _check_zarr(s3, bucket: str, plain: bool) -> None:
    keys = _keys(s3, bucket)
    chunks = [k for k in keys if k.startswith("climate.zarr/temperature/c/")]
    assert len(chunks) == 4, keys
    assert "climate.zarr/temperature/zarr.json" in keys


def _check_spark(s3, bucket: str, plain: bool) -> None:
    keys = _keys(s3, bucket)
    assert "events/_SUCCESS" in keys, keys
    assert not [k for k in keys if "_temporary" in k], keys  # the committer cleaned up
    for day in ("2026-11-23", "2026-11-24"):
        assert any(re.fullmatch(rf"events/day={day}/part-[^/]+\.parquet", k) for k in keys), keys


def _check_s3_urls(s3, bucket: str, plain: bool) -> None:
    assert _keys(s3, bucket) == ["legacy/n.parquet"]


CHECKS: dict[str, Callable] = {
    "pandas": _check_pandas,
    "pyarrow-dataset": _check_pyarrow_dataset,
    "dask": _check_dask,
    "polars": _check_polars,
    "duckdb": _check_duckdb,
    "upath": _check_upath,
    "zarr": _check_zarr,
    "spark": _check_spark,
    "s3-urls": _check_s3_urls,
}


def test_every_recipe_is_checked_and_none_is_missing():
    names = [r.name for r in RECIPES]
    assert len(names) == len(set(names)), names
    assert sorted(names) == sorted(CHECKS)


#: plain: the options of the recipe-setup block; features: with the consistent view,
#: CSE-KMS and the block cache on, as docs/recipes.md says every recipe keeps working.
#: Spark runs plain only (a minute); tests/gateway covers the gateway with the features.
VARIANTS = ("plain", "features")


def _params() -> list:
    params = []
    for recipe in RECIPES:
        marks = []
        if "slow" in recipe.tags:
            marks.append(pytest.mark.slow)
        if "pyspark" in recipe.code:
            marks.append(pytest.mark.spark)
        for variant in VARIANTS[:1] if "pyspark" in recipe.code else VARIANTS:
            params.append(pytest.param(recipe, variant, id=f"{recipe.name}-{variant}", marks=marks))
    return params


@pytest.fixture
def fsspec_registry():
    """fsspec's protocol registry as it was: a recipe may register emrfs for s3://."""
    registry = importlib.import_module("fsspec.registry")._registry  # fsspec.registry is a view
    saved = dict(registry)
    yield
    registry.clear()
    registry.update(saved)


def _check_encrypted_and_recorded(s3, dynamodb, bucket: str, table: str) -> None:
    """Every file is CSE ciphertext on S3, and the table's live rows are exactly S3's files."""
    files = [k for k in _keys(s3, bucket) if not k.endswith("/")]
    assert files
    on_s3 = {}
    for key in files:
        head = s3.head_object(Bucket=bucket, Key=key)
        assert "x-amz-3" in head["Metadata"] or "x-amz-key-v2" in head["Metadata"], key
        on_s3[f"{bucket}/{key}"] = head["ETag"].strip('"')
    pages = dynamodb.get_paginator("scan").paginate(TableName=table)
    live = {
        f"{item['parent']['S']}/{item['child']['S']}": item.get("etag", {}).get("S")
        for page in pages
        for item in page["Items"]
        if not item["is_dir"]["BOOL"]
        and not item["is_deleted"]["BOOL"]
        and item["parent"]["S"] != "../VERSION"
    }
    assert live == on_s3  # nothing unrecorded, nothing stale


@pytest.mark.parametrize(("recipe", "variant"), _params())
def test_recipe(
    recipe, variant, emrfs_endpoint, emrfs_bucket, emrfs_s3, monkeypatch, fsspec_registry, tmp_path
):
    import boto3

    monkeypatch.setenv("EMRFS_ENDPOINT_URL", emrfs_endpoint)
    if "pyspark" in recipe.code:
        pytest.importorskip("pyspark")
        monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    setup: dict = {}
    exec(compile(SETUP, f"{DOC}:recipe-setup", "exec"), setup)
    assert setup["opts"] == {"endpoint_url": emrfs_endpoint}
    opts = dict(setup["opts"])
    dynamodb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint)
    table = f"{emrfs_bucket}-meta"
    if variant == "features":
        kms = boto3.client("kms", endpoint_url=emrfs_endpoint)
        exec(
            compile(FEATURES, f"{DOC}:recipe-features", "exec"),
            {
                "opts": opts,
                "table": table,
                "cache_dir": str(tmp_path / "cache"),
                "key_id": kms.create_key()["KeyMetadata"]["KeyId"],
            },
        )
        assert opts["consistent"] and opts["cse"]["enabled"] and opts["cache"]["enabled"]
    namespace = {"__name__": f"recipe_{recipe.name}", "opts": opts, "bucket": emrfs_bucket}
    try:
        # the file name carries the line, so a traceback points into the document
        exec(compile(recipe.code, f"{DOC}:{recipe.line}({recipe.name})", "exec"), namespace)
        CHECKS[recipe.name](emrfs_s3, emrfs_bucket, variant == "plain")
        if variant == "features":
            _check_encrypted_and_recorded(emrfs_s3, dynamodb, emrfs_bucket, table)
    finally:
        if variant == "features":  # created on first use: absent if the recipe failed early
            with contextlib.suppress(dynamodb.exceptions.ResourceNotFoundException):
                dynamodb.delete_table(TableName=table)

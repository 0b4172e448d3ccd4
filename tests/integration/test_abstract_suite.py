"""fsspec's own abstract test suite, over every stack configuration, against the embedded server.

Each test class runs once per configuration (a class-scoped filesystem each):

* ``plain``: S3 only;
* ``sse``: SSE-S3 on every write, SSE-KMS (moto's KMS) below the bucket's ``kms/``
  prefix (a per-prefix override: every other test runs there);
* ``cse``: client-side encryption, data keys wrapped by moto's KMS;
* ``cache``: the local block cache (and its ephemeral tier, which no path here uses);
* ``tier``: the suite runs below ``_temporary/``, so every path is in the ephemeral tier;
* ``consistent``: the consistent view (a DynamoDB table per class);
* ``all``: CSE with a raw AES key (EMRFS allows SSE or CSE, not both), the cache, the
  consistent view, and a tier (task commits staged in the table) that
  takes the scenarios' ``subdir1`` and ``nesteddir`` directories, so trees mix
  tier and S3 paths (listings merge them, copies and renames cross the router).

Each test gets a fresh prefix; afterwards it is removed through emrfs and the raw S3
listing below it must be empty (nothing left behind), and in the encrypting
configurations the objects the test left are first checked at rest (SSE header,
CSE envelope).  ``plain`` runs the glob edge cases whole with get and put and a spread of them with
copy (the same path expansion; S3 copies are the suite's most expensive calls), and
``all`` a spread; the
single-layer configurations run none (a glob case repeats the copy, get and put
layer calls of the non-glob tests with other patterns, which only the glob logic
above the stack tells apart, and ``all`` already crosses every layer with them).  The
configurations but ``plain`` and ``all`` are marked ``slow`` (``-m "not slow"`` skips
them locally; CI runs them).
"""

from __future__ import annotations

import base64
import functools
import types
import uuid

import pytest
from fsspec.tests.abstract import AbstractFixtures
from fsspec.tests.abstract.common import GLOB_EDGE_CASES_TESTS
from fsspec.tests.abstract.copy import AbstractCopyTests
from fsspec.tests.abstract.get import AbstractGetTests
from fsspec.tests.abstract.open import AbstractOpenTests
from fsspec.tests.abstract.pipe import AbstractPipeTests
from fsspec.tests.abstract.put import AbstractPutTests

pytestmark = pytest.mark.integration

KiB = 1024
AES_KEY = base64.b64encode(bytes(range(32))).decode()
CONFIGURATIONS = ("plain", "sse", "cse", "cache", "tier", "consistent", "all")
#: the configuration that runs every glob edge case (the others run GLOB_SPREAD)
FULL_GLOBS = ("plain",)
#: the configurations outside the slow group (CI runs it too: pytest's addopts select all)
QUICK = ("plain", "all")
#: indices into fsspec's glob edge cases: `*` recursive, whole and depth-limited, `**/`
#: with a name pattern, and a directory pattern
GLOB_SPREAD = (5, 7, 17, 29)
#: an envelope's key in object metadata (v1, v2, v3 formats)
CSE_ENVELOPE_KEYS = ("x-amz-key", "x-amz-key-v2", "x-amz-3")
#: where the ``sse`` configuration writes SSE-KMS instead of SSE-S3
SSE_KMS_PREFIX = "kms"


def _options(config: str, *, kms_key: str, table: str, cache_dir: str, bucket: str) -> dict:
    """EmrFileSystem keyword arguments of one configuration."""
    # no free-space floor: the suite's few KiB must not fail on a host whose disk is
    # over 90% full (the default floor keeps 10% of the disk free)
    cache = {
        "enabled": True,
        "directories": [cache_dir],
        "block_size": 64 * KiB,
        "free_space_floor": 0.0,
    }
    consistent = {
        "consistent": True,
        "consistency.table_name": table,
        "consistency.retry_policy_type": "fixed",
        "consistency.retry_period_seconds": 0.05,
        "consistency.retry_count": 20,
    }
    return {
        "plain": {},
        "sse": {
            "sse": {"enabled": True},
            "overrides": {
                f"{bucket}/{SSE_KMS_PREFIX}": {
                    "sse": {"enabled": True, "algorithm": "aws:kms", "kms_key_id": kms_key}
                }
            },
        },
        "cse": {"cse": {"enabled": True, "kms_key_id": kms_key}},
        "cache": {"cache": cache},
        "tier": {"cache": cache},
        "consistent": consistent,
        "all": {
            "cse": {
                "enabled": True,
                "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
                "aes_key": AES_KEY,
            },
            "cache": cache,
            # task_commit "auto": with the consistent view on, tier paths are staged
            "ephemeral": {"patterns": ["_temporary", "subdir1", "nesteddir"]},
            **consistent,
        },
    }[config]


@pytest.fixture(scope="module")
def kms_key(emrfs_endpoint):
    import boto3

    kms = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    return kms.create_key(Description="emrfs abstract suite")["KeyMetadata"]["KeyId"]


class Stack:
    """One configuration's filesystem and the bucket its tests run in."""

    def __init__(self, config: str, fs, bucket: str) -> None:
        self.config, self.fs, self.bucket = config, fs, bucket
        self.tests = 0  # tests run so far (the sse configuration alternates prefixes)


@pytest.fixture(scope="class")
def stack(request, emrfs_endpoint, emrfs_s3, kms_key, tmp_path_factory):
    from emrfs import EmrFileSystem
    from emrfs.testing.pytest_plugin import empty_and_delete_bucket, new_bucket_name

    config = request.param
    table = f"emrfs-abstract-{uuid.uuid4().hex[:12]}"
    bucket = new_bucket_name("emrfs-abstract")
    emrfs_s3.create_bucket(Bucket=bucket)
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        **_options(
            config,
            kms_key=kms_key,
            table=table,
            cache_dir=str(tmp_path_factory.mktemp(f"cache-{config}")),
            bucket=bucket,
        ),
    )
    yield Stack(config, fs, bucket)
    cached = getattr(fs, "_cached", None)
    if cached is not None:
        cached.local.tier.terminate()
        cached.close()
    empty_and_delete_bucket(emrfs_s3, bucket)
    if config in ("consistent", "all"):
        import boto3

        ddb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint, region_name="us-east-1")
        ddb.delete_table(TableName=table)


def _raw_keys(s3, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _check_at_rest(stack: Stack, s3, keys: list[str]) -> None:
    """Objects of an encrypting configuration carry their SSE header or CSE envelope."""
    data = [k for k in keys if not k.endswith(("/", "_$folder$", ".instruction"))][:3]
    for key in data:
        head = s3.head_object(Bucket=stack.bucket, Key=key)
        if stack.config == "sse":
            want = "aws:kms" if key.startswith(SSE_KMS_PREFIX + "/") else "AES256"
            assert head.get("ServerSideEncryption") == want, f"{key} is not SSE ({want})"
        else:
            envelope = (
                any(k in head["Metadata"] for k in CSE_ENVELOPE_KEYS)
                or f"{key}.instruction" in keys
            )
            assert envelope, f"{key} has no CSE envelope: stored in plaintext"


def _spread(test):
    """``test`` (a glob edge case test) over GLOB_SPREAD only."""
    plain = types.FunctionType(
        test.__code__, test.__globals__, test.__name__, test.__defaults__, test.__closure__
    )
    functools.update_wrapper(plain, test)
    del plain.pytestmark  # fsspec's full parametrization
    values = [GLOB_EDGE_CASES_TESTS["argvalues"][i] for i in GLOB_SPREAD]
    return pytest.mark.parametrize(GLOB_EDGE_CASES_TESTS["argnames"], values)(plain)


class EmrfsFixtures(AbstractFixtures):
    @pytest.fixture
    def fs(self, stack):
        return stack.fs

    @pytest.fixture
    def fs_path(self, stack, emrfs_s3):
        prefix = f"t-{uuid.uuid4().hex[:12]}"
        stack.tests += 1
        if stack.config == "tier":
            prefix = f"job/_temporary/{prefix}"
        elif stack.config == "sse" and stack.tests % 2:
            prefix = f"{SSE_KMS_PREFIX}/{prefix}"
        path = f"{stack.bucket}/{prefix}"
        stack.fs.makedirs(path, exist_ok=True)
        yield path
        left = _raw_keys(emrfs_s3, stack.bucket, prefix + "/")
        if stack.config in ("sse", "cse", "all"):
            _check_at_rest(stack, emrfs_s3, left)
        stack.fs.rm(path, recursive=True)
        assert not stack.fs.exists(path), (
            f"{path} is still there after rm: {stack.fs.find(path, withdirs=True)}"
        )
        assert _raw_keys(emrfs_s3, stack.bucket, prefix) == [], f"rm left keys below {path}"

    # fsspec's scenario fixtures each remove their tree (and fs_target its directory)
    # before fs_path's teardown: here they leave them to it, which removes the whole
    # prefix through emrfs in one recursive rm and proves it gone (emrfs and raw S3),
    # after checking the objects the scenarios wrote at rest (before, only what the
    # test body itself left was still there to check).
    @pytest.fixture
    def fs_bulk_operations_scenario_0(self, fs, fs_join, fs_path):
        return self._bulk_operations_scenario_0(fs, fs_join, fs_path)

    @pytest.fixture
    def fs_glob_edge_cases_files(self, fs, fs_join, fs_path):
        return self._glob_edge_cases_files(fs, fs_join, fs_path)

    @pytest.fixture
    def fs_dir_and_file_with_same_name_prefix(self, fs, fs_join, fs_path):
        return self._dir_and_file_with_same_name_prefix(fs, fs_join, fs_path)

    @pytest.fixture
    def fs_10_files_with_hashed_names(self, fs, fs_join, fs_path):
        return self._10_files_with_hashed_names(fs, fs_join, fs_path)

    @pytest.fixture
    def fs_target(self, fs_join, fs_path):
        return fs_join(fs_path, "target")

    @pytest.fixture
    def fs_join(self):
        return lambda *parts: "/".join(parts)

    @pytest.fixture
    def supports_empty_directories(self):
        return True


def _over(configs: tuple[str, ...]):
    """Run a test class once per configuration in ``configs`` (a class-scoped stack each;
    the configurations outside QUICK are marked slow)."""
    params = [pytest.param(c, marks=() if c in QUICK else pytest.mark.slow) for c in configs]
    return pytest.mark.parametrize("stack", params, indirect=True, scope="class")


#: the configuration that runs GLOB_SPREAD; the single-layer ones run no glob edge case
SPREAD_GLOBS = ("all",)
EACH_LAYER = tuple(c for c in CONFIGURATIONS if c not in FULL_GLOBS + SPREAD_GLOBS)


@_over(FULL_GLOBS)
class TestCopy(AbstractCopyTests, EmrfsFixtures):
    # the glob edge cases whole run with get and put (the same path expansion, cheaper
    # layer calls); S3 copies are the suite's most expensive calls
    test_copy_glob_edge_cases = _spread(AbstractCopyTests.test_copy_glob_edge_cases)


@_over(EACH_LAYER)
class TestCopyEachLayer(AbstractCopyTests, EmrfsFixtures):
    test_copy_glob_edge_cases = None  # type: ignore[assignment]


@_over(SPREAD_GLOBS)
class TestCopyAllLayers(AbstractCopyTests, EmrfsFixtures):
    test_copy_glob_edge_cases = _spread(AbstractCopyTests.test_copy_glob_edge_cases)


@_over(FULL_GLOBS)
class TestGet(AbstractGetTests, EmrfsFixtures):
    pass


@_over(EACH_LAYER)
class TestGetEachLayer(AbstractGetTests, EmrfsFixtures):
    test_get_glob_edge_cases = None  # type: ignore[assignment]


@_over(SPREAD_GLOBS)
class TestGetAllLayers(AbstractGetTests, EmrfsFixtures):
    test_get_glob_edge_cases = _spread(AbstractGetTests.test_get_glob_edge_cases)


@_over(FULL_GLOBS)
class TestPut(AbstractPutTests, EmrfsFixtures):
    pass


@_over(EACH_LAYER)
class TestPutEachLayer(AbstractPutTests, EmrfsFixtures):
    test_put_glob_edge_cases = None  # type: ignore[assignment]


@_over(SPREAD_GLOBS)
class TestPutAllLayers(AbstractPutTests, EmrfsFixtures):
    test_put_glob_edge_cases = _spread(AbstractPutTests.test_put_glob_edge_cases)


@_over(CONFIGURATIONS)
class TestPipe(AbstractPipeTests, EmrfsFixtures):
    pass


@_over(CONFIGURATIONS)
class TestOpen(AbstractOpenTests, EmrfsFixtures):
    pass


def test_rm_below_a_staged_tier_directory_leaves_nothing(emrfs_endpoint, emrfs_bucket, tmp_path):
    """With the consistent view on, ephemeral.task_commit "auto" stages tier paths in the
    table; removing the S3 directory above one must remove the staged rows too (found by
    the ``all`` configuration: its staged directory rows outlived the rm)."""
    from emrfs import EmrFileSystem

    table = f"emrfs-abstract-{uuid.uuid4().hex[:12]}"
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        cache={"enabled": True, "directories": [str(tmp_path)]},
        ephemeral={"patterns": ["nesteddir"]},
        consistent=True,
        **{"consistency.table_name": table},
    )
    top = f"{emrfs_bucket}/t"
    fs.makedirs(f"{top}/source/subdir/nesteddir")
    fs.touch(f"{top}/source/subdir/nesteddir/nestedfile")
    fs.touch(f"{top}/source/file1")
    fs.rm(top, recursive=True)
    try:
        assert fs.find(emrfs_bucket, withdirs=True) == []
        assert not fs.exists(top)
    finally:
        import boto3

        boto3.client("dynamodb", endpoint_url=emrfs_endpoint, region_name="us-east-1").delete_table(
            TableName=table
        )
        fs._cached.local.tier.terminate()

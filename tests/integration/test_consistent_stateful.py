"""A stateful property test: random mkdir / write / overwrite / rename / delete / list / read
through the consistent view, with injected inconsistency and throttling, against a model."""

from __future__ import annotations

import contextlib
import uuid

import boto3
import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from emrfs import EmrFileSystem
from emrfs.testing import FaultPolicy, FaultProxy
from emrfs.testing.faults import Failure, Inconsistency
from emrfs.testing.pytest_plugin import empty_and_delete_bucket

NAMES = st.sampled_from(["a", "b", "c"])
DIRS = st.sampled_from(["d1", "d2", "d1/sub"])
DATA = st.binary(min_size=0, max_size=64)


@pytest.fixture(scope="module")
def proxy(emrfs_endpoint):
    policy = FaultPolicy(
        inconsistency=Inconsistency(delay=0.4),
        slow_down=Failure(probability=0.1),
        dynamodb_throttle=Failure(probability=0.1),
        seed=11,
    )
    with FaultProxy(emrfs_endpoint, policy) as p:
        yield p


def test_random_sequences_match_a_model(proxy, emrfs_s3, emrfs_endpoint):
    ddb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint, region_name="us-east-1")

    class FilesystemVersusModel(RuleBasedStateMachine):
        @initialize()
        def setup(self):
            self.bucket = f"emrfs-stateful-{uuid.uuid4().hex[:12]}"
            self.table = f"emrfs-stateful-{uuid.uuid4().hex[:8]}"
            emrfs_s3.create_bucket(Bucket=self.bucket)
            self.fs = EmrFileSystem(
                endpoint_url=proxy.url,
                skip_instance_cache=True,
                consistent=True,
                retry_base_seconds=0.01,
                **{
                    "consistency.table_name": self.table,
                    "consistency.retry_policy_type": "fixed",
                    "consistency.retry_period_seconds": 0.15,
                    "consistency.retry_count": 10,
                    "consistency.fast_list": False,
                    "consistency.dynamodb_retry_base_seconds": 0.01,
                },
            )
            self.files: dict[str, bytes] = {}
            self.dirs: set[str] = set()

        def teardown(self):
            # each example's bucket and table go (the session's server keeps the rest)
            if hasattr(self, "bucket"):
                empty_and_delete_bucket(emrfs_s3, self.bucket)
                with contextlib.suppress(ddb.exceptions.ResourceNotFoundException):
                    ddb.delete_table(TableName=self.table)

        def p(self, rel: str) -> str:
            return f"{self.bucket}/{rel}"

        def is_dir(self, rel: str) -> bool:
            return rel in self.dirs or any(
                k.startswith(rel + "/") for k in list(self.files) + list(self.dirs)
            )

        def blocked(self, rel: str) -> bool:
            parts = rel.split("/")
            return any("/".join(parts[:i]) in self.files for i in range(1, len(parts)))

        @rule(d=DIRS)
        def mkdir(self, d):
            if self.blocked(d) or d in self.files or self.is_dir(d):
                return
            self.fs.mkdir(self.p(d))
            self.dirs.add(d)

        @rule(d=DIRS, name=NAMES, data=DATA)
        def write(self, d, name, data):
            rel = f"{d}/{name}"
            if self.blocked(rel) or self.is_dir(rel) or d in self.files:
                return
            self.fs.pipe_file(self.p(rel), data)
            self.files[rel] = data

        @rule(d=DIRS, name=NAMES, to=DIRS)
        def rename_file(self, d, name, to):
            rel, dst = f"{d}/{name}", f"{to}/{name}"
            if (
                rel not in self.files
                or rel == dst
                or dst in self.files
                or self.is_dir(dst)
                or self.blocked(dst)
                or to in self.files
            ):
                return
            self.fs.mv(self.p(rel), self.p(dst))
            self.files[dst] = self.files.pop(rel)
            self.dirs.add(d)  # HDFS keeps the emptied parent
            self.dirs.add(to)

        @rule(d=DIRS, name=NAMES)
        def delete(self, d, name):
            rel = f"{d}/{name}"
            if rel not in self.files:
                return
            self.fs.rm(self.p(rel))
            del self.files[rel]
            self.dirs.add(d)

        @rule(d=DIRS, name=NAMES)
        def read(self, d, name):
            rel = f"{d}/{name}"
            if rel in self.files:
                assert self.fs.cat_file(self.p(rel)) == self.files[rel]

        @rule(d=DIRS)
        def listing(self, d):
            if not self.is_dir(d):
                return
            expected = sorted(
                {
                    self.p(d + "/" + k[len(d) + 1 :].split("/")[0])
                    for k in list(self.files) + list(self.dirs)
                    if k.startswith(d + "/")
                }
            )
            assert self.fs.ls(self.p(d), detail=False) == expected

        @invariant()
        def nothing_lost(self):
            if hasattr(self, "files"):
                for rel in list(self.files)[:2]:
                    assert self.fs.cat_file(self.p(rel)) == self.files[rel]

    FilesystemVersusModel.TestCase.settings = settings(
        max_examples=6,
        stateful_step_count=20,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    FilesystemVersusModel.TestCase().runTest()
    counters = proxy.counters()
    assert counters.faults_total > 0, "the proxy injected nothing: the test proved nothing"
    print(
        {
            k: counters.fault(k)
            for k in (
                "list_hidden",
                "list_lingering",
                "stale_read",
                "slow_down",
                "dynamodb_throttle",
            )
        }
    )

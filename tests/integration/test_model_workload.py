"""The model-based random workload (emrfs.testing.workload) against every configuration.

Each configuration runs MODEL_WORKLOAD_OPS seeded operations (default 200, and 120
where the fault proxy and the consistent view slow every operation; seed
MODEL_WORKLOAD_SEED, default 20261206) against the in-memory model, with the
side-channel checks after every mutation.  A failure prints each distinct
divergence, its shortest sequence and the command that replays it.
``-m "not workload"`` skips the module; ``python -m benchmarks.model_workload``
is the long run.
"""

from __future__ import annotations

import os

import pytest

from emrfs.testing.workload import CONFIGS, Environment, Op, run, run_workload

pytestmark = [pytest.mark.integration, pytest.mark.workload]

OPS = os.environ.get("MODEL_WORKLOAD_OPS")
SEED = int(os.environ.get("MODEL_WORKLOAD_SEED", "20261206"))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_random_workload_matches_the_model(emrfs_endpoint, config):
    n_ops = int(OPS) if OPS else 120 if CONFIGS[config].consistent else 200
    report = run_workload(
        config, SEED, n_ops, emrfs_endpoint, segment=100, shrink_seconds=10, shrink_limit=2
    )
    print(report.describe())
    assert report.operations == n_ops
    if CONFIGS[config].consistent:
        assert report.faults_total > 0, "the proxy injected nothing: the run proved nothing"
    assert report.ok, report.describe()


def test_a_file_lost_behind_emrfs_back_is_a_divergence(emrfs_endpoint):
    """The side channel notices what the filesystem's own answers would not yet."""
    env = Environment(CONFIGS["plain"], emrfs_endpoint)

    def lose_it(index, fs, bucket):
        if index == 1:
            env.s3.delete_object(Bucket=bucket, Key="a/x")

    try:
        found = run(env, [Op("pipe", "a/x", size=5, fill=1), Op("mkdir", "b é")], on_step=lose_it)
    finally:
        env.close()
    assert found is not None and found.index == 1 and found.check == "s3 objects"
    assert "a/x" in found.expected


def test_a_wrong_answer_is_a_divergence_and_shrinks(emrfs_endpoint):
    """A file overwritten behind emrfs's back reads differently from the model; the
    shrinker keeps only the write and the read."""
    env = Environment(CONFIGS["plain"], emrfs_endpoint)

    def overwrite(index, fs, bucket):
        if index == 3:
            env.s3.put_object(Bucket=bucket, Key="a/x", Body=b"changed")

    ops = [
        Op("mkdir", "b é"),
        Op("ls", ""),
        Op("pipe", "a/x", size=5, fill=1),
        Op("exists", "a/x"),
        Op("info", "b é"),
        Op("cat", "a/x"),
    ]
    try:
        found = run(env, ops, on_step=overwrite)
        assert found is not None and found.op == Op("cat", "a/x") and found.check == "result"
    finally:
        env.close()

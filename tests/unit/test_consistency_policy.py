"""Retry policies and the throttling backoff: pure, with injected sleep and clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, strategies as st

from emrfs import config
from emrfs.consistency.policy import (
    Backoff,
    ExponentialRetryPolicy,
    FixedRetryPolicy,
    NoRetryPolicy,
    create_retry_policy,
    policy_from_options,
    register_retry_policy,
)
from emrfs.errors import ConfigurationError


def delays(policy):
    out, n = [], 0
    while (d := policy.delay(n)) is not None:
        out.append(d)
        n += 1
    return out


def test_exponential_doubles_and_caps():
    assert delays(ExponentialRetryPolicy(count=5, period=1.0, max_delay=10)) == [1, 2, 4, 8, 10]


def test_fixed_and_none():
    assert delays(FixedRetryPolicy(count=3, period=0.5)) == [0.5, 0.5, 0.5]
    assert delays(NoRetryPolicy()) == []
    assert create_retry_policy("none", 9, 9).total_delay() == 0


@given(
    st.sampled_from(["exponential", "fixed"]),
    st.integers(0, 20),
    st.floats(0, 100, allow_nan=False),
)
def test_policies_retry_exactly_count_times_within_bounds(kind, count, period):
    policy = create_retry_policy(kind, count, period)
    got = delays(policy)
    assert len(got) == count
    assert all(0 <= d <= max(period, 0) * 2**20 for d in got)
    assert got == sorted(got)  # never shorter than the wait before


def test_defaults_follow_options_and_emrfs_property_names():
    opts = config.load(
        {
            "fs.s3.consistent.retryPolicyType": "fixed",
            "fs.s3.consistent.retryCount": "3",
            "fs.s3.consistent.retryPeriodSeconds": "2",
        }
    )
    assert policy_from_options(opts.consistency) == FixedRetryPolicy(count=3, period=2.0)
    default = policy_from_options(config.load({}).consistency)
    assert default == ExponentialRetryPolicy(count=5, period=10.0)


def test_unknown_kind_and_negative_values_are_configuration_errors():
    with pytest.raises(ConfigurationError, match="retry_policy_type"):
        create_retry_policy("linear")
    with pytest.raises(ConfigurationError):
        create_retry_policy("fixed", -1, 1)


def test_registered_policy_is_built_by_name():
    register_retry_policy("twice-quick", lambda count, period: FixedRetryPolicy(2, 0.01))
    assert delays(create_retry_policy("twice-quick")) == [0.01, 0.01]


def test_backoff_retries_retryable_errors_with_jittered_waits():
    slept, calls = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise TimeoutError("busy")
        return "done"

    backoff = Backoff(ExponentialRetryPolicy(5, 1.0), sleep=slept.append, rng=random.Random(1))
    assert backoff.run(flaky, lambda e: isinstance(e, TimeoutError)) == "done"
    assert len(slept) == 3
    assert all(0.5 * b <= s <= b for s, b in zip(slept, [1, 2, 4], strict=True))


def test_backoff_gives_up_and_reports_retries():
    clock = iter(range(100)).__next__
    backoff = Backoff(FixedRetryPolicy(2, 1.0), sleep=lambda s: None, clock=clock)
    with pytest.raises(TimeoutError) as info:
        backoff.run(lambda: (_ for _ in ()).throw(TimeoutError("x")), lambda e: True)
    assert info.value.retries == 2 and info.value.elapsed > 0


def test_backoff_does_not_retry_other_errors():
    slept = []
    backoff = Backoff(FixedRetryPolicy(5, 1.0), sleep=slept.append)
    with pytest.raises(KeyError):
        backoff.run(lambda: {}["x"], lambda e: isinstance(e, TimeoutError))
    assert slept == []

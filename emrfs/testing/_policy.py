"""What the fault proxy injects: :class:`FaultPolicy` and its parts.

Immutable values; :class:`~emrfs.testing.faults.FaultProxy` draws the
probabilities from one seeded RNG and counts the failures against their limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum


class FaultKind(str, Enum):
    """Names of the injected faults, as counted in :attr:`ProxyCounters.faults`."""

    LIST_HIDDEN = "list_hidden"  # one per entry hidden from one LIST response
    LIST_LINGERING = "list_lingering"  # one per deleted entry shown in one LIST response
    STALE_READ = "stale_read"  # one per GET/HEAD served the previous version
    SLOW_DOWN = "slow_down"  # one per 503 SlowDown
    CUT_READ = "cut_read"  # one per GET body cut short
    DYNAMODB_THROTTLE = "dynamodb_throttle"  # one per ProvisionedThroughputExceeded


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within [0, 1], got {value!r}")


@dataclass(frozen=True)
class Failure:
    """When to inject one kind of failure.

    Parameters
    ----------
    probability
        Chance that a matching request fails (0 = never, 1 = always).
    limit
        After this many injected failures of this kind, requests succeed
        (``None``: no limit).  ``Failure(1.0, limit=3)`` fails the first three.
    key_substring
        Only requests whose ``bucket/key`` (S3; the prefix for a LIST) or JSON
        body (DynamoDB: table name, keys, values) contains this; ``"*"`` = all.
    operations
        Only these operations (``"GetObject"``, ``"ListObjectsV2"``,
        ``"PutItem"``...); empty = all.
    """

    probability: float = 0.0
    limit: int | None = None
    key_substring: str = "*"
    operations: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _check_probability("Failure.probability", self.probability)
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"Failure.limit must be >= 0 or None, got {self.limit!r}")
        if isinstance(self.operations, str):
            raise ValueError("Failure.operations takes a collection of names, not one string")
        object.__setattr__(self, "operations", frozenset(self.operations))

    def matches(self, operation: str, target: str) -> bool:
        return (not self.operations or operation in self.operations) and _substring_matches(
            self.key_substring, target
        )


def _substring_matches(substring: str, target: str) -> bool:
    return substring == "*" or substring in target


@dataclass(frozen=True)
class Inconsistency:
    """Eventual consistency for S3 keys written or deleted through the proxy.

    A mutation of a key containing ``key_substring`` (``"*"`` = all) is
    delayed with ``probability`` (drawn once per mutation, ANDed with the
    match), for ``delay`` seconds, in the ways switched on below.  S3A's
    ``fs.s3a.failinject.inconsistency.{key.substring,probability,msec}``.
    """

    key_substring: str = "*"
    probability: float = 1.0
    delay: float = 5.0
    list_delay: bool = True  # new keys missing from LIST
    lingering_deletes: bool = True  # deleted keys still in LIST
    stale_reads: bool = True  # overwritten keys read as the previous version

    def __post_init__(self) -> None:
        _check_probability("Inconsistency.probability", self.probability)
        if self.delay < 0:
            raise ValueError(f"Inconsistency.delay must be >= 0 seconds, got {self.delay!r}")

    def matches(self, target: str) -> bool:
        return _substring_matches(self.key_substring, target)


_S3A_PREFIX = "fs.s3a.failinject."


@dataclass(frozen=True)
class FaultPolicy:
    """Everything the proxy injects; the default injects nothing.

    Parameters
    ----------
    inconsistency
        LIST delay, lingering deletes and stale reads (``None``: off).
    slow_down
        S3 requests answered ``503 SlowDown`` without reaching the server.
    cut_reads
        GetObject responses cut after ``cut_fraction`` of their body.
    cut_fraction
        Share of the body sent before a cut, in ``[0, 1)``.
    dynamodb_throttle
        DynamoDB requests answered ``400 ProvisionedThroughputExceededException``.
    seed
        Seed of the RNG behind every probability (``None``: unseeded).  The
        same seed and the same sequence of requests give the same faults.
    """

    inconsistency: Inconsistency | None = None
    slow_down: Failure = Failure()
    cut_reads: Failure = Failure()
    cut_fraction: float = 0.5
    dynamodb_throttle: Failure = Failure()
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.cut_fraction < 1.0:
            raise ValueError(
                f"FaultPolicy.cut_fraction must be within [0, 1), got {self.cut_fraction!r}"
            )

    @classmethod
    def from_properties(cls, properties: Mapping[str, str], **overrides) -> FaultPolicy:
        """A policy from Hadoop S3A's ``fs.s3a.failinject.*`` properties.

        ``inconsistency.key.substring``, ``inconsistency.probability``,
        ``inconsistency.msec`` and ``throttle.probability`` are understood;
        other ``fs.s3a.failinject.`` keys raise ``ValueError``.
        """
        props = {
            k[len(_S3A_PREFIX) :]: str(v)
            for k, v in properties.items()
            if k.startswith(_S3A_PREFIX)
        }
        known = {
            "inconsistency.key.substring",
            "inconsistency.probability",
            "inconsistency.msec",
            "throttle.probability",
        }
        unknown = sorted(_S3A_PREFIX + k for k in set(props) - known)
        if unknown:
            raise ValueError(
                f"unknown fault-injection properties {unknown}; "
                f"known: {sorted(_S3A_PREFIX + k for k in known)}"
            )
        kwargs: dict = {}
        if any(k.startswith("inconsistency.") for k in props):
            kwargs["inconsistency"] = Inconsistency(
                key_substring=props.get("inconsistency.key.substring", "DELAY_LISTING_ME"),
                probability=float(props.get("inconsistency.probability", 1.0)),
                delay=float(props.get("inconsistency.msec", 5000)) / 1000.0,
            )
        if "throttle.probability" in props:
            kwargs["slow_down"] = Failure(float(props["throttle.probability"]))
        kwargs.update(overrides)
        return cls(**kwargs)

"""Where inconsistencies are reported: the log, a callback, in-process counters.

EMRFS sent a CloudWatch metric ``Inconsistency`` per failed call and an SQS
message with the paths; here a sink receives an :class:`InconsistencyEvent`
for every check that saw S3 and the metadata disagree — whether a retry then
healed it (``recovered``), the caller got a ``ConsistencyError`` (``raised``)
or S3's view was returned anyway (``ignored``).  Sinks must be cheap and must
not raise; :class:`MultiSink` fans out to several.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "InconsistencyEvent",
    "InconsistencySink",
    "LoggingSink",
    "CallbackSink",
    "CounterSink",
    "MultiSink",
]

log = logging.getLogger("emrfs.consistency")


@dataclass(frozen=True)
class InconsistencyEvent:
    """One check where S3 and the metadata disagreed at least once.

    ``operation`` is the filesystem verb (``info``, ``ls``, ``open``);
    ``problems`` the disagreements seen on the last look
    (:class:`~emrfs.consistency.checker.Problem`); ``outcome`` one of
    ``recovered``, ``raised``, ``ignored``.
    """

    operation: str
    path: str
    problems: tuple
    retries: int
    elapsed: float
    outcome: str


class InconsistencySink(ABC):
    """Receives events; implementations must not raise."""

    @abstractmethod
    def report(self, event: InconsistencyEvent) -> None: ...


class LoggingSink(InconsistencySink):
    """Warnings for events that were not healed, info for recovered ones (the default)."""

    def __init__(self, logger: logging.Logger = log):
        self.logger = logger

    def report(self, event: InconsistencyEvent) -> None:
        level = logging.INFO if event.outcome == "recovered" else logging.WARNING
        details = "; ".join(str(p) for p in event.problems) or "no details"
        self.logger.log(
            level,
            "consistent view: %s %s %s after %d retries (%.2f s): %s",
            event.operation,
            event.path,
            event.outcome,
            event.retries,
            event.elapsed,
            details,
        )


class CallbackSink(InconsistencySink):
    """Calls ``fn(event)``; an exception from it is logged, not raised."""

    def __init__(self, fn: Callable[[InconsistencyEvent], None]):
        self.fn = fn

    def report(self, event: InconsistencyEvent) -> None:
        try:
            self.fn(event)
        except Exception:  # a reporting hook must never break the filesystem call
            log.exception("inconsistency callback %r failed", self.fn)


class CounterSink(InconsistencySink):
    """Thread-safe counters, readable as metrics with :meth:`snapshot`.

    Keys: ``events``, ``events.<outcome>``, ``operation.<op>``,
    ``problem.<kind>``, ``retries``.
    """

    def __init__(self):
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def report(self, event: InconsistencyEvent) -> None:
        with self._lock:
            self._counts["events"] += 1
            self._counts[f"events.{event.outcome}"] += 1
            self._counts[f"operation.{event.operation}"] += 1
            self._counts["retries"] += event.retries
            for problem in event.problems:
                self._counts[f"problem.{getattr(problem, 'kind', 'unknown')}"] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class MultiSink(InconsistencySink):
    """Reports to each of ``sinks`` in turn."""

    def __init__(self, *sinks: InconsistencySink):
        self.sinks = sinks

    def report(self, event: InconsistencyEvent) -> None:
        for sink in self.sinks:
            sink.report(event)

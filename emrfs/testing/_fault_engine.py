"""The fault proxy's decisions and counters, shared by the proxy and its handler threads.

:class:`FaultEngine` holds the policy, the seeded RNG, the inconsistency state,
the counters and the signing credentials; :class:`~.faults.FaultProxy` adds the
server around it, and :class:`~._fault_handler.FaultHandler` asks it, per
request, what to inject.  (Below both, so neither imports the other.)
"""

from __future__ import annotations

import random
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ._inconsistency import InconsistencyState
from ._policy import Failure, FaultKind, FaultPolicy, Inconsistency


@dataclass(frozen=True)
class ProxyCounters:
    """A snapshot of what went through the proxy since start (or the last reset).

    ``services`` counts requests per ``"s3"`` / ``"dynamodb"`` / ``"other"``,
    ``operations`` per operation name, ``faults`` per :class:`FaultKind` value.
    Bytes are body bytes: received from clients, and sent to them.
    """

    requests: int = 0
    request_bytes: int = 0
    response_bytes: int = 0
    services: Mapping[str, int] = field(default_factory=dict)
    operations: Mapping[str, int] = field(default_factory=dict)
    faults: Mapping[str, int] = field(default_factory=dict)

    def fault(self, kind: FaultKind | str) -> int:
        return self.faults.get(FaultKind(kind).value, 0)

    @property
    def faults_total(self) -> int:
        return sum(self.faults.values())


class _Tally:
    """The mutable counters behind :class:`ProxyCounters`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._bytes = [0, 0]
            self._services: Counter[str] = Counter()
            self._operations: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()

    def request(self, service: str, operation: str) -> None:
        with self._lock:
            self._requests += 1
            self._services[service] += 1
            self._operations[operation] += 1

    def add_bytes(self, received: int, sent: int) -> None:
        with self._lock:
            self._bytes[0] += received
            self._bytes[1] += sent

    def fault(self, kind: FaultKind, n: int = 1) -> None:
        if n:
            with self._lock:
                self._faults[kind.value] += n

    def snapshot(self) -> ProxyCounters:
        with self._lock:
            return ProxyCounters(
                self._requests,
                self._bytes[0],
                self._bytes[1],
                MappingProxyType(dict(self._services)),
                MappingProxyType(dict(self._operations)),
                MappingProxyType(dict(self._faults)),
            )


class FaultEngine:
    """Policy, RNG, inconsistency state and counters of one :class:`~.faults.FaultProxy`."""

    def __init__(self, upstream: str, policy: FaultPolicy | None, clock: Callable[[], float]):
        self.upstream = upstream
        self._lock = threading.Lock()
        self._policy = FaultPolicy()
        self._rng = random.Random()
        self._spent: Counter[FaultKind] = Counter()
        self._tokens: OrderedDict[str, str] = OrderedDict()
        self._tally = _Tally()
        self._credentials = None
        self._region = "us-east-1"
        self.state = InconsistencyState(clock)
        self.set_policy(policy or FaultPolicy())
        self.workdir: str | None = None  # where handlers spool bodies (set by start())

    # --- control -------------------------------------------------------------

    @property
    def policy(self) -> FaultPolicy:
        return self._policy

    def set_policy(self, policy: FaultPolicy) -> None:
        """Switch policy now (S3A's ``setFailureInjectionPolicy``).

        Failure limits count afresh, and the RNG is reseeded from
        ``policy.seed``.  Keys already hidden, lingering or stale stay so until
        their delay ends (see :meth:`clear_inconsistency`).
        """
        with self._lock:
            self._policy = policy
            self._rng = random.Random(policy.seed)
            self._spent.clear()

    def clear_inconsistency(self) -> None:
        """Make the store consistent now: nothing hidden, lingering or stale."""
        self.state.clear()

    def counters(self) -> ProxyCounters:
        return self._tally.snapshot()

    def reset_counters(self) -> None:
        self._tally.reset()

    def pending(self) -> dict[str, int]:
        """How many keys are hidden from LIST, lingering in it, and stale now."""
        return self.state.sizes()

    # --- decisions (called by the handler threads) ----------------------------

    def _inject(self, kind: FaultKind, failure: Failure, operation: str, target: str) -> bool:
        if failure.probability <= 0.0 or not failure.matches(operation, target):
            return False
        with self._lock:
            if failure.limit is not None and self._spent[kind] >= failure.limit:
                return False
            if failure.probability < 1.0 and self._rng.random() >= failure.probability:
                return False
            self._spent[kind] += 1
        self._tally.fault(kind)
        return True

    def _delayed(self, target: str) -> Inconsistency | None:
        """The inconsistency to apply to this mutation, if it is delayed."""
        inc = self._policy.inconsistency
        if inc is None or not inc.matches(target):
            return None
        if inc.probability < 1.0:
            with self._lock:
                if self._rng.random() >= inc.probability:
                    return None
        return inc

    def _sign(self, method: str, path: str) -> list[tuple[str, str]]:
        """SigV4 headers for a look-up of the proxy's own (credentials from the
        usual botocore chain, else moto's dummy ones)."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        from botocore.session import get_session

        if self._credentials is None:
            session = get_session()
            self._credentials = session.get_credentials() or Credentials("testing", "testing")
            self._region = session.get_config_variable("region") or "us-east-1"
        request = AWSRequest(method=method, url=self.upstream.rstrip("/") + path)
        S3SigV4Auth(self._credentials, "s3", self._region).add_auth(request)
        return [(k, v) for k, v in request.headers.items() if k.lower() != "host"]

    def _remember_token(self, token: str, bound: str) -> None:
        with self._lock:
            self._tokens[token] = bound
            while len(self._tokens) > 4096:
                self._tokens.popitem(last=False)

    def _token_bound(self, token: str) -> str | None:
        with self._lock:
            return self._tokens.get(token)

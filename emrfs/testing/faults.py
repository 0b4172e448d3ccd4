"""A fault-injection proxy for S3 and DynamoDB, for anyone's tests.

:class:`FaultProxy` listens on 127.0.0.1 (a free port) in a background thread
and forwards every request, unchanged, to a real server (moto from
:class:`~emrfs.testing.LocalServers`, or any endpoint).  Point the client under
test at ``proxy.url``; by :class:`FaultPolicy` it then sees what an eventually
consistent, throttling, flaky store does, as Hadoop's
``InconsistentAmazonS3Client`` (``fs.s3a.failinject.*``) made S3A see:

* **LIST delay** -- keys newly written through the proxy (PUT, multipart
  complete, copy) are missing from ListObjects(V2), with the common prefixes
  only they imply, for ``delay`` seconds;
* **lingering deletes** -- keys deleted through the proxy (DeleteObject,
  DeleteObjects) stay in LIST, with their last entry, for ``delay`` seconds;
* **stale reads** -- GET/HEAD of a key overwritten through the proxy serve the
  previous version (body, ETag, length, headers) for ``delay`` seconds;
* **503 SlowDown** with a probability;
* **cut reads** -- GET responses cut mid-body (headers and part of the body,
  then the connection closes);
* **DynamoDB throttling** -- 400 ``ProvisionedThroughputExceededException``.

Each rule matches a key substring (``"*"`` = all) and fires with a
probability drawn from one seeded RNG; failures stop after ``limit``
injections.  Counters of requests, bytes and faults are kept for tests and
benchmarks.

>>> with LocalServers() as servers, FaultProxy(servers.endpoint_url) as proxy:  # doctest: +SKIP
...     proxy.set_policy(FaultPolicy(inconsistency=Inconsistency(delay=2.0)))
...     s3 = boto3.client("s3", endpoint_url=proxy.url)

Bodies stream through in 1 MiB pieces; only LIST responses (while some key of
the bucket is hidden or lingering), DeleteObjects and DynamoDB requests, and
CopyObject / CompleteMultipartUpload responses are read whole.  Before a
delayed overwrite or delete the proxy looks the key up itself, with
requests signed with the credentials botocore finds (moto's dummy ones if none).
Requests are understood in path style (what botocore uses for an IP endpoint).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from ._fault_handler import FaultHandler
from ._inconsistency import InconsistencyState
from ._policy import Failure, FaultKind, FaultPolicy, Inconsistency
from ._relay import RelayServer

__all__ = ["FaultKind", "Failure", "Inconsistency", "FaultPolicy", "ProxyCounters",
           "FaultProxy"]


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
                self._requests, self._bytes[0], self._bytes[1],
                MappingProxyType(dict(self._services)), MappingProxyType(dict(self._operations)),
                MappingProxyType(dict(self._faults)))


class FaultProxy:
    """The proxy: start it (or use it as a context manager), point clients at :attr:`url`.

    Parameters
    ----------
    upstream
        URL of the real server (``http://127.0.0.1:PORT``).
    policy
        What to inject; change it later with :meth:`set_policy`.
    host, port
        Where to listen; port 0 picks a free one.
    clock
        Monotonic seconds used for the inconsistency delays (inject a fake one
        to step time in tests instead of sleeping).
    timeout
        Socket timeout towards the upstream, seconds.
    """

    def __init__(self, upstream: str, policy: FaultPolicy | None = None, *,
                 host: str = "127.0.0.1", port: int = 0,
                 clock: Callable[[], float] = time.monotonic, timeout: float = 60.0):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"FaultProxy upstream must be an http:// URL, got {upstream!r}")
        self.upstream = upstream
        self._upstream_addr = (parts.hostname, parts.port or 80)
        self._listen = (host, port)
        self._timeout = timeout
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
        self._server: RelayServer | None = None
        self._thread: threading.Thread | None = None
        self.workdir: str | None = None
        self.url: str | None = None

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> str:
        """Listen and serve in a background thread; returns :attr:`url`."""
        if self._server is not None:
            return self.url  # type: ignore[return-value]
        self.workdir = tempfile.mkdtemp(prefix="emrfs-faults-")
        server = RelayServer(self._listen, FaultHandler, self._upstream_addr, self._timeout)
        server.proxy = self  # type: ignore[attr-defined]
        self._server = server
        host, port = server.server_address[:2]
        if isinstance(host, bytes):  # typeshed allows it; AF_INET gives str
            host = host.decode()
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"emrfs-fault-proxy-{port}", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving, drop client connections, forget state, remove temp files."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_all()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.state.clear()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.url = None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

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

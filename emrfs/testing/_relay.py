"""A streaming HTTP/1.1 relay: the transport half of the fault proxy.

:class:`RelayHandler` reads a client's request and forwards it, headers
unchanged (``Host`` included, so SigV4 signatures stay valid), to one upstream
server over a kept-alive connection per client connection; it streams bodies
both ways in 1 MiB pieces through one buffer per body, so memory stays flat
whatever the object size.  The fault layer (``faults.py``) subclasses it and
decides, per request, what to forward, what to answer itself and where to cut.
"""

from __future__ import annotations

import http.client
import logging
import select
import socket
import threading
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("emrfs.testing.faults")

CHUNK = 1 << 20
# Not forwarded: connection-level headers, and Expect (the relay has already
# answered "100 Continue" itself; Expect is not part of a SigV4 signature).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
STREAM = object()  # forward(): stream the client's body through


class RelayServer(ThreadingHTTPServer):
    """Thread-per-connection server that knows its upstream and its open sockets."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[RelayHandler],
        upstream: tuple[str, int],
        timeout: float,
    ):
        self.upstream = upstream
        self.upstream_timeout = timeout
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, sock: socket.socket, add: bool) -> None:
        with self._open_lock:
            (self._open.add if add else self._open.discard)(sock)

    def close_all(self) -> None:
        """Drop every client connection (kept-alive ones would block their threads)."""
        with self._open_lock:
            socks = list(self._open)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Connection(http.client.HTTPConnection):
    """An upstream connection without Nagle's delay (headers and body go in
    separate writes; with Nagle plus delayed ACKs each request waits ~40 ms)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class UpstreamError(ConnectionError):
    """The upstream server could not be reached or dropped the connection."""


class RelayHandler(BaseHTTPRequestHandler):
    """Per client connection: request-body readers, forwarding, response writers."""

    protocol_version = "HTTP/1.1"
    server: RelayServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)
        self._up: http.client.HTTPConnection | None = None
        self._side: http.client.HTTPConnection | None = None
        self.begin_request()

    def begin_request(self) -> None:
        """Reset per-request flags (called before each request is handled)."""
        self.head_sent = False

    def count_bytes(self, received: int, sent: int) -> None:
        """Hook: body bytes read from the client / about to be written to it.

        Called before the write, so a client that has its answer finds it counted."""

    def finish(self) -> None:
        for conn in (self._up, self._side):
            if conn is not None:
                conn.close()
        self.server.track(self.connection, False)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args) -> None:  # the stdlib names the parameter `format`
        log.debug("%s " + format, self.address_string(), *args)

    # --- the client's request body -------------------------------------------

    @property
    def body_is_chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def request_chunks(self) -> Iterator[bytes]:
        """The request body, de-chunked, in pieces of at most 1 MiB."""
        if self.body_is_chunked:
            yield from self._chunked_body()
        else:
            yield from self._read_exactly(int(self.headers.get("Content-Length") or 0))

    def _read_exactly(self, remaining: int) -> Iterator[bytes]:
        while remaining:
            data = self.rfile.read(min(CHUNK, remaining))
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(data)
            self.count_bytes(len(data), 0)
            yield data

    def _chunked_body(self) -> Iterator[bytes]:
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: nothing we forward needs them
                return
            yield from self._read_exactly(size)
            self.rfile.readline(8)

    def read_request_body(self, limit: int = 64 << 20) -> bytes:
        """The whole request body, for requests a fault needs to look into."""
        parts, size = [], 0
        for data in self.request_chunks():
            size += len(data)
            if size > limit:
                raise ValueError(f"request body of {self.path!r} is over {limit} bytes")
            parts.append(data)
        return b"".join(parts)

    def drain_request_body(self) -> None:
        for _ in self.request_chunks():
            pass

    # --- upstream ------------------------------------------------------------

    def _connection(self, side: bool) -> http.client.HTTPConnection:
        conn = self._side if side else self._up
        if conn is not None and conn.sock is not None and select.select([conn.sock], [], [], 0)[0]:
            conn.close()  # an idle kept-alive socket is readable only once closed
        if conn is None:
            host, port = self.server.upstream
            conn = _Connection(host, port, timeout=self.server.upstream_timeout)
            if side:
                self._side = conn
            else:
                self._up = conn
        return conn

    def forward(self, body: object = STREAM) -> http.client.HTTPResponse:
        """Send this request upstream, unchanged but for hop-by-hop headers.

        ``body`` is :data:`STREAM` (pass the client's body through) or bytes
        already read from the client.
        """
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        chunked = body is STREAM and self.body_is_chunked
        if isinstance(body, bytes):
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            if body or self.headers.get("Content-Length") is not None:
                headers.append(("Content-Length", str(len(body))))
        elif chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        pieces: Iterable[bytes] = (body,) if isinstance(body, bytes) else self.request_chunks()
        try:
            return self._send(
                self._connection(False), self.command, self.path, headers, pieces, chunked
            )
        except (OSError, http.client.HTTPException) as exc:
            if self._up is not None:
                self._up.close()
            if not isinstance(body, bytes):
                raise UpstreamError(
                    f"upstream failed on {self.command} {self.path}: {exc}"
                ) from exc
            try:  # a replayable body: one retry on a fresh connection
                return self._send(
                    self._connection(False), self.command, self.path, headers, pieces, chunked
                )
            except (OSError, http.client.HTTPException) as exc2:
                raise UpstreamError(
                    f"upstream failed on {self.command} {self.path}: {exc2}"
                ) from exc2

    def side_request(
        self, method: str, path: str, headers: Iterable[tuple[str, str]] = ()
    ) -> http.client.HTTPResponse:
        """A body-less request of the proxy's own to the upstream (look-ups)."""
        host, port = self.server.upstream
        headers = [("Host", f"{host}:{port}"), *headers]
        try:
            return self._send(self._connection(True), method, path, headers, (), False)
        except (OSError, http.client.HTTPException):
            if self._side is not None:
                self._side.close()
            return self._send(self._connection(True), method, path, headers, (), False)

    @staticmethod
    def _send(
        conn: http.client.HTTPConnection,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        pieces: Iterable[bytes],
        chunked: bool,
    ) -> http.client.HTTPResponse:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        for data in pieces:
            conn.send(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)
        if chunked:
            conn.send(b"0\r\n\r\n")
        return conn.getresponse()

    # --- responses -----------------------------------------------------------

    def send_head(self, status: int, reason: str, headers: Iterable[tuple[str, str]]) -> None:
        lines = [f"HTTP/1.1 {status} {reason}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers]
        lines.append("\r\n")
        self.wfile.write("".join(lines).encode("latin-1"))
        self.head_sent = True
        self.log_request(status)

    def send_whole(
        self, status: int, reason: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> None:
        """A response the proxy composed (or rewrote), with its Content-Length."""
        headers = [
            (k, v)
            for k, v in headers
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"
        ]
        headers.append(("Content-Length", str(len(body))))
        if self.command != "HEAD":
            self.count_bytes(0, len(body))
        self.send_head(status, reason, headers)
        if self.command != "HEAD":
            self.wfile.write(body)

    def relay(self, resp: http.client.HTTPResponse, cut_at: int | None = None) -> None:
        """Stream an upstream response to the client; with ``cut_at``, send the
        headers and that many body bytes, then drop the connection."""
        headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        if self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200:
            self.send_head(resp.status, resp.reason, headers)
            resp.read()
            return
        chunked = resp.length is None
        if chunked:
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Transfer-Encoding", "chunked"))
        self.send_head(resp.status, resp.reason, headers)
        self.stream_body(resp, cut_at=cut_at, chunked=chunked)

    def stream_body(
        self, source, *, cut_at: int | None = None, length: int | None = None, chunked: bool = False
    ) -> None:
        """Copy ``source`` (anything with ``readinto``) to the client."""
        # One buffer per body, not per connection: idle kept-alive connections hold none.
        sent, buf = 0, memoryview(bytearray(CHUNK))
        while True:
            want = CHUNK
            for bound in (cut_at, length):
                if bound is not None:
                    want = min(want, bound - sent)
            if want <= 0:
                break
            n = source.readinto(buf[:want])
            if not n:
                break
            self.count_bytes(0, n)
            self.wfile.write(b"".join((b"%x\r\n" % n, buf[:n], b"\r\n")) if chunked else buf[:n])
            sent += n
        if cut_at is not None:
            self.abort_connection()
        elif chunked:
            self.wfile.write(b"0\r\n\r\n")

    def abort_connection(self) -> None:
        """Close the client's connection now, mid-response, and the upstream one with it."""
        self.close_connection = True
        if self._up is not None:
            self._up.close()
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


__all__ = ["RelayServer", "RelayHandler", "UpstreamError", "STREAM", "CHUNK"]

"""A loopback HTTP/1.1 relay that counts what the server is asked for.

The benchmark clients (boto3, s3fs, pyarrow's C++ SDK, emrfs) have no common
hook, so requests and bytes are counted on the wire: each client is pointed at
this relay, which forwards raw bytes both ways and parses only the request
framing (request line, ``Content-Length`` or chunked bodies) to count one
request per message.  Response bytes are counted as they pass, unparsed.

The relay costs CPU, so the harness uses it in a separate, untimed pass.
"""

from __future__ import annotations

import collections
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field

_COPY_CHUNK = 1 << 20
_HEAD_LIMIT = 1 << 20


@dataclass
class Traffic:
    """What the server saw between two snapshots."""

    requests: collections.Counter = field(default_factory=collections.Counter)
    bytes_to_server: int = 0
    bytes_from_server: int = 0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def as_dict(self) -> dict:
        return {
            "requests": self.total_requests,
            "by_method": dict(sorted(self.requests.items())),
            "bytes_to_server": self.bytes_to_server,
            "bytes_from_server": self.bytes_from_server,
        }


class CountingProxy:
    """Relay ``127.0.0.1:<free port>`` -> ``upstream_url`` on background threads.

    Plain blocking sockets, two threads per connection (the copy loops spend
    their time in ``recv``/``sendall``, which release the GIL).

    >>> with CountingProxy("http://127.0.0.1:5000") as proxy:   # doctest: +SKIP
    ...     proxy.reset(); client_call(proxy.url); print(proxy.snapshot())
    """

    def __init__(self, upstream_url: str):
        parts = urllib.parse.urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the counting proxy relays plain http only, not {upstream_url!r}")
        self._upstream = (parts.hostname, parts.port or 80)
        self._lock = threading.Lock()
        self._traffic = Traffic()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.url: str | None = None

    # -- counters (called from the relay threads and from the harness) --
    def reset(self) -> None:
        with self._lock:
            self._traffic = Traffic()

    def snapshot(self) -> Traffic:
        with self._lock:
            t = self._traffic
            return Traffic(collections.Counter(t.requests), t.bytes_to_server, t.bytes_from_server)

    def _count(self, *, method: str | None = None, up: int = 0, down: int = 0) -> None:
        with self._lock:
            if method is not None:
                self._traffic.requests[method] += 1
            self._traffic.bytes_to_server += up
            self._traffic.bytes_from_server += down

    # -- lifecycle --
    def start(self) -> str:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._spawn(self._accept_loop, self._listener)
        return self.url

    def stop(self) -> None:
        if self._listener is not None:
            _close(self._listener)  # shutdown() wakes the blocked accept(); close() alone does not
            self._listener = None
        with self._lock:
            live = list(self._sockets)
        for sock in live:  # wakes every copy loop with an error or EOF
            _close(sock)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> CountingProxy:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, target, *args) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name="counting-proxy", daemon=True)
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        return thread

    def _track(self, sock: socket.socket, live: bool) -> None:
        with self._lock:
            (self._sockets.add if live else self._sockets.discard)(sock)

    # -- relay --
    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed by stop()
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        self._track(client, True)
        try:
            server = socket.create_connection(self._upstream)
        except OSError:
            self._track(client, False)
            _close(client)
            return
        self._track(server, True)
        down = self._spawn(self._pump_responses, server, client)
        try:
            self._pump_requests(client, server)
            _shutdown_write(server)  # client is done: let the server finish and close
            down.join()
        except OSError:
            pass
        finally:
            for sock in (client, server):
                self._track(sock, False)
                _close(sock)

    def _pump_responses(self, server: socket.socket, client: socket.socket) -> None:
        try:
            while chunk := server.recv(_COPY_CHUNK):
                self._count(down=len(chunk))
                client.sendall(chunk)
        except OSError:
            pass
        _shutdown_write(client)

    def _pump_requests(self, client: socket.socket, server: socket.socket) -> None:
        reader = client.makefile("rb", buffering=_COPY_CHUNK)

        def forward(data: bytes) -> None:
            self._count(up=len(data))
            server.sendall(data)

        while True:
            head = _read_head(reader)
            if not head:
                return
            self._count(method=head.split(b" ", 1)[0].decode("latin-1"))
            forward(head)
            length, chunked = _body_framing(head)
            if chunked:
                _copy_chunked(reader, forward)
                continue
            while length > 0:
                chunk = reader.read1(min(length, _COPY_CHUNK))
                if not chunk:
                    return
                length -= len(chunk)
                forward(chunk)


def _read_head(reader) -> bytes:
    """One request head (through the blank line), or b"" at end of stream."""
    lines = []
    while True:
        line = reader.readline(_HEAD_LIMIT)
        if not line:
            return b""
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _copy_chunked(reader, forward) -> None:
    while True:
        line = reader.readline(_HEAD_LIMIT)
        forward(line)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers end with an empty line
                trailer = reader.readline(_HEAD_LIMIT)
                forward(trailer)
                if trailer in (b"\r\n", b"\n", b""):
                    return
        forward(reader.read(size + 2))


def _shutdown_write(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _body_framing(head: bytes) -> tuple[int, bool]:
    """(Content-Length, chunked?) of one request head."""
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return length, chunked

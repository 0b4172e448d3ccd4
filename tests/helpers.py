"""Small helpers shared by the tests."""

from __future__ import annotations


def record_s3_calls(fs, methods_only: bool = True) -> list:
    """Spy on ``fs.s3.call``: returns a list that fills with (method, kwargs) or method names."""
    calls: list = []
    original = fs.s3.call

    async def spy(method, path, **kwargs):
        calls.append(method if methods_only else (method, kwargs))
        return await original(method, path, **kwargs)

    fs.s3.call = spy
    return calls


def get_headers_then_drop(url: str, linger: float = 0.0) -> bytes:
    """GET ``url`` as Hadoop's WebHDFS reader may: read the response head, then close
    the connection without reading the body (after ``linger`` seconds, by which the
    server is blocked on a full socket).  Returns the head."""
    import socket
    import time
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(
            f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        time.sleep(linger)
    return head

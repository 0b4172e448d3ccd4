"""The HTTP connection handling the gateway needs beyond aiohttp's defaults.

* Hadoop's WebHDFS client sends a path's non-ASCII characters as raw UTF-8 in
  the request line (``java.net.URI.getRawPath`` leaves them as they are), which
  aiohttp's C parser refuses (400, before any handler runs).  Each request line
  is made valid first: bytes outside ASCII, and spaces inside the target, are
  percent-encoded; the handlers decode paths as before.  This needs the
  pure-Python parser (the C one parses the line internally); bodies are sliced
  by Content-Length or chunked framing all the same.
* Requests aiohttp refuses itself (a malformed request line or header) and
  errors no handler caught are answered as ``RemoteException`` JSON, as every
  other failure, not text.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

from aiohttp import web
from aiohttp.http_parser import HttpRequestParserPy, RawRequestMessage
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from aiohttp.web_request import BaseRequest
from aiohttp.web_runner import AppRunner

from .errors import GatewayError, remote_exception

__all__ = ["GatewayRunner", "encode_request_target"]

_UNSAFE_IN_TARGET = re.compile(rb"[\x80-\xff ]")


def encode_request_target(line: bytes) -> bytes:
    """``METHOD target HTTP/x.y`` with the target's raw non-ASCII bytes and spaces
    percent-encoded (other lines unchanged: the parser judges them)."""
    method, sep, rest = line.partition(b" ")
    target, sep2, version = rest.rpartition(b" ")
    if not sep or not sep2 or not version.startswith(b"HTTP/"):
        return line
    if not _UNSAFE_IN_TARGET.search(target):
        return line
    encoded = _UNSAFE_IN_TARGET.sub(lambda m: b"%%%02X" % m.group()[0], target)
    return b"%s %s %s" % (method, encoded, version)


class _RequestParser(HttpRequestParserPy):
    def parse_message(self, lines: list[bytes]) -> RawRequestMessage:
        if lines:
            lines = [encode_request_target(bytes(lines[0])), *lines[1:]]
        return super().parse_message(lines)


class _GatewayRequestHandler(RequestHandler):
    def __init__(self, manager: web.Server, *, loop: Any, **kwargs: Any):
        super().__init__(manager, loop=loop, **kwargs)
        options = {
            "max_line_size": self.max_line_size,
            "max_field_size": self.max_field_size,
            "max_headers": self.max_headers,
            "payload_exception": RequestPayloadError,
            "auto_decompress": kwargs.get("auto_decompress", True),
            "max_msg_queue_size": getattr(self, "_max_msg_queue_size", None),
        }
        accepted = inspect.signature(HttpRequestParserPy.__init__).parameters
        self._parser = _RequestParser(
            self,
            loop,
            self._read_bufsize,
            **{k: v for k, v in options.items() if k in accepted and v is not None},
        )

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        response = super().handle_error(request, status, exc, message)  # logs, may raise
        if status >= 500:
            status, body = remote_exception(exc or RuntimeError(message or "server error"))
        else:
            text = (message or str(exc or "") or "Bad Request").strip()
            body = remote_exception(
                GatewayError("IllegalArgumentException", f"bad request: {text}", status)
            )[1]
        answer = _UntypedResponse(status=status, body=json.dumps(body).encode())
        answer.force_close()
        del response
        return answer


class _UntypedResponse(web.Response):
    """No ``Content-Type``, as every JSON answer of the app (Spark's client breaks on one)."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.popall("Content-Type", None)


class _GatewayServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _GatewayRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(AppRunner):
    """An :class:`~aiohttp.web.AppRunner` whose connections use the gateway's handler."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds the Server itself (with the app's handler and request factory);
        # only which protocol each connection gets differs, so the class is swapped.
        server.__class__ = _GatewayServer
        return server

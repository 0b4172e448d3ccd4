"""The aiohttp application: ``/webhdfs/v1/{path}?op=...`` -> one op of :mod:`.ops`.

Every answer that is not data is JSON with no ``Content-Type`` header (Spark's
client breaks on one); every failure is a ``RemoteException``.
"""

from __future__ import annotations

import getpass
import logging
from urllib.parse import unquote

from aiohttp import web
from fsspec.spec import AbstractFileSystem

from . import ops
from .appends import AppendSessions
from .auth import Authenticator
from .backend import Backend
from .context import JSON_MARK, STREAMING, Call, GatewayState, json_response
from .errors import GatewayError, bad_request, remote_exception
from .status import StatusDefaults

logger = logging.getLogger("emrfs.gateway")

__all__ = ["make_app", "PREFIX"]

PREFIX = "/webhdfs/v1"
#: OAuth2 client-credentials endpoint for Hadoop's ConfCredentialBasedAccessTokenProvider
TOKEN_PATH = "/oauth2/token"
STATE_KEY = web.AppKey("emrfs_gateway_state", GatewayState)

_OPS_BY_METHOD = {
    "GET": ops.GET_OPS,
    "HEAD": ops.GET_OPS,
    "PUT": ops.PUT_OPS,
    "POST": ops.POST_OPS,
    "DELETE": ops.DELETE_OPS,
}
#: ops whose second (redirected) request carries a signed ticket instead of the token
DATA_OPS = frozenset({"OPEN", "CREATE", "APPEND"})
_METHOD_OF_OP = {
    op: method for method, table in _OPS_BY_METHOD.items() if method != "HEAD" for op in table
}


def make_app(
    fs: AbstractFileSystem,
    *,
    token: str | None = None,
    owner: str | None = None,
    group: str | None = None,
    block_size: int = 128 * 1024 * 1024,
    list_page_size: int = 1000,
    append_idle_seconds: float = 5.0,
    ticket_ttl: float = 3600.0,
    home_template: str = "/user/{user}",
    read_chunk_max: int = 16 * 1024 * 1024,
    read_ahead: int = 3,
) -> web.Application:
    """Build the gateway application serving ``fs``.

    Parameters
    ----------
    fs:
        Any fsspec filesystem; HDFS path ``/a/b`` is ``a/b`` in it (for emrfs:
        bucket ``a``, key ``b``).
    token:
        Shared secret required on every request (``delegation=`` or
        ``Authorization: Bearer``); ``None`` for none.
    owner, group:
        Reported in file status when neither the request's ``user.name`` nor the
        filesystem's info names one; default the gateway's OS user.
    block_size:
        Block size reported for files whose info has no ``blockSize``.
    list_page_size:
        Entries per ``LISTSTATUS_BATCH`` page.
    append_idle_seconds:
        An append session commits after this long without an APPEND.
    ticket_ttl:
        Seconds an OPEN/CREATE/APPEND data URL stays valid.
    home_template:
        ``GETHOMEDIRECTORY`` answer, ``{user}`` replaced.
    read_chunk_max, read_ahead:
        Where OPEN cannot stream (a filesystem other than emrfs), it reads ranges
        that grow from 1 MiB to ``read_chunk_max``, ``read_ahead`` of them in flight:
        at most their product buffered per stream.
    """
    backend = Backend(fs)
    owner = owner or getpass.getuser()
    state = GatewayState(
        backend=backend,
        auth=Authenticator(token, ticket_ttl=ticket_ttl),
        sessions=AppendSessions(backend, idle_seconds=append_idle_seconds),
        defaults=StatusDefaults(owner=owner, group=group or owner, block_size=block_size),
        list_page_size=list_page_size,
        home_template=home_template,
        read_chunk_max=read_chunk_max,
        read_ahead=read_ahead,
    )
    return _application(state)


def _application(state: GatewayState) -> web.Application:
    """The aiohttp application: the OAuth2 token route, every other path to the
    WebHDFS dispatcher; append sessions committed at shutdown."""
    app = web.Application(client_max_size=0)
    app[STATE_KEY] = state
    app.router.add_post(TOKEN_PATH, _oauth2_token)
    app.router.add_route("*", "/{tail:.*}", _handle)
    app.on_response_prepare.append(_strip_json_content_type)
    app.on_shutdown.append(_commit_sessions)
    return app


async def _strip_json_content_type(request: web.Request, response: web.StreamResponse) -> None:
    if response.get(JSON_MARK):
        response.headers.popall("Content-Type", None)


async def _commit_sessions(app: web.Application) -> None:
    await app[STATE_KEY].sessions.close()


async def _oauth2_token(request: web.Request) -> web.StreamResponse:
    """Trade the shared secret (``client_secret``) for a bearer token, so Hadoop's
    WebHDFS client can send it (``dfs.webhdfs.oauth2.*``; see docs/gateway.md)."""
    state = request.app[STATE_KEY]
    form = await request.post()
    try:
        state.auth.check({"delegation": str(form.get("client_secret", ""))}, {})
    except GatewayError as exc:
        return json_response(
            {"error": "invalid_client", "error_description": exc.message}, status=401
        )
    return json_response(
        {"access_token": state.auth.token or "", "token_type": "bearer", "expires_in": 86400}
    )


def _parse(request: web.Request, state: GatewayState) -> Call:
    raw = request.raw_path.split("?", 1)[0]
    if raw != PREFIX and not raw.startswith(PREFIX + "/"):
        raise bad_request(f"{raw!r} is not a WebHDFS URL; use {PREFIX}/<path>?op=<OP>")
    segments = raw[len(PREFIX) :].split("/")
    decoded = [unquote(s) for s in segments]
    if any("/" in s for s in decoded):
        raise bad_request(f"path {raw!r} has an encoded '/' inside a segment")
    path = ops.normalize_path("/".join(decoded) or "/")
    params = {k.lower(): v for k, v in request.query.items()}
    op = params.get("op", "").upper()
    if not op:
        raise bad_request('the parameter "op" is missing')
    method = request.method.upper()
    table = _OPS_BY_METHOD.get(method, {})
    if op not in table:
        expected = _METHOD_OF_OP.get(op)
        if expected is None:
            raise bad_request(
                f'Invalid value for webhdfs parameter "op": No enum constant for {op!r}'
            )
        raise GatewayError(
            "UnsupportedOperationException", f"{op} is a {expected} operation, not {method}"
        )
    return Call(
        state=state, request=request, op=op, path=path, fs_path=ops.to_fs(path), params=params
    )


async def _handle(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    try:
        call = _parse(request, state)
        if not ("ticket" in call.params and call.op in DATA_OPS):
            state.auth.check(call.params, request.headers)  # data URLs verify their ticket
        if call.op != "APPEND":
            await state.sessions.settle(call.fs_path)
        handler = _OPS_BY_METHOD[request.method.upper()][call.op]
        return await handler(call)
    except ConnectionError as exc:
        # the client left mid-body (reset) or mid-stream (aiohttp's "Connection lost"
        # while a write waits): what it sent was discarded, the reads ahead stopped
        if isinstance(exc, ConnectionResetError) or request.get(STREAMING):
            logger.debug("%s %s: client disconnected", request.method, request.path_qs)
            return web.Response(status=499)
        failure: Exception = exc
    except web.HTTPException:
        raise
    except Exception as exc:  # every failure becomes a RemoteException
        if request.get(STREAMING):
            raise
        failure = exc
    status, body = remote_exception(failure)
    logger.debug("%s %s -> %s %s", request.method, request.path_qs, status, body)
    return json_response(body, status=status)

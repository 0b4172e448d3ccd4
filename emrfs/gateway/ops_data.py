"""WebHDFS operations that move file data: OPEN, CREATE and APPEND, each in two
requests (a redirect to a signed data URL on this gateway, then the data)."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import quote, urlencode

from aiohttp import web

from .context import STREAMING, Call, json_response
from .errors import GatewayError, bad_request
from .ops_common import file_info, require_bucket
from .status import is_dir, size_of

FIRST_READ_CHUNK = 1024 * 1024  # without a length, reads start small: Hadoop may stop early
STREAM_PIECE = 1024 * 1024  # a streamed OPEN holds about two of these per client


# --- the redirect dance ----------------------------------------------------------


def _data_url(call: Call, extra: str = "", **params) -> str:
    """Where the second request of OPEN/CREATE/APPEND goes: this gateway, signed."""
    query = {"op": call.op, "ticket": call.state.auth.ticket(call.op, call.path, extra)}
    if call.user:
        query["user.name"] = call.user
    query.update({k: v for k, v in params.items() if v is not None})
    base = f"{call.request.url.scheme}://{call.request.host}"
    return f"{base}/webhdfs/v1{quote(call.path, safe='/')}?{urlencode(query)}"


def _redirect(call: Call, location: str) -> web.StreamResponse:
    if call.flag("noredirect", False):
        return json_response({"Location": location})
    response = web.Response(status=307, headers={"Location": location})
    return response


def _is_data_phase(call: Call) -> bool:
    ticket = call.params.get("ticket")
    if ticket is None:
        return False
    extra = call.params.get("overwrite", "").lower() if call.op == "CREATE" else ""
    call.state.auth.verify_ticket(ticket, call.op, call.path, extra)
    return True


async def open_(call: Call) -> web.StreamResponse:
    if not _is_data_phase(call):
        call.integer("offset", 0)
        call.integer("length", None)
        await file_info(call)
        return _redirect(
            call,
            _data_url(call, offset=call.params.get("offset"), length=call.params.get("length")),
        )
    info = await file_info(call)
    size = size_of(info)
    offset = call.integer("offset", 0) or 0
    length = call.integer("length", None)
    if offset > size:
        raise bad_request(f"offset {offset} is beyond the end of {call.path} ({size} bytes)")
    end = size if length is None else min(size, offset + length)
    pieces = _pieces(call, info, offset, end, ramp=length is None)
    try:
        first = await anext(pieces, b"")  # a failure here is still a RemoteException
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(end - offset),
            },
        )
        await response.prepare(call.request)
        call.request[STREAMING] = True  # failures now can only cut the stream
        if first:
            await response.write(first)
        async for piece in pieces:
            await response.write(piece)
    finally:
        await pieces.aclose()  # a client that left stops the reads ahead
    await response.write_eof()
    return response


def _pieces(call: Call, info: dict, start: int, end: int, *, ramp: bool):
    """[start, end) of the file: one streaming read where the filesystem has one
    (memory: a piece or two), else ranged reads ahead."""
    stream = call.state.backend.stream(
        call.fs_path, start, end, etag=info.get("ETag"), piece_size=STREAM_PIECE
    )
    return stream if stream is not None else _ranged_reads(call, start, end, ramp=ramp)


async def _ranged_reads(call: Call, start: int, end: int, *, ramp: bool):
    """Ranged reads (growing from 1 MiB when ``ramp``), ``read_ahead`` of them in
    flight; closing the iterator cancels the reads ahead."""
    state = call.state
    pending: list[asyncio.Task] = []
    pos = start
    chunk = FIRST_READ_CHUNK if ramp else state.read_chunk_max

    def schedule() -> None:
        nonlocal pos, chunk
        while pos < end and len(pending) < state.read_ahead:
            stop = min(end, pos + chunk)
            pending.append(asyncio.ensure_future(state.backend.read(call.fs_path, pos, stop)))
            pos, chunk = stop, min(chunk * 2, state.read_chunk_max)

    try:
        schedule()
        while pending:
            data = await pending.pop(0)
            schedule()
            yield data
    finally:
        for task in pending:
            task.cancel()


async def _body_chunks(request: web.Request, size: int):
    """The body as lists of the pieces that arrived, ``size`` bytes or more each:
    handed on as they are (the writer's buffer makes the one copy)."""
    pieces: list[bytes] = []
    held = 0
    async for piece in request.content.iter_any():
        pieces.append(piece)
        held += len(piece)
        if held >= size:
            yield pieces
            pieces, held = [], 0
    if pieces:
        yield pieces


async def create(call: Call) -> web.StreamResponse:
    backend = call.state.backend
    overwrite = call.flag("overwrite", False)
    if not _is_data_phase(call):
        try:
            info = await backend.info(call.fs_path)
        except FileNotFoundError:
            info = None
        if info is not None and (is_dir(info) or not overwrite):
            what = "a directory" if is_dir(info) else "a file"
            raise GatewayError(
                "FileAlreadyExistsException",
                f"{call.path} already exists as {what}"
                + ("" if is_dir(info) else "; pass overwrite=true to replace it"),
            )
        if info is None:
            await require_bucket(call, call.fs_path)
        return _redirect(
            call, _data_url(call, extra=str(overwrite).lower(), overwrite=str(overwrite).lower())
        )
    if not overwrite and await backend.exists(call.fs_path):
        raise GatewayError("FileAlreadyExistsException", f"{call.path} already exists")
    writer = await backend.open_writer(call.fs_path)
    pending = None
    try:
        async for data in _body_chunks(call.request, call.state.write_chunk):
            if pending is not None:
                await pending  # one write in flight while the next chunk arrives
            pending = asyncio.ensure_future(backend.thread(writer.writelines, data))
        if pending is not None:
            await pending
        await backend.thread(writer.commit)
    except BaseException:
        if pending is not None and not pending.done():
            with contextlib.suppress(BaseException):  # never discard under a running write
                await pending
        await asyncio.shield(backend.thread(writer.abort))
        raise
    url = call.request.url
    return web.Response(
        status=201,
        headers={"Location": f"webhdfs://{url.host}:{url.port}{quote(call.path, safe='/')}"},
    )


async def append(call: Call) -> web.StreamResponse:
    if not _is_data_phase(call):
        if call.fs_path not in call.state.sessions:
            info = await call.state.backend.info(call.fs_path)
            if is_dir(info):
                raise GatewayError("FileNotFoundException", f"{call.path} is a directory")
        return _redirect(call, _data_url(call))
    await call.state.sessions.append(call.fs_path, call.request.content.iter_any())
    return web.Response(status=200)

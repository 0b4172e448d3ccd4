"""One coroutine per WebHDFS operation; each takes a :class:`Call`, returns a response.

Only the public fsspec API is used (through :class:`~.backend.Backend`).
Where HDFS answers with a boolean (RENAME, DELETE, MKDIRS) the same cases
answer ``false`` here; everything else failing is a ``RemoteException``.
Top-level directories are buckets, which no operation creates, deletes or
renames (``AccessControlException``, as ViewFS answers for its mount points).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import re
import struct
import zlib
from urllib.parse import quote, urlencode

from aiohttp import web

from .context import STREAMING, Call, json_response
from .errors import GatewayError, bad_request
from .status import file_status, fs_name_suffix, is_dir, size_of

__all__ = ["GET_OPS", "PUT_OPS", "POST_OPS", "DELETE_OPS", "normalize_path"]

FIRST_READ_CHUNK = 1024 * 1024  # without a length, reads start small: Hadoop may stop early
STREAM_PIECE = 1024 * 1024  # a streamed OPEN holds about two of these per client
BYTES_PER_CRC = 512


def normalize_path(text: str, what: str = "path") -> str:
    """Check an absolute HDFS path: no ``.``/``..`` segments, no NUL; ``//`` collapses."""
    if not text.startswith("/"):
        raise bad_request(f"{what} {text!r} must be absolute (start with '/')")
    parts = [p for p in text.split("/") if p]
    for part in parts:
        if part in (".", "..") or "\0" in part:
            raise bad_request(f"{what} {text!r} has a {part!r} segment; paths may not "
                              "escape or step within the namespace")
    return "/" + "/".join(parts)


def to_fs(path: str) -> str:
    return path.strip("/")


# --- buckets: the top-level directories, which the gateway never creates, deletes or renames

def _is_bucket(fs_path: str) -> bool:
    return bool(fs_path) and "/" not in fs_path


def _refuse(path: str, what: str, advice: str) -> GatewayError:
    return GatewayError("AccessControlException",
                        f"{path}: {what}; the gateway never creates, deletes or renames "
                        f"buckets (the top-level directories). {advice}")


async def _require_bucket(call: Call, fs_path: str) -> None:
    """Refuse a change below a top-level directory that does not exist: the
    filesystem would create it as a new bucket."""
    bucket = fs_path.partition("/")[0]
    if not bucket:
        return
    try:
        info = await call.state.backend.info(bucket)
    except FileNotFoundError:
        info = None
    if info is None or not is_dir(info):
        raise _refuse("/" + fs_path, f"bucket /{bucket} does not exist",
                      f"Create it with S3 tooling (aws s3 mb s3://{bucket}) first.")


# --- reading metadata ----------------------------------------------------------------

async def getfilestatus(call: Call) -> web.StreamResponse:
    info = await call.state.backend.info(call.fs_path)
    return json_response({"FileStatus": file_status(info, "", call.state.defaults,
                                                    user=call.user)})


async def _listing(call: Call) -> list[dict]:
    """Sorted FileStatus entries of a directory, or the file's own status."""
    entries = await call.state.backend.ls(call.fs_path)
    if len(entries) == 1 and not is_dir(entries[0]) \
            and to_fs(str(entries[0]["name"])) == call.fs_path and call.fs_path:
        return [file_status(entries[0], "", call.state.defaults, user=call.user)]
    out = [file_status(e, fs_name_suffix(str(e["name"])), call.state.defaults, user=call.user)
           for e in entries if to_fs(str(e["name"])) != call.fs_path]
    out.sort(key=lambda s: s["pathSuffix"])
    return out


async def liststatus(call: Call) -> web.StreamResponse:
    return json_response({"FileStatuses": {"FileStatus": await _listing(call)}})


async def liststatus_batch(call: Call) -> web.StreamResponse:
    """One page of ``list_page_size`` entries after ``startAfter`` (a name, not a path).

    The first page lists the directory; the pages after it are cut from that
    listing while it is fresh (:class:`~.context.ListingSnapshots`).
    """
    start_after = call.params.get("startafter", "")
    key = (call.fs_path, call.user)
    kept = call.state.listings.get(key) if start_after else None
    if kept is None:
        entries = await _listing(call)
        kept = (entries, [e["pathSuffix"] for e in entries])
        call.state.listings.put(key, kept)
    entries, names = kept
    first = bisect.bisect_right(names, start_after) if start_after else 0
    page = entries[first:first + call.state.list_page_size]
    return json_response({"DirectoryListing": {
        "partialListing": {"FileStatuses": {"FileStatus": page}},
        "remainingEntries": len(entries) - first - len(page)}})


async def getcontentsummary(call: Call) -> web.StreamResponse:
    backend = call.state.backend
    info = await backend.info(call.fs_path)
    if is_dir(info):
        found = await backend.call("find", call.fs_path, withdirs=True, detail=True)
        files = [i for n, i in found.items() if not is_dir(i)]
        dirs = [n for n, i in found.items() if is_dir(i) and to_fs(n) != call.fs_path]
        length, file_count, dir_count = sum(size_of(i) for i in files), len(files), len(dirs) + 1
    else:
        length, file_count, dir_count = size_of(info), 1, 0
    return json_response({"ContentSummary": {
        "directoryCount": dir_count, "fileCount": file_count, "length": length,
        "quota": -1, "spaceConsumed": length, "spaceQuota": -1, "typeQuota": {}}})


async def gethomedirectory(call: Call) -> web.StreamResponse:
    user = call.user or call.state.defaults.owner
    return json_response({"Path": call.state.home_template.format(user=user)})


async def getserverdefaults(call: Call) -> web.StreamResponse:
    d = call.state.defaults
    return json_response({"FsServerDefaults": {
        "blockSize": d.block_size, "bytesPerChecksum": BYTES_PER_CRC, "writePacketSize": 65536,
        "replication": d.replication, "fileBufferSize": 4096, "encryptDataTransfer": False,
        "trashInterval": 0, "checksumType": 1, "keyProviderUri": "",
        "defaultStoragePolicyId": 7}})


async def _file_info(call: Call) -> dict:
    info = await call.state.backend.info(call.fs_path)
    if is_dir(info):
        raise GatewayError("FileNotFoundException", f"Path is not a file: {call.path}")
    return info


def _blocks(call: Call, info: dict) -> list[tuple[int, int]]:
    offset = call.integer("offset", 0) or 0
    length = call.integer("length", None)
    size = size_of(info)
    end = size if length is None else min(size, offset + length)
    block = int(info.get("blockSize") or call.state.defaults.block_size)
    first = (offset // block) * block
    return [(start, min(block, size - start)) for start in range(first, end, block)]


async def getfileblocklocations(call: Call) -> web.StreamResponse:
    """Blocks of ``blockSize`` over [offset, offset+length), all on this gateway's host."""
    info = await _file_info(call)
    host, port = _host_port(call)
    locations = [{
        "cachedHosts": [], "corrupt": False, "hosts": [host], "length": length,
        "names": [f"{host}:{port}"], "offset": start, "storageIds": [],
        "storageTypes": ["DISK"], "topologyPaths": [f"/default-rack/{host}:{port}"],
    } for start, length in _blocks(call, info)]
    return json_response({"BlockLocations": {"BlockLocation": locations}})


async def get_block_locations(call: Call) -> web.StreamResponse:
    """The older ``LocatedBlocks`` form of the same answer."""
    info = await _file_info(call)
    host, port = _host_port(call)
    node = {"ipAddr": host, "hostName": host, "storageID": "emrfs-gateway", "xferPort": port,
            "infoPort": port, "ipcPort": port, "infoSecurePort": 0}
    blocks = [{
        "block": {"blockPoolId": "emrfs", "blockId": index, "numBytes": length,
                  "generationStamp": 0},
        "locations": [node], "cachedLocations": [], "storageTypes": ["DISK"],
        "startOffset": start, "isCorrupt": False,
    } for index, (start, length) in enumerate(_blocks(call, info))]
    return json_response({"LocatedBlocks": {
        "fileLength": size_of(info), "isUnderConstruction": False, "locatedBlocks": blocks,
        "lastLocatedBlock": blocks[-1] if blocks else None, "isLastBlockComplete": True}})


def _host_port(call: Call) -> tuple[str, int]:
    url = call.request.url
    return url.host or "localhost", url.port or 9870


async def getfilechecksum(call: Call) -> web.StreamResponse:
    """HDFS's ``MD5-of-MD5-of-512CRC32`` over the file (reads it whole), as distcp compares."""
    info = await _file_info(call)
    size = size_of(info)
    block = int(info.get("blockSize") or call.state.defaults.block_size)
    block_md5s = []
    for start in range(0, size, block):
        crcs = bytearray()
        end = min(size, start + block)
        for chunk_start in range(start, end, 8 * 1024 * 1024):
            data = await call.state.backend.read(call.fs_path, chunk_start,
                                                 min(end, chunk_start + 8 * 1024 * 1024))
            crcs += await asyncio.to_thread(_crc32s, data)
        block_md5s.append(hashlib.md5(crcs).digest())
    crc_per_block = block // BYTES_PER_CRC if len(block_md5s) > 1 else 0
    digest = hashlib.md5(b"".join(block_md5s)).digest()
    raw = struct.pack(">iq", BYTES_PER_CRC, crc_per_block) + digest
    return json_response({"FileChecksum": {
        "algorithm": f"MD5-of-{crc_per_block}MD5-of-{BYTES_PER_CRC}CRC32",
        "bytes": raw.hex(), "length": len(raw)}})


def _crc32s(data: bytes) -> bytes:
    view = memoryview(data)
    return b"".join(struct.pack(">I", zlib.crc32(view[i:i + BYTES_PER_CRC]))
                    for i in range(0, len(view), BYTES_PER_CRC))


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
        await _file_info(call)
        return _redirect(call, _data_url(call, offset=call.params.get("offset"),
                                         length=call.params.get("length")))
    info = await _file_info(call)
    size = size_of(info)
    offset = call.integer("offset", 0) or 0
    length = call.integer("length", None)
    if offset > size:
        raise bad_request(f"offset {offset} is beyond the end of {call.path} ({size} bytes)")
    end = size if length is None else min(size, offset + length)
    pieces = _pieces(call, info, offset, end, ramp=length is None)
    try:
        first = await anext(pieces, b"")  # a failure here is still a RemoteException
        response = web.StreamResponse(status=200, headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(end - offset)})
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
    stream = call.state.backend.stream(call.fs_path, start, end, etag=info.get("ETag"),
                                       piece_size=STREAM_PIECE)
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
            raise GatewayError("FileAlreadyExistsException",
                               f"{call.path} already exists as {what}"
                               + ("" if is_dir(info) else "; pass overwrite=true to replace it"))
        if info is None:
            await _require_bucket(call, call.fs_path)
        return _redirect(call, _data_url(call, extra=str(overwrite).lower(),
                                         overwrite=str(overwrite).lower()))
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
    return web.Response(status=201, headers={"Location": f"webhdfs://{url.host}:{url.port}"
                                                         f"{quote(call.path, safe='/')}"})


async def append(call: Call) -> web.StreamResponse:
    if not _is_data_phase(call):
        if call.fs_path not in call.state.sessions:
            info = await call.state.backend.info(call.fs_path)
            if is_dir(info):
                raise GatewayError("FileNotFoundException", f"{call.path} is a directory")
        return _redirect(call, _data_url(call))
    await call.state.sessions.append(call.fs_path, call.request.content.iter_any())
    return web.Response(status=200)


# --- namespace changes --------------------------------------------------------------

async def mkdirs(call: Call) -> web.StreamResponse:
    backend = call.state.backend
    try:
        info = await backend.info(call.fs_path)
    except FileNotFoundError:
        info = None
    if info is not None and not is_dir(info):
        raise GatewayError("FileAlreadyExistsException", f"{call.path} exists and is a file")
    if info is None:
        await _require_bucket(call, call.fs_path)
        await backend.call("makedirs", call.fs_path, exist_ok=True)
    return json_response({"boolean": True})


async def rename(call: Call) -> web.StreamResponse:
    """HDFS rename: ``false`` for a missing source, an existing file at the destination,
    a missing destination parent, or a move into itself; into an existing directory
    the source moves below it.  ``renameoptions=OVERWRITE`` replaces a file."""
    backend = call.state.backend
    dst_path = normalize_path(call.required("destination"), "destination")
    dst = to_fs(dst_path)
    overwrite = "OVERWRITE" in call.params.get("renameoptions", "").upper()
    await call.state.sessions.settle(call.fs_path, dst)
    src = call.fs_path

    def result(value: bool) -> web.StreamResponse:
        return json_response({"boolean": value})

    if not src or not dst:
        return result(False)
    try:
        src_info = await backend.info(src)
    except FileNotFoundError:
        if overwrite:
            raise
        return result(False)
    if _is_bucket(src) and is_dir(src_info):
        raise _refuse(call.path, "a bucket cannot be renamed",
                      f"Rename what is in it ({call.path}/*) instead.")
    if dst == src:
        return result(not is_dir(src_info))
    if dst.startswith(src + "/"):
        return result(False)
    try:
        dst_info = await backend.info(dst)
    except FileNotFoundError:
        dst_info = None
    if dst_info is not None and is_dir(dst_info) and not overwrite:
        dst = dst + "/" + fs_name_suffix(src)
        try:
            dst_info = await backend.info(dst)
        except FileNotFoundError:
            dst_info = None
    if _is_bucket(dst) and (dst_info is None or is_dir(dst_info)):
        what = "it would replace the bucket" if dst_info is not None else \
            "it would become a new bucket"
        raise _refuse(f"/{dst}", f"cannot rename {call.path} there: {what}",
                      "Rename into a directory below a bucket that exists.")
    if dst_info is not None:
        if not overwrite or is_dir(dst_info) or is_dir(src_info):
            if overwrite:
                raise GatewayError("FileAlreadyExistsException", f"{dst_path} exists")
            return result(False)
        await backend.call("rm", dst)
    parent = dst.rpartition("/")[0]
    if parent and "/" in dst:
        try:
            if not is_dir(await backend.info(parent)):
                return result(False)
        except FileNotFoundError:
            return result(False)
    await backend.call("mv", src, dst, recursive=is_dir(src_info))
    return result(True)


async def delete(call: Call) -> web.StreamResponse:
    backend = call.state.backend
    recursive = call.flag("recursive", False)
    if not call.fs_path:
        return json_response({"boolean": False})  # HDFS never deletes the root
    try:
        info = await backend.info(call.fs_path)
    except FileNotFoundError:
        return json_response({"boolean": False})
    if _is_bucket(call.fs_path) and is_dir(info):
        raise _refuse(call.path, "a bucket cannot be deleted",
                      f"Delete what is in it instead (hdfs dfs -rm -r '{call.path}/*': a "
                      f"DELETE of each entry LISTSTATUS {call.path} shows), or remove the "
                      f"bucket with S3 tooling (aws s3 rb s3://{call.fs_path}).")
    if is_dir(info) and not recursive:
        children = await backend.ls(call.fs_path)
        if any(to_fs(str(c["name"])) != call.fs_path for c in children):
            raise GatewayError("PathIsNotEmptyDirectoryException",
                               f"`{call.path} is non empty': Directory is not empty; "
                               "pass recursive=true")
    await backend.call("rm", call.fs_path, recursive=is_dir(info))
    return json_response({"boolean": True})


async def _accepted(call: Call, body: dict | None = None) -> web.StreamResponse:
    """Attributes S3 does not keep: checked for a real path, then accepted and ignored."""
    await call.state.backend.info(call.fs_path)
    return json_response(body) if body is not None else web.Response(status=200)


async def setpermission(call: Call) -> web.StreamResponse:
    permission = call.params.get("permission", "755")
    # HDFS's domain: an octal short within 0..1777 (sticky bit and rwx for three classes)
    if not re.fullmatch(r"[0-7]{1,4}", permission) or int(permission, 8) > 0o1777:
        raise bad_request(f'Invalid value for webhdfs parameter "permission": {permission!r} '
                          f"for {call.path} is not an octal permission from 0 to 1777 "
                          "(e.g. 755)")
    return await _accepted(call)


async def setowner(call: Call) -> web.StreamResponse:
    if not call.params.get("owner") and not call.params.get("group"):
        raise bad_request("SETOWNER needs owner or group")
    return await _accepted(call)


async def settimes(call: Call) -> web.StreamResponse:
    call.integer("modificationtime", -1, minimum=-1)
    call.integer("accesstime", -1, minimum=-1)
    return await _accepted(call)


async def setreplication(call: Call) -> web.StreamResponse:
    call.integer("replication", None, minimum=1)
    info = await call.state.backend.info(call.fs_path)
    return json_response({"boolean": not is_dir(info)})


GET_OPS = {
    "OPEN": open_, "GETFILESTATUS": getfilestatus, "LISTSTATUS": liststatus,
    "LISTSTATUS_BATCH": liststatus_batch, "GETCONTENTSUMMARY": getcontentsummary,
    "GETFILECHECKSUM": getfilechecksum, "GETHOMEDIRECTORY": gethomedirectory,
    "GETFILEBLOCKLOCATIONS": getfileblocklocations, "GET_BLOCK_LOCATIONS": get_block_locations,
    "GETSERVERDEFAULTS": getserverdefaults,
}
PUT_OPS = {
    "CREATE": create, "MKDIRS": mkdirs, "RENAME": rename, "SETPERMISSION": setpermission,
    "SETOWNER": setowner, "SETTIMES": settimes, "SETREPLICATION": setreplication,
}
POST_OPS = {"APPEND": append}
DELETE_OPS = {"DELETE": delete}

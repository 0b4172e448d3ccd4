"""WebHDFS operations that change the namespace (MKDIRS, RENAME, DELETE) or its
attributes (accepted and ignored: S3 keeps none of them)."""

from __future__ import annotations

import re

from aiohttp import web

from .context import Call, json_response
from .errors import GatewayError, bad_request
from .ops_common import is_bucket, normalize_path, refuse, require_bucket, to_fs
from .status import fs_name_suffix, is_dir


async def mkdirs(call: Call) -> web.StreamResponse:
    backend = call.state.backend
    try:
        info = await backend.info(call.fs_path)
    except FileNotFoundError:
        info = None
    if info is not None and not is_dir(info):
        raise GatewayError("FileAlreadyExistsException", f"{call.path} exists and is a file")
    if info is None:
        await require_bucket(call, call.fs_path)
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
    if is_bucket(src) and is_dir(src_info):
        raise refuse(
            call.path,
            "a bucket cannot be renamed",
            f"Rename what is in it ({call.path}/*) instead.",
        )
    if dst == src:
        return result(not is_dir(src_info))
    if dst.startswith(src + "/"):
        return result(False)
    dst, dst_info = await _rename_target(call, src, dst, overwrite)
    if dst_info is not None:
        if not overwrite or is_dir(dst_info) or is_dir(src_info):
            if overwrite:
                raise GatewayError("FileAlreadyExistsException", f"{dst_path} exists")
            return result(False)
        await backend.call("rm", dst)
    if not await _parent_is_directory(backend, dst):
        return result(False)
    await backend.call("mv", src, dst, recursive=is_dir(src_info))
    return result(True)


async def _info_or_none(backend, path: str) -> dict | None:
    try:
        return await backend.info(path)
    except FileNotFoundError:
        return None


async def _rename_target(
    call: Call, src: str, dst: str, overwrite: bool
) -> tuple[str, dict | None]:
    """Where a rename of ``src`` to ``dst`` lands (below ``dst`` if it is a directory and
    not overwritten), with what is there now; refused if that would make or replace a
    bucket."""
    backend = call.state.backend
    dst_info = await _info_or_none(backend, dst)
    if dst_info is not None and is_dir(dst_info) and not overwrite:
        dst = dst + "/" + fs_name_suffix(src)
        dst_info = await _info_or_none(backend, dst)
    if is_bucket(dst) and (dst_info is None or is_dir(dst_info)):
        what = (
            "it would replace the bucket"
            if dst_info is not None
            else "it would become a new bucket"
        )
        raise refuse(
            f"/{dst}",
            f"cannot rename {call.path} there: {what}",
            "Rename into a directory below a bucket that exists.",
        )
    return dst, dst_info


async def _parent_is_directory(backend, dst: str) -> bool:
    """HDFS renames only into an existing directory (a bucket's top level always is)."""
    parent = dst.rpartition("/")[0]
    if not parent or "/" not in dst:
        return True
    info = await _info_or_none(backend, parent)
    return info is not None and is_dir(info)


async def delete(call: Call) -> web.StreamResponse:
    backend = call.state.backend
    recursive = call.flag("recursive", False)
    if not call.fs_path:
        return json_response({"boolean": False})  # HDFS never deletes the root
    try:
        info = await backend.info(call.fs_path)
    except FileNotFoundError:
        return json_response({"boolean": False})
    if is_bucket(call.fs_path) and is_dir(info):
        raise refuse(
            call.path,
            "a bucket cannot be deleted",
            f"Delete what is in it instead (hdfs dfs -rm -r '{call.path}/*': a "
            f"DELETE of each entry LISTSTATUS {call.path} shows), or remove the "
            f"bucket with S3 tooling (aws s3 rb s3://{call.fs_path}).",
        )
    if is_dir(info) and not recursive:
        children = await backend.ls(call.fs_path)
        if any(to_fs(str(c["name"])) != call.fs_path for c in children):
            raise GatewayError(
                "PathIsNotEmptyDirectoryException",
                f"`{call.path} is non empty': Directory is not empty; pass recursive=true",
            )
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
        raise bad_request(
            f'Invalid value for webhdfs parameter "permission": {permission!r} '
            f"for {call.path} is not an octal permission from 0 to 1777 "
            "(e.g. 755)"
        )
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

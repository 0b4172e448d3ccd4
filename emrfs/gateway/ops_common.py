"""What the WebHDFS operations share: path checks, the bucket rule, a file's info."""

from __future__ import annotations

from .context import Call
from .errors import GatewayError, bad_request
from .status import is_dir


def normalize_path(text: str, what: str = "path") -> str:
    """Check an absolute HDFS path: no ``.``/``..`` segments, no NUL; ``//`` collapses."""
    if not text.startswith("/"):
        raise bad_request(f"{what} {text!r} must be absolute (start with '/')")
    parts = [p for p in text.split("/") if p]
    for part in parts:
        if part in (".", "..") or "\0" in part:
            raise bad_request(
                f"{what} {text!r} has a {part!r} segment; paths may not "
                "escape or step within the namespace"
            )
    return "/" + "/".join(parts)


def to_fs(path: str) -> str:
    return path.strip("/")


# --- buckets: the top-level directories, which the gateway never creates, deletes or renames


def is_bucket(fs_path: str) -> bool:
    return bool(fs_path) and "/" not in fs_path


def refuse(path: str, what: str, advice: str) -> GatewayError:
    return GatewayError(
        "AccessControlException",
        f"{path}: {what}; the gateway never creates, deletes or renames "
        f"buckets (the top-level directories). {advice}",
    )


async def require_bucket(call: Call, fs_path: str) -> None:
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
        raise refuse(
            "/" + fs_path,
            f"bucket /{bucket} does not exist",
            f"Create it with S3 tooling (aws s3 mb s3://{bucket}) first.",
        )


async def file_info(call: Call) -> dict:
    info = await call.state.backend.info(call.fs_path)
    if is_dir(info):
        raise GatewayError("FileNotFoundException", f"Path is not a file: {call.path}")
    return info

"""fsspec ``info()`` dicts -> Hadoop ``FileStatus`` / ``ContentSummary`` JSON.

emrfs's info dicts already carry Hadoop's fields (``length``, ``blockSize``,
``replication``, ``modificationTime`` in ms, ``accessTime``, ``owner``,
``group``, ``permission`` as an octal string); other filesystems get
sensible defaults from what fsspec gives (``size``, ``mtime``, ``mode``...).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass

__all__ = ["StatusDefaults", "file_status", "is_dir", "size_of", "fs_name_suffix"]


@dataclass(frozen=True)
class StatusDefaults:
    """What a FileStatus says when the filesystem does not say it."""

    owner: str
    group: str
    block_size: int = 128 * 1024 * 1024
    replication: int = 1
    file_permission: str = "644"
    dir_permission: str = "755"


def is_dir(info: dict) -> bool:
    return info.get("type") == "directory"


def size_of(info: dict) -> int:
    if is_dir(info):
        return 0
    value = info.get("length", info.get("size"))
    return int(value or 0)


def fs_name_suffix(name: str) -> str:
    """The last segment of an fsspec path (``pathSuffix`` in a listing)."""
    return name.rstrip("/").rpartition("/")[2]


def _millis(info: dict) -> int:
    if info.get("modificationTime") is not None:
        return int(info["modificationTime"])
    for key in ("mtime", "LastModified", "last_modified", "modified", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, _dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=_dt.timezone.utc)
            return int(value.timestamp() * 1000)
        if isinstance(value, (int, float)):
            return int(value * 1000)
    return 0


def _permission(info: dict, directory: bool, defaults: StatusDefaults) -> str:
    value = info.get("permission")
    if isinstance(value, str) and value:
        return value
    mode = info.get("mode")
    if isinstance(mode, int):
        return format(mode & 0o7777, "o")
    return defaults.dir_permission if directory else defaults.file_permission


def file_id(path: str) -> int:
    """A stable 53-bit id for a path (HDFS inode ids have no S3 counterpart)."""
    return int.from_bytes(hashlib.blake2b(path.encode(), digest_size=8).digest(), "big") >> 11


def file_status(
    info: dict, path_suffix: str, defaults: StatusDefaults, *, user: str | None = None
) -> dict:
    """One ``FileStatus`` object; ``user`` (the caller's ``user.name``) is the owner."""
    directory = is_dir(info)
    owner = user or info.get("owner") or defaults.owner
    return {
        "pathSuffix": path_suffix,
        "type": "DIRECTORY" if directory else "FILE",
        "length": size_of(info),
        "owner": owner,
        "group": info.get("group") or defaults.group,
        "permission": _permission(info, directory, defaults),
        "accessTime": int(info.get("accessTime") or 0),
        "modificationTime": _millis(info),
        "blockSize": 0 if directory else int(info.get("blockSize") or defaults.block_size),
        "replication": 0 if directory else int(info.get("replication") or defaults.replication),
        "fileId": file_id(str(info.get("name", path_suffix))),
        "childrenNum": -1 if directory else 0,
        "storagePolicy": 0,
    }

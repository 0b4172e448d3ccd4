"""File status records: fsspec's info dict with Hadoop ``FileStatus`` fields beside it.

Pure: builds dicts from what S3 returned.  The Hadoop fields use WebHDFS's
names, so the gateway can pass them through:

=================  ==============================================
``length``         bytes (0 for directories)
``blockSize``      ``s3.fs_block_size`` (``fs.s3.block.size``)
``replication``    1 — S3 replicates below the API, as EMRFS reports
``modificationTime``  milliseconds since the epoch
``accessTime``     0 — S3 keeps none
``owner``/``group``   ``s3.owner``/``s3.group`` (default: the OS user)
``permission``     octal string: ``"666"`` files, ``"777"`` directories,
                   as S3A reports them
=================  ==============================================
"""

from __future__ import annotations

import datetime as _dt
import getpass
from functools import lru_cache
from typing import Any

FILE_PERMISSION = "666"
DIR_PERMISSION = "777"


@lru_cache(maxsize=1)
def _os_user() -> str:
    try:
        return getpass.getuser()
    # no passwd entry in some containers (KeyError before 3.13, OSError since), no pwd module
    except (ImportError, KeyError, OSError):
        return "emrfs"


class StatusFactory:
    """Makes info dicts; holds the few options file status depends on."""

    def __init__(self, block_size: int, owner: str | None = None, group: str | None = None):
        self.block_size = block_size
        self.owner = owner or _os_user()
        self.group = group or self.owner

    # Each builder writes its dict in one literal (no intermediate dicts merged in):
    # a listing builds one per entry, so this is the per-entry cost of ``ls``/``find``.

    def file(
        self,
        path: str,
        size: int,
        *,
        etag: str | None = None,
        last_modified: _dt.datetime | None = None,
        version_id: str | None = None,
        storage_class: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        mtime = last_modified.timestamp() if last_modified else None
        info = {
            "name": path,
            "size": size,
            "type": "file",
            "ETag": etag,
            "LastModified": last_modified,
            "mtime": mtime,
            "StorageClass": storage_class or "STANDARD",
            "VersionId": version_id,
            "length": size,
            "blockSize": self.block_size,
            "replication": 1,
            "modificationTime": int(mtime * 1000) if mtime else 0,
            "accessTime": 0,
            "owner": self.owner,
            "group": self.group,
            "permission": FILE_PERMISSION,
        }
        if extra:
            info.update(extra)
        return info

    def directory(
        self, path: str, *, last_modified: _dt.datetime | None = None, marker: str | None = None
    ) -> dict[str, Any]:
        mtime = last_modified.timestamp() if last_modified else None
        return {
            "name": path,
            "size": 0,
            "type": "directory",
            "StorageClass": "DIRECTORY",
            "marker": marker,
            "LastModified": last_modified,
            "mtime": mtime,
            "length": 0,
            "blockSize": 0,
            "replication": 0,
            "modificationTime": int(mtime * 1000) if mtime else 0,
            "accessTime": 0,
            "owner": self.owner,
            "group": self.group,
            "permission": DIR_PERMISSION,
        }

    def bucket(self, name: str, created: _dt.datetime | None = None) -> dict[str, Any]:
        info = self.directory(name, last_modified=created)
        info["StorageClass"] = "BUCKET"
        return info


def to_millis(moment: _dt.datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment else 0

"""One coroutine per WebHDFS operation; each takes a :class:`Call`, returns a response.

Only the public fsspec API is used (through :class:`~.backend.Backend`).
Where HDFS answers with a boolean (RENAME, DELETE, MKDIRS) the same cases
answer ``false`` here; everything else failing is a ``RemoteException``.
Top-level directories are buckets, which no operation creates, deletes or
renames (``AccessControlException``, as ViewFS answers for its mount points).

The operations live by kind: :mod:`.ops_meta` (statuses, listings, checksums),
:mod:`.ops_data` (OPEN/CREATE/APPEND), :mod:`.ops_namespace` (MKDIRS, RENAME,
DELETE, attributes), over :mod:`.ops_common` (paths, the bucket rule); this
module maps HTTP methods and ``op=`` names to them.
"""

from __future__ import annotations

from .ops_common import normalize_path, to_fs
from .ops_data import append, create, open_
from .ops_meta import (
    get_block_locations,
    getcontentsummary,
    getfileblocklocations,
    getfilechecksum,
    getfilestatus,
    gethomedirectory,
    getserverdefaults,
    liststatus,
    liststatus_batch,
)
from .ops_namespace import (
    delete,
    mkdirs,
    rename,
    setowner,
    setpermission,
    setreplication,
    settimes,
)

__all__ = ["DELETE_OPS", "GET_OPS", "POST_OPS", "PUT_OPS", "normalize_path", "to_fs"]

GET_OPS = {
    "OPEN": open_,
    "GETFILESTATUS": getfilestatus,
    "LISTSTATUS": liststatus,
    "LISTSTATUS_BATCH": liststatus_batch,
    "GETCONTENTSUMMARY": getcontentsummary,
    "GETFILECHECKSUM": getfilechecksum,
    "GETHOMEDIRECTORY": gethomedirectory,
    "GETFILEBLOCKLOCATIONS": getfileblocklocations,
    "GET_BLOCK_LOCATIONS": get_block_locations,
    "GETSERVERDEFAULTS": getserverdefaults,
}
PUT_OPS = {
    "CREATE": create,
    "MKDIRS": mkdirs,
    "RENAME": rename,
    "SETPERMISSION": setpermission,
    "SETOWNER": setowner,
    "SETTIMES": settimes,
    "SETREPLICATION": setreplication,
}
POST_OPS = {"APPEND": append}
DELETE_OPS = {"DELETE": delete}

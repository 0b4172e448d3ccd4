"""Per-gateway state and the per-request view the ops work on."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .appends import AppendSessions
from .auth import Authenticator
from .backend import Backend
from .errors import bad_request
from .status import StatusDefaults

__all__ = ["GatewayState", "ListingSnapshots", "Call", "json_response", "JSON_MARK", "STREAMING"]

#: responses carrying this key lose their Content-Type before headers go out:
#: Spark's shaded WebHDFS client fails on JSON that declares one.
JSON_MARK = web.ResponseKey("emrfs_gateway_json", bool)
#: set on a request once its data response has started: errors can only cut it.
STREAMING = web.RequestKey("emrfs_gateway_streaming", bool)


class ListingSnapshots:
    """Directory listings kept briefly for the pages of a LISTSTATUS_BATCH walk.

    A client pages with ``startAfter``; listing the whole directory again for
    every page would make a walk cost pages x entries.  The first page's listing
    is kept (``ttl`` seconds, at most ``limit`` directories) and later pages are
    cut from it, so a walk costs one listing and sees one snapshot.
    """

    def __init__(
        self, ttl: float = 60.0, limit: int = 64, clock: Callable[[], float] = time.monotonic
    ):
        self.ttl, self.limit, self.clock = ttl, limit, clock
        self._kept: OrderedDict[tuple, tuple[float, Any]] = OrderedDict()

    def get(self, key: tuple) -> Any:
        found = self._kept.get(key)
        if found is None or self.clock() - found[0] > self.ttl:
            self._kept.pop(key, None)
            return None
        return found[1]

    def put(self, key: tuple, listing: Any) -> None:
        self._kept[key] = (self.clock(), listing)
        self._kept.move_to_end(key)
        while len(self._kept) > self.limit:
            self._kept.popitem(last=False)


@dataclass
class GatewayState:
    """Everything the ops share: the filesystem, sessions, auth and defaults."""

    backend: Backend
    auth: Authenticator
    sessions: AppendSessions
    defaults: StatusDefaults
    list_page_size: int = 1000
    #: LISTSTATUS_BATCH: the directory listed for a first page, kept for the pages after it
    listings: ListingSnapshots = field(default_factory=lambda: ListingSnapshots())
    home_template: str = "/user/{user}"
    read_chunk_max: int = 16 * 1024 * 1024
    read_ahead: int = 3
    write_chunk: int = 8 * 1024 * 1024


@dataclass
class Call:
    """One WebHDFS request: op, path (HDFS form ``/b/k`` and fs form ``b/k``), params."""

    state: GatewayState
    request: web.Request
    op: str
    path: str
    fs_path: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def user(self) -> str | None:
        return self.params.get("user.name") or None

    def flag(self, name: str, default: bool) -> bool:
        value = self.params.get(name)
        if value is None or value == "":
            return default
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad_request(
            f'Invalid value for webhdfs parameter "{name}": {value!r} is not true or false'
        )

    def integer(self, name: str, default: int | None = None, *, minimum: int = 0) -> int | None:
        value = self.params.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or number < minimum:
            raise bad_request(
                f'Invalid value for webhdfs parameter "{name}": {value!r} '
                f"is not an integer >= {minimum}"
            )
        return number

    def required(self, name: str) -> str:
        value = self.params.get(name)
        if not value:
            raise bad_request(f'{self.op} needs the parameter "{name}"')
        return value


def json_response(obj: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    response = web.Response(status=status, body=json.dumps(obj).encode(), headers=headers)
    response[JSON_MARK] = True
    return response

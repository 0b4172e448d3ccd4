"""What reads remember: file statuses (:class:`KnownStatuses`) and file tails
(:class:`Tails`), bounded and timed (see :mod:`emrfs.readplan` for how reads use them)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from itertools import islice, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from . import paths

if TYPE_CHECKING:
    from .status import StatusFactory
    from .store.protocol import ListedRow

#: Seconds a remembered status is kept at most (``s3.status_reuse_seconds`` picks how long
#: it serves, per path; its default is 15).
STATUS_SECONDS = 3600.0
#: Seconds a remembered tail serves reads of its version: as bytes a read-ahead buffer
#: holds, they show that version even if it was replaced since (never mixed with another).
TAIL_SECONDS = 3.0
#: Statuses and tails remembered per filesystem (least recently used go first).
STATUS_ENTRIES = 4096
TAIL_ENTRIES = 64

_PATH = itemgetter(0)
_ETAG = itemgetter(2)


class KnownStatuses:
    """File statuses (with size and ETag) this filesystem saw lately, by path.

    Used from the filesystem's loop and from the threads that open files: one lock."""

    def __init__(
        self, seconds: float = STATUS_SECONDS, entries: int = STATUS_ENTRIES, clock=time.monotonic
    ):
        self.seconds = seconds
        self.entries = entries
        self.clock = clock
        # a listed file is kept as its row until asked for (made a dict by _row_status)
        self._known: OrderedDict[str, tuple[float, dict | ListedRow]] = OrderedDict()
        self._row_status: StatusFactory | None = None
        self._lock = threading.Lock()

    def remember(self, info: dict[str, Any]) -> None:
        """Keep ``info`` if it is a file's status with an ETag (nothing else is pinned)."""
        if info.get("type") != "file" or not info.get("ETag") or "size" not in info:
            return
        name = paths.strip_protocol(info["name"])
        with self._lock:
            self._known[name] = (self.clock(), info)
            self._known.move_to_end(name)
            while len(self._known) > self.entries:
                self._known.popitem(last=False)

    def remember_rows(self, rows: list[ListedRow], status: StatusFactory) -> None:
        """:meth:`remember` each of a listing's file rows (``(path, size, etag, ...)``) with
        an ETag, under one lock, each kept as it is (:meth:`get` has ``status`` make its
        dict if it is asked for); only the last :attr:`entries` can stay, so only those
        are kept.  A listing's every key passes here: C loops (the rows with an ETag
        picked from the end, put in at once), a Python step only per path already
        known or pushed out."""
        self._row_status = status
        kept = list(islice(filter(_ETAG, reversed(rows)), self.entries))
        if not kept:
            return
        kept.reverse()
        names = list(map(_PATH, kept))
        now = self.clock()
        known = self._known
        with self._lock:
            if len(kept) == self.entries:
                known.clear()  # each one known now is older than these, so pushed out
            elif not known.keys().isdisjoint(names):
                for name in names:  # seen again: moved to the end, as the newest
                    known.pop(name, None)
            known.update(zip(names, zip(repeat(now), kept), strict=True))
            while len(known) > self.entries:
                known.popitem(last=False)

    def get(self, path: str, seconds: float | None = None) -> dict[str, Any] | None:
        """The status of ``path`` seen less than ``seconds`` (:attr:`seconds`) ago, else None."""
        seconds = self.seconds if seconds is None else min(seconds, self.seconds)
        with self._lock:
            found = self._known.get(path)
            if found is None:
                return None
            seen, info = found
            if self.clock() - seen > seconds:
                if self.clock() - seen > self.seconds:
                    del self._known[path]
                return None
            if isinstance(info, tuple):  # a listed row: its dict made once, now
                assert self._row_status is not None  # set with the row
                name, size, etag, modified, _version, storage_class = info
                info = self._row_status.listed_file(name, size, etag, modified, storage_class)
                self._known[path] = (seen, info)
            return info

    def forget(self, path: str) -> None:
        with self._lock:
            self._known.pop(path, None)

    def forget_below(self, root: str) -> None:
        """Forget ``root`` and everything under it (a directory removed or renamed)."""
        with self._lock:
            for name in [n for n in self._known if paths.is_within(n, root)]:
                del self._known[name]

    def clear(self) -> None:
        with self._lock:
            self._known.clear()


class Tails:
    """The last bytes of object versions, by ``(path, ETag)``: an ETag names one content."""

    def __init__(
        self, entries: int = TAIL_ENTRIES, seconds: float = TAIL_SECONDS, clock=time.monotonic
    ):
        self.entries = entries
        self.seconds = seconds
        self.clock = clock
        self._tails: OrderedDict[tuple[str, str], tuple[float, int, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, path: str, etag: str, start: int, data: bytes) -> None:
        ident = (path, etag)
        with self._lock:
            self._tails[ident] = (self.clock(), start, data)
            self._tails.move_to_end(ident)
            while len(self._tails) > self.entries:
                self._tails.popitem(last=False)

    def read(self, path: str, etag: str | None, start: int, end: int) -> bytes | None:
        """Bytes ``[start, end)`` of version ``etag`` if the remembered tail holds them."""
        if not etag:
            return None
        with self._lock:
            found = self._tails.get((path, etag))
            if found is None:
                return None
            fetched, offset, data = found
            if self.clock() - fetched > self.seconds:
                del self._tails[(path, etag)]
                return None
            if start < offset or end > offset + len(data):
                return None
            self._tails.move_to_end((path, etag))
        return data[start - offset : end - offset]

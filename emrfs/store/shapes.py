"""The values the object-store protocol's methods take and return.

:class:`ObjectMeta` (one object), :class:`ListPage` (one page of a listing, made of
:class:`ObjectMeta` or of :data:`ListedRow` tuples), :class:`DeleteResult` and
:class:`DeleteFailure` (what a delete confirmed), :class:`StagedUpload` (an upload left
open to be completed later).  The protocol itself (:class:`~emrfs.store.protocol.ObjectStore`
and friends) is in :mod:`emrfs.store.protocol`, which re-exports every name here.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields

__all__ = [
    "DeleteFailure",
    "DeleteResult",
    "ListPage",
    "ListedRow",
    "ObjectMeta",
    "StagedUpload",
    "listed_meta",
    "split",
]


def split(path: str) -> tuple[str, str]:
    """``"bucket/key/x"`` -> ``("bucket", "key/x")``; a bare bucket -> ``(bucket, "")``."""
    bucket, _, key = path.partition("/")
    return bucket, key


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """One object as a store describes it.

    ``size`` is the size a reader of *this* store sees (a CSE layer reports the
    plaintext size; the transport the stored size).  ``metadata`` is the user
    metadata (``x-amz-meta-*`` without the prefix, lower-case keys); a listing
    may leave it empty (S3's LIST does not return it) — ``head`` fills it.
    """

    path: str
    size: int
    etag: str | None = None
    last_modified: _dt.datetime | None = None
    version_id: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    #: S3's storage class when the store reports one (listings do); None: the default
    storage_class: str | None = None

    @property
    def key(self) -> str:
        return split(self.path)[1]

    @property
    def bucket(self) -> str:
        return split(self.path)[0]


def _listed_meta_builder() -> Callable[..., ObjectMeta]:
    """:func:`listed_meta`, made once: a frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__`` (~1.2 µs per object with eight fields); the slots'
    own setters do the same work in about half that, which a listing pays per key."""
    names = [f.name for f in fields(ObjectMeta)]
    listed = ["path", "size", "etag", "last_modified", "version_id", "storage_class"]
    rest = [n for n in names if n not in listed]
    if rest != ["metadata", "content_type"]:  # a new field needs its default set below
        raise RuntimeError(f"listed_meta does not set ObjectMeta's fields {rest}")
    slot = {n: getattr(ObjectMeta, n).__set__ for n in names}
    new = object.__new__
    set_path, set_size, set_etag = slot["path"], slot["size"], slot["etag"]
    set_modified, set_version, set_class = (
        slot["last_modified"],
        slot["version_id"],
        slot["storage_class"],
    )
    set_metadata, set_type = slot["metadata"], slot["content_type"]

    def listed_meta(
        path: str,
        size: int,
        etag: str | None,
        last_modified: _dt.datetime | None,
        version_id: str | None = None,
        storage_class: str | None = None,
    ) -> ObjectMeta:
        meta = new(ObjectMeta)
        set_path(meta, path)
        set_size(meta, size)
        set_etag(meta, etag)
        set_modified(meta, last_modified)
        set_version(meta, version_id)
        set_metadata(meta, {})
        set_type(meta, None)
        set_class(meta, storage_class)
        return meta

    return listed_meta


#: ``listed_meta(path, size, etag, last_modified, version_id=None, storage_class=None)``:
#: the :class:`ObjectMeta` a listing reports for a key (no user metadata, no content
#: type), equal to ``ObjectMeta(...)`` of the same fields and built faster.
listed_meta = _listed_meta_builder()


#: One listed object as a row, in :func:`listed_meta`'s argument order:
#: ``(path, size, etag, last_modified, version_id, storage_class)``.
ListedRow = tuple[str, int, "str | None", "_dt.datetime | None", "str | None", "str | None"]


class ListPage:
    """One page of a listing: objects under the prefix and, with a delimiter, the
    common prefixes (``bucket/dir/``, ending in the delimiter).

    A page is made of :class:`ObjectMeta` (``ListPage(objects, prefixes)``) or of rows
    (:meth:`of_rows`, what the transport decodes); :attr:`objects` and :attr:`rows`
    each give the other form, built once on first use.  A listing turned into status
    dicts reads the rows only: an :class:`ObjectMeta` per key, never read, cost a
    10,000-key ``find`` about a fifth of its client CPU.  Immutable, like the
    :class:`ObjectMeta` it holds.
    """

    __slots__ = ("_objects", "_rows", "prefixes")
    _objects: Sequence[ObjectMeta] | None
    _rows: Sequence[ListedRow] | None
    prefixes: Sequence[str]

    def __init__(self, objects: Sequence[ObjectMeta] = (), prefixes: Sequence[str] = ()):
        _set = object.__setattr__
        _set(self, "_objects", objects)
        _set(self, "_rows", None)
        _set(self, "prefixes", prefixes)

    @classmethod
    def of_rows(cls, rows: Sequence[ListedRow], prefixes: Sequence[str] = ()) -> ListPage:
        """A page of rows (``(path, size, etag, last_modified, version_id,
        storage_class)``, :data:`ListedRow`); its :attr:`objects` are made when read."""
        page = cls.__new__(cls)
        _set = object.__setattr__
        _set(page, "_objects", None)
        _set(page, "_rows", rows)
        _set(page, "prefixes", prefixes)
        return page

    @property
    def objects(self) -> Sequence[ObjectMeta]:
        objects = self._objects
        if objects is None:
            objects = [listed_meta(*row) for row in self._rows or ()]
            object.__setattr__(self, "_objects", objects)
        return objects

    @property
    def rows(self) -> Sequence[ListedRow]:
        """The objects as :data:`ListedRow` tuples (the page's own when it was made of rows)."""
        rows = self._rows
        if rows is None:
            rows = [
                (o.path, o.size, o.etag, o.last_modified, o.version_id, o.storage_class)
                for o in self.objects
            ]
            object.__setattr__(self, "_rows", rows)
        return rows

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ListPage is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"ListPage is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ListPage):
            return NotImplemented
        # by content: a page of rows holds lists where one made by hand may hold tuples
        return tuple(self.objects) == tuple(other.objects) and tuple(self.prefixes) == tuple(
            other.prefixes
        )

    __hash__ = None  # type: ignore[assignment]  # its sequences are lists

    def __repr__(self) -> str:
        if self._objects is None:  # a repr (asyncio's debug logs make some) builds nothing
            return f"ListPage.of_rows({self._rows!r}, prefixes={self.prefixes!r})"
        return f"ListPage(objects={self._objects!r}, prefixes={self.prefixes!r})"


@dataclass(frozen=True, slots=True)
class DeleteFailure:
    """A path a delete did not confirm: the store refused that key (``code``,
    ``message``: S3's per-key error) or the request carrying it failed as a whole
    (``error``: the exception, already translated, e.g. ``FileNotFoundError`` for a
    missing bucket)."""

    path: str
    code: str | None = None
    message: str = ""
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What a :meth:`ObjectStore.delete` did: ``deleted``, the paths the store confirmed
    gone (missing ones count); ``errors``, one :class:`DeleteFailure` per path it did not.

    A delete reports instead of raising so that a caller (the consistent view, the
    namespace) can record exactly the confirmed paths and then
    :meth:`raise_errors`; a layer that filters the paths must keep the errors.
    """

    deleted: Sequence[str] = ()
    errors: Sequence[DeleteFailure] = ()

    @classmethod
    def combine(cls, *results: DeleteResult) -> DeleteResult:
        """One result of several deletes (a layer that split the paths between stores)."""
        return cls([p for r in results for p in r.deleted], [e for r in results for e in r.errors])

    def raise_errors(self, path: str | None = None) -> None:
        """Raise the first failure (its own exception if the request failed as a whole,
        else an :class:`~emrfs.errors.EmrfsError` counting the refusals); ``path``: what
        the operation was about, for the message.  Nothing when all were confirmed."""
        if not self.errors:
            return
        first = self.errors[0]
        if first.error is not None:
            raise first.error
        from ..errors import EmrfsError

        total = len(self.errors) + len(self.deleted)
        raise EmrfsError(
            f"the store refused to delete {len(self.errors)} of {total} objects"
            f"{f' under {path!r}' if path else ''}, e.g. {first.path}: {first.code} "
            f"{first.message}; run the delete again",
            path or first.path,
            code=first.code,
        )


@dataclass(frozen=True, slots=True)
class StagedUpload:
    """A multipart upload left open on purpose (uploaded, not completed), to be
    completed later, possibly by another process (the staged task commit)."""

    path: str
    upload_id: str
    parts: Sequence[tuple[int, str]]  # (part number, ETag)
    size: int
    #: what must be stored beside the object once it is published (a CSE instruction
    #: file: its body and user metadata), by the layer that made it, at complete_staged;
    #: nothing is written beside an upload that may yet be aborted
    instruction: tuple[bytes, Mapping[str, str]] | None = None

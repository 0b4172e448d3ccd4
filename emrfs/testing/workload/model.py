"""The model: what each operation must return or raise, and how it changes the
namespace (HDFS-like; the decisions where HDFS, POSIX and fsspec differ are in
the package docstring and docs/testing.md)."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from .ops import Op, _ancestors, _parent, _within, is_ephemeral, payload


@dataclass(frozen=True)
class Outcome:
    """What an operation did: ``("ok", value)`` or ``("error", error class name)``."""

    kind: str
    value: Any = None
    #: what emrfs said (its message names the path and the reason): shown, not compared
    detail: str = field(default="", compare=False)

    def __str__(self) -> str:
        if self.kind == "error":
            return f"raises {self.value}" + (f": {self.detail}" if self.detail else "")
        value = self.value
        if isinstance(value, bytes):
            shown = value[:24]
            return f"returns {len(value)} bytes {shown!r}{'...' if len(value) > 24 else ''}"
        return f"returns {value!r}"


OK = Outcome("ok")


def _err(kind: str) -> Outcome:
    return Outcome("error", kind)


def error_kind(exc: BaseException) -> str:
    """The class of error the model speaks of (unexpected ones keep their type name)."""
    from ...errors import InvalidPathError

    for cls, name in (
        (FileNotFoundError, "FileNotFoundError"),
        (FileExistsError, "FileExistsError"),
        (IsADirectoryError, "IsADirectoryError"),
        (NotADirectoryError, "NotADirectoryError"),
        (InvalidPathError, "InvalidPathError"),
        (PermissionError, "PermissionError"),
    ):
        if isinstance(exc, cls):
            return name
    if isinstance(exc, OSError) and exc.errno == errno.ENOTEMPTY:
        return "OSError(ENOTEMPTY)"
    return f"unexpected {type(exc).__name__}: {exc}"


class Model:
    """The namespace as it must be: files (path -> bytes) and directories.

    Every ancestor of an entry is a directory (HDFS); an emptied directory stays
    one; ``""`` is the bucket, always a directory.  With ``ephemeral_tier`` (the
    cache on), renaming persistent data into an ephemeral path is refused with
    ``PermissionError``, as the tier documents (the data would live only as long
    as the tier).
    """

    def __init__(self, ephemeral_tier: bool = False) -> None:
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = set()
        self.ephemeral_tier = ephemeral_tier

    def _into_tier(self, src: str, dst: str) -> bool:
        return self.ephemeral_tier and not is_ephemeral(src) and is_ephemeral(dst)

    def kind(self, path: str) -> str | None:
        if path == "" or path in self.dirs:
            return "directory"
        return "file" if path in self.files else None

    def _blocked(self, path: str) -> bool:
        """Some ancestor is a file (nothing can be created below it)."""
        return any(a in self.files for a in _ancestors(path))

    def _children(self, path: str) -> list[str]:
        return sorted(
            p for p in list(self.files) + list(self.dirs) if p != path and _parent(p) == path
        )

    def _below(self, path: str) -> list[str]:
        return [p for p in list(self.files) + list(self.dirs) if p != path and _within(p, path)]

    def _make_parents(self, path: str) -> None:
        self.dirs.update(_ancestors(path))

    def _write_target(self, path: str) -> Outcome | None:
        if self.kind(path) == "directory":
            return _err("IsADirectoryError")
        if self._blocked(path):
            return _err("NotADirectoryError")
        return None

    def _read(self, path: str) -> bytes | Outcome:
        kind = self.kind(path)
        if kind == "directory":
            return _err("IsADirectoryError")
        if kind is None:
            return _err("FileNotFoundError")
        return self.files[path]

    def _remove(self, path: str) -> None:
        for p in [*self._below(path), path]:
            self.files.pop(p, None)
            self.dirs.discard(p)

    def apply(self, op: Op) -> Outcome:
        """Change the model as ``op`` must, and return what ``op`` must return."""
        handler = getattr(self, "_" + op.name)
        return handler(op)

    # each verb ---------------------------------------------------------------------

    def _mkdir(self, op: Op) -> Outcome:
        if self.kind(op.path) is not None:
            return _err("FileExistsError")
        if self._blocked(op.path):
            return _err("NotADirectoryError")
        self._make_parents(op.path)
        self.dirs.add(op.path)
        return OK

    def _pipe(self, op: Op, create: bool = False) -> Outcome:
        refused = self._write_target(op.path)
        if refused is not None:
            return refused
        if create and op.path in self.files:
            return _err("FileExistsError")
        self._make_parents(op.path)
        self.files[op.path] = payload(op.size, op.fill)
        return OK

    def _pipe_create(self, op: Op) -> Outcome:
        return self._pipe(op, create=True)

    _write_multipart = _pipe

    def _open_create(self, op: Op) -> Outcome:
        return self._pipe(op, create=True)

    def _cat(self, op: Op) -> Outcome:
        data = self._read(op.path)
        return data if isinstance(data, Outcome) else Outcome("ok", data)

    def _cat_range(self, op: Op) -> Outcome:
        data = self._read(op.path)
        if isinstance(data, Outcome):
            return data
        size = len(data)
        start = 0 if op.start is None else (op.start + size if op.start < 0 else op.start)
        end = size if op.end is None else (op.end + size if op.end < 0 else min(op.end, size))
        start = max(0, start)
        return Outcome("ok", data[start:end] if end > start else b"")

    _get_file = _cat

    def _mv(self, op: Op) -> Outcome:
        src, dst = op.path, op.dst or ""
        src_kind = self.kind(src)
        if src_kind is None:
            return _err("FileNotFoundError")
        if src == dst:
            return OK
        dst_kind = self.kind(dst)
        if dst_kind == "directory":  # HDFS: into the directory
            dst = f"{dst}/{src.rpartition('/')[2]}" if dst else src.rpartition("/")[2]
            dst_kind = self.kind(dst)
        if dst == src:  # e.g. a file moved into its own directory: HDFS does nothing
            return OK
        if src_kind == "file":
            if dst_kind == "directory":
                return _err("IsADirectoryError")
            if self._into_tier(src, dst):
                return _err("PermissionError")
            if self._blocked(dst):
                return _err("NotADirectoryError")
            data = self.files.pop(src)
            self._make_parents(dst)
            self.files[dst] = data
            return OK
        if _within(dst, src):
            return _err("InvalidPathError")
        if dst_kind is not None:
            return _err("FileExistsError")
        if self._into_tier(src, dst):
            return _err("PermissionError")
        if self._blocked(dst):
            return _err("NotADirectoryError")
        moved_files = {p: d for p, d in self.files.items() if _within(p, src)}
        moved_dirs = {p for p in self.dirs if _within(p, src)}
        self._remove(src)
        self._make_parents(dst)
        for p, d in moved_files.items():
            self.files[dst + p[len(src) :]] = d
        self.dirs.update(dst + p[len(src) :] for p in moved_dirs)
        return OK

    def _cp(self, op: Op) -> Outcome:
        src, dst = op.path, op.dst or ""
        src_kind = self.kind(src)
        if src_kind is None:
            return _err("FileNotFoundError")
        if src_kind == "directory":  # fsspec's cp_file of a directory: makedirs(exist_ok)
            if self.kind(dst) == "file":
                return _err("FileExistsError")
            if self._blocked(dst):
                return _err("NotADirectoryError")
            self._make_parents(dst)
            self.dirs.add(dst)
            return OK
        refused = self._write_target(dst)
        if refused is not None:
            return refused
        self._make_parents(dst)
        self.files[dst] = self.files[src]
        return OK

    def _rm(self, op: Op, recursive: bool = False) -> Outcome:
        kind = self.kind(op.path)
        if kind is None:
            return _err("FileNotFoundError")
        if kind == "directory" and self._below(op.path) and not recursive:
            return _err("IsADirectoryError")
        self._remove(op.path)
        return OK

    def _rm_r(self, op: Op) -> Outcome:
        return self._rm(op, recursive=True)

    def _rmdir(self, op: Op) -> Outcome:
        kind = self.kind(op.path)
        if kind is None:
            return _err("FileNotFoundError")
        if kind == "file":
            return _err("NotADirectoryError")
        if self._below(op.path):
            return _err("OSError(ENOTEMPTY)")
        self._remove(op.path)
        return OK

    def _entry(self, path: str) -> tuple:
        kind = self.kind(path)
        return (path, kind, len(self.files[path]) if kind == "file" else None)

    def _ls(self, op: Op) -> Outcome:
        kind = self.kind(op.path)
        if kind is None:
            return _err("FileNotFoundError")
        if kind == "file":
            return Outcome("ok", [self._entry(op.path)])
        return Outcome("ok", [self._entry(p) for p in self._children(op.path)])

    def _find(self, op: Op) -> Outcome:
        kind = self.kind(op.path)
        if kind is None:
            return Outcome("ok", [])
        if kind == "file":
            return Outcome("ok", [op.path])
        found = [p for p in self._below(op.path) if op.flag or p in self.files]
        if op.flag and op.path:
            found.append(op.path)
        return Outcome("ok", sorted(found))

    def _info(self, op: Op) -> Outcome:
        kind = self.kind(op.path)
        if kind is None:
            return _err("FileNotFoundError")
        return Outcome("ok", self._entry(op.path)[1:])

    def _exists(self, op: Op) -> Outcome:
        return Outcome("ok", self.kind(op.path) is not None)

"""The workload's operations: the vocabulary, the universe of paths, :class:`Op`
and its JSON form, and the bytes an operation writes."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

MiB = 1024 * 1024


#: Every operation name the generator draws (and a replayed sequence may use).
VOCABULARY: tuple[str, ...] = (
    "mkdir",
    "pipe",
    "pipe_create",
    "write_multipart",
    "open_create",
    "cat",
    "cat_range",
    "get_file",
    "mv",
    "cp",
    "rm",
    "rm_r",
    "rmdir",
    "ls",
    "find",
    "info",
    "exists",
)

MUTATING = frozenset(
    {
        "mkdir",
        "pipe",
        "pipe_create",
        "write_multipart",
        "open_create",
        "mv",
        "cp",
        "rm",
        "rm_r",
        "rmdir",
    }
)

#: Paths relative to the bucket.  ``out/_temporary/...`` is what a Hadoop committer
#: writes (the ephemeral tier's paths); ``a/x/x`` lies below a name that is often a file.
PATHS: tuple[str, ...] = (
    "a",
    "a/x",
    "a/y z",
    "a/sub",
    "a/sub/x",
    "a/sub/ü",
    "a/x/x",
    "b é",
    "b é/x",
    "b é/ü",
    "x",
    "out",
    "out/x",
    "out/ü",
    "out/_temporary",
    "out/_temporary/0",
    "out/_temporary/0/task",
    "out/_temporary/0/task/x",
    "out/_temporary/0/task/y z",
    "out/_temporary/0/x",
)

#: Read-only operations may also name the bucket itself (``""``).
READ_PATHS: tuple[str, ...] = ("", *PATHS)


@dataclass(frozen=True)
class Op:
    """One operation; paths are relative to the bucket.  ``size``/``fill`` make the
    payload (:func:`payload`); ``start``/``end`` a range; ``flag`` is ``withdirs``
    for ``find``."""

    name: str
    path: str
    dst: str | None = None
    size: int = 0
    fill: int = 0
    start: int | None = None
    end: int | None = None
    flag: bool = False

    def __post_init__(self) -> None:
        if self.name not in VOCABULARY:
            raise ValueError(f"unknown workload operation {self.name!r}; known: {VOCABULARY}")

    def as_json(self) -> dict[str, Any]:
        defaults = Op("ls", "")
        return {
            k: v
            for k, v in asdict(self).items()
            if k in ("name", "path") or v != getattr(defaults, k)
        }

    def __str__(self) -> str:
        args = [repr(self.path)] + ([repr(self.dst)] if self.dst is not None else [])
        if self.name in ("pipe", "pipe_create", "write_multipart", "open_create"):
            args.append(f"<{self.size} bytes #{self.fill}>")
        if self.name == "cat_range":
            args.append(f"[{self.start}:{self.end}]")
        if self.name == "find" and self.flag:
            args.append("withdirs=True")
        return f"{self.name}({', '.join(args)})"


def ops_to_json(ops: Sequence[Op]) -> str:
    return json.dumps([op.as_json() for op in ops], ensure_ascii=False)


def ops_from_json(text: str) -> list[Op]:
    """Operations from :func:`ops_to_json`'s output (a JSON list of objects)."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"replay sequence is not JSON ({exc}); pass what the failure "
            "report printed after --replay"
        ) from None
    if not isinstance(items, list):
        raise ValueError("replay sequence must be a JSON list of operations")
    return [Op(**item) for item in items]


def payload(size: int, fill: int) -> bytes:
    """The deterministic bytes an operation writes."""
    return random.Random(fill).randbytes(size)


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _within(path: str, root: str) -> bool:
    return root == "" or path == root or path.startswith(root + "/")


def is_ephemeral(path: str) -> bool:
    """The paths the cache's ephemeral tier keeps locally (a ``_temporary`` segment)."""
    return "_temporary" in path.split("/")

"""Running a sequence: each operation through emrfs, its result against the
model's, and the bucket (and metadata table) against the model through a side
channel after each mutation."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .environment import Environment
from .model import OK, Model, Outcome, error_kind
from .ops import MUTATING, MiB, Op, _ancestors, is_ephemeral, payload


@dataclass
class Divergence:
    """The first place emrfs and the model disagreed."""

    index: int
    op: Op
    check: str  # "result", or the side-channel check that failed
    expected: str
    got: str

    @property
    def signature(self) -> tuple[str, str, str]:
        """The kind of divergence: operation, check, and for a wrong result what came
        instead (an error class, or a value)."""
        got = ""
        if self.check == "result":
            got = self.got.split(":")[0] if self.got.startswith("raises") else "a value"
        return (self.op.name, self.check, got)

    def __str__(self) -> str:
        return f"op #{self.index} {self.op}: {self.check}: expected {self.expected}; got {self.got}"


def _perform(fs: Any, bucket: str, op: Op, workdir: str) -> Outcome:
    """Run ``op`` through emrfs and return what it did, in the model's terms."""

    def p(rel: str | None) -> str:
        return f"{bucket}/{rel}" if rel else bucket

    try:
        if op.name in _READS:
            return _read(fs, bucket, op, p, workdir)
        _write(fs, op, p)
        return OK
    except Exception as exc:  # noqa: BLE001 -- every error is compared with the model's
        kind = error_kind(exc)
        return Outcome("error", kind, "" if kind.startswith("unexpected") else str(exc)[:300])


_READS = frozenset({"cat", "cat_range", "get_file", "ls", "find", "info", "exists"})


def _write(fs: Any, op: Op, p: Callable[[str | None], str]) -> None:
    """An operation that changes the namespace (what it returns is not compared)."""
    n = op.name
    if n == "mkdir":
        fs.mkdir(p(op.path))
    elif n in ("pipe", "pipe_create"):
        fs.pipe_file(
            p(op.path),
            payload(op.size, op.fill),
            mode="create" if n == "pipe_create" else "overwrite",
        )
    elif n in ("write_multipart", "open_create"):
        data = payload(op.size, op.fill)
        with fs.open(p(op.path), "wb" if n == "write_multipart" else "xb") as f:
            for i in range(0, max(len(data), 1), 1 * MiB + 7):  # not aligned with parts
                f.write(data[i : i + MiB + 7])
    elif n == "mv":
        fs.mv(p(op.path), p(op.dst))
    elif n == "cp":
        fs.cp_file(p(op.path), p(op.dst))
    elif n in ("rm", "rm_r"):
        fs.rm(p(op.path), recursive=n == "rm_r")
    elif n == "rmdir":
        fs.rmdir(p(op.path))


def _read(fs: Any, bucket: str, op: Op, p: Callable[[str | None], str], workdir: str) -> Outcome:
    """An operation whose answer is compared with the model's."""

    def rel(name: str) -> str:
        name = name.rstrip("/")
        return (
            name[len(bucket) + 1 :]
            if name.startswith(bucket + "/")
            else ("" if name == bucket else "!" + name)
        )

    n = op.name
    if n == "cat":
        return Outcome("ok", fs.cat_file(p(op.path)))
    if n == "cat_range":
        return Outcome("ok", fs.cat_file(p(op.path), start=op.start, end=op.end))
    if n == "get_file":
        local = os.path.join(workdir, f"get-{uuid.uuid4().hex[:8]}")
        try:
            fs.get_file(p(op.path), local)
            with open(local, "rb") as f:
                return Outcome("ok", f.read())
        finally:
            if os.path.exists(local):
                os.unlink(local)
    if n == "ls":
        entries = fs.ls(p(op.path), detail=True)
        return Outcome(
            "ok",
            sorted(
                (rel(e["name"]), e["type"], e["size"] if e["type"] == "file" else None)
                for e in entries
            ),
        )
    if n == "find":
        return Outcome("ok", sorted(rel(x) for x in fs.find(p(op.path), withdirs=op.flag)))
    if n == "info":
        info = fs.info(p(op.path))
        return Outcome("ok", (info["type"], info["size"] if info["type"] == "file" else None))
    return Outcome("ok", fs.exists(p(op.path)))


def _s3_keys(s3, bucket: str) -> dict[str, int]:
    keys: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", ()):
            keys[obj["Key"]] = obj["Size"]
    return keys


def side_channel(env: Environment, bucket: str, model: Model) -> tuple[str, str, str] | None:
    """The bucket (raw boto3 LIST) and, with the consistent view, the table (a scan)
    against the model: ``(check, expected, got)`` for the first mismatch, else None."""
    keys = _s3_keys(env.s3, bucket)
    markers = {k[:-1] for k in keys if k.endswith("/")} | {
        k[: -len("_$folder$")] for k in keys if k.endswith("_$folder$")
    }
    objects = {
        k: size
        for k, size in keys.items()
        if not k.endswith("/")
        and not k.endswith("_$folder$")
        and not (env.config.cse and k.endswith(".instruction"))
    }
    return (
        _check_objects(env, model, objects)
        or _check_directories(env, model, objects, markers)
        or (_check_rows(env, bucket, model, objects) if env.config.consistent else None)
    )


def _check_objects(
    env: Environment, model: Model, objects: dict[str, int]
) -> tuple[str, str, str] | None:
    """S3 holds exactly the model's persistent files, each of its size (plus the tag)."""
    expected = {p: d for p, d in model.files.items() if not (env.config.cache and is_ephemeral(p))}
    lost = sorted(set(expected) - set(objects))
    if lost:
        return ("s3 objects", f"files {lost} in S3", f"S3 lacks them (S3 has {sorted(objects)})")
    extra = sorted(set(objects) - set(expected))
    if extra:
        return ("s3 objects", f"no object at {extra}", f"S3 has {extra}")
    overhead = 16 if env.config.cse else 0  # the AES-GCM tag
    wrong = sorted(p for p, d in expected.items() if objects[p] != len(d) + overhead)
    if wrong:
        return (
            "s3 sizes",
            f"{[(p, len(expected[p]) + overhead) for p in wrong]}",
            f"{[(p, objects[p]) for p in wrong]}",
        )
    return None


def _check_directories(
    env: Environment, model: Model, objects: dict[str, int], markers: set[str]
) -> tuple[str, str, str] | None:
    """Markers only for directories, and every directory marked or implied in S3 (or
    held by the tier)."""
    ghosts = sorted(m for m in markers if m not in model.dirs)
    if ghosts:
        return (
            "s3 markers",
            "a folder marker only for directories",
            f"markers for non-directories {ghosts}",
        )
    implied = set(markers)
    for k in list(objects) + list(markers):
        implied.update(_ancestors(k))
    local = {
        a
        for p in list(model.files) + list(model.dirs)
        if env.config.cache and is_ephemeral(p)
        for a in [*_ancestors(p), p]
    }
    missing = sorted(d for d in model.dirs if d not in implied and d not in local)
    if missing:
        return (
            "s3 directories",
            f"directories {missing} marked or implied in S3",
            "neither a marker nor a key below them",
        )
    return None


def _check_rows(
    env: Environment, bucket: str, model: Model, objects: dict[str, int]
) -> tuple[str, str, str] | None:
    """No live file row without its object, live directory rows only for directories."""
    live = _live_rows(env, bucket)
    claimed = sorted(
        p for p, is_dir in live.items() if not is_dir and p not in objects and not is_ephemeral(p)
    )
    if claimed:
        return (
            "dynamodb rows",
            "no live file row without its S3 object",
            f"live file rows for {claimed}; S3 lacks them",
        )
    ghost_dirs = sorted(
        p
        for p, is_dir in live.items()
        if is_dir and p and p not in model.dirs and not is_ephemeral(p)
    )
    if ghost_dirs:
        return (
            "dynamodb rows",
            "live directory rows only for directories",
            f"live directory rows for {ghost_dirs}",
        )
    return None


def _live_rows(env: Environment, bucket: str) -> dict[str, bool]:
    """Live rows of ``bucket`` in the metadata table: relative path -> is a directory."""
    rows: dict[str, bool] = {}
    try:
        pages = env.ddb.get_paginator("scan").paginate(TableName=env.table)
        for page in pages:
            for item in page.get("Items", ()):
                parent, child = item.get("parent", {}).get("S"), item.get("child", {}).get("S")
                if parent is None or child is None or item.get("is_deleted", {}).get("BOOL"):
                    continue
                full = f"{parent}/{child}" if parent else child
                if full.startswith(bucket + "/"):
                    rows[full[len(bucket) + 1 :]] = bool(item.get("is_dir", {}).get("BOOL"))
    except env.ddb.exceptions.ResourceNotFoundException:
        pass  # nothing recorded yet
    return rows


def run(
    env: Environment,
    ops: Sequence[Op],
    *,
    verify: bool = True,
    on_step: Callable[[int, Any, str], None] | None = None,
) -> Divergence | None:
    """Replay ``ops`` on a fresh bucket; the first divergence from the model, or None.

    ``on_step(index, fs, bucket)`` runs after each operation, before the checks."""
    fs, bucket = env.fresh()
    model = Model(ephemeral_tier=env.config.cache)
    try:
        for i, op in enumerate(ops):
            expected = model.apply(op)
            got = _perform(fs, bucket, op, env.workdir)
            if env.proxy is not None:
                env.clock.tick()
            if on_step is not None:
                on_step(i, fs, bucket)
            if got != expected:
                return Divergence(i, op, "result", str(expected), str(got))
            if verify and op.name in MUTATING:
                mismatch = side_channel(env, bucket, model)
                if mismatch is not None:
                    return Divergence(i, op, *mismatch)
        return None
    finally:
        env.release(fs, bucket)

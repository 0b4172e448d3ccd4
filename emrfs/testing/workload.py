"""A model-based random workload: emrfs against an in-memory HDFS-like namespace.

:func:`generate` draws a seeded sequence of operations (a fixed vocabulary,
:data:`VOCABULARY`) over a small universe of paths (:data:`PATHS`: a few
directories and names, one with a space, one non-ASCII, and a Hadoop
committer's ``_temporary`` tree), so collisions -- writing below a file, over a
directory, renaming into the source's own directory -- happen often.
:class:`Model` says what each operation must return or raise (README
"Semantics", HDFS where the README is silent).  :func:`run` replays a sequence
against a filesystem built for one of :data:`CONFIGS` (plain, SSE, CSE, cache
with the ephemeral tier, the consistent view behind a
:class:`~emrfs.testing.FaultProxy` injecting every fault...), compares every
result and every error class with the model, and after each mutation looks at
the bucket through a side channel (raw boto3 LIST; with the consistent view, a
DynamoDB scan: no live file row for a key S3 lacks).  :func:`shrink` reduces a
failing sequence by delta debugging, replaying subsets on fresh buckets, and
:func:`replay_command` prints how to run the shortest one again.

>>> report = run_workload("plain", seed=7, n_ops=300, endpoint=url)  # doctest: +SKIP
>>> report.ok, report.divergence, report.shrunk                      # doctest: +SKIP

Model decisions where HDFS, POSIX and fsspec differ (each also in docs/testing.md):

* ``mv`` onto an existing directory moves *into* it (HDFS); when the resolved
  target is the source itself (a file moved into its own directory) nothing
  happens (HDFS returns true); a file moved onto an existing file replaces it
  (fsspec / POSIX; HDFS ``rename`` would refuse); a missing destination parent
  is created (S3A's ``rename-creates-dest-dirs``).
* ``rm`` of a non-empty directory without ``recursive`` raises
  ``IsADirectoryError`` (rm(1)); ``rmdir`` of one raises ``OSError(ENOTEMPTY)``.
* ``cat_file`` ranges follow fsspec (negative = from the end; past the end of
  the file reads empty, as an HDFS read at EOF).
* ``find`` of a missing path is ``[]`` (fsspec); ``cp_file`` of a directory
  makes the destination directory (fsspec's ``cp_file`` contract).
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

MiB = 1024 * 1024

#: Every operation name the generator draws (and a replayed sequence may use).
VOCABULARY: tuple[str, ...] = (
    "mkdir", "pipe", "pipe_create", "write_multipart", "open_create", "cat", "cat_range",
    "get_file", "mv", "cp", "rm", "rm_r", "rmdir", "ls", "find", "info", "exists")

MUTATING = frozenset({"mkdir", "pipe", "pipe_create", "write_multipart", "open_create", "mv",
                      "cp", "rm", "rm_r", "rmdir"})

#: Paths relative to the bucket.  ``out/_temporary/...`` is what a Hadoop committer
#: writes (the ephemeral tier's paths); ``a/x/x`` lies below a name that is often a file.
PATHS: tuple[str, ...] = (
    "a", "a/x", "a/y z", "a/sub", "a/sub/x", "a/sub/ü", "a/x/x",
    "b é", "b é/x", "b é/ü",
    "x",
    "out", "out/x", "out/ü", "out/_temporary", "out/_temporary/0",
    "out/_temporary/0/task", "out/_temporary/0/task/x", "out/_temporary/0/task/y z",
    "out/_temporary/0/x",
)

#: Read-only operations may also name the bucket itself (``""``).
READ_PATHS: tuple[str, ...] = ("",) + PATHS

_WEIGHTS: dict[str, int] = {
    "mkdir": 8, "pipe": 14, "pipe_create": 5, "write_multipart": 1, "open_create": 3,
    "cat": 8, "cat_range": 6, "get_file": 4, "mv": 14, "cp": 5, "rm": 6, "rm_r": 5,
    "rmdir": 5, "ls": 8, "find": 5, "info": 5, "exists": 3}


# --- operations ----------------------------------------------------------------------


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
        return {k: v for k, v in asdict(self).items()
                if k in ("name", "path") or v != getattr(defaults, k)}

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
        raise ValueError(f"replay sequence is not JSON ({exc}); pass what the failure "
                         "report printed after --replay") from None
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


# --- the model -----------------------------------------------------------------------


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
    from ..errors import InvalidPathError

    for cls, name in ((FileNotFoundError, "FileNotFoundError"),
                      (FileExistsError, "FileExistsError"),
                      (IsADirectoryError, "IsADirectoryError"),
                      (NotADirectoryError, "NotADirectoryError"),
                      (InvalidPathError, "InvalidPathError"),
                      (PermissionError, "PermissionError")):
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
        return sorted(p for p in list(self.files) + list(self.dirs)
                      if p != path and _parent(p) == path)

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
        for p in self._below(path) + [path]:
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
            self.files[dst + p[len(src):]] = d
        self.dirs.update(dst + p[len(src):] for p in moved_dirs)
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


# --- generation ----------------------------------------------------------------------


def generate(seed: int, n_ops: int) -> list[Op]:
    """``n_ops`` operations drawn from ``seed``; the same seed gives the same list.

    A model runs alongside so that most operations name something that exists
    (an existing file to read or move, an existing directory to move into) while
    the rest name anything in :data:`PATHS`, which gives the collisions.
    """
    rng = random.Random(seed)
    model = Model()
    names, weights = zip(*_WEIGHTS.items())
    ops: list[Op] = []

    def pick(kind: str | None, universe: Sequence[str] = PATHS) -> str:
        pool = sorted(model.files) if kind == "file" else sorted(model.dirs) if kind else []
        if pool and rng.random() < 0.6:
            return rng.choice(pool)
        return rng.choice(universe)

    for _ in range(n_ops):
        name = rng.choices(names, weights)[0]
        if name in ("pipe", "pipe_create", "open_create"):
            path = pick("file" if rng.random() < 0.4 else None)
            op = Op(name, path, size=rng.choice((0, 1, 7, 100, 300)), fill=rng.randrange(1 << 30))
        elif name == "write_multipart":  # above the 5 MiB part size: two parts
            op = Op(name, pick(None), size=5 * MiB + rng.randrange(1, 4096),
                    fill=rng.randrange(1 << 30))
        elif name in ("mv", "cp"):
            src = pick("file" if rng.random() < 0.6 else "dir")
            if rng.random() < 0.15:  # into its own directory, or onto itself
                dst = _parent(src) or src
            else:
                dst = pick("dir" if rng.random() < 0.4 else None)
            op = Op(name, src, dst)
        elif name == "cat_range":
            op = Op(name, pick("file"), start=rng.choice((None, 0, 1, 5, 50, 400, -3)),
                    end=rng.choice((None, 2, 10, 120, 1000, -1)))
        elif name in ("cat", "get_file"):
            op = Op(name, pick("file"))
        elif name in ("rm", "rm_r", "rmdir"):
            op = Op(name, pick("dir" if rng.random() < 0.5 else "file"))
        elif name == "find":
            op = Op(name, pick("dir", READ_PATHS), flag=rng.random() < 0.5)
        elif name in ("ls", "info", "exists"):
            op = Op(name, pick("dir" if rng.random() < 0.5 else "file", READ_PATHS))
        else:  # mkdir
            op = Op(name, pick(None))
        model.apply(op)
        ops.append(op)
    return ops


# --- configurations ------------------------------------------------------------------


AES_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # base64 of bytes(range(32)); a test key


@dataclass(frozen=True)
class Config:
    """One way to build the filesystem under test."""

    name: str
    description: str
    sse: bool = False
    cse: str | None = None          # "aes" (a raw key) or "kms" (a key made in the server's KMS)
    cache: bool = False             # the block cache and its ephemeral tier
    consistent: bool = False        # the consistent view, behind a FaultProxy injecting faults


CONFIGS: dict[str, Config] = {c.name: c for c in (
    Config("plain", "no options"),
    Config("sse", "fs.s3.enableServerSideEncryption=true", sse=True),
    Config("cse", "client-side encryption, raw AES key", cse="aes"),
    Config("cache", "block cache + ephemeral tier (_temporary/)", cache=True),
    Config("consistent", "consistent view; list delay, stale reads, lingering deletes, "
                         "503s and DynamoDB throttling on", consistent=True),
    Config("cse-consistent", "CSE (AES) + consistent view + every fault", cse="aes",
           consistent=True),
    Config("all", "CSE (KMS) + cache + ephemeral tier + consistent view + every fault "
                  "(SSE conflicts with CSE)", cse="kms", cache=True, consistent=True),
)}


def resolve_configs(names: str) -> list[Config]:
    """``"all-configs"``/``"every"`` or comma-separated names of :data:`CONFIGS`."""
    if names in ("every", "all-configs", "*"):
        return list(CONFIGS.values())
    out = []
    for name in names.split(","):
        if name.strip() not in CONFIGS:
            raise ValueError(f"unknown workload configuration {name!r}; known: "
                             f"{', '.join(CONFIGS)} (or 'every')")
        out.append(CONFIGS[name.strip()])
    return out


class _StepClock:
    """The fault proxy's clock: real time plus a step per operation, so an
    inconsistency lasts a few operations (or ``delay`` real seconds) at most."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return time.monotonic() + self.offset

    def tick(self) -> None:
        with self._lock:
            self.offset += self.step


class Environment:
    """Servers and proxy for one configuration, shared by every run of it; each
    :meth:`fresh` run gets a new bucket, table, cache directory and filesystem."""

    def __init__(self, config: Config, endpoint: str, *, seed: int = 0,
                 fault_delay: float = 0.3) -> None:
        import boto3

        self.config = config
        self.endpoint = endpoint
        self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        self.ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        self.proxy = None
        self.clock = _StepClock(step=fault_delay / 2.5)
        self.kms_key: str | None = None
        self.workdir = tempfile.mkdtemp(prefix="emrfs-workload-")
        self.table = f"emrfs-workload-{uuid.uuid4().hex[:10]}"
        if config.cse == "kms":
            kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
            self.kms_key = kms.create_key(Description="emrfs workload")["KeyMetadata"]["KeyId"]
        if config.consistent:
            from .faults import Failure, FaultPolicy, FaultProxy, Inconsistency

            policy = FaultPolicy(
                inconsistency=Inconsistency(delay=fault_delay, list_delay=True,
                                            lingering_deletes=True, stale_reads=True),
                slow_down=Failure(0.03), dynamodb_throttle=Failure(0.03), seed=seed)
            self.proxy = FaultProxy(endpoint, policy, clock=self.clock)
            self.proxy.start()
        self._made: list[tuple[str, Any]] = []

    def options(self, cache_dir: str) -> dict[str, Any]:
        c = self.config
        opts: dict[str, Any] = {"skip_instance_cache": True, "part_size": 5 * MiB,
                                "multipart_threshold": 5 * MiB, "retry_base_seconds": 0.01}
        if c.sse:
            opts["fs.s3.enableServerSideEncryption"] = "true"
        if c.cse == "aes":
            opts["cse"] = {"enabled": True, "materials_provider":
                           "emrfs.crypto.keys:AesKeyProvider", "aes_key": AES_KEY}
        elif c.cse == "kms":
            opts["cse"] = {"enabled": True, "kms_key_id": self.kms_key}
        if c.cache:
            opts["cache"] = {"enabled": True, "directories": [cache_dir],
                             "block_size": 64 * 1024}
        if c.consistent:
            # The retry budget (20 x 0.05 s) outlasts every injected delay, so a
            # ConsistencyError is a divergence, not bad luck.
            opts.update({"consistent": True, "consistency.table_name": self.table,
                         "consistency.retry_policy_type": "fixed",
                         "consistency.retry_period_seconds": 0.05,
                         "consistency.retry_count": 20, "consistency.fast_list": False,
                         "consistency.dynamodb_retry_base_seconds": 0.01})
        return opts

    def fresh(self) -> tuple[Any, str]:
        """A new filesystem on a new bucket: ``(fs, bucket)``."""
        from emrfs import EmrFileSystem

        bucket = f"emrfs-wl-{uuid.uuid4().hex[:16]}"
        self.s3.create_bucket(Bucket=bucket)
        # a table per run: the side channel scans it after every mutation, and a table
        # that kept every earlier run's rows would slow each scan down
        self.table = f"emrfs-workload-{uuid.uuid4().hex[:10]}"
        cache_dir = tempfile.mkdtemp(dir=self.workdir)
        url = self.proxy.url if self.proxy is not None else self.endpoint
        fs = EmrFileSystem(endpoint_url=url, **self.options(cache_dir))
        self._made.append((bucket, fs))
        return fs, bucket

    def release(self, fs: Any, bucket: str) -> None:
        """Drop one run's filesystem and bucket (the next run starts clean)."""
        if self.proxy is not None:
            self.proxy.clear_inconsistency()
        try:
            tier = fs._cached.local.tier if getattr(fs, "_cached", None) is not None else None
            if tier is not None:
                tier.terminate()
        except Exception:  # no cache, or no tier was ever made
            pass
        _empty_and_delete(self.s3, bucket)
        if self.config.consistent:
            try:
                self.ddb.delete_table(TableName=self.table)
            except self.ddb.exceptions.ResourceNotFoundException:
                pass

    def fault_counts(self) -> dict[str, int]:
        return dict(self.proxy.counters().faults) if self.proxy is not None else {}

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _empty_and_delete(s3, bucket: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=bucket)


# --- running -------------------------------------------------------------------------


@dataclass
class Divergence:
    """The first place emrfs and the model disagreed."""

    index: int
    op: Op
    check: str            # "result", or the side-channel check that failed
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
        return (f"op #{self.index} {self.op}: {self.check}: expected {self.expected}; "
                f"got {self.got}")


def _perform(fs: Any, bucket: str, op: Op, workdir: str) -> Outcome:
    """Run ``op`` through emrfs and return what it did, in the model's terms."""
    def p(rel: str | None) -> str:
        return f"{bucket}/{rel}" if rel else bucket

    def rel(name: str) -> str:
        name = name.rstrip("/")
        return name[len(bucket) + 1:] if name.startswith(bucket + "/") else \
            ("" if name == bucket else "!" + name)

    try:
        n = op.name
        if n == "mkdir":
            fs.mkdir(p(op.path))
        elif n in ("pipe", "pipe_create"):
            fs.pipe_file(p(op.path), payload(op.size, op.fill),
                         mode="create" if n == "pipe_create" else "overwrite")
        elif n in ("write_multipart", "open_create"):
            data = payload(op.size, op.fill)
            with fs.open(p(op.path), "wb" if n == "write_multipart" else "xb") as f:
                for i in range(0, max(len(data), 1), 1 * MiB + 7):  # not aligned with parts
                    f.write(data[i:i + MiB + 7])
        elif n == "cat":
            return Outcome("ok", fs.cat_file(p(op.path)))
        elif n == "cat_range":
            return Outcome("ok", fs.cat_file(p(op.path), start=op.start, end=op.end))
        elif n == "get_file":
            local = os.path.join(workdir, f"get-{uuid.uuid4().hex[:8]}")
            try:
                fs.get_file(p(op.path), local)
                with open(local, "rb") as f:
                    return Outcome("ok", f.read())
            finally:
                if os.path.exists(local):
                    os.unlink(local)
        elif n == "mv":
            fs.mv(p(op.path), p(op.dst))
        elif n == "cp":
            fs.cp_file(p(op.path), p(op.dst))
        elif n in ("rm", "rm_r"):
            fs.rm(p(op.path), recursive=n == "rm_r")
        elif n == "rmdir":
            fs.rmdir(p(op.path))
        elif n == "ls":
            entries = fs.ls(p(op.path), detail=True)
            return Outcome("ok", sorted(
                (rel(e["name"]), e["type"], e["size"] if e["type"] == "file" else None)
                for e in entries))
        elif n == "find":
            return Outcome("ok", sorted(rel(x) for x in fs.find(p(op.path), withdirs=op.flag)))
        elif n == "info":
            info = fs.info(p(op.path))
            return Outcome("ok", (info["type"], info["size"] if info["type"] == "file" else None))
        elif n == "exists":
            return Outcome("ok", fs.exists(p(op.path)))
        return OK
    except Exception as exc:  # every error is compared with the model's
        kind = error_kind(exc)
        return Outcome("error", kind, "" if kind.startswith("unexpected") else str(exc)[:300])


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
    markers = {k[:-1] for k in keys if k.endswith("/")} | \
        {k[:-len("_$folder$")] for k in keys if k.endswith("_$folder$")}
    objects = {k: size for k, size in keys.items()
               if not k.endswith("/") and not k.endswith("_$folder$")
               and not (env.config.cse and k.endswith(".instruction"))}
    expected = {p: d for p, d in model.files.items()
                if not (env.config.cache and is_ephemeral(p))}
    lost = sorted(set(expected) - set(objects))
    if lost:
        return ("s3 objects", f"files {lost} in S3", f"S3 lacks them (S3 has {sorted(objects)})")
    extra = sorted(set(objects) - set(expected))
    if extra:
        return ("s3 objects", f"no object at {extra}", f"S3 has {extra}")
    overhead = 16 if env.config.cse else 0  # the AES-GCM tag
    wrong = sorted(p for p, d in expected.items() if objects[p] != len(d) + overhead)
    if wrong:
        return ("s3 sizes", f"{[(p, len(expected[p]) + overhead) for p in wrong]}",
                f"{[(p, objects[p]) for p in wrong]}")
    ghosts = sorted(m for m in markers if m not in model.dirs)
    if ghosts:
        return ("s3 markers", "a folder marker only for directories",
                f"markers for non-directories {ghosts}")
    implied = set(markers)
    for k in list(objects) + list(markers):
        implied.update(_ancestors(k))
    local = {a for p in list(model.files) + list(model.dirs)
             if env.config.cache and is_ephemeral(p) for a in _ancestors(p) + [p]}
    missing = sorted(d for d in model.dirs if d not in implied and d not in local)
    if missing:
        return ("s3 directories", f"directories {missing} marked or implied in S3",
                "neither a marker nor a key below them")
    if env.config.consistent:
        live = _live_rows(env, bucket)
        claimed = sorted(p for p, is_dir in live.items() if not is_dir
                         and p not in objects and not is_ephemeral(p))
        if claimed:
            return ("dynamodb rows", "no live file row without its S3 object",
                    f"live file rows for {claimed}; S3 lacks them")
        ghost_dirs = sorted(p for p, is_dir in live.items() if is_dir and p
                            and p not in model.dirs and not is_ephemeral(p))
        if ghost_dirs:
            return ("dynamodb rows", "live directory rows only for directories",
                    f"live directory rows for {ghost_dirs}")
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
                    rows[full[len(bucket) + 1:]] = bool(item.get("is_dir", {}).get("BOOL"))
    except env.ddb.exceptions.ResourceNotFoundException:
        pass  # nothing recorded yet
    return rows


def run(env: Environment, ops: Sequence[Op], *, verify: bool = True,
        on_step: Callable[[int, Any, str], None] | None = None) -> Divergence | None:
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


# --- shrinking -----------------------------------------------------------------------


def shrink(ops: Sequence[Op], fails: Callable[[Sequence[Op]], bool], *,
           budget_seconds: float = 60.0) -> list[Op]:
    """The shortest sub-sequence of ``ops`` that still ``fails`` (delta debugging:
    drop chunks, halving their size, until no single operation can go), within
    ``budget_seconds``."""
    current = list(ops)
    deadline = time.monotonic() + budget_seconds
    chunk = max(1, len(current) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        removed_any = False
        i = 0
        while i < len(current) and time.monotonic() < deadline:
            candidate = current[:i] + current[i + chunk:]
            if candidate and fails(candidate):
                current = candidate
                removed_any = True
            else:
                i += chunk
        if not removed_any:
            if chunk == 1:
                break
            chunk //= 2
    return current


# --- the whole thing -----------------------------------------------------------------


@dataclass
class Finding:
    """One distinct divergence (by operation and check), with its shortest sequence."""

    seed: int                  # of the segment that found it
    segment_ops: int           # that segment's length
    divergence: Divergence
    shrunk: list[Op] | None = None
    shrunk_divergence: Divergence | None = None
    occurrences: int = 1


@dataclass
class Report:
    """A configuration's run: ``segments`` sequences of seeded operations, each on a
    fresh bucket (after a divergence, the rest of its segment runs on another fresh
    bucket against a fresh model)."""

    config: str
    seed: int
    operations: int = 0        # operations run (a segment stops at its divergence)
    segments: int = 0
    divergences: int = 0       # runs that diverged (one per divergence)
    findings: list[Finding] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.divergences == 0

    @property
    def faults_total(self) -> int:
        return sum(self.faults.values())

    def describe(self) -> str:
        head = (f"[{self.config}] seed {self.seed}: {self.operations} operations in "
                f"{self.segments} segments, {self.divergences} divergences")
        lines = [head]
        for f in self.findings:
            d = f.divergence
            lines.append(f"  - {' / '.join(filter(None, d.signature))} ({f.occurrences} "
                         "time(s)); first in "
                         f"segment seed {f.seed}: {d}")
            if f.shrunk is not None:
                lines.append(f"    shortest failing sequence ({len(f.shrunk)} of {d.index + 1} "
                             "operations):")
                lines += [f"      {i}. {op}" for i, op in enumerate(f.shrunk)]
                if f.shrunk_divergence is not None:
                    lines.append(f"    which gives: {f.shrunk_divergence}")
                lines.append("    replay: " + replay_command(self.config, f.shrunk))
            lines.append(f"    the segment again: python -m benchmarks.model_workload --config "
                         f"{self.config} --seed {f.seed} --ops {f.segment_ops} --segment "
                         f"{f.segment_ops}")
        return "\n".join(lines)


def replay_command(config: str, ops: Sequence[Op]) -> str:
    text = ops_to_json(ops).replace("'", "'\\''")
    return f"python -m benchmarks.model_workload --config {config} --replay '{text}'"


def segment_seed(seed: int, index: int) -> int:
    """The seed of segment ``index`` of a run seeded ``seed`` (segment 0 uses ``seed``)."""
    return seed if index == 0 else random.Random(seed * 1_000_003 + index).randrange(1 << 31)


def run_workload(config: str | Config, seed: int, n_ops: int, endpoint: str, *,
                 segment: int = 200, verify: bool = True, shrink_seconds: float = 60.0,
                 shrink_limit: int | None = None, ops: Sequence[Op] | None = None,
                 log: Callable[[str], None] | None = None) -> Report:
    """Run ``n_ops`` operations on ``config`` in segments of ``segment`` (each from its
    own seed, on a fresh bucket), or replay ``ops``; shrink the first failure of each
    distinct kind (``shrink_seconds`` each, the first ``shrink_limit`` kinds)."""
    cfg = CONFIGS[config] if isinstance(config, str) else config
    started = time.monotonic()
    env = Environment(cfg, endpoint, seed=seed)
    report = Report(cfg.name, seed)
    try:
        plan: list[tuple[int, list[Op]]]
        if ops is not None:
            plan = [(seed, list(ops))]
        else:
            plan = []
            left, index = n_ops, 0
            while left > 0:
                s = segment_seed(seed, index)
                plan.append((s, generate(s, min(segment, left))))
                left -= segment
                index += 1
        for s, sequence in plan:
            report.segments += 1
            pos = 0
            while pos < len(sequence):
                # a divergence ends a run; the rest of the segment starts again on a
                # fresh bucket, so one frequent defect does not hide the others
                rest = sequence[pos:]
                divergence = run(env, rest, verify=verify)
                if divergence is None:
                    report.operations += len(rest)
                    break
                report.operations += divergence.index + 1
                report.divergences += 1
                self_check = rest[:divergence.index + 1]
                pos += divergence.index + 1
                known = next((f for f in report.findings
                              if f.divergence.signature == divergence.signature), None)
                if known is not None:
                    known.occurrences += 1
                    continue
                finding = Finding(s, len(sequence), divergence)
                report.findings.append(finding)
                if log is not None:
                    log(f"[{cfg.name}] segment seed {s}: {divergence}")
                if shrink_seconds > 0 and (shrink_limit is None
                                           or len(report.findings) <= shrink_limit):
                    _shrink_finding(env, self_check, finding, verify, shrink_seconds)
        report.faults = env.fault_counts()
        report.seconds = time.monotonic() - started
        return report
    finally:
        env.close()


def _shrink_finding(env: Environment, sequence: Sequence[Op], finding: Finding,
                    verify: bool, seconds: float) -> None:
    divergence = finding.divergence
    prefix = list(sequence[:divergence.index + 1])
    # a wrong result needs no side channel to show: replays without it are faster
    verify = verify and divergence.check != "result"

    def fails(candidate: Sequence[Op]) -> bool:
        found = run(env, candidate, verify=verify)
        return found is not None and found.signature == divergence.signature

    finding.shrunk = shrink(prefix, fails, budget_seconds=seconds)
    finding.shrunk_divergence = run(env, finding.shrunk, verify=verify)


def format_table(reports: Iterable[Report]) -> str:
    """The ``--long`` summary: configuration, operations, faults injected, divergences."""
    rows = [("configuration", "operations", "faults injected", "divergences", "kinds",
             "seconds")]
    for r in reports:
        kinds = ", ".join("/".join(filter(None, f.divergence.signature)) for f in r.findings)
        rows.append((r.config, str(r.operations), str(r.faults_total),
                     str(r.divergences), kinds or "-", f"{r.seconds:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)

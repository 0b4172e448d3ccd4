"""Verbs that look: ls, stat, cat, text, test, du, count."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys

from .errors import describe
from .fs_common import (
    FAILED,
    each_path,
    make_fs,
    scheme_of,
    size_text,
    symbolic_permission,
    wants_json,
)

# --- ls -----------------------------------------------------------------------------------


def _ls_line(args: argparse.Namespace, e: dict, scheme: str, widths: dict[str, int]) -> str:
    is_dir = e["type"] == "directory"
    mtime = _dt.datetime.fromtimestamp((e.get("modificationTime") or 0) / 1000)
    repl = "-" if is_dir else str(e.get("replication", 1))
    # hadoop's Ls: "%s%s" perm+acl bit, "%{repl}s ", "%-{owner}s ", "%-{group}s ", "%{len}s "
    return (
        f"{symbolic_permission(e)} {repl:>{widths['repl']}} "
        f"{e.get('owner', '')!s:<{widths['owner']}} "
        f"{e.get('group', '')!s:<{widths['group']}} "
        f"{size_text(args, e.get('size') or 0):>{widths['size']}} "
        f"{mtime:%Y-%m-%d %H:%M} {scheme}{e['name']}"
    )


def _print_listing(args: argparse.Namespace, entries: list[dict], scheme: str) -> None:
    if args.names_only:
        for e in entries:
            print(f"{scheme}{e['name']}")
        return
    widths = {"repl": 3, "size": 10, "owner": 0, "group": 0}  # hadoop's minimum widths
    for e in entries:
        widths["owner"] = max(widths["owner"], len(str(e.get("owner", ""))))
        widths["group"] = max(widths["group"], len(str(e.get("group", ""))))
        widths["size"] = max(widths["size"], len(size_text(args, e.get("size") or 0)))
    for e in entries:
        print(_ls_line(args, e, scheme, widths))


def cmd_ls(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    collected: list[dict] = []

    def one(path: str) -> None:
        scheme = scheme_of(path)
        info = fs.info(path)
        if info["type"] != "directory" or args.directory:
            entries = [info]
        elif args.recursive:
            found = fs.find(path, withdirs=True, detail=True)
            entries = [found[k] for k in sorted(found) if k != info["name"]]
        else:
            entries = sorted(fs.ls(path, detail=True), key=lambda e: e["name"])
        if wants_json(args):
            collected.extend(entries)
            return
        if (
            info["type"] == "directory"
            and not args.directory
            and not args.recursive
            and entries
            and not args.names_only
        ):
            print(f"Found {len(entries)} items")
        _print_listing(args, entries, scheme)

    code = each_path("ls", args.paths, one, fs)
    if wants_json(args):
        print(json.dumps(collected, default=str))
    return code


# --- stat ---------------------------------------------------------------------------------


def format_stat(fmt: str, info: dict) -> str:
    """hadoop fs -stat's format: %a %A %b %F %g %n %o %r %u %x %X %y %Y (times in UTC)."""
    is_dir = info["type"] == "directory"
    mtime_ms = int(info.get("modificationTime") or 0)
    atime_ms = int(info.get("accessTime") or 0)
    utc = lambda ms: _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc)  # noqa: E731
    fields = {
        "a": str(info.get("permission") or ("777" if is_dir else "666")),
        "A": symbolic_permission(info)[1:],
        "b": str(info.get("size") or 0),
        "F": "directory"
        if is_dir
        else ("regular file" if info.get("size") else "regular empty file"),
        "g": str(info.get("group", "")),
        "n": info["name"].rstrip("/").rsplit("/", 1)[-1],
        "o": str(info.get("blockSize", 0)),
        "r": str(info.get("replication", 0 if is_dir else 1)),
        "u": str(info.get("owner", "")),
        "x": f"{utc(atime_ms):%Y-%m-%d %H:%M:%S}",
        "X": str(atime_ms),
        "y": f"{utc(mtime_ms):%Y-%m-%d %H:%M:%S}",
        "Y": str(mtime_ms),
    }
    out, i = [], 0
    while i < len(fmt):
        c = fmt[i]
        if c == "%" and i + 1 < len(fmt) and fmt[i + 1] in fields:
            out.append(fields[fmt[i + 1]])
            i += 2
        elif c == "\\" and i + 1 < len(fmt) and fmt[i + 1] in "nt":
            out.append("\n" if fmt[i + 1] == "n" else "\t")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def cmd_stat(args: argparse.Namespace) -> int:
    items = list(args.paths)
    fmt = "%y"
    if len(items) > 1 and "%" in items[0]:  # hadoop's rule: a first argument with % is FORMAT
        fmt = items.pop(0)
    fs = make_fs(args)
    infos: list[dict] = []

    def one(path: str) -> None:
        info = fs.info(path)
        if wants_json(args):
            infos.append(info)
        else:
            print(format_stat(fmt, info))

    code = each_path("stat", items, one, fs)
    if wants_json(args):
        print(json.dumps(infos[0] if len(items) == 1 and infos else infos, default=str))
    return code


# --- reading ------------------------------------------------------------------------------


def _copy_to_stdout(f) -> None:
    while chunk := f.read(8 * 1024 * 1024):
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


def _refuse_directory(fs, path: str) -> None:
    from ..errors import is_a_directory

    if fs.isdir(path):
        raise is_a_directory(path)


def cmd_cat(args: argparse.Namespace) -> int:
    fs = make_fs(args)

    def one(path: str) -> None:
        _refuse_directory(fs, path)
        with fs.open(path, "rb") as f:
            _copy_to_stdout(f)

    return each_path("cat", args.paths, one, fs)


def cmd_text(args: argparse.Namespace) -> int:
    from fsspec.compression import compr
    from fsspec.utils import infer_compression

    fs = make_fs(args)

    def one(path: str) -> None:
        _refuse_directory(fs, path)
        codec = infer_compression(path)
        with fs.open(path, "rb") as raw:
            if codec is None:
                _copy_to_stdout(raw)
            else:
                with compr[codec](raw, mode="rb") as f:
                    _copy_to_stdout(f)

    return each_path("text", args.paths, one, fs)


# --- tests and sizes ----------------------------------------------------------------------


def cmd_test(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    try:
        info = fs.info(args.path)
    except FileNotFoundError:
        return FAILED
    except (OSError, ValueError) as exc:
        print(describe("test", exc, args.path), file=sys.stderr)
        return FAILED
    is_dir = info["type"] == "directory"
    holds = {
        "e": True,
        "d": is_dir,
        "f": not is_dir,
        "s": bool(info.get("size")),
        "z": not is_dir and not info.get("size"),
    }[args.condition]
    return 0 if holds else FAILED


def cmd_du(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    rows: list[dict] = []

    def one(path: str) -> None:
        scheme = scheme_of(path)
        info = fs.info(path)
        if info["type"] == "directory" and not args.summary:
            children = sorted(fs.ls(path, detail=True), key=lambda e: e["name"])
            targets = [
                (c["name"], fs.du(c["name"]) if c["type"] == "directory" else c["size"])
                for c in children
            ]
        else:
            targets = [(info["name"], fs.du(path) if info["type"] == "directory" else info["size"])]
        for name, size in targets:
            # S3 replicates below the API: space consumed is the length
            rows.append({"path": f"{scheme}{name}", "bytes": size, "space_consumed": size})

    code = each_path("du", args.paths, one, fs)
    if wants_json(args):
        summary = rows[0] if args.summary and len(args.paths) == 1 and rows else rows
        print(json.dumps(summary))
        return code
    # hadoop's columns: size, disk space consumed (all replicas), path; left-aligned
    width = max((len(size_text(args, r["bytes"])) for r in rows), default=0)
    for r in rows:
        size = size_text(args, r["bytes"])
        consumed = size_text(args, r["space_consumed"])
        print(f"{size:<{width}}  {consumed:<{width}}  {r['path']}")
    return code


#: hadoop's ContentSummary columns
_COUNT_FORMAT = "%12s %12s %18s "
_QUOTA_FORMAT = "%12s %15s %15s %15s "


def cmd_count(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    rows: list[dict] = []
    if args.header and not wants_json(args):
        quota = (
            _QUOTA_FORMAT % ("QUOTA", "REM_QUOTA", "SPACE_QUOTA", "REM_SPACE_QUOTA")
            if args.quotas
            else ""
        )
        print(quota + _COUNT_FORMAT % ("DIR_COUNT", "FILE_COUNT", "CONTENT_SIZE") + "PATHNAME")

    def one(path: str) -> None:
        info = fs.info(path)
        if info["type"] == "directory":
            found = fs.find(path, withdirs=True, detail=True)
            dirs = 1 + sum(
                1 for k, e in found.items() if e["type"] == "directory" and k != info["name"]
            )
            files = [e for e in found.values() if e["type"] == "file"]
        else:
            dirs, files = 0, [info]
        size = sum(e.get("size") or 0 for e in files)
        rows.append({"path": path, "directories": dirs, "files": len(files), "bytes": size})
        if not wants_json(args):
            # S3 has no quotas: hadoop prints none/inf when none is set
            quota = _QUOTA_FORMAT % ("none", "inf", "none", "inf") if args.quotas else ""
            print(quota + _COUNT_FORMAT % (dirs, len(files), size_text(args, size)) + path)

    code = each_path("count", args.paths, one, fs)
    if wants_json(args):
        print(json.dumps(rows))
    return code

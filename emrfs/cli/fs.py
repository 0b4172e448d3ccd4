"""File verbs on the command line: ls, stat, cat, put, get, cp, mv, rm, mkdir, du.

Paths as ``s3://bucket/key`` or ``emrfs://...``; the endpoint from
``--endpoint-url`` or ``EMRFS_ENDPOINT_URL``; ``-D key=value`` sets any emrfs
option (``-D fs.s3.consistent=true``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint-url", default=None, help="S3 endpoint (default: EMRFS_ENDPOINT_URL)")
    common.add_argument("-D", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="an emrfs option, e.g. -D fs.s3.consistent=true")

    def verb(name: str, helptext: str, func, *args: tuple[tuple, dict]) -> None:
        parser = sub.add_parser(name, help=helptext, parents=[common])
        for a, kw in args:
            parser.add_argument(*a, **kw)
        parser.set_defaults(func=func)

    path = (("path",), {})
    verb("ls", "list a directory", _ls, path, (("-l", "--long"), {"action": "store_true"}))
    verb("stat", "file status (Hadoop FileStatus fields)", _stat, path)
    verb("cat", "write a file to stdout", _cat, path)
    verb("put", "upload local files", _put, (("local",), {}), path,
         (("-r", "--recursive"), {"action": "store_true"}))
    verb("get", "download files", _get, path, (("local",), {}),
         (("-r", "--recursive"), {"action": "store_true"}))
    verb("cp", "server-side copy", _cp, (("src",), {}), (("dst",), {}),
         (("-r", "--recursive"), {"action": "store_true"}))
    verb("mv", "rename a file or directory", _mv, (("src",), {}), (("dst",), {}))
    verb("rm", "delete", _rm, path, (("-r", "--recursive"), {"action": "store_true"}))
    verb("mkdir", "make a directory (with parents)", _mkdir, path)
    verb("du", "bytes below a path", _du, path)


def make_fs(args: argparse.Namespace):
    from emrfs import EmrFileSystem

    options: dict[str, Any] = {}
    for item in args.options:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"-D {item!r}: expected KEY=VALUE")
        options[key] = value
    if args.endpoint_url:
        options["endpoint_url"] = args.endpoint_url
    return EmrFileSystem(skip_instance_cache=True, **options)


def _emit(args, value, human) -> int:
    if args.json:
        print(json.dumps(value, default=str, indent=None))
    else:
        human(value)
    return 0


def _ls(args) -> int:
    entries = make_fs(args).ls(args.path, detail=True)

    def human(items):
        for e in items:
            if args.long:
                kind = "d" if e["type"] == "directory" else "-"
                print(f"{kind}{e['permission']} {e['owner']} {e['size']:>14} {e['name']}")
            else:
                print(e["name"] + ("/" if e["type"] == "directory" else ""))
    return _emit(args, entries, human)


def _stat(args) -> int:
    info = make_fs(args).info(args.path)
    return _emit(args, info, lambda i: [print(f"{k}: {v}") for k, v in i.items()])


def _cat(args) -> int:
    fs = make_fs(args)
    with fs.open(args.path, "rb") as f:
        while chunk := f.read(8 * 1024 * 1024):
            sys.stdout.buffer.write(chunk)
    return 0


def _put(args) -> int:
    make_fs(args).put(args.local, args.path, recursive=args.recursive)
    return 0


def _get(args) -> int:
    make_fs(args).get(args.path, args.local, recursive=args.recursive)
    return 0


def _cp(args) -> int:
    make_fs(args).copy(args.src, args.dst, recursive=args.recursive)
    return 0


def _mv(args) -> int:
    make_fs(args).mv(args.src, args.dst)
    return 0


def _rm(args) -> int:
    make_fs(args).rm(args.path, recursive=args.recursive)
    return 0


def _mkdir(args) -> int:
    make_fs(args).makedirs(args.path, exist_ok=True)
    return 0


def _du(args) -> int:
    total = make_fs(args).du(args.path)
    return _emit(args, {"path": args.path, "bytes": total}, lambda v: print(v["bytes"]))

"""Verbs that move or change: put, get, getmerge, cp, mv, rm, rmdir, mkdir, touchz, mb."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from .fs_common import each_path, make_fs, show_progress

# --- transfers ----------------------------------------------------------------------------


def _local_totals(sources: list[str]) -> tuple[int, int]:
    files = size = 0
    for src in sources:
        if os.path.isdir(src):
            for root, _, names in os.walk(src):
                for name in names:
                    files += 1
                    size += os.path.getsize(os.path.join(root, name))
        elif os.path.exists(src):
            files += 1
            size += os.path.getsize(src)
    return files, size


def _remote_totals(fs, sources: list[str]) -> tuple[int, int]:
    files = size = 0
    for src in sources:
        for info in fs.find(src, detail=True).values():
            files += 1
            size += info.get("size") or 0
    return files, size


def _progress(args: argparse.Namespace, desc: str, totals: tuple[int, int] | None):
    from ..progress import TransferProgress

    files, size = totals if totals else (None, None)
    return TransferProgress(desc, total_files=files, total_bytes=size, disable=show_progress(args))


def _watching(args: argparse.Namespace) -> bool:
    """Worth listing for totals only when a bar may be drawn."""
    return show_progress(args) is None and sys.stderr.isatty()


def _refuse_existing(exists: Callable[[str], bool], target: str, force: bool) -> None:
    from ..errors import exists as exists_error

    if not force and exists(target):
        raise exists_error(target)


def cmd_put(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    dst = args.dst

    def one(src: str) -> None:
        if not os.path.exists(src):
            from ..errors import not_found

            raise not_found(src)
        target = dst
        if len(args.sources) > 1 or fs.isdir(dst):
            target = dst.rstrip("/") + "/" + os.path.basename(os.path.normpath(src))
        if os.path.isfile(src):
            _refuse_existing(fs.isfile, target, args.force)
        totals = _local_totals([src]) if _watching(args) else None
        with _progress(args, f"put {os.path.basename(src)}", totals) as cb:
            fs.put(src, target, recursive=os.path.isdir(src), callback=cb)

    return each_path("put", args.sources, one)


def cmd_get(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    return _copy_each(
        args,
        "get",
        fs,
        into=os.path.isdir,
        join=os.path.join,
        target_exists=os.path.exists,
        transfer=fs.get,
    )


def cmd_getmerge(args: argparse.Namespace) -> int:
    fs = make_fs(args)

    def one(src: str) -> None:
        if fs.isdir(src):
            files = sorted(i["name"] for i in fs.ls(src, detail=True) if i["type"] == "file")
        else:
            files = [fs.info(src)["name"]]
        sizes = {p: fs.info(p)["size"] for p in files}
        from ..progress import TransferProgress

        with (
            open(args.dst, "wb") as out,
            TransferProgress(
                f"getmerge {len(files)} files",
                total_files=len(files),
                total_bytes=sum(sizes.values()),
                disable=show_progress(args),
            ) as cb,
        ):
            for p in files:
                with fs.open(p, "rb") as f:
                    while chunk := f.read(8 * 1024 * 1024):
                        out.write(chunk)
                        cb.add_bytes(len(chunk))
                if args.nl and not (args.skip_empty_file and sizes[p] == 0):
                    out.write(b"\n")
                cb.relative_update(1)

    return each_path("getmerge", [args.src], one)


def cmd_cp(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    return _copy_each(
        args,
        "cp",
        fs,
        into=fs.isdir,
        join=lambda directory, name: directory.rstrip("/") + "/" + name,
        target_exists=fs.isfile,
        transfer=fs.copy,
    )


def _copy_each(
    args: argparse.Namespace,
    verb: str,
    fs,
    *,
    into: Callable[[str], bool],
    join: Callable[[str, str], str],
    target_exists: Callable[[str], bool],
    transfer: Callable[..., object],
) -> int:
    """get and cp: each remote source to ``args.dst`` (into it when several sources or
    ``into(dst)``, named by the source); a directory needs -r, an existing file -f."""
    dst = args.dst

    def one(src: str) -> None:
        info = fs.info(src)
        target = dst
        if len(args.sources) > 1 or into(dst):
            target = join(dst, info["name"].rstrip("/").rsplit("/", 1)[-1])
        is_dir = info["type"] == "directory"
        if is_dir and not args.recursive:
            from ..errors import is_a_directory

            raise is_a_directory(src)
        if not is_dir:
            _refuse_existing(target_exists, target, args.force)
        totals = _remote_totals(fs, [src]) if _watching(args) else None
        with _progress(args, f"{verb} {src.rstrip('/').rsplit('/', 1)[-1]}", totals) as cb:
            transfer(src, target, recursive=is_dir, callback=cb)

    return each_path(verb, args.sources, one)


def cmd_mv(args: argparse.Namespace) -> int:
    fs = make_fs(args)

    def one(src: str) -> None:
        with _progress(args, f"mv {src.rstrip('/').rsplit('/', 1)[-1]}", None) as cb:
            fs.mv(src, args.dst, callback=cb)

    return each_path("mv", args.sources, one)


# --- deleting and creating ----------------------------------------------------------------


def cmd_rm(args: argparse.Namespace) -> int:
    from ..progress import CountProgress

    fs = make_fs(args)

    def one(path: str) -> None:
        if args.force and not fs.exists(path):
            return
        with CountProgress(f"rm {path}", " keys", disable=show_progress(args)) as cb:
            fs.rm(path, recursive=args.recursive, callback=cb)

    return each_path("rm", args.paths, one, fs)


def cmd_rmdir(args: argparse.Namespace) -> int:
    import errno

    fs = make_fs(args)

    def one(path: str) -> None:
        try:
            fs.rmdir(path)
        except OSError as exc:
            if not (args.ignore_fail_on_non_empty and exc.errno == errno.ENOTEMPTY):
                raise

    return each_path("rmdir", args.paths, one)


def cmd_mkdir(args: argparse.Namespace) -> int:
    fs = make_fs(args)

    def one(path: str) -> None:
        if args.parents:
            fs.makedirs(path, exist_ok=True)
        else:
            fs.mkdir(path, create_parents=False)

    return each_path("mkdir", args.paths, one)


def cmd_touchz(args: argparse.Namespace) -> int:
    from ..errors import exists, is_a_directory

    fs = make_fs(args)

    def one(path: str) -> None:
        try:
            info = fs.info(path)
        except FileNotFoundError:
            fs.pipe_file(path, b"")
            return
        if info["type"] == "directory":
            raise is_a_directory(path)
        if info["size"]:
            raise exists(path, "not a zero-length file")

    return each_path("touchz", args.paths, one)


def cmd_mb(args: argparse.Namespace) -> int:
    from .. import paths as _paths

    fs = make_fs(args)
    bucket, key = _paths.split(fs._strip_protocol(args.bucket))
    if key:
        print(f"mb: `{args.bucket}': give a bucket only (s3://BUCKET), not a key", file=sys.stderr)
        return 2
    kwargs = {"region": args.region} if args.region else {}

    def make(_: str) -> None:
        from ..errors import exists

        # us-east-1 answers 200 to re-creating one's own bucket: ask first
        if fs.exists(bucket):
            raise exists(args.bucket)
        fs.mkdir(bucket, **kwargs)

    return each_path("mb", [args.bucket], make)

"""File verbs, shaped like ``hadoop fs``: ls, stat, cat, text, put, get, getmerge, cp, mv,
rm, rmdir, mkdir, touchz, test, du, count; and ``mb`` (make a bucket).

Paths as ``s3://bucket/key`` or ``emrfs://...``; the endpoint from
``--endpoint-url`` or ``EMRFS_ENDPOINT_URL``; ``-D key=value`` sets any emrfs
option (``-D fs.s3.consistent=true``).  As in ``hadoop fs``, a verb given
several paths does each, reports each failure as ``VERB: `PATH': Reason``
and exits 1 if any failed; ``test`` exits 1 when its condition does not hold.
Long transfers show a progress bar on a terminal (``--quiet``/``--json`` or a
pipe: none).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import stat as _stat
import sys
from collections.abc import Callable, Iterable
from typing import Any

from .errors import describe

#: what a failed file verb exits with (hadoop fs's)
FAILED = 1


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint-url", default=None,
                        help="S3 endpoint (default: EMRFS_ENDPOINT_URL)")
    common.add_argument("-D", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="an emrfs option, e.g. -D fs.s3.consistent=true")

    def verb(name: str, helptext: str, func: Callable[[argparse.Namespace], int],
             *arguments: tuple[tuple, dict], human_h: bool = False) -> argparse.ArgumentParser:
        """``human_h``: -h means human-readable sizes, as in hadoop fs (--help still helps)."""
        parser = sub.add_parser(name, help=helptext, description=helptext.replace("%%", "%"),
                                parents=[common], add_help=not human_h)
        if human_h:
            parser.add_argument("--help", action="help", help="show this help message and exit")
            parser.add_argument("-h", "--human-readable", action="store_true",
                                help="sizes as 1.5 K, 286.1 M (powers of 1024)")
        for a, kw in arguments:
            parser.add_argument(*a, **kw)
        parser.set_defaults(func=func, error_exit=FAILED)
        return parser

    flag = lambda *names, help: (names, {"action": "store_true", "help": help})  # noqa: E731
    paths = (("paths",), {"nargs": "+", "metavar": "PATH"})

    verb("ls", "list PATHs like `hadoop fs -ls`: permissions, replication, owner, group, size, "
         "modification time, path", _ls, paths,
         flag("-d", "--directory", help="list directories as plain files"),
         flag("-R", "--recursive", help="recurse into subdirectories"),
         flag("-C", "--names-only", help="paths only"),
         flag("-l", "--long", help="long format (the default; accepted for habit)"),
         human_h=True)
    verb("stat", "file status; FORMAT as hadoop fs -stat: %%a %%A %%b %%F %%g %%n %%o %%r %%u "
         "%%x %%X %%y %%Y (default %%y; times UTC)", _stat_verb,
         (("paths",), {"nargs": "+", "metavar": "FORMAT|PATH"}))
    verb("cat", "write files to stdout, one after another", _cat, paths)
    verb("text", "like cat, decompressing gzip/bz2/xz/zstd files by their extension", _text, paths)
    verb("put", "upload local files or directories (directories recursively)", _put,
         (("sources",), {"nargs": "+", "metavar": "LOCAL"}), (("dst",), {"metavar": "PATH"}),
         flag("-f", "--force", help="overwrite an existing file"),
         flag("-r", "--recursive", help="accepted; directories always go recursively"))
    verb("get", "download files or directories", _get,
         (("sources",), {"nargs": "+", "metavar": "PATH"}), (("dst",), {"metavar": "LOCAL"}),
         flag("-f", "--force", help="overwrite an existing local file"),
         flag("-r", "--recursive", help="download directories"))
    verb("getmerge", "concatenate the files of a directory (sorted) into one local file",
         _getmerge, (("src",), {"metavar": "PATH"}), (("dst",), {"metavar": "LOCAL"}),
         flag("--nl", "-nl", help="a newline after each file"),
         flag("--skip-empty-file", "-skip-empty-file", help="no newline for empty files"))
    verb("cp", "server-side copy", _cp,
         (("sources",), {"nargs": "+", "metavar": "SRC"}), (("dst",), {"metavar": "DST"}),
         flag("-f", "--force", help="overwrite an existing file"),
         flag("-r", "--recursive", help="copy directories"))
    verb("mv", "rename files or directories (directories whole)", _mv,
         (("sources",), {"nargs": "+", "metavar": "SRC"}), (("dst",), {"metavar": "DST"}),
         flag("-r", "--recursive", help="accepted; directories always move whole"))
    verb("rm", "delete files; -r for directories", _rm, paths,
         flag("-r", "-R", "--recursive", help="delete directories and everything below them"),
         flag("-f", "--force", help="no error for missing paths"),
         flag("--skip-trash", "-skipTrash", help="accepted; S3 has no trash"))
    verb("rmdir", "delete empty directories", _rmdir, paths,
         flag("--ignore-fail-on-non-empty", help="no error for non-empty directories"))
    verb("mkdir", "make directories (the bucket must exist: `emrfs mb`)", _mkdir, paths,
         flag("-p", "--parents", help="make parents; no error if it exists"))
    verb("touchz", "create empty files (error if one exists with data)", _touchz, paths)
    t = verb("test", "exit 0 if the condition holds for PATH, else 1", _test,
             (("path",), {"metavar": "PATH"}))
    group = t.add_mutually_exclusive_group(required=True)
    for letter, meaning in (("e", "exists"), ("d", "is a directory"), ("f", "is a file"),
                            ("s", "is not empty (size > 0)"), ("z", "is a zero-length file")):
        group.add_argument(f"-{letter}", dest="condition", action="store_const", const=letter,
                           help=meaning)
    verb("du", "bytes below paths (hadoop fs -du: size, space consumed, path)", _du, paths,
         flag("-s", "--summary", help="one total per path"), human_h=True)
    verb("count", "directories, files and bytes below paths (hadoop fs -count)", _count, paths,
         flag("-q", "--quotas", help="quota columns (none on S3)"),
         flag("-v", "--header", help="a header line"), human_h=True)
    mb = verb("mb", "make a bucket (emrfs never creates one implicitly)", _mb,
              (("bucket",), {"metavar": "s3://BUCKET"}))
    mb.add_argument("--region", default=None, help="bucket region (default: the configured one)")


# --- plumbing -----------------------------------------------------------------------------

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


def _json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def _show_progress(args: argparse.Namespace) -> bool | None:
    """tqdm's ``disable``: None draws on a terminal only; True never."""
    return True if (_json(args) or getattr(args, "quiet", False)) else None


def _scheme(path: str) -> str:
    scheme, sep, _ = path.partition("://")
    return f"{scheme}://" if sep else "s3://"


def _matches(fs, pattern: str) -> list[str]:
    """A glob's matches, named with the pattern's scheme; a plain path as it is."""
    from .. import paths as _paths
    from ..errors import not_found

    if not _paths.has_magic(fs._strip_protocol(pattern)):
        return [pattern]
    found = sorted(fs.glob(pattern))
    if not found:
        raise not_found(pattern)
    return [_scheme(pattern) + name for name in found]


def _each(verb: str, items: Iterable[str], action: Callable[[str], None], fs=None) -> int:
    """Run ``action`` on each path (each glob match, given ``fs``); report failures
    hadoop's way; 1 if any failed."""
    failed = False
    for item in items:
        try:
            targets = _matches(fs, item) if fs is not None else [item]
        except (OSError, ValueError) as exc:
            failed = True
            print(describe(verb, exc, item), file=sys.stderr)
            continue
        for path in targets:
            try:
                action(path)
            except BrokenPipeError:
                raise  # the reader went away (`emrfs cat ... | head`): stop, say nothing
            except (OSError, ValueError) as exc:
                failed = True
                print(describe(verb, exc, path), file=sys.stderr)
    return FAILED if failed else 0


def human_size(n: int) -> str:
    """Hadoop's TraditionalBinaryPrefix.long2String(n, "", 1): 5, 1 K, 1.5 K, 286.1 M."""
    if n < 1024:
        return str(n)
    symbols = "KMGTPE"
    shift = 10
    i = 0
    while i + 1 < len(symbols) and n >= 1 << (shift + 10):
        shift += 10
        i += 1
    if n & ((1 << shift) - 1) == 0:
        return f"{n >> shift} {symbols[i]}"
    text = f"{n / (1 << shift):.1f}"
    if text.startswith("1024") and i + 1 < len(symbols):
        shift += 10
        i += 1
        text = f"{n / (1 << shift):.1f}"
    return f"{text} {symbols[i]}"


def _size(args: argparse.Namespace, n: int) -> str:
    return human_size(n) if getattr(args, "human_readable", False) else str(n)


def symbolic_permission(info: dict) -> str:
    """``-rw-rw-rw-`` / ``drwxrwxrwx`` from the octal ``permission`` field."""
    mode = int(str(info.get("permission") or ("777" if info["type"] == "directory" else "666")),
               8)
    kind = _stat.S_IFDIR if info["type"] == "directory" else _stat.S_IFREG
    return _stat.filemode(kind | mode)


# --- ls -----------------------------------------------------------------------------------

def _ls_line(args: argparse.Namespace, e: dict, scheme: str, widths: dict[str, int]) -> str:
    is_dir = e["type"] == "directory"
    mtime = _dt.datetime.fromtimestamp((e.get("modificationTime") or 0) / 1000)
    repl = "-" if is_dir else str(e.get("replication", 1))
    # hadoop's Ls: "%s%s" perm+acl bit, "%{repl}s ", "%-{owner}s ", "%-{group}s ", "%{len}s "
    return (f"{symbolic_permission(e)} {repl:>{widths['repl']}} "
            f"{str(e.get('owner', '')):<{widths['owner']}} "
            f"{str(e.get('group', '')):<{widths['group']}} "
            f"{_size(args, e.get('size') or 0):>{widths['size']}} "
            f"{mtime:%Y-%m-%d %H:%M} {scheme}{e['name']}")


def _print_listing(args: argparse.Namespace, entries: list[dict], scheme: str) -> None:
    if args.names_only:
        for e in entries:
            print(f"{scheme}{e['name']}")
        return
    widths = {"repl": 3, "size": 10, "owner": 0, "group": 0}  # hadoop's minimum widths
    for e in entries:
        widths["owner"] = max(widths["owner"], len(str(e.get("owner", ""))))
        widths["group"] = max(widths["group"], len(str(e.get("group", ""))))
        widths["size"] = max(widths["size"], len(_size(args, e.get("size") or 0)))
    for e in entries:
        print(_ls_line(args, e, scheme, widths))


def _ls(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    collected: list[dict] = []

    def one(path: str) -> None:
        scheme = _scheme(path)
        info = fs.info(path)
        if info["type"] != "directory" or args.directory:
            entries = [info]
        elif args.recursive:
            found = fs.find(path, withdirs=True, detail=True)
            entries = [found[k] for k in sorted(found) if k != info["name"]]
        else:
            entries = sorted(fs.ls(path, detail=True), key=lambda e: e["name"])
        if _json(args):
            collected.extend(entries)
            return
        if info["type"] == "directory" and not args.directory and not args.recursive \
                and entries and not args.names_only:
            print(f"Found {len(entries)} items")
        _print_listing(args, entries, scheme)

    code = _each("ls", args.paths, one, fs)
    if _json(args):
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
        "F": "directory" if is_dir else ("regular file" if info.get("size") else
                                         "regular empty file"),
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


def _stat_verb(args: argparse.Namespace) -> int:
    items = list(args.paths)
    fmt = "%y"
    if len(items) > 1 and "%" in items[0]:  # hadoop's rule: a first argument with % is FORMAT
        fmt = items.pop(0)
    fs = make_fs(args)
    infos: list[dict] = []

    def one(path: str) -> None:
        info = fs.info(path)
        if _json(args):
            infos.append(info)
        else:
            print(format_stat(fmt, info))

    code = _each("stat", items, one, fs)
    if _json(args):
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


def _cat(args: argparse.Namespace) -> int:
    fs = make_fs(args)

    def one(path: str) -> None:
        _refuse_directory(fs, path)
        with fs.open(path, "rb") as f:
            _copy_to_stdout(f)

    return _each("cat", args.paths, one, fs)


def _text(args: argparse.Namespace) -> int:
    from fsspec.utils import infer_compression

    from fsspec.compression import compr

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

    return _each("text", args.paths, one, fs)


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
    return TransferProgress(desc, total_files=files, total_bytes=size,
                            disable=_show_progress(args))


def _watching(args: argparse.Namespace) -> bool:
    """Worth listing for totals only when a bar may be drawn."""
    return _show_progress(args) is None and sys.stderr.isatty()


def _refuse_existing(exists: Callable[[str], bool], target: str, force: bool) -> None:
    from ..errors import exists as exists_error

    if not force and exists(target):
        raise exists_error(target)


def _put(args: argparse.Namespace) -> int:
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

    return _each("put", args.sources, one)


def _get(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    dst = args.dst

    def one(src: str) -> None:
        info = fs.info(src)
        target = dst
        if len(args.sources) > 1 or os.path.isdir(dst):
            target = os.path.join(dst, info["name"].rstrip("/").rsplit("/", 1)[-1])
        if info["type"] == "directory":
            if not args.recursive:
                from ..errors import is_a_directory

                raise is_a_directory(src)
        else:
            _refuse_existing(os.path.exists, target, args.force)
        totals = _remote_totals(fs, [src]) if _watching(args) else None
        with _progress(args, f"get {src.rstrip('/').rsplit('/', 1)[-1]}", totals) as cb:
            fs.get(src, target, recursive=info["type"] == "directory", callback=cb)

    return _each("get", args.sources, one)


def _getmerge(args: argparse.Namespace) -> int:
    fs = make_fs(args)

    def one(src: str) -> None:
        if fs.isdir(src):
            files = sorted(i["name"] for i in fs.ls(src, detail=True) if i["type"] == "file")
        else:
            files = [fs.info(src)["name"]]
        sizes = {p: fs.info(p)["size"] for p in files}
        from ..progress import TransferProgress

        with open(args.dst, "wb") as out, TransferProgress(
                f"getmerge {len(files)} files", total_files=len(files),
                total_bytes=sum(sizes.values()), disable=_show_progress(args)) as cb:
            for p in files:
                with fs.open(p, "rb") as f:
                    while chunk := f.read(8 * 1024 * 1024):
                        out.write(chunk)
                        cb.add_bytes(len(chunk))
                if args.nl and not (args.skip_empty_file and sizes[p] == 0):
                    out.write(b"\n")
                cb.relative_update(1)

    return _each("getmerge", [args.src], one)


def _cp(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    dst = args.dst

    def one(src: str) -> None:
        info = fs.info(src)
        target = dst
        if len(args.sources) > 1 or fs.isdir(dst):
            target = dst.rstrip("/") + "/" + info["name"].rstrip("/").rsplit("/", 1)[-1]
        if info["type"] == "directory":
            if not args.recursive:
                from ..errors import is_a_directory

                raise is_a_directory(src)
        else:
            _refuse_existing(fs.isfile, target, args.force)
        totals = _remote_totals(fs, [src]) if _watching(args) else None
        with _progress(args, f"cp {src.rstrip('/').rsplit('/', 1)[-1]}", totals) as cb:
            fs.copy(src, target, recursive=info["type"] == "directory", callback=cb)

    return _each("cp", args.sources, one)


def _mv(args: argparse.Namespace) -> int:
    fs = make_fs(args)

    def one(src: str) -> None:
        with _progress(args, f"mv {src.rstrip('/').rsplit('/', 1)[-1]}", None) as cb:
            fs.mv(src, args.dst, callback=cb)

    return _each("mv", args.sources, one)


# --- deleting and creating ----------------------------------------------------------------

def _rm(args: argparse.Namespace) -> int:
    from ..progress import CountProgress

    fs = make_fs(args)

    def one(path: str) -> None:
        if args.force and not fs.exists(path):
            return
        with CountProgress(f"rm {path}", " keys", disable=_show_progress(args)) as cb:
            fs.rm(path, recursive=args.recursive, callback=cb)

    return _each("rm", args.paths, one, fs)


def _rmdir(args: argparse.Namespace) -> int:
    import errno

    fs = make_fs(args)

    def one(path: str) -> None:
        try:
            fs.rmdir(path)
        except OSError as exc:
            if not (args.ignore_fail_on_non_empty and exc.errno == errno.ENOTEMPTY):
                raise

    return _each("rmdir", args.paths, one)


def _mkdir(args: argparse.Namespace) -> int:
    fs = make_fs(args)

    def one(path: str) -> None:
        if args.parents:
            fs.makedirs(path, exist_ok=True)
        else:
            fs.mkdir(path, create_parents=False)

    return _each("mkdir", args.paths, one)


def _touchz(args: argparse.Namespace) -> int:
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

    return _each("touchz", args.paths, one)


def _mb(args: argparse.Namespace) -> int:
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

    return _each("mb", [args.bucket], make)


# --- tests and sizes ----------------------------------------------------------------------

def _test(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    try:
        info = fs.info(args.path)
    except FileNotFoundError:
        return FAILED
    except (OSError, ValueError) as exc:
        print(describe("test", exc, args.path), file=sys.stderr)
        return FAILED
    is_dir = info["type"] == "directory"
    holds = {"e": True, "d": is_dir, "f": not is_dir, "s": bool(info.get("size")),
             "z": not is_dir and not info.get("size")}[args.condition]
    return 0 if holds else FAILED


def _du(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    rows: list[dict] = []

    def one(path: str) -> None:
        scheme = _scheme(path)
        info = fs.info(path)
        if info["type"] == "directory" and not args.summary:
            children = sorted(fs.ls(path, detail=True), key=lambda e: e["name"])
            targets = [(c["name"], fs.du(c["name"]) if c["type"] == "directory" else c["size"])
                       for c in children]
        else:
            targets = [(info["name"], fs.du(path) if info["type"] == "directory"
                        else info["size"])]
        for name, size in targets:
            # S3 replicates below the API: space consumed is the length
            rows.append({"path": f"{scheme}{name}", "bytes": size, "space_consumed": size})

    code = _each("du", args.paths, one, fs)
    if _json(args):
        summary = rows[0] if args.summary and len(args.paths) == 1 and rows else rows
        print(json.dumps(summary))
        return code
    # hadoop's columns: size, disk space consumed (all replicas), path; left-aligned
    width = max((len(_size(args, r["bytes"])) for r in rows), default=0)
    for r in rows:
        size = _size(args, r["bytes"])
        consumed = _size(args, r["space_consumed"])
        print(f"{size:<{width}}  {consumed:<{width}}  {r['path']}")
    return code


#: hadoop's ContentSummary columns
_COUNT_FORMAT = "%12s %12s %18s "
_QUOTA_FORMAT = "%12s %15s %15s %15s "


def _count(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    rows: list[dict] = []
    if args.header and not _json(args):
        quota = (_QUOTA_FORMAT % ("QUOTA", "REM_QUOTA", "SPACE_QUOTA", "REM_SPACE_QUOTA")
                 if args.quotas else "")
        print(quota + _COUNT_FORMAT % ("DIR_COUNT", "FILE_COUNT", "CONTENT_SIZE") + "PATHNAME")

    def one(path: str) -> None:
        info = fs.info(path)
        if info["type"] == "directory":
            found = fs.find(path, withdirs=True, detail=True)
            dirs = 1 + sum(1 for k, e in found.items()
                           if e["type"] == "directory" and k != info["name"])
            files = [e for e in found.values() if e["type"] == "file"]
        else:
            dirs, files = 0, [info]
        size = sum(e.get("size") or 0 for e in files)
        rows.append({"path": path, "directories": dirs, "files": len(files), "bytes": size})
        if not _json(args):
            # S3 has no quotas: hadoop prints none/inf when none is set
            quota = _QUOTA_FORMAT % ("none", "inf", "none", "inf") if args.quotas else ""
            print(quota + _COUNT_FORMAT % (dirs, len(files), _size(args, size)) + path)

    code = _each("count", args.paths, one, fs)
    if _json(args):
        print(json.dumps(rows))
    return code

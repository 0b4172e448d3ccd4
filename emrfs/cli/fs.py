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
from collections.abc import Callable
from typing import Any

from . import fs_inspect as look, fs_transfer as move
from .fs_common import (  # noqa: F401 - re-exported: their public path is emrfs.cli.fs
    FAILED,
    human_size,
    make_fs,
    symbolic_permission,
)
from .fs_inspect import format_stat  # noqa: F401 - re-exported

#: one argparse argument: (names, keywords)
Argument = tuple[tuple, dict[str, Any]]
#: adds one verb's parser: (name, help, function, *arguments, human_h=...)
AddVerb = Callable[..., argparse.ArgumentParser]

_PATHS: Argument = (("paths",), {"nargs": "+", "metavar": "PATH"})


def _flag(*names: str, help: str) -> Argument:
    return names, {"action": "store_true", "help": help}


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--endpoint-url", default=None, help="S3 endpoint (default: EMRFS_ENDPOINT_URL)"
    )
    common.add_argument(
        "-D",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an emrfs option, e.g. -D fs.s3.consistent=true",
    )

    def verb(
        name: str,
        helptext: str,
        func: Callable[[argparse.Namespace], int],
        *arguments: Argument,
        human_h: bool = False,
    ) -> argparse.ArgumentParser:
        """``human_h``: -h means human-readable sizes, as in hadoop fs (--help still helps)."""
        parser = sub.add_parser(
            name,
            help=helptext,
            description=helptext.replace("%%", "%"),
            parents=[common],
            add_help=not human_h,
        )
        if human_h:
            parser.add_argument("--help", action="help", help="show this help message and exit")
            parser.add_argument(
                "-h",
                "--human-readable",
                action="store_true",
                help="sizes as 1.5 K, 286.1 M (powers of 1024)",
            )
        for a, kw in arguments:
            parser.add_argument(*a, **kw)
        parser.set_defaults(func=func, error_exit=FAILED)
        return parser

    # the order of `emrfs --help`: hadoop fs's
    _register_reading(verb)
    _register_transfers(verb)
    _register_namespace(verb)
    _register_tests_and_sizes(verb)
    mb = verb(
        "mb",
        "make a bucket (emrfs never creates one implicitly)",
        move.cmd_mb,
        (("bucket",), {"metavar": "s3://BUCKET"}),
    )
    mb.add_argument("--region", default=None, help="bucket region (default: the configured one)")


def _register_reading(verb: AddVerb) -> None:
    verb(
        "ls",
        "list PATHs like `hadoop fs -ls`: permissions, replication, owner, group, size, "
        "modification time, path",
        look.cmd_ls,
        _PATHS,
        _flag("-d", "--directory", help="list directories as plain files"),
        _flag("-R", "--recursive", help="recurse into subdirectories"),
        _flag("-C", "--names-only", help="paths only"),
        _flag("-l", "--long", help="long format (the default; accepted for habit)"),
        human_h=True,
    )
    verb(
        "stat",
        "file status; FORMAT as hadoop fs -stat: %%a %%A %%b %%F %%g %%n %%o %%r %%u "
        "%%x %%X %%y %%Y (default %%y; times UTC)",
        look.cmd_stat,
        (("paths",), {"nargs": "+", "metavar": "FORMAT|PATH"}),
    )
    verb("cat", "write files to stdout, one after another", look.cmd_cat, _PATHS)
    verb(
        "text",
        "like cat, decompressing gzip/bz2/xz/zstd files by their extension",
        look.cmd_text,
        _PATHS,
    )


def _register_transfers(verb: AddVerb) -> None:
    verb(
        "put",
        "upload local files or directories (directories recursively)",
        move.cmd_put,
        (("sources",), {"nargs": "+", "metavar": "LOCAL"}),
        (("dst",), {"metavar": "PATH"}),
        _flag("-f", "--force", help="overwrite an existing file"),
        _flag("-r", "--recursive", help="accepted; directories always go recursively"),
    )
    verb(
        "get",
        "download files or directories",
        move.cmd_get,
        (("sources",), {"nargs": "+", "metavar": "PATH"}),
        (("dst",), {"metavar": "LOCAL"}),
        _flag("-f", "--force", help="overwrite an existing local file"),
        _flag("-r", "--recursive", help="download directories"),
    )
    verb(
        "getmerge",
        "concatenate the files of a directory (sorted) into one local file",
        move.cmd_getmerge,
        (("src",), {"metavar": "PATH"}),
        (("dst",), {"metavar": "LOCAL"}),
        _flag("--nl", "-nl", help="a newline after each file"),
        _flag("--skip-empty-file", "-skip-empty-file", help="no newline for empty files"),
    )
    verb(
        "cp",
        "server-side copy",
        move.cmd_cp,
        (("sources",), {"nargs": "+", "metavar": "SRC"}),
        (("dst",), {"metavar": "DST"}),
        _flag("-f", "--force", help="overwrite an existing file"),
        _flag("-r", "--recursive", help="copy directories"),
    )
    verb(
        "mv",
        "rename files or directories (directories whole)",
        move.cmd_mv,
        (("sources",), {"nargs": "+", "metavar": "SRC"}),
        (("dst",), {"metavar": "DST"}),
        _flag("-r", "--recursive", help="accepted; directories always move whole"),
    )


def _register_namespace(verb: AddVerb) -> None:
    verb(
        "rm",
        "delete files; -r for directories",
        move.cmd_rm,
        _PATHS,
        _flag("-r", "-R", "--recursive", help="delete directories and everything below them"),
        _flag("-f", "--force", help="no error for missing paths"),
        _flag("--skip-trash", "-skipTrash", help="accepted; S3 has no trash"),
    )
    verb(
        "rmdir",
        "delete empty directories",
        move.cmd_rmdir,
        _PATHS,
        _flag("--ignore-fail-on-non-empty", help="no error for non-empty directories"),
    )
    verb(
        "mkdir",
        "make directories (the bucket must exist: `emrfs mb`)",
        move.cmd_mkdir,
        _PATHS,
        _flag("-p", "--parents", help="make parents; no error if it exists"),
    )
    verb("touchz", "create empty files (error if one exists with data)", move.cmd_touchz, _PATHS)


def _register_tests_and_sizes(verb: AddVerb) -> None:
    t = verb(
        "test",
        "exit 0 if the condition holds for PATH, else 1",
        look.cmd_test,
        (("path",), {"metavar": "PATH"}),
    )
    group = t.add_mutually_exclusive_group(required=True)
    for letter, meaning in (
        ("e", "exists"),
        ("d", "is a directory"),
        ("f", "is a file"),
        ("s", "is not empty (size > 0)"),
        ("z", "is a zero-length file"),
    ):
        group.add_argument(
            f"-{letter}", dest="condition", action="store_const", const=letter, help=meaning
        )
    verb(
        "du",
        "bytes below paths (hadoop fs -du: size, space consumed, path)",
        look.cmd_du,
        _PATHS,
        _flag("-s", "--summary", help="one total per path"),
        human_h=True,
    )
    verb(
        "count",
        "directories, files and bytes below paths (hadoop fs -count)",
        look.cmd_count,
        _PATHS,
        _flag("-q", "--quotas", help="quota columns (none on S3)"),
        _flag("-v", "--header", help="a header line"),
        human_h=True,
    )

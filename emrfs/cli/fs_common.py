"""What every file verb shares: the filesystem from the command line, the per-path loop
that reports failures hadoop's way, schemes, globs and sizes as hadoop prints them."""

from __future__ import annotations

import argparse
import stat as _stat
import sys
from collections.abc import Callable, Iterable
from typing import Any

from .errors import describe

#: what a failed file verb exits with (hadoop fs's)
FAILED = 1


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


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def show_progress(args: argparse.Namespace) -> bool | None:
    """tqdm's ``disable``: None draws on a terminal only; True never."""
    return True if (wants_json(args) or getattr(args, "quiet", False)) else None


def scheme_of(path: str) -> str:
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
    return [scheme_of(pattern) + name for name in found]


def each_path(verb: str, items: Iterable[str], action: Callable[[str], None], fs=None) -> int:
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


def size_text(args: argparse.Namespace, n: int) -> str:
    return human_size(n) if getattr(args, "human_readable", False) else str(n)


def symbolic_permission(info: dict) -> str:
    """``-rw-rw-rw-`` / ``drwxrwxrwx`` from the octal ``permission`` field."""
    mode = int(str(info.get("permission") or ("777" if info["type"] == "directory" else "666")), 8)
    kind = _stat.S_IFDIR if info["type"] == "directory" else _stat.S_IFREG
    return _stat.filemode(kind | mode)

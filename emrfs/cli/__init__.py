"""The ``emrfs`` command line: argument parsing and dispatch only.

Each group of subcommands lives in its own module exposing
``register(subparsers)``; a subcommand sets ``func`` (returning an exit code)
on its parser.  Exit codes: 0 success, 1 a finding a script should act on
(``diff`` found differences, ``fsck`` found problems), 2 usage errors,
3 an error from the service or the filesystem.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: modules under emrfs.cli that contribute subcommands; missing optional
#: extras make a module fail to import, which is reported when it is used.
SUBCOMMAND_MODULES = ("local", "fs", "metadata", "staged", "cache", "gateway")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emrfs", description="EMRFS-style S3 filesystem: files, metadata, cache, gateway")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"emrfs.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("emrfs.cli."):
                continue  # that group is not part of this build
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError) as exc:
        print(f"emrfs {args.command}: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

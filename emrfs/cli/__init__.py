"""The ``emrfs`` command line: argument parsing and dispatch only.

Each group of subcommands lives in its own module exposing
``register(subparsers)``; a subcommand sets ``func`` (returning an exit code)
on its parser.  Global flags (``--json``, ``--quiet``) work before or after
the verb, as in the AWS CLI.  Exit codes: see ``EXIT_CODES``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

#: modules under emrfs.cli that contribute subcommands; missing optional
#: extras make a module fail to import, which is reported when it is used.
SUBCOMMAND_MODULES = ("local", "fs", "metadata", "staged", "cache", "gateway", "doctor")

EXIT_CODES = """exit codes:
  0    success (test: the condition holds)
  1    file verbs (ls, cat, put, rm, test, ...), as `hadoop fs`: an error, or test's
       condition does not hold; table verbs (diff, sync --dry-run, fsck) and doctor:
       differences, problems or failed checks found
  2    usage: unknown verb, bad flag or option
  3    table and cache verbs: an error from the service or the filesystem
  130  interrupted (Ctrl-C); 141 stdout closed early (`emrfs cat ... | head`)"""


def _global_flags(parser: argparse.ArgumentParser, default) -> None:
    """Flags every verb takes, before or after it; ``default`` is SUPPRESS on the verbs
    so that a flag given before the verb is not reset by the verb's parser."""
    parser.add_argument(
        "--json",
        action="store_true",
        default=default,
        help="machine-readable output (no progress bars)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        default=default,
        help="no progress bars (output and errors still print)",
    )


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.values()


def _add_global_flags_to_verbs(parser: argparse.ArgumentParser) -> None:
    for verb in _subparsers(parser):
        if not any("--json" in a.option_strings for a in verb._actions):
            _global_flags(verb, argparse.SUPPRESS)
        _add_global_flags_to_verbs(verb)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emrfs",
        description="EMRFS-style S3 filesystem: files, metadata, cache, gateway",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_flags(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"emrfs.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("emrfs.cli."):
                continue  # that group is not part of this build
            raise
        module.register(sub)
    _add_global_flags_to_verbs(parser)
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
    except BrokenPipeError:
        # stdout's reader exited (`emrfs cat ... | head`); no error, no flush-time traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (OSError, ValueError) as exc:
        from .errors import describe

        print("emrfs " + describe(args.command, exc), file=sys.stderr)
        return getattr(args, "error_exit", 3)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

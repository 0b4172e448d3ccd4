"""Errors in command-line terms: ``VERB: `PATH': Reason: what to do``, as ``hadoop fs`` prints them.

The library's messages tell Python callers what to pass (``recursive=True``,
``exist_ok=True``); on the command line the same condition needs a flag or
another command, so the hint is rewritten here, by verb and error class.
"""

from __future__ import annotations

import errno
import os
import re

from ..errors import ConfigurationError, EmrfsError, TransportError

#: (verb, error class) -> what to tell a CLI user; verb None matches every verb
_HINTS: list[tuple[str | None, type[BaseException], str]] = [
    ("rm", IsADirectoryError, "use `emrfs rm -r {path}` to delete it and everything below it"),
    ("rm", FileNotFoundError, "`emrfs rm -f` ignores missing paths"),
    ("get", IsADirectoryError, "use `emrfs get -r` to download a directory"),
    ("cp", IsADirectoryError, "use `emrfs cp -r` to copy a directory"),
    (
        "cat",
        IsADirectoryError,
        "`emrfs ls {path}` lists it; `emrfs getmerge` concatenates its files",
    ),
    ("text", IsADirectoryError, "`emrfs ls {path}` lists it"),
    ("rmdir", OSError, "`emrfs rm -r {path}` deletes a directory with its contents"),
    ("mkdir", FileExistsError, "`emrfs mkdir -p` accepts existing directories"),
    ("mkdir", FileNotFoundError, "`emrfs mkdir -p` creates missing parents"),
    ("put", FileExistsError, "use `emrfs put -f` to overwrite"),
    ("get", FileExistsError, "use `emrfs get -f` to overwrite"),
    ("cp", FileExistsError, "use `emrfs cp -f` to overwrite"),
    ("touchz", FileExistsError, "it is not empty; `emrfs rm` it first"),
    ("mb", FileExistsError, "the bucket exists already"),
    (None, PermissionError, "`emrfs doctor` checks the endpoint and credentials"),
    (None, TransportError, "check --endpoint-url / EMRFS_ENDPOINT_URL; `emrfs doctor` checks it"),
    (None, ConfigurationError, "see `emrfs doctor` and docs; -D KEY=VALUE sets an option"),
]

#: library hints that name Python arguments: useless on the command line
_PYTHON_HINT = re.compile(r"recursive=True|exist_ok|create_parents|makedirs|rm\(|get\(")


def reason_and_hint(exc: BaseException) -> tuple[str, str]:
    """The bare reason (``No such file or directory``) and the library's hint, if any."""
    if isinstance(exc, OSError) and exc.errno and not isinstance(exc, EmrfsError):
        reason = os.strerror(exc.errno)
        text = exc.strerror or ""
        hint = text[len(reason) :].strip() if text.startswith(reason) else text
        if hint.startswith("(") and hint.endswith(")"):
            hint = hint[1:-1]
        return reason, hint
    if isinstance(exc, OSError) and exc.errno is None and exc.args and len(exc.args) == 1:
        return str(exc.args[0]), ""
    return str(exc), ""


def cli_hint(verb: str, exc: BaseException, path: str) -> str:
    for hint_verb, cls, hint in _HINTS:
        if (hint_verb is None or hint_verb == verb) and isinstance(exc, cls):
            if hint_verb == "rmdir" and getattr(exc, "errno", None) != errno.ENOTEMPTY:
                continue
            return hint.format(path=path)
    return ""


def describe(verb: str, exc: BaseException, path: str | None = None) -> str:
    """One line for stderr: ``rm: `s3://b/dir': Is a directory: use `emrfs rm -r` ...``."""
    reason, library_hint = reason_and_hint(exc)
    path = path or getattr(exc, "filename", None) or getattr(exc, "path", None)
    # the library's hint when it helps here too, then the command-line one; a missing
    # bucket's hint is the whole story (no flag of this verb creates one)
    hints = []
    if library_hint and not _PYTHON_HINT.search(library_hint):
        hints.append(library_hint)
    if not getattr(exc, "missing_bucket", None):
        hints.append(cli_hint(verb, exc, path or ""))
    hint = "; ".join(h for h in hints if h)
    head = f"{verb}: `{path}': " if path else f"{verb}: "
    return head + reason + (f": {hint}" if hint else "")

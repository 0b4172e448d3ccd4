"""Which paths belong to the ephemeral tier (pure; no I/O).

A path is ephemeral when one of its key segments matches one of the segment
globs in ``ephemeral.patterns`` (``_temporary``, ``.spark-staging-*``), or when it
lies at or below one of ``ephemeral.prefixes`` (``bucket/tmp``).  The bucket name
itself is never matched against the patterns.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from ..paths import is_within, split, strip_protocol


def is_ephemeral(path: str, patterns: Iterable[str] = (), prefixes: Iterable[str] = ()) -> bool:
    """True when ``path`` (``bucket/key`` or a URL) is in the ephemeral tier."""
    norm = strip_protocol(path)
    if any(is_within(norm, strip_protocol(p)) for p in prefixes if strip_protocol(p)):
        return True
    _bucket, key = split(norm)
    if not key:
        return False
    patterns = tuple(patterns)
    return any(fnmatchcase(seg, pat) for seg in key.split("/") for pat in patterns)


def ephemeral_root(
    path: str, patterns: Iterable[str] = (), prefixes: Iterable[str] = ()
) -> str | None:
    """The shallowest ephemeral directory containing ``path`` (or None).

    For ``b/job/_temporary/0/x`` with the default patterns: ``b/job/_temporary``.
    """
    norm = strip_protocol(path)
    roots = [
        strip_protocol(p)
        for p in prefixes
        if strip_protocol(p) and is_within(norm, strip_protocol(p))
    ]
    if roots:
        return min(roots, key=len)
    bucket, key = split(norm)
    patterns = tuple(patterns)
    segs = key.split("/") if key else []
    for n, seg in enumerate(segs):
        if any(fnmatchcase(seg, pat) for pat in patterns):
            return "/".join([bucket, *segs[: n + 1]])
    return None

"""The options tree: :class:`Options`, one frozen instance of every section
(:mod:`emrfs.config.sections`), and the per-bucket / per-prefix overrides in force
for a path.  Combinations are checked by :mod:`emrfs.config.conflicts`.

The sections, their table and the conflicts are importable from here as well.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .conflicts import CONFLICTS, Conflict, validate
from .sections import (
    OVERRIDABLE,
    SECTIONS,
    CacheOptions,
    ConsistencyOptions,
    CSEOptions,
    EphemeralOptions,
    S3Options,
    SSEOptions,
)

__all__ = [
    "CONFLICTS",
    "IGNORED_PROPERTIES",
    "OVERRIDABLE",
    "RESERVED_ENV",
    "SECTIONS",
    "CacheOptions",
    "Conflict",
    "ConsistencyOptions",
    "CSEOptions",
    "EphemeralOptions",
    "Options",
    "S3Options",
    "SSEOptions",
    "validate",
]

#: Properties of EMRFS/Hadoop site files that emrfs reads past without effect.
IGNORED_PROPERTIES = frozenset(
    {
        "fs.s3.impl",
        "fs.s3n.impl",
        "fs.s3a.impl",
        "fs.AbstractFileSystem.s3.impl",
        "fs.s3.buffer.dir",
        "fs.s3.consistent.notification.CloudWatch",
        "fs.s3.consistent.notification.SQS",
        "fs.s3.consistent.fastList.prefetchMetadata",
    }
)
#: Environment variables with the EMRFS_ prefix that are not options.
RESERVED_ENV = frozenset(
    {
        "EMRFS_SITE",
        "EMRFS_TEST_LOCALSTACK",
        "EMRFS_BENCH_ROUNDS",
        "EMRFS_BENCH_FORK_TIMEOUT",
        "EMRFS_REGISTER_PROTOCOLS",
    }
)


@dataclass(frozen=True)
class Options:
    """The whole tree.  Build it with :func:`load`; never mutate it."""

    s3: S3Options = field(default_factory=S3Options)
    consistency: ConsistencyOptions = field(default_factory=ConsistencyOptions)
    sse: SSEOptions = field(default_factory=SSEOptions)
    cse: CSEOptions = field(default_factory=CSEOptions)
    cache: CacheOptions = field(default_factory=CacheOptions)
    ephemeral: EphemeralOptions = field(default_factory=EphemeralOptions)
    #: (bucket or bucket/prefix, {canonical key: value}) longest prefix last
    overrides: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()

    def for_path(self, path: str) -> Options:
        """The options in force for ``path``: overrides of the longest matching prefix win."""
        if not self.overrides:
            return self
        return _resolve_override(self, _matching_prefixes(self.overrides, path))

    def uniform_below(self, path: str) -> bool:
        """Every path below ``path`` has ``path``'s options (no override starts strictly
        inside it): a listing of ``path`` may then resolve its options once, not per entry."""
        if not self.overrides:
            return True
        from ..paths import is_within, strip_protocol

        path = strip_protocol(path)
        return not any(prefix != path and is_within(prefix, path) for prefix, _ in self.overrides)

    def flat(self) -> dict[str, Any]:
        """``{"section.name": value}`` for every option (for ``describe`` output)."""
        return {
            f"{s}.{f.name}": getattr(getattr(self, s), f.name)
            for s, cls in SECTIONS.items()
            for f in dataclasses.fields(cls)
        }


def _matching_prefixes(overrides, path: str) -> tuple[str, ...]:
    from ..paths import is_within, strip_protocol

    path = strip_protocol(path)
    return tuple(prefix for prefix, _ in overrides if is_within(path, prefix))


@lru_cache(maxsize=256)
def _resolve_override(options: Options, prefixes: tuple[str, ...]) -> Options:
    if not prefixes:
        return options
    values: dict[str, Any] = {}
    for prefix, items in options.overrides:
        if prefix in prefixes:
            values.update(items)
    return _apply(options, values)


def _apply(options: Options, values: Mapping[str, Any]) -> Options:
    sections: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, _, name = key.partition(".")
        sections.setdefault(section, {})[name] = value
    changed = {s: dataclasses.replace(getattr(options, s), **v) for s, v in sections.items()}
    new = dataclasses.replace(options, **changed)
    validate(new)
    return new

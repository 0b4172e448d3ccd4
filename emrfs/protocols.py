"""Which URL schemes emrfs serves through fsspec (and so pandas, pyarrow, dask).

Out of the box (``fsspec.specs`` entry points in pyproject.toml):

- ``emrfs://`` and ``s3n://`` are emrfs's: nothing else claims ``s3n``.
- ``s3://`` and ``s3a://`` stay s3fs's, as fsspec maps them, unless you ask:

  * in code: :func:`emrfs.register`, or
  * in the environment: ``EMRFS_REGISTER_PROTOCOLS=s3,s3a`` (or ``all``), read when
    fsspec first resolves the scheme, so it works when the program only imports
    pandas (the ``s3``/``s3a`` entry points name ``emrfs.s3_filesystem`` and
    ``emrfs.s3a_filesystem``, which give emrfs's class for a listed scheme and
    s3fs's otherwise), and when ``import emrfs`` runs.

fsspec resolves a scheme once per process: set the variable before the first
``s3://`` access, or call :func:`emrfs.register`, which replaces an earlier
resolution.  This module holds the rules (pure); the registration, which names
the filesystem class, is the package's top (:mod:`emrfs`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from .errors import ConfigurationError

__all__ = ["ENV", "SCHEMES", "S3FS_CLASS", "parse", "requested"]

ENV = "EMRFS_REGISTER_PROTOCOLS"
#: Schemes emrfs can serve (paths.strip_protocol accepts each of them).
SCHEMES = ("emrfs", "s3", "s3a", "s3n")
#: Where fsspec sends s3:// and s3a:// when emrfs is not asked to serve them.
S3FS_CLASS = "s3fs.S3FileSystem"


def parse(protocols: Iterable[str] | str, source: str) -> tuple[str, ...]:
    """The schemes ``protocols`` names (``"s3,s3a"``, a list, or ``"all"``); an unknown one
    is a :class:`ConfigurationError` naming ``source`` (the argument or variable)."""
    if isinstance(protocols, str):
        protocols = protocols.split(",")
    names = tuple(
        dict.fromkeys(p.strip().lower().removesuffix("://") for p in protocols if p and p.strip())
    )
    if names == ("all",):
        return SCHEMES[1:]
    unknown = [n for n in names if n not in SCHEMES]
    if unknown:
        raise ConfigurationError(
            f"{source} names {', '.join(map(repr, unknown))}; emrfs serves "
            f"{', '.join(SCHEMES)} (or 'all' for s3, s3a and s3n)",
            source,
        )
    return names


def requested(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The schemes ``EMRFS_REGISTER_PROTOCOLS`` asks emrfs to serve."""
    environ = os.environ if environ is None else environ
    return parse(environ.get(ENV, ""), ENV)

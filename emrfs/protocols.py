"""Which URL schemes emrfs serves through fsspec (and so pandas, pyarrow, dask).

Out of the box (``fsspec.specs`` entry points in pyproject.toml):

- ``emrfs://`` and ``s3n://`` are emrfs's: nothing else claims ``s3n``.
- ``s3://`` and ``s3a://`` stay s3fs's, as fsspec maps them, unless you ask:

  * in code: :func:`register` (``emrfs.register()``), or
  * in the environment: ``EMRFS_REGISTER_PROTOCOLS=s3,s3a`` (or ``all``), read when
    fsspec first resolves the scheme, so it works when the program only imports
    pandas (the ``s3``/``s3a`` entry points name :func:`__getattr__` below, which
    returns emrfs's class for a listed scheme and s3fs's otherwise), and when
    ``import emrfs`` runs.

fsspec resolves a scheme once per process: set the variable before the first
``s3://`` access, or call :func:`register`, which replaces an earlier resolution.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ConfigurationError

ENV = "EMRFS_REGISTER_PROTOCOLS"
#: Schemes emrfs can serve (paths.strip_protocol accepts each of them).
SCHEMES = ("emrfs", "s3", "s3a", "s3n")
#: Where fsspec sends s3:// and s3a:// when emrfs is not asked to serve them.
S3FS_CLASS = "s3fs.S3FileSystem"


def _parse(protocols: Iterable[str] | str, source: str) -> tuple[str, ...]:
    if isinstance(protocols, str):
        protocols = protocols.split(",")
    names = tuple(dict.fromkeys(p.strip().lower().removesuffix("://") for p in protocols
                                if p and p.strip()))
    if names == ("all",):
        return SCHEMES[1:]
    unknown = [n for n in names if n not in SCHEMES]
    if unknown:
        raise ConfigurationError(
            f"{source} names {', '.join(map(repr, unknown))}; emrfs serves "
            f"{', '.join(SCHEMES)} (or 'all' for s3, s3a and s3n)", source)
    return names


def register(protocols: Iterable[str] | str = ("s3", "s3a", "s3n"), clobber: bool = True
             ) -> tuple[str, ...]:
    """Serve ``protocols`` (``s3``, ``s3a``, ``s3n``) with emrfs in this process.

    After ``emrfs.register()``, ``pd.read_parquet("s3://b/t", storage_options=…)``
    goes through emrfs (its options, consistent view and CSE) instead of s3fs.
    ``clobber=False`` refuses to replace a class fsspec has already resolved for
    a scheme.  Returns the schemes registered.
    """
    import fsspec

    from .filesystem import EmrFileSystem

    names = _parse(protocols, "emrfs.register(protocols=...)")
    for name in names:
        try:
            fsspec.register_implementation(name, EmrFileSystem, clobber=clobber)
        except ValueError as exc:
            raise ConfigurationError(
                f"{name}:// is already served by {fsspec.get_filesystem_class(name).__name__}; "
                "pass clobber=True to serve it with emrfs", name) from exc
    return names


def requested(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The schemes ``EMRFS_REGISTER_PROTOCOLS`` asks emrfs to serve."""
    environ = os.environ if environ is None else environ
    return _parse(environ.get(ENV, ""), ENV)


def register_from_environment(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """:func:`register` the schemes ``EMRFS_REGISTER_PROTOCOLS`` lists (none when unset)."""
    names = requested(environ)
    return register(names) if names else ()


def __getattr__(name: str) -> Any:
    """``emrfs.protocols.s3`` / ``.s3a``: the class the ``fsspec.specs`` entry point gives
    fsspec: emrfs's when ``EMRFS_REGISTER_PROTOCOLS`` lists the scheme, else s3fs's."""
    if name not in ("s3", "s3a"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name in requested():
        from .filesystem import EmrFileSystem

        return EmrFileSystem
    from fsspec.registry import _import_class

    return _import_class(S3FS_CLASS)

"""emrfs: S3 as a Hadoop filesystem for Python, in the manner of Amazon EMRFS.

``import emrfs`` has no side effects unless ``EMRFS_REGISTER_PROTOCOLS`` is set
(then it registers the schemes it lists).  The ``emrfs://`` and ``s3n://``
schemes reach fsspec through ``fsspec.specs`` entry points; ``s3://`` and
``s3a://`` are emrfs's only when asked: :func:`register` or
``EMRFS_REGISTER_PROTOCOLS=s3,s3a,s3n`` (docs/configuration.md, "URL schemes";
the scheme rules are :mod:`emrfs.protocols`).

Registration lives here, at the top: it names the filesystem class, which no
module below the filesystem does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["EmrFileSystem", "register", "register_from_environment", "__version__"]

if TYPE_CHECKING:
    from .filesystem import EmrFileSystem


def register(
    protocols: Iterable[str] | str = ("s3", "s3a", "s3n"), clobber: bool = True
) -> tuple[str, ...]:
    """Serve ``protocols`` (``s3``, ``s3a``, ``s3n``) with emrfs in this process.

    After ``emrfs.register()``, ``pd.read_parquet("s3://b/t", storage_options=…)``
    goes through emrfs (its options, consistent view and CSE) instead of s3fs.
    ``clobber=False`` refuses to replace a class fsspec has already resolved for
    a scheme.  Returns the schemes registered.
    """
    import fsspec

    from .errors import ConfigurationError
    from .filesystem import EmrFileSystem
    from .protocols import parse

    names = parse(protocols, "emrfs.register(protocols=...)")
    for name in names:
        try:
            fsspec.register_implementation(name, EmrFileSystem, clobber=clobber)
        except ValueError as exc:
            raise ConfigurationError(
                f"{name}:// is already served by {fsspec.get_filesystem_class(name).__name__}; "
                "pass clobber=True to serve it with emrfs",
                name,
            ) from exc
    return names


def register_from_environment(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """:func:`register` the schemes ``EMRFS_REGISTER_PROTOCOLS`` lists (none when unset)."""
    from .protocols import requested

    names = requested(environ)
    return register(names) if names else ()


#: The attributes the ``s3``/``s3a`` entry points of ``fsspec.specs`` name (pyproject.toml).
_SCHEME_CLASSES = {"s3_filesystem": "s3", "s3a_filesystem": "s3a"}


def __getattr__(name: str) -> Any:
    # Lazy: importing emrfs (for its CLI or errors) should not import aiobotocore.
    if name == "EmrFileSystem":
        from .filesystem import EmrFileSystem

        return EmrFileSystem
    if name in _SCHEME_CLASSES:
        # the class fsspec gets for s3:// or s3a://: emrfs's when EMRFS_REGISTER_PROTOCOLS
        # lists the scheme, else s3fs's
        from .protocols import S3FS_CLASS, requested

        if _SCHEME_CLASSES[name] in requested():
            from .filesystem import EmrFileSystem

            return EmrFileSystem
        from fsspec.registry import _import_class

        return _import_class(S3FS_CLASS)
    raise AttributeError(f"module 'emrfs' has no attribute {name!r}")


if os.environ.get("EMRFS_REGISTER_PROTOCOLS"):
    # the user asked for s3:// etc. to be emrfs's in this process
    register_from_environment()

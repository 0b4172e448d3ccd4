"""emrfs: S3 as a Hadoop filesystem for Python, in the manner of Amazon EMRFS.

``import emrfs`` has no side effects unless ``EMRFS_REGISTER_PROTOCOLS`` is set
(then it registers the schemes it lists, see :mod:`emrfs.protocols`).  The
``emrfs://`` and ``s3n://`` schemes reach fsspec through ``fsspec.specs`` entry
points; ``s3://`` and ``s3a://`` are emrfs's only when asked: :func:`register`
or ``EMRFS_REGISTER_PROTOCOLS=s3,s3a,s3n`` (docs/configuration.md, "URL schemes").
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["EmrFileSystem", "register", "__version__"]

if TYPE_CHECKING:
    from .filesystem import EmrFileSystem
    from .protocols import register


def __getattr__(name: str):
    # Lazy: importing emrfs (for its CLI or errors) should not import aiobotocore.
    if name == "EmrFileSystem":
        from .filesystem import EmrFileSystem

        return EmrFileSystem
    if name == "register":
        from .protocols import register

        return register
    raise AttributeError(f"module 'emrfs' has no attribute {name!r}")


if os.environ.get("EMRFS_REGISTER_PROTOCOLS"):
    # the user asked for s3:// etc. to be emrfs's in this process (emrfs.protocols)
    from .protocols import register_from_environment

    register_from_environment()

"""emrfs: S3 as a Hadoop filesystem for Python, in the manner of Amazon EMRFS.

``import emrfs`` has no side effects; the ``emrfs://`` protocol reaches fsspec
through the ``fsspec.specs`` entry point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["EmrFileSystem", "__version__"]

if TYPE_CHECKING:
    from .filesystem import EmrFileSystem


def __getattr__(name: str):
    # Lazy: importing emrfs (for its CLI or errors) should not import aiobotocore.
    if name == "EmrFileSystem":
        from .filesystem import EmrFileSystem

        return EmrFileSystem
    raise AttributeError(f"module 'emrfs' has no attribute {name!r}")

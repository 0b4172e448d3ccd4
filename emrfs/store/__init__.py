"""The stack of object stores under the namespace (see :mod:`emrfs.store.protocol`)."""

from .memory import MemoryStore
from .protocol import ListPage, ObjectMeta, ObjectStore, ObjectWriter, StagedUpload, WrapperStore, split

__all__ = ["ListPage", "MemoryStore", "ObjectMeta", "ObjectStore", "ObjectWriter", "StagedUpload",
           "WrapperStore", "split"]

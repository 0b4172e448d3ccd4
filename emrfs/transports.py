"""The object-store transport of each path (:mod:`emrfs.store`).

One transport per distinct S3 and SSE options in force (per bucket or prefix),
made once by :func:`emrfs.store.transport_for` and cached, all over one
:class:`~emrfs.s3.client.S3Client` (its connections, retries and pinned-get policy).
"""

from __future__ import annotations

from .config import Options
from .s3.client import S3Client
from .s3.multipart import UploadPurge
from .store import ObjectStore, transport_for

__all__ = ["Transports"]


class Transports:
    """``transports(path)``: the :class:`ObjectStore` that speaks to S3 for ``path``."""

    def __init__(self, options: Options, s3: S3Client, purge: UploadPurge):
        self.options = options
        self.s3 = s3
        self.purge = purge
        self._stores: dict = {}

    def __call__(self, path: str) -> ObjectStore:
        return self.for_options(self.options.for_path(path))

    def for_options(self, options: Options) -> ObjectStore:
        """The transport for options already resolved for a path (``options.for_path``)."""
        store = self._stores.get((options.s3, options.sse))
        if store is None:
            store = self._stores[(options.s3, options.sse)] = transport_for(
                options,
                client=self.s3,
                purge=self.purge,
                source_sse=lambda src: self.options.for_path(src).sse,
            )
        return store

"""The stack of object stores under the namespace (see :mod:`emrfs.store.protocol`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .memory import MemoryStore
from .protocol import (
    DeleteFailure,
    DeleteResult,
    ListPage,
    ObjectMeta,
    ObjectStore,
    ObjectWriter,
    StagedUpload,
    WrapperStore,
    split,
)

if TYPE_CHECKING:
    from ..config import Options
    from ..s3.client import S3Client

__all__ = [
    "DeleteFailure",
    "DeleteResult",
    "ListPage",
    "MemoryStore",
    "ObjectMeta",
    "ObjectStore",
    "ObjectWriter",
    "StagedUpload",
    "WrapperStore",
    "split",
    "transport_for",
]


def transport_for(
    options: Options, *, client: S3Client | None = None, **kwargs: Any
) -> ObjectStore:
    """The S3 transport for one resolved set of options (``options.for_path(path)``: the
    SSE settings of a bucket or prefix travel with it).

    The one place a transport is chosen.  ``client``: an existing
    :class:`~emrfs.s3.client.S3Client` to share (its connections and retries; the
    caller keeps owning it), else the store makes its own.
    ``kwargs`` go to :class:`~emrfs.store.s3.S3Store` (``source_sse``, ``purge``,
    ``page_size``).

    ``s3.transport`` picks obstore (:class:`~emrfs.store.obstore.ObstoreStore`, the
    default under ``auto``) or botocore (:class:`~emrfs.store.s3.S3Store`); the obstore
    transport hands what it cannot do to a botocore one made from the same arguments,
    on first need.
    """
    from .obstore import ObstoreStore, choose_transport
    from .s3 import S3Store

    def botocore() -> ObjectStore:
        if client is None:
            return S3Store.from_options(options.s3, options.sse, **kwargs)
        return S3Store(client, sse=options.sse, **kwargs)

    if choose_transport(options.s3, options.sse) == "obstore":
        return ObstoreStore(
            options.s3,
            options.sse,
            fallback=botocore,
            source_sse=kwargs.get("source_sse"),
        )
    return botocore()

"""The obstore transport's common part: its options, the routing of each call to obstore
or to the botocore fallback (:meth:`ObstoreBase._native`, :meth:`ObstoreBase._direct`), the
native store per bucket, the error mapping and obstore's metadata as an ``ObjectMeta``.
The verbs live in :mod:`emrfs.store.obstore` (reads), :mod:`emrfs.store.obstore_writes`
and :mod:`emrfs.store.obstore_listing`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..config import S3Options, SSEOptions
from ..crypto import sse as _sse
from ..errors import ChangedError, ConfigurationError, is_obstore_error, map_s3_errors
from .obstore_native import (
    _mark_used,
    forked_after_use,
    make_native_store,
    obstore_key,
    unsupported_by_obstore,
)
from .protocol import ObjectMeta, ObjectStore, split

logger = logging.getLogger("emrfs.store.obstore")

#: ``x-amz-meta-*`` aside, the attributes obstore reports (not user metadata).
_STANDARD_ATTRIBUTES = frozenset(
    {
        "content-disposition",
        "content-encoding",
        "content-language",
        "content-type",
        "cache-control",
        "storage-class",
    }
)


class ObstoreBase(ObjectStore):
    """What every verb of :class:`~emrfs.store.obstore.ObstoreStore` shares (its
    arguments are documented there)."""

    def __init__(
        self,
        s3: S3Options,
        sse: SSEOptions | None = None,
        *,
        fallback: ObjectStore | Callable[[], ObjectStore] | None = None,
        source_sse: Callable[[str], SSEOptions] | None = None,
    ):
        self.s3 = s3
        self.sse = sse or SSEOptions()
        self._source_sse = source_sse  # a copy's source may need its own SSE-C key
        self._fallback_factory = fallback
        self._fallback: ObjectStore | None = fallback if isinstance(fallback, ObjectStore) else None
        self._stores: dict[str, Any] = {}
        self._pid = os.getpid()
        self._said_forked = False
        if s3.require_tls and not (s3.endpoint_url or "https://").lower().startswith("https://"):
            raise ConfigurationError(
                f"s3.require_tls is on but the endpoint {s3.endpoint_url!r} is not https://",
                "s3.endpoint_url",
            )
        self._write_sse = _sse.effective_algorithm(self.sse)
        self._customer_key = _sse.customer_key(self.sse)
        reason = unsupported_by_obstore(s3, self.sse)
        self._refused = reason  # every verb goes to botocore when set

    # --- routing ------------------------------------------------------------------------

    def _native(self) -> bool:
        """obstore serves this call (else the botocore fallback does)."""
        if self._refused is not None:
            return False
        if forked_after_use(self._pid):
            if not self._said_forked:
                self._said_forked = True
                logger.debug(
                    "process %d was forked from one that used obstore: its S3 calls "
                    "go through the botocore transport",
                    os.getpid(),
                )
            return False
        return True

    @property
    def fallback(self) -> ObjectStore:
        """The botocore transport, made on first need."""
        if self._fallback is None:
            if self._fallback_factory is None:
                from .s3 import S3Store

                self._fallback = S3Store.from_options(
                    self.s3, self.sse, source_sse=self._source_sse
                )
            else:
                factory = self._fallback_factory
                self._fallback = factory() if callable(factory) else factory
        return self._fallback

    def _direct(self, path: str) -> bool:
        return self._native() and obstore_key(split(path)[1])

    def _store(self, bucket: str) -> Any:
        store = self._stores.get(bucket)
        if store is None:
            store = self._stores[bucket] = make_native_store(
                self.s3, self.sse, self._write_sse, self._customer_key, bucket
            )
        _mark_used()
        return store

    @contextmanager
    def _errors(self, path: str, *, if_match: str | None = None) -> Iterator[None]:
        """obstore's exceptions into emrfs's, once (the shared table); a failed
        ``if_match`` is a :class:`ChangedError`."""
        try:
            with map_s3_errors(path):
                yield
        except FileExistsError as exc:  # the table's reading of 412
            if if_match is None or not is_obstore_error(exc.__cause__ or exc):
                raise
            raise ChangedError(path, if_match, None) from exc

    def _meta(
        self, path: str, meta: Mapping[str, Any], attributes: Mapping[str, str]
    ) -> ObjectMeta:
        user = {
            k.lower(): v for k, v in attributes.items() if k.lower() not in _STANDARD_ATTRIBUTES
        }
        content_type = next((v for k, v in attributes.items() if k.lower() == "content-type"), None)
        return ObjectMeta(
            path,
            meta["size"],
            etag=meta.get("e_tag"),
            last_modified=meta.get("last_modified"),
            version_id=meta.get("version"),
            metadata=user,
            content_type=content_type,
        )

    async def close(self) -> None:
        self._stores.clear()  # obstore's connections close with their store
        if self._fallback is not None:
            await self._fallback.close()

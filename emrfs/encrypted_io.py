"""Client-side encryption for the filesystem's verbs, through the CSE layer.

:class:`EncryptedIO` is what the filesystem holds (``fs._encrypted``).  The CSE
itself lives in the layer :class:`~emrfs.crypto.store.EncryptingStore` (one per
transport and CSE options, made here by :meth:`EncryptedIO.store`): envelopes,
plaintext sizes, instruction files, verified whole reads, ranges by segments, by
CTR (``cse.unauthenticated_range_reads``) or from a sealed spool.  What is left
here adapts the filesystem's shapes to it:

* the SSE request kwargs of the verbs that still call S3 directly
  (:mod:`emrfs.crypto.sse`);
* ``info["cse"]`` (:func:`with_sealed`: the stored size and envelope of a CSE object;
  the status itself comes through the path's stack).

Reads of whole objects and ranges, open files' included, go through each path's stack
(:mod:`emrfs.stacks`), pinned to the version read.

Objects with no envelope are read as they are, CSE on or off.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import paths
from .config import CSEOptions
from .crypto import ContentCrypto, sse
from .crypto.spool import SealedSpool
from .crypto.store import EncryptingStore, Sealed
from .s3.client import S3Client, _close_at_exit, client_kwargs

if TYPE_CHECKING:
    from .config import Options
    from .store import ObjectStore

__all__ = ["EncryptedIO", "SealedSpool", "with_sealed"]


class EncryptedIO:
    """SSE and CSE for one filesystem instance.

    ``lookup`` is the stack's ``info()`` (tier, consistent view and CSE lengths
    applied): a ranged read of an object whose size or envelope it needs asks there.
    """

    def __init__(
        self,
        options: Options,
        s3: S3Client,
        lookup: Callable[[str], Awaitable[dict]],
        transport: Callable[[str], ObjectStore],
    ):
        self.options = options
        self.s3 = s3
        self.transport = transport  # the object-store transport of a path
        self.lookup = lookup
        self._crypto: tuple[int, ContentCrypto] | None = None
        self._kms: Any = None
        self._kms_context: Any = None
        self._kms_lock: asyncio.Lock | None = None
        self._stores: dict[tuple[int, CSEOptions], EncryptingStore] = {}

    # --- options ---------------------------------------------------------------------

    def cse_options(self, path: str) -> CSEOptions:
        return self.options.for_path(path).cse

    def cse_enabled(self, path: str) -> bool:
        """New objects at ``path`` are client-side encrypted."""
        return self.cse_options(path).enabled

    def maybe_encrypted(self, path: str) -> bool:
        """CSE is on or a CSE key is configured at ``path``: reads check the envelope first."""
        o = self.cse_options(path)
        return bool(o.enabled or o.kms_key_id or o.materials_provider or o.aes_key)

    def store(self, path: str) -> EncryptingStore:
        """The CSE layer over the transport of ``path`` (one per transport and CSE options)."""
        crypto = self.crypto  # first: a fork replaces it and the stores holding it
        transport = self.transport(path)
        options = self.cse_options(path)
        ident = (id(transport), options)
        store = self._stores.get(ident)
        if store is None:
            store = self._stores[ident] = EncryptingStore(transport, options, crypto=crypto)
        return store

    # --- SSE kwargs ------------------------------------------------------------------

    def read_kwargs(self, path: str) -> dict[str, Any]:
        return sse.read_kwargs(self.options.for_path(path).sse)

    # --- the crypto facade and its KMS client ----------------------------------------

    @property
    def crypto(self) -> ContentCrypto:
        if self._crypto is None or self._crypto[0] != os.getpid():
            # after fork the parent's KMS client (and its loop) is unusable here
            self._kms = self._kms_context = self._kms_lock = None
            self._stores = {}  # they hold the crypto facade being replaced
            self._crypto = (os.getpid(), ContentCrypto(self.options, self._kms_client))
        return self._crypto[1]

    async def _kms_client(self) -> Any:
        if self._kms_lock is None:
            self._kms_lock = asyncio.Lock()
        async with self._kms_lock:
            if self._kms is None:
                from aiobotocore.session import get_session

                kwargs = client_kwargs(self.options.s3, self.options.cse.kms_endpoint_url)
                self._kms_context = get_session().create_client("kms", **kwargs)
                self._kms = await self._kms_context.__aenter__()
                weakref.finalize(
                    self, _close_at_exit, asyncio.get_running_loop(), self._kms_context, os.getpid()
                )
        return self._kms

    async def close(self) -> None:
        for store in self._stores.values():
            store.drop_local()  # spools and remembered versions; the transport is not ours
        self._stores.clear()
        context, self._kms_context, self._kms = self._kms_context, None, None
        if context is not None and self._crypto is not None and self._crypto[0] == os.getpid():
            await context.__aexit__(None, None, None)
        self._crypto = None

    # --- companions ---------------------------------------------------------------------------

    def companion_keys(self, path: str) -> list[str]:
        """Keys that belong to the object at ``path`` (its instruction file), for deletes."""
        options = self.cse_options(path)
        if options.storage_mode == "InstructionFile":
            return [paths.split(path)[1] + options.instruction_suffix]
        return []


def with_sealed(info: dict, sealed: Sealed) -> dict:
    """``info`` of a CSE object: its plaintext length and ``info["cse"]``."""
    if not sealed.encrypted:
        return info
    instruction = sealed.instruction
    cse: dict[str, Any] = {
        "stored_size": sealed.stored.size,
        "envelope": dict(sealed.stored.metadata),
        "instruction": None if instruction is None else instruction.decode("utf-8", "replace"),
    }
    if sealed.damaged:
        cse["damaged"] = sealed.damaged
    info.update(size=sealed.size, length=sealed.size, cse=cse)
    return info

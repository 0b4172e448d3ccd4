"""The stack of stores in force for a path: :class:`Stacks`.

A path's options are resolved once (``options.for_path``: its bucket/prefix
overrides) and the stack for those effective options is built bottom up:

* the transport (:func:`emrfs.store.transport_for`; SSE arguments live there);
* :class:`~emrfs.crypto.store.EncryptingStore` where client-side encryption is in
  force (on, or a CSE key configured: reads must still decrypt what is sealed);
* :class:`~emrfs.consistency.layer.ConsistentStore` where the consistent view is on;
* :class:`~emrfs.cache.caching.CachingStore` where the block cache is on (sealing
  its blocks at rest over the encryption layer, which hands it plaintext);
* :class:`~emrfs.cache.routing.RoutingStore` where the ephemeral tier is on: tier
  paths to the tier, the rest down the persistent stack.

One stack per distinct effective options, shared by every path that has them; the
layers are handed what they need already resolved (no layer asks
``options.for_path`` again).  What the stacks share (transports, consistent views,
key providers, the local block store and the tier) comes from factories, so a
filesystem hands its own and there is one of each; where none is given,
:class:`Stacks` makes its own and closes it in :meth:`Stacks.close`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import CSEOptions, Options
from .store import ObjectStore, WrapperStore, transport_for

if TYPE_CHECKING:
    from .cache.layer import LocalCache
    from .consistency.view import ConsistentView
    from .crypto import ContentCrypto

__all__ = ["Stacks", "cse_in_force", "tier_in_force"]


def cse_in_force(cse: CSEOptions) -> bool:
    """New objects are encrypted, or a CSE key is configured (objects written sealed
    must still read as plaintext)."""
    return bool(cse.enabled or cse.kms_key_id or cse.materials_provider or cse.aes_key)


def tier_in_force(options: Options) -> bool:
    """The ephemeral tier holds some paths under ``options`` (it lives in the cache)."""
    eph = options.ephemeral
    return bool(eph.enabled and options.cache.enabled and (eph.patterns or eph.prefixes))


def _key(options: Options) -> tuple[Any, ...]:
    """What decides a stack: the sections a path's options choose layers by."""
    return (
        options.s3,
        options.sse,
        options.cse,
        options.consistency,
        options.cache,
        options.ephemeral,
    )


class Stacks:
    """``stacks.for_path(path)``: the :class:`ObjectStore` stack in force for ``path``.

    Parameters
    ----------
    options
        The whole options tree (with its overrides).
    transport
        The transport for one resolved set of options (a filesystem's
        :meth:`~emrfs.transports.Transports.for_options`); default: made here, one
        per S3/SSE options, closed with the stacks.
    view
        The consistent view for resolved options whose view is on (a filesystem's
        :meth:`~emrfs.namespace.views.Views.for_options`); default: made here from
        ``consistency.*`` (its DynamoDB table), one per consistency options.
    crypto
        The :class:`~emrfs.crypto.ContentCrypto` of one CSE options (sharing key
        providers and the KMS client); default: one made here per CSE options.
    local
        The local cache (its block store, block size and tier), made on first need;
        default: a :class:`~emrfs.cache.layer.LocalCache` of ``options``, closed here.
    in_tier
        Whether a path belongs to the ephemeral tier; default: the
        ``ephemeral.patterns`` and ``ephemeral.prefixes`` of the options.
    """

    def __init__(
        self,
        options: Options,
        *,
        transport: Callable[[Options], ObjectStore] | None = None,
        view: Callable[[Options], ConsistentView | None] | None = None,
        crypto: Callable[[CSEOptions], ContentCrypto] | None = None,
        local: Callable[[], LocalCache] | None = None,
        in_tier: Callable[[str], bool] | None = None,
    ):
        self.options = options
        self._transport = transport or self._own_transport
        self._view = view or self._own_view
        self._crypto = crypto or self._own_crypto
        self._local_factory = local
        self._in_tier = in_tier or self._own_in_tier
        self._pid = os.getpid()
        self._layers: dict[tuple[Any, ...], list[ObjectStore]] = {}
        self._last: tuple[Options, ObjectStore] | None = None  # for_path's last answer
        # made here (not handed in): closed by close()
        self._transports: dict[tuple[Any, ...], ObjectStore] = {}
        self._views: dict[Any, ConsistentView] = {}
        self._cryptos: dict[CSEOptions, ContentCrypto] = {}
        self._local: LocalCache | None = None
        self._tier: ObjectStore | None = None

    # --- the stack of a path ----------------------------------------------------------------

    def for_path(self, path: str) -> ObjectStore:
        """The stack for ``path``'s effective options (built on first use, then shared)."""
        if self._pid != os.getpid():
            # the parent's stacks hold its KMS client and connections: build anew here
            self._pid = os.getpid()
            self._layers = {}
            self._last = None
        options = self.options.for_path(path)
        last = self._last
        if last is not None and last[0] is options:
            return last[1]  # the same options object as the last path's (no key to hash)
        top = self._layers_of(options)[-1]
        self._last = (options, top)
        return top

    def built(self) -> list[list[ObjectStore]]:
        """The layers of every stack built so far (bottom first), e.g. to find each
        stack's block cache."""
        return [list(layers) for layers in self._layers.values()]

    def layers(self, path: str) -> list[ObjectStore]:
        """The layers of ``path``'s stack, bottom (the transport) first."""
        return list(self._layers_of(self.options.for_path(path)))

    def _layers_of(self, options: Options) -> list[ObjectStore]:
        key = _key(options)
        layers = self._layers.get(key)
        if layers is None:
            layers = self._layers[key] = self._build(options)
        return layers

    def _build(self, options: Options) -> list[ObjectStore]:
        """The layers ``options`` (resolved for a path) call for, bottom up."""
        layers = [self._transport(options)]
        encrypting = cse_in_force(options.cse)
        guard = None
        if encrypting:
            from .crypto.store import EncryptingStore

            layers.append(
                EncryptingStore(layers[-1], options.cse, crypto=self._crypto(options.cse))
            )
        else:
            from .crypto.guard import EnvelopeGuard

            # no CSE here: an object sealed elsewhere is still read as plaintext
            guard = EnvelopeGuard(
                layers[-1],
                options.cse,
                lambda: self._crypto(options.cse),
                refuse_unknown=options.cache.enabled,
            )
            layers.append(guard)
        if options.consistency.enabled:
            from .consistency.layer import ConsistentStore

            view = self._view(options)
            if view is None:
                raise ValueError(
                    "the consistent view is on (consistency.enabled) but the view factory "
                    "gave none: hand Stacks a view factory that follows consistency.*"
                )
            layers.append(ConsistentStore(layers[-1], view))
        if options.cache.enabled:
            from .cache.caching import CachingStore

            local = self.local
            layers.append(
                CachingStore(
                    layers[-1],
                    local.store,
                    block_size=local.block_size,
                    prefetch_blocks=local.prefetch_blocks,
                    # the encryption layer hands over plaintext: sealed at rest, kept
                    # apart from a transport's ciphertext blocks of the same object (and
                    # what the guard decrypted of an object sealed elsewhere)
                    seal=True if guard is None else guard.sealing,
                    stamp="cse" if encrypting else None,
                )
            )
        if tier_in_force(options):
            from .cache.routing import RoutingStore

            layers.append(RoutingStore(layers[-1], self.tier, self._in_tier))
        return layers

    # --- what the stacks share -------------------------------------------------------------

    @property
    def local(self) -> LocalCache:
        """The local cache every stack's block cache and tier use."""
        if self._local_factory is not None:
            return self._local_factory()
        if self._local is None:
            from .cache.layer import LocalCache

            self._local = LocalCache(self.options, must_seal=self._must_seal)
        return self._local

    @property
    def tier(self) -> ObjectStore:
        """The ephemeral tier as a store, made at its first verb (a stack that never
        sees a tier path never builds the tier, nor fails on its options)."""
        if self._tier is None:
            self._tier = _MadeOnFirstUse(self._tier_store)
        return self._tier

    def _tier_store(self) -> ObjectStore:
        from .cache.tierstore import TierStore

        return TierStore(self.local.tier)

    def _must_seal(self, path: str) -> bool:
        return cse_in_force(self.options.for_path(path).cse)

    def _own_transport(self, options: Options) -> ObjectStore:
        key = (options.s3, options.sse)
        transport = self._transports.get(key)
        if transport is None:
            transport = self._transports[key] = transport_for(
                options, source_sse=lambda src: self.options.for_path(src).sse
            )
        return transport

    def _own_view(self, options: Options) -> ConsistentView:
        view = self._views.get(options.consistency)
        if view is None:
            from .consistency.view import ConsistentView

            view = self._views[options.consistency] = ConsistentView.from_options(options)
        return view

    def _own_crypto(self, cse: CSEOptions) -> ContentCrypto:
        crypto = self._cryptos.get(cse)
        if crypto is None:
            from .crypto import ContentCrypto

            crypto = self._cryptos[cse] = ContentCrypto(cse)
        return crypto

    def _own_in_tier(self, path: str) -> bool:
        from .cache.matching import is_ephemeral

        eph = self.options.ephemeral
        return is_ephemeral(path, eph.patterns, eph.prefixes)

    # --- closing -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Drop what the stacks keep (decrypted spools, remembered versions) and close what
        was made here; what the factories handed in stays their owner's to close."""
        from .crypto.guard import EnvelopeGuard
        from .crypto.store import EncryptingStore

        for layers in self._layers.values():
            for layer in layers:
                if isinstance(layer, EncryptingStore | EnvelopeGuard):
                    layer.drop_local()
        self._last = None
        self._layers = {}
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            await transport.close()
        views, self._views = list(self._views.values()), {}
        for view in views:
            view.store.close()
        if self._local is not None:
            self._local.close()
            self._local = None
        self._tier = None


class _MadeOnFirstUse(WrapperStore):
    """Forwards every verb to the store ``make`` returns, made at the first verb."""

    def __init__(self, make: Callable[[], ObjectStore]):
        self._make = make
        self._inner: ObjectStore | None = None

    @property
    def inner(self) -> ObjectStore:
        if self._inner is None:
            self._inner = self._make()
        return self._inner

    @inner.setter
    def inner(self, store: ObjectStore) -> None:
        self._inner = store

    async def close(self) -> None:
        if self._inner is not None:  # never made: nothing to close
            await self._inner.close()

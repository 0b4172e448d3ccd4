"""The local block cache and the ephemeral tier (local disk only; no S3 here).

* :mod:`.blocks`    pure block arithmetic
* :mod:`.store`     block files: placement, opening, pins, invalidation (BlockStore)
* :mod:`.blockfile` the block file format: ids, header, checksums (pure)
* :mod:`.handles`   an open mapped block and its verified reads
* :mod:`.blockwrite` atomic block writes and the writer threads
* :mod:`.eviction`  capacity, free-space floor and LRU eviction
* :mod:`.diskutil`  private directories, scans and unlinks on local disk
* :mod:`.reader`    read-through of one object version over an async ``fetch``
* :mod:`.ephemeral` files and directories kept only in local blocks (the namespace)
* :mod:`.ephemeral_life` the tier's membership, lifetime, wipe and sealing key
* :mod:`.ephemeral_io` reader and writer of one tier file
* :mod:`.matching`  which paths are ephemeral (pure)
* :mod:`.stats`     counters per directory
* :mod:`.layer`     :class:`~.layer.LocalCache`, built from :class:`emrfs.config.Options`
* :mod:`.caching`   :class:`~.caching.CachingStore`: the block cache as a layer of the store stack
* :mod:`.tierstore` :class:`~.tierstore.TierStore`: the ephemeral tier as a store of the stack
* :mod:`.routing`   :class:`~.routing.RoutingStore`: tier paths to the tier, the rest down the stack

How the filesystem uses it::

    lc = LocalCache(options)                       # once per filesystem instance
    r = lc.reader(ObjectIdentity(path, size, etag=..., version_id=...),
                  fetch,                           # async fetch(start, end) -> bytes
                  sealed=is_cse)                   # CSE objects: always sealed at rest
    data = r.read_cached(off, n)                   # warm: no loop, no fetch; None on a miss
    data = await r.read(off, n)                    # read-through
    lc.invalidate(path)                            # after an overwrite/delete through emrfs
    if lc.is_ephemeral(path): lc.tier.<verb>(...)  # ls/info/open_read/open_write/rename/delete
    with lc.tier.open_for_upload(path) as src: ... # stream to S3 on a rename out of the tier
"""

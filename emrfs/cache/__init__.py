"""The local block cache and the ephemeral tier (local disk only; no S3 here).

* :mod:`.blocks`    pure block arithmetic
* :mod:`.store`     block files: placement, atomic writes, checksums, pins, LRU
* :mod:`.reader`    read-through of one object version over an async ``fetch``
* :mod:`.ephemeral` files and directories kept only in local blocks
* :mod:`.matching`  which paths are ephemeral (pure)
* :mod:`.stats`     counters per directory
* :mod:`.layer`     construction from :class:`emrfs.config.Options`
"""

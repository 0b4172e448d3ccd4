"""``emrfs cache stats`` and ``emrfs cache clear [--ephemeral]``.

The cache directories come from the options (``EMRFS_CACHE_DIRECTORIES``, an
emrfs-site file) or ``--dir``.  Hit/miss/eviction counters are those every
process flushed to ``<dir>/stats.json``.
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    cache = sub.add_parser("cache", help="the local block cache and ephemeral tier")
    verbs = cache.add_subparsers(dest="cache_command", metavar="VERB")
    stats = verbs.add_parser("stats", help="bytes, blocks, hits, misses, evictions per directory")
    stats.add_argument(
        "--dir",
        action="append",
        dest="dirs",
        metavar="DIR",
        help="cache directory (repeatable; default: from the options)",
    )
    stats.set_defaults(func=_stats)
    clear = verbs.add_parser("clear", help="remove cached blocks (or, with --ephemeral, the tier)")
    clear.add_argument(
        "--dir",
        action="append",
        dest="dirs",
        metavar="DIR",
        help="cache directory (repeatable; default: from the options)",
    )
    clear.add_argument(
        "--ephemeral",
        action="store_true",
        help="terminate the ephemeral tier instead (its files are lost)",
    )
    clear.set_defaults(func=_clear)
    cache.set_defaults(func=lambda args: (cache.print_help(), 2)[1])


def _options(args: argparse.Namespace):
    import dataclasses

    from emrfs.config import load

    options = load({})
    if args.dirs:
        options = dataclasses.replace(
            options, cache=dataclasses.replace(options.cache, directories=tuple(args.dirs))
        )
    return options


def _stats(args: argparse.Namespace) -> int:
    from emrfs.cache.layer import store_from_options
    from emrfs.cache.stats import collect

    store = store_from_options(_options(args).cache)
    rows = collect(store)
    if args.json:
        print(json.dumps({"directories": rows}, indent=2))
        return 0
    cols = ("bytes", "blocks", "ephemeral_bytes", "hits", "misses", "evictions", "corruptions")
    print("directory".ljust(40) + "".join(c.rjust(16) for c in cols))
    for r in rows:
        print(r["directory"].ljust(40) + "".join(str(r[c]).rjust(16) for c in cols))
    return 0


def _clear(args: argparse.Namespace) -> int:
    from emrfs.cache.ephemeral import EphemeralTier
    from emrfs.cache.layer import store_from_options

    options = _options(args)
    store = store_from_options(options.cache)
    if args.ephemeral:
        tier = EphemeralTier(
            store,
            block_size=options.cache.block_size,
            replication=min(options.ephemeral.replication, len(store.directories)),
        )
        tier.terminate()
        tier.leave()
        what = "ephemeral tier"
    else:
        store.clear(("c",))
        what = "cached blocks"
    if args.json:
        print(json.dumps({"cleared": what, "directories": store.directories}))
    else:
        print(f"cleared {what} in " + ", ".join(store.directories))
    return 0

"""``emrfs`` metadata commands: the consistent view's table, as EMRFS's ``emrfs`` CLI.

Table upkeep: ``create-metadata``, ``delete-metadata``, ``describe-metadata``,
``list-metadata-stores``, ``set-metadata-capacity``.  Bucket versus table:
``diff``, ``sync``, ``import``, ``delete``, ``prune``, ``fsck``.

Common flags: ``-m/--metadata-name TABLE`` (default ``EmrFSMetadata`` or
``consistency.table_name``), ``--endpoint-url`` (default ``EMRFS_ENDPOINT_URL``),
``--region``.  Paths are ``s3://bucket/prefix`` or ``emrfs://bucket/prefix``.
Exit codes: 0 fine, 1 differences or problems found, 2 usage, 3 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import Any

from ..errors import InvalidPathError

_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_UNIT_NAMES = {"seconds": "s", "minutes": "m", "hours": "h", "days": "d", "weeks": "w"}


def parse_age(text: str) -> float:
    """``"30s"``, ``"15m"``, ``"12h"``, ``"7d"``, ``"2w"`` -> seconds; a bare number is days
    (the unit EMRFS's ``--time`` defaults to)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(text).lower())
    if not match:
        raise argparse.ArgumentTypeError(
            f"age {text!r} is not a number with an optional unit s, m, h, d or w (e.g. 7d)"
        )
    return float(match.group(1)) * _AGE_UNITS[match.group(2) or "d"]


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-m",
        "--metadata-name",
        dest="table",
        default=None,
        help="DynamoDB table (default: consistency.table_name, EmrFSMetadata)",
    )
    common.add_argument(
        "--endpoint-url",
        default=None,
        help="S3/DynamoDB endpoint (default: EMRFS_ENDPOINT_URL, else AWS)",
    )
    common.add_argument("--region", default=None, help="AWS region")

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, parents=[common], help=help, description=help)
        parser.set_defaults(func=func)
        return parser

    p = add("create-metadata", _create, "create the metadata table (TTL on, version marker)")
    _capacity_flags(p)
    add("delete-metadata", _delete_table, "drop the metadata table")
    add("describe-metadata", _describe, "name, status, capacity and item count of the table")
    add("list-metadata-stores", _list, "tables at the endpoint that are emrfs metadata stores")
    p = add("set-metadata-capacity", _set_capacity, "change provisioned capacity or go on-demand")
    _capacity_flags(p)
    p = add("diff", _diff, "compare S3 and the metadata at or below PATH (exit 1 if they differ)")
    p.add_argument("path")
    p.add_argument("--all", action="store_true", help="also list paths that agree")
    p = add("sync", _sync, "make the metadata match S3 at or below PATH")
    p.add_argument("path")
    p.add_argument("--dry-run", action="store_true", help="report only (exit 1 if changes due)")
    p = add("import", _import, "add S3 objects at or below PATH to the metadata")
    p.add_argument("path")
    p = add("delete", _delete, "remove metadata rows at or below PATH (S3 untouched)")
    p.add_argument("path")
    _age_flags(p)
    p = add("prune", _prune, "remove tombstones older than an age (default: the tombstone TTL)")
    p.add_argument("path", nargs="?", default=None, help="only under this path")
    _age_flags(p)
    p = add(
        "fsck",
        _fsck,
        "check the table's invariants at or below PATH and look for "
        "directory renames cut short (exit 1 on problems)",
    )
    p.add_argument("path")
    p.add_argument("--fix", action="store_true", help="mend what can be mended safely")


def _capacity_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-r",
        "--read-capacity",
        "--read-consumption",
        type=int,
        default=None,
        help="provisioned read capacity units",
    )
    parser.add_argument(
        "-w",
        "--write-capacity",
        "--write-consumption",
        type=int,
        default=None,
        help="provisioned write capacity units",
    )
    parser.add_argument("--on-demand", action="store_true", help="pay-per-request billing")


def _age_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--older-than",
        type=parse_age,
        default=None,
        metavar="AGE",
        help="only rows last written longer ago than AGE (30m, 12h, 7d)",
    )
    parser.add_argument("-t", "--time", type=float, default=None, help="EMRFS spelling: N ...")
    parser.add_argument(
        "-u",
        "--time-unit",
        choices=sorted(_UNIT_NAMES),
        default="days",
        help="... in this unit (default days)",
    )


def _age(args: argparse.Namespace) -> float | None:
    if args.time is not None:
        if args.older_than is not None:
            raise InvalidPathError("give --older-than or -t/--time, not both", "--older-than")
        return args.time * _AGE_UNITS[_UNIT_NAMES[args.time_unit]]
    return args.older_than


# --- plumbing -------------------------------------------------------------------------


def _options(args: argparse.Namespace):
    from .. import config

    storage: dict[str, Any] = {}
    if args.endpoint_url:
        storage["endpoint_url"] = args.endpoint_url
    if args.region:
        storage["region"] = args.region
    if args.table:
        storage["consistency.table_name"] = args.table
    return config.load(storage)


def _store(args: argparse.Namespace, *, auto_create: bool = False):
    from ..consistency.dynamodb import DynamoDBMetadataStore

    options = _options(args)
    return DynamoDBMetadataStore.from_options(
        options, auto_create=auto_create and options.consistency.auto_create
    ), options


def _path(text: str) -> str:
    from .. import paths

    norm = paths.validate(text)
    if not norm:
        raise InvalidPathError(f"{text!r} names no bucket; give s3://bucket[/prefix]", text)
    return norm


def _emit(args: argparse.Namespace, data: Any, lines: list[str]) -> None:
    if args.json:
        print(json.dumps(data, indent=None, sort_keys=True, default=str))
    else:
        for line in lines:
            print(line)


def _progress(args: argparse.Namespace, label: str):
    """Objects walked, with a rate, on a terminal; nothing with --json/--quiet or a pipe."""
    from ..progress import CountProgress

    quiet = getattr(args, "json", False) or getattr(args, "quiet", False)
    return CountProgress(
        f"{label} {getattr(args, 'path', '')}".strip(), disable=True if quiet else None
    )


def _run_walk(args: argparse.Namespace, coro_factory) -> Any:
    with _progress(args, args.command) as progress:
        return asyncio.run(coro_factory(progress))


def _usage(exc: InvalidPathError) -> int:
    print(f"emrfs: {exc}", file=sys.stderr)
    return 2


# --- table upkeep ----------------------------------------------------------------------


def _create(args: argparse.Namespace) -> int:
    store, options = _store(args)
    cons = options.consistency
    if args.on_demand:
        rcu = wcu = 0
    else:
        rcu = args.read_capacity if args.read_capacity is not None else cons.read_capacity
        wcu = args.write_capacity if args.write_capacity is not None else cons.write_capacity
    created = store.create_table(rcu, wcu)
    desc = store.describe()
    _emit(
        args,
        {"created": created, **desc.as_dict()},
        [
            f"{'created' if created else 'already exists'}: {desc.name} "
            f"({_capacity_text(desc)}, TTL {desc.ttl_status})"
        ],
    )
    return 0


def _delete_table(args: argparse.Namespace) -> int:
    store, _ = _store(args)
    deleted = store.delete_table()
    _emit(
        args,
        {"name": store.table_name, "deleted": deleted},
        [f"{'deleted' if deleted else 'no such table'}: {store.table_name}"],
    )
    return 0


def _capacity_text(desc) -> str:
    if desc.billing_mode == "PAY_PER_REQUEST":
        return "on-demand"
    return f"read {desc.read_capacity}, write {desc.write_capacity}"


def _describe(args: argparse.Namespace) -> int:
    store, _ = _store(args)
    desc = store.describe()
    _emit(
        args,
        desc.as_dict(),
        [
            f"table          {desc.name}",
            f"status         {desc.status}",
            f"capacity       {_capacity_text(desc)}",
            f"items          {desc.item_count} (approximate)",
            f"ttl            {desc.ttl_status}",
            f"table version  {desc.table_version}",
            f"created        {desc.created_at}",
        ],
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..consistency.dynamodb import list_metadata_stores, spec_from_options

    names = list_metadata_stores(spec_from_options(_options(args)))
    _emit(args, {"tables": names}, names or ["(no metadata tables)"])
    return 0


def _set_capacity(args: argparse.Namespace) -> int:
    if not args.on_demand and args.read_capacity is None and args.write_capacity is None:
        print("emrfs set-metadata-capacity: give -r/-w capacities or --on-demand", file=sys.stderr)
        return 2
    store, _ = _store(args)
    store.set_capacity(args.read_capacity, args.write_capacity, on_demand=args.on_demand)
    desc = store.describe()
    _emit(args, desc.as_dict(), [f"{desc.name}: {_capacity_text(desc)}"])
    return 0


# --- bucket versus table ---------------------------------------------------------------


def _walker(options):
    from ..consistency.sync import AioS3Walker

    return AioS3Walker.from_options(options)


def _diff(args: argparse.Namespace) -> int:
    from ..consistency import sync as S

    try:
        path = _path(args.path)
    except InvalidPathError as exc:
        return _usage(exc)
    store, options = _store(args)
    report = _run_walk(args, lambda p: S.diff(store, _walker(options), path, progress=p))
    data = report.as_dict()
    items = report.items if args.all else report.differences
    if args.all:
        data["items"] = [i.as_dict() for i in report.items]
    lines = [
        f"{_LABELS[i.status]:<16} {'d' if i.is_dir else '-'} s3://{i.path}"
        + (f"  ({'; '.join(i.differences)})" if i.differences else "")
        for i in items
    ]
    counts = report.counts()
    lines.append("summary: " + ", ".join(f"{_LABELS[k].strip()} {v}" for k, v in counts.items()))
    _emit(args, data, lines)
    return 0 if report.clean else 1


_LABELS = {
    "same": "BOTH",
    "differs": "DIFFERS",
    "metadata_only": "METADATA ONLY",
    "s3_only": "S3 ONLY",
    "tombstone_in_s3": "DELETED IN METADATA",
}


def _sync_lines(report) -> list[str]:
    lines = [
        f"{verb:<8} s3://{p}"
        for verb, paths in (
            ("added", report.added),
            ("updated", report.updated),
            ("removed", report.removed),
        )
        for p in paths
    ]
    lines.append(
        f"{'would change' if report.dry_run else 'changed'}: added {len(report.added)}, "
        f"updated {len(report.updated)}, removed {len(report.removed)}"
    )
    return lines


def _sync(args: argparse.Namespace) -> int:
    from ..consistency import sync as S

    try:
        path = _path(args.path)
    except InvalidPathError as exc:
        return _usage(exc)
    store, options = _store(args, auto_create=not args.dry_run)
    report = _run_walk(
        args, lambda p: S.sync(store, _walker(options), path, dry_run=args.dry_run, progress=p)
    )
    _emit(args, report.as_dict(), _sync_lines(report))
    return 1 if args.dry_run and report.changed else 0


def _import(args: argparse.Namespace) -> int:
    from ..consistency import sync as S

    try:
        path = _path(args.path)
    except InvalidPathError as exc:
        return _usage(exc)
    store, options = _store(args, auto_create=True)
    report = _run_walk(args, lambda p: S.import_(store, _walker(options), path, progress=p))
    _emit(args, report.as_dict(), _sync_lines(report))
    return 0


def _delete(args: argparse.Namespace) -> int:
    from ..consistency import sync as S

    try:
        path = _path(args.path)
        age = _age(args)
    except InvalidPathError as exc:
        return _usage(exc)
    store, _ = _store(args)
    count = S.delete(store, path, age)
    _emit(
        args,
        {"path": path, "removed": count, "older_than_seconds": age},
        [f"removed {count} metadata rows at or below s3://{path}"],
    )
    return 0


def _prune(args: argparse.Namespace) -> int:
    try:
        path = _path(args.path) if args.path else None
        age = _age(args)
    except InvalidPathError as exc:
        return _usage(exc)
    store, options = _store(args)
    if age is None:
        age = float(options.consistency.tombstone_ttl_seconds)
    count = store.prune(age, under=path)
    _emit(
        args,
        {"path": path, "pruned": count, "older_than_seconds": age},
        [f"pruned {count} tombstones older than {age:g} s"],
    )
    return 0


def _unfinished_renames(args: argparse.Namespace, path: str) -> list:
    """Journalled directory renames below ``path`` (:mod:`emrfs.renames`); with ``--fix``
    each is finished, with the consistent view on this table recording it."""
    from ..filesystem import EmrFileSystem
    from ..renames import finish_pending

    storage: dict[str, Any] = {"consistent": True}
    if args.endpoint_url:
        storage["endpoint_url"] = args.endpoint_url
    if args.region:
        storage["region"] = args.region
    if args.table:
        storage["consistency.table_name"] = args.table
    fs = EmrFileSystem(skip_instance_cache=True, asynchronous=True, **storage)

    async def run() -> list:
        try:
            return await finish_pending(fs._renames, fs._mv, path, fix=args.fix)
        finally:
            await fs._close()

    return asyncio.run(run())


def _fsck(args: argparse.Namespace) -> int:
    from ..consistency import sync as S

    try:
        path = _path(args.path)
    except InvalidPathError as exc:
        return _usage(exc)
    store, _ = _store(args)
    renames = _unfinished_renames(args, path)  # first: finishing one writes rows
    report = S.fsck(store, path, fix=args.fix)
    for journal, finished in renames:
        problem = S.FsckProblem(
            journal["src"],
            "unfinished_rename",
            f"a rename to s3://{journal['dst']} was cut short (started "
            f"{journal.get('started')}); --fix (or the same mv) finishes it",
            True,
        )
        report.problems.append(problem)
        if finished:
            report.fixed.append(problem)
    lines = [
        f"{'fixed' if p in report.fixed else 'problem':<8} {p.kind:<24} s3://{p.path}: {p.detail}"
        for p in report.problems
    ]
    lines.append(
        f"checked {report.rows} rows: {len(report.problems)} problems, {len(report.fixed)} fixed"
    )
    _emit(args, report.as_dict(), lines)
    return 1 if report.unresolved else 0

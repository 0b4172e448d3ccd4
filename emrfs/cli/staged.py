"""``emrfs staged``: task output staged for a job commit that has not happened.

A staged task commit (``ephemeral.task_commit``) leaves each file as an open
multipart upload recorded in the metadata table until the job commits or
aborts.  When a driver dies in between, nothing calls either: this command
lists what is left and ``--abort`` aborts it.  ``--orphans`` also looks in
S3 for multipart uploads the table does not know (a task commit that died
after uploading, before recording); give ``--older-than`` so that uploads
still being written are left alone.

    emrfs staged s3://bucket/out                   # list (tier path, target, size, age)
    emrfs staged s3://bucket/out --older-than 12h --abort
    emrfs staged s3://bucket --orphans --older-than 1d --abort
"""

from __future__ import annotations

import argparse
import datetime as _dt
import time
from typing import Any

from ..errors import InvalidPathError
from .metadata import _emit, _options, _path, _usage, parse_age


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "staged", help="list or abort staged task output", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("path", help="s3://bucket[/prefix] to look at or below")
    parser.add_argument(
        "-m",
        "--metadata-name",
        dest="table",
        default=None,
        help="DynamoDB table (default: consistency.table_name, EmrFSMetadata)",
    )
    parser.add_argument(
        "--endpoint-url",
        default=None,
        help="S3/DynamoDB endpoint (default: EMRFS_ENDPOINT_URL, else AWS)",
    )
    parser.add_argument("--region", default=None, help="AWS region")
    parser.add_argument(
        "--older-than",
        type=parse_age,
        default=None,
        metavar="AGE",
        help="only uploads staged (or started) longer ago than AGE (30m, 12h)",
    )
    parser.add_argument(
        "--orphans",
        action="store_true",
        help="also S3 multipart uploads below PATH the table does not record",
    )
    parser.add_argument(
        "--abort", action="store_true", help="abort what is listed and remove its rows"
    )
    parser.set_defaults(func=_staged)


def _filesystem(args: argparse.Namespace):
    from ..filesystem import EmrFileSystem

    options = _options(args)
    return EmrFileSystem(
        skip_instance_cache=True,
        consistent=True,
        endpoint_url=options.s3.endpoint_url,
        region=options.s3.region,
        consistency={"table_name": options.consistency.table_name},
        ephemeral={"task_commit": "staged"},
    )


async def _s3_uploads(fs, path: str) -> list[dict[str, Any]]:
    from .. import paths

    bucket, prefix = paths.split(path)
    found: list[dict[str, Any]] = []
    marker: dict[str, str] = {}
    while True:
        page = await fs.s3.call(
            "list_multipart_uploads", path, Bucket=bucket, Prefix=prefix, **marker
        )
        found += [
            {
                "target": f"{bucket}/{u['Key']}",
                "upload_id": u["UploadId"],
                "started_ms": int(u["Initiated"].timestamp() * 1000),
            }
            for u in page.get("Uploads", [])
        ]
        if not page.get("IsTruncated"):
            return found
        marker = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}


def _staged(args: argparse.Namespace) -> int:
    from fsspec.asyn import sync

    from ..consistency.staged import StagedUpload

    try:
        path = _path(args.path)
    except InvalidPathError as exc:
        return _usage(exc)
    fs = _filesystem(args)
    staging = fs._tiers.staging
    store = staging.uploads(path)
    now_ms = int(time.time() * 1000)
    cutoff = None if args.older_than is None else now_ms - int(args.older_than * 1000)
    staged = [e for e in store.all(path) if e.upload is not None]  # one table scan
    entries = [e for e in staged if cutoff is None or e.upload.staged_ms <= cutoff]
    known = {e.upload.upload_id for e in staged}
    orphans: list[dict[str, Any]] = []
    if args.orphans:
        orphans = [
            u
            for u in sync(fs.loop, _s3_uploads, fs, path)
            if u["upload_id"] not in known and (cutoff is None or u["started_ms"] <= cutoff)
        ]
    if args.abort:
        doomed = [e.upload for e in entries] + [
            StagedUpload(u["target"], u["upload_id"], (), 0, u["started_ms"]) for u in orphans
        ]
        sync(fs.loop, staging.abort_uploads, doomed)
        store.forget(e.path for e in entries)
    _report(args, path, entries, orphans, now_ms)
    return 0


def _report(
    args: argparse.Namespace, path: str, entries: list, orphans: list[dict[str, Any]], now_ms: int
) -> None:
    """What ``staged`` found (and aborted), as lines or JSON."""
    verb = "aborted" if args.abort else "staged"
    lines = [
        f"{verb} {e.path} -> s3://{e.upload.target} ({e.upload.size} bytes, "
        f"{_age(now_ms, e.upload.staged_ms)})"
        for e in entries
    ]
    lines += [
        f"{'aborted' if args.abort else 'orphan'} upload s3://{u['target']} "
        f"{u['upload_id']} (started {_age(now_ms, u['started_ms'])})"
        for u in orphans
    ]
    if not lines:
        lines = [f"nothing staged at or below s3://{path}"]
    _emit(
        args,
        {
            "path": path,
            "aborted": bool(args.abort),
            "staged": [
                {
                    "path": e.path,
                    "target": e.upload.target,
                    "size": e.upload.size,
                    "upload_id": e.upload.upload_id,
                    "staged_ms": e.upload.staged_ms,
                }
                for e in entries
            ],
            "orphans": orphans,
        },
        lines,
    )


def _age(now_ms: int, then_ms: int) -> str:
    seconds = max(0, (now_ms - then_ms) // 1000)
    return f"{_dt.timedelta(seconds=int(seconds))} ago"

"""``emrfs doctor [s3://bucket]``: is this machine set up to use emrfs?

One line per check — endpoint reachable, TLS, credentials, region (and the
bucket's, when one is given), the consistent view's table (state, capacity
mode), the KMS keys the options name, the cache directories (writable, free
space) — each saying what to do when it fails.  ``--json`` for scripts; exit 1
when a check failed (warnings do not fail).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import socket
import ssl
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

from .gateway import _is_loopback  # one rule for what counts as this machine

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"


@dataclasses.dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check endpoint, TLS, credentials, region, metadata "
        "table, KMS keys and cache directories",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument(
        "bucket",
        nargs="?",
        default=None,
        metavar="s3://BUCKET",
        help="also check this bucket exists and its region",
    )
    p.add_argument("--endpoint-url", default=None, help="S3 endpoint (default: EMRFS_ENDPOINT_URL)")
    p.add_argument(
        "-D",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an emrfs option, e.g. -D fs.s3.consistent=true",
    )
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per network check")
    p.set_defaults(func=_doctor, error_exit=1)


def _region(options) -> str | None:
    return options.s3.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def _endpoint(options) -> str:
    return options.s3.endpoint_url or f"https://s3.{_region(options) or 'us-east-1'}.amazonaws.com"


def check_endpoint(options, timeout: float) -> Check:
    url = urlsplit(_endpoint(options))
    port = url.port or (443 if url.scheme == "https" else 80)
    started = time.monotonic()
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        return Check(
            "endpoint",
            FAIL,
            f"{url.geturl()}: cannot connect ({exc})",
            "check --endpoint-url / EMRFS_ENDPOINT_URL, that the server runs, and "
            "the network or proxy in between",
        )
    ms = (time.monotonic() - started) * 1000
    return Check("endpoint", OK, f"{url.geturl()} answered in {ms:.0f} ms")


def check_tls(options, timeout: float) -> Check:
    url = urlsplit(_endpoint(options))
    if url.scheme != "https":
        if options.s3.require_tls:
            return Check(
                "tls",
                FAIL,
                f"{url.geturl()} is plain HTTP and s3.require_tls is on",
                "use an https:// endpoint",
            )
        if _is_loopback(url.hostname or ""):
            return Check("tls", OK, "plain HTTP to this machine (loopback)")
        return Check(
            "tls",
            WARN,
            f"{url.geturl()} is plain HTTP: keys and data cross the network unencrypted",
            "use an https:// endpoint, and -D fs.s3.requireTls=true to insist",
        )
    context = ssl.create_default_context(cafile=options.s3.ca_bundle)
    try:
        with (
            socket.create_connection((url.hostname, url.port or 443), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=url.hostname) as tls,
        ):
            version = tls.version()
    except (OSError, ssl.SSLError) as exc:
        return Check(
            "tls",
            FAIL,
            f"{url.hostname}: {exc}",
            "a private CA needs -D s3.ca_bundle=/path/ca.pem; check the host name",
        )
    return Check("tls", OK, f"{url.hostname}: certificate verified ({version})")


def check_credentials(fs) -> Check:
    from fsspec.asyn import sync

    try:
        answer = sync(fs.loop, fs.s3.call, "list_buckets", "")
    except PermissionError as exc:
        from .errors import reason_and_hint

        reason, hint = reason_and_hint(exc)
        return Check(
            "credentials",
            FAIL,
            f"S3 refused them: {reason}" + (f" ({hint})" if hint else ""),
            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the "
            "instance role; `aws sts get-caller-identity` shows who you are",
        )
    except OSError as exc:
        return Check(
            "credentials",
            FAIL,
            f"S3 did not answer ListBuckets: {exc}",
            "fix the endpoint first (see above)",
        )
    return Check("credentials", OK, f"accepted; {len(answer.get('Buckets', []))} buckets visible")


def check_region(fs, bucket: str | None) -> Check:
    from fsspec.asyn import sync

    region = _region(fs.options)
    if bucket is None:
        if region:
            return Check("region", OK, region)
        return Check(
            "region",
            WARN,
            "none set: us-east-1 is used",
            "set AWS_DEFAULT_REGION or -D fs.s3.region=REGION",
        )
    try:
        location = sync(fs.loop, fs.s3.call, "get_bucket_location", bucket, Bucket=bucket)
    except FileNotFoundError:
        return Check(
            "region",
            FAIL,
            f"bucket {bucket!r} does not exist",
            f"create it with `emrfs mb s3://{bucket}`, or check the name",
        )
    except OSError as exc:
        return Check("region", FAIL, f"bucket {bucket!r}: {exc}", "check its name and policy")
    where = location.get("LocationConstraint") or "us-east-1"
    if region and where != region:
        return Check(
            "region",
            WARN,
            f"bucket {bucket!r} is in {where}, the options say {region}",
            f"-D fs.s3.region={where} saves a redirect per request",
        )
    return Check(
        "region", OK, f"{region or 'us-east-1 (default)'}; bucket {bucket!r} is in {where}"
    )


def check_metadata(options) -> Check:
    from ..consistency.dynamodb import DynamoDBMetadataStore

    table = options.consistency.table_name
    wanted = options.consistency.enabled
    try:
        store = DynamoDBMetadataStore.from_options(options, auto_create=False)
        desc = store.describe()
    except Exception as exc:  # noqa: BLE001 - any failure is the finding to report
        missing = (
            "ResourceNotFound" in repr(exc)
            or "does not exist" in str(exc)
            or "create-metadata" in str(exc)
        )
        if not wanted:
            return Check(
                "metadata",
                SKIP,
                f"consistent view off (fs.s3.consistent); table "
                f"{table!r} {'absent' if missing else 'unreadable'}",
            )
        if missing and options.consistency.auto_create:
            return Check(
                "metadata",
                WARN,
                f"table {table!r} does not exist yet: the first "
                "write creates it (consistency.auto_create)",
                f"`emrfs create-metadata -m {table}` creates it now, with the capacity you choose",
            )
        if missing:
            return Check(
                "metadata",
                FAIL,
                f"table {table!r} does not exist and consistency.auto_create is off",
                f"`emrfs create-metadata -m {table}`",
            )
        return Check(
            "metadata",
            FAIL,
            f"table {table!r}: {exc}",
            "check DynamoDB permissions (DescribeTable, GetItem, PutItem, Query)",
        )
    mode = (
        "on-demand"
        if desc.billing_mode == "PAY_PER_REQUEST"
        else f"provisioned read {desc.read_capacity}, write {desc.write_capacity}"
    )
    status = OK if desc.status == "ACTIVE" else WARN
    state = (
        f"table {desc.name!r} {desc.status}, {mode}, ~{desc.item_count} items, "
        f"TTL {desc.ttl_status}"
    )
    if not wanted:
        return Check("metadata", status, state + " (consistent view off: unused)")
    fix = "" if status == OK else "wait for ACTIVE; `emrfs describe-metadata` shows its state"
    if desc.ttl_status not in ("ENABLED", "ENABLING"):
        status, fix = WARN, "tombstones will not expire: `emrfs create-metadata` turns TTL on"
    return Check("metadata", status, state, fix)


def _kms_keys(options) -> list[tuple[str, str, str | None]]:
    keys: list[tuple[str, str, str | None]] = []
    if options.sse.enabled and "kms" in options.sse.algorithm.lower() and options.sse.kms_key_id:
        keys.append(("sse", options.sse.kms_key_id, None))
    if options.cse.enabled and options.cse.kms_key_id:
        keys.append(("cse", options.cse.kms_key_id, options.cse.kms_endpoint_url))
    return keys


def check_kms(options) -> list[Check]:
    import boto3

    from ..s3.client import client_kwargs

    keys = _kms_keys(options)
    if not keys:
        return [Check("kms", SKIP, "no KMS key in the options (sse/cse kms_key_id)")]
    checks = []
    for use, key_id, endpoint in keys:
        try:
            kms = boto3.client("kms", **client_kwargs(options.s3, endpoint))
            kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
        except Exception as exc:  # noqa: BLE001 - report whatever KMS said
            checks.append(
                Check(
                    f"kms ({use})",
                    FAIL,
                    f"key {key_id!r} is not usable: {exc}",
                    "check the key id/alias and region, that it is enabled, and "
                    "kms:GenerateDataKey / kms:Decrypt in the key policy",
                )
            )
            continue
        checks.append(Check(f"kms ({use})", OK, f"key {key_id!r} generates data keys"))
    return checks


def check_cache(options) -> list[Check]:
    from ..cache.layer import default_directories

    cache = options.cache
    if not cache.enabled and not cache.directories:
        return [Check("cache", SKIP, "block cache off (fs.s3.cache.enabled)")]
    checks = []
    for directory in tuple(cache.directories) or default_directories():
        try:
            os.makedirs(directory, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=directory, prefix=".emrfs-doctor-"):
                pass
            usage = shutil.disk_usage(directory)
        except OSError as exc:
            checks.append(
                Check(
                    "cache",
                    FAIL,
                    f"{directory}: not writable ({exc})",
                    "fix its permissions or choose another with -D fs.s3.cache.dirs=DIR",
                )
            )
            continue
        free = usage.free / usage.total if usage.total else 0.0
        detail = f"{directory}: writable, {usage.free / 2**30:.1f} GiB free ({free:.0%})"
        if free < cache.free_space_floor:
            checks.append(
                Check(
                    "cache",
                    FAIL,
                    detail + f", below the floor of "
                    f"{cache.free_space_floor:.0%}: nothing new will be cached",
                    "free space, or lower fs.s3.cache.freeSpaceRatio",
                )
            )
        else:
            checks.append(Check("cache", OK, detail))
    return checks


def run_checks(fs, bucket: str | None, timeout: float) -> list[Check]:
    options = fs.options
    checks = [check_endpoint(options, timeout)]
    reachable = checks[0].status == OK
    checks.append(
        check_tls(options, timeout) if reachable else Check("tls", SKIP, "endpoint unreachable")
    )
    checks.append(
        check_credentials(fs) if reachable else Check("credentials", SKIP, "endpoint unreachable")
    )
    checks.append(
        check_region(fs, bucket)
        if checks[-1].status == OK
        else Check("region", SKIP, "no working credentials")
    )
    checks.append(
        check_metadata(options) if reachable else Check("metadata", SKIP, "endpoint unreachable")
    )
    checks.extend(check_kms(options) if reachable else [Check("kms", SKIP, "endpoint unreachable")])
    checks.extend(check_cache(options))
    return checks


def _doctor(args: argparse.Namespace) -> int:
    from .. import paths
    from .fs import make_fs

    fs = make_fs(args)
    bucket = paths.split(fs._strip_protocol(args.bucket))[0] if args.bucket else None
    checks = run_checks(fs, bucket, args.timeout)
    failed = any(c.status == FAIL for c in checks)
    if getattr(args, "json", False):
        out: dict[str, Any] = {"ok": not failed, "checks": [dataclasses.asdict(c) for c in checks]}
        print(json.dumps(out))
    else:
        for c in checks:
            print(f"[{c.status.upper():>4}] {c.name:<12} {c.detail}")
            if c.fix:
                print(f"{'':7}{'':<12} -> {c.fix}")
    return 1 if failed else 0

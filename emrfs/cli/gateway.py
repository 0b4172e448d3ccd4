"""``emrfs gateway``: serve the emrfs namespace over WebHDFS for Spark and Hadoop clients."""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gateway",
        help="serve emrfs over the WebHDFS REST API (webhdfs://host:port/bucket/key)",
        description="Serve the emrfs namespace (buckets as top-level directories) over "
        "WebHDFS until SIGINT/SIGTERM. See docs/gateway.md.",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default loopback; elsewhere use --token and TLS)",
    )
    p.add_argument("--port", type=int, default=9870, help="port (default 9870; 0 picks one)")
    p.add_argument(
        "--token",
        help="shared secret clients must send as delegation=<token> "
        "or 'Authorization: Bearer <token>'",
    )
    p.add_argument("--token-file", help="read the shared secret from this file instead")
    p.add_argument("--tls-cert", help="PEM certificate: serve HTTPS (swebhdfs://)")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--endpoint-url", help="S3/DynamoDB endpoint for emrfs (e.g. moto)")
    p.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="emrfs storage option, repeatable (fs.s3.consistent=true, ...)",
    )
    p.add_argument("--owner", help="owner reported when the request names no user.name")
    p.add_argument("--group", help="group reported in file status")
    p.add_argument(
        "--read-chunk-mib",
        type=int,
        default=16,
        help="largest ranged read per OPEN stream step (MiB)",
    )
    p.add_argument(
        "--read-ahead", type=int, default=3, help="ranged reads in flight per OPEN stream"
    )
    p.add_argument(
        "--serve",
        default="emrfs://",
        metavar="URL",
        help="fsspec URL of what to serve (default emrfs://; file:///dir or "
        "memory:// for trying clients out)",
    )
    p.set_defaults(func=_run)


def _filesystem(args: argparse.Namespace):
    import fsspec

    options: dict[str, Any] = {}  # strings, coerced by the filesystem's options
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--option {item!r} must look like KEY=VALUE")
        options[key] = value
    protocol, _, root = args.serve.partition("://")
    if protocol == "emrfs":
        from emrfs.filesystem import EmrFileSystem  # lazy: the gateway alone needs no S3

        if args.endpoint_url:
            options["endpoint_url"] = args.endpoint_url
        fs = EmrFileSystem(**options)
    else:
        fs = fsspec.filesystem(protocol, **options)
    if root.strip("/"):
        from fsspec.implementations.dirfs import DirFileSystem

        fs = DirFileSystem(root if protocol == "file" else f"{protocol}://{root}", fs=fs)
    return fs


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _run(args: argparse.Namespace) -> int:
    from emrfs.gateway import serve, ssl_context

    token = args.token
    if args.token_file:
        if token:
            raise ValueError("give --token or --token-file, not both")
        with open(args.token_file, encoding="utf-8") as f:
            token = f.read().strip()
        if not token:
            raise ValueError(f"--token-file {args.token_file!r} is empty")
    tls = ssl_context(args.tls_cert, args.tls_key)
    if not _is_loopback(args.host) and not token:
        print(
            f"warning: serving {args.host} without --token: anyone who can reach it may "
            "read and write",
            file=sys.stderr,
        )
    fs = _filesystem(args)

    def ready(url: str) -> None:
        scheme = "swebhdfs" if tls else "webhdfs"
        hadoop_url = url.replace("https://", f"{scheme}://").replace("http://", f"{scheme}://")
        if args.json:
            print(json.dumps({"url": url, "hadoop_url": hadoop_url}), flush=True)
        else:
            print(
                f"emrfs gateway on {url} — Spark/Hadoop: {hadoop_url}/<bucket>/<path>; "
                "Ctrl-C stops it",
                flush=True,
            )

    if args.read_chunk_mib < 1 or args.read_ahead < 1:
        raise ValueError("--read-chunk-mib and --read-ahead must be at least 1")
    serve(
        fs,
        args.host,
        args.port,
        tls=tls,
        ready=ready,
        token=token,
        owner=args.owner,
        group=args.group,
        read_chunk_max=args.read_chunk_mib * 1024 * 1024,
        read_ahead=args.read_ahead,
    )
    return 0

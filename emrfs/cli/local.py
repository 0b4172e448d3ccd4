"""``emrfs local up``: run the embedded S3/DynamoDB/KMS server in the foreground."""

from __future__ import annotations

import argparse
import json
import signal
import threading


def register(sub: argparse._SubParsersAction) -> None:
    local = sub.add_parser("local", help="local AWS-protocol servers for trying emrfs")
    verbs = local.add_subparsers(dest="local_command", metavar="VERB")
    up = verbs.add_parser("up", help="run moto's S3+DynamoDB+KMS server until interrupted")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=0, help="0 picks a free port")
    up.set_defaults(func=_up)


def _up(args: argparse.Namespace) -> int:
    from emrfs.testing.localserver import LocalServers

    servers = LocalServers(args.host, args.port, use_env=False)  # always its own server
    servers.start()
    env = servers.environment()
    if args.json:
        print(json.dumps({"endpoint_url": servers.endpoint_url, "environment": env}), flush=True)
    else:
        print(f"emrfs local servers (S3, DynamoDB, KMS) on {servers.endpoint_url}")
        print("export these to use them:")
        for name, value in env.items():
            print(f"  export {name}={value}")
        print("Ctrl-C stops them.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            if not servers.running:
                print("the server process exited")
                return 3
    except KeyboardInterrupt:
        pass
    finally:
        servers.stop()
    return 0

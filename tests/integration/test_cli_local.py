"""`emrfs local up` runs the servers in the foreground and prints what to export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import boto3


def test_local_up_prints_environment_and_serves():
    proc = subprocess.Popen(
        [sys.executable, "-m", "emrfs.cli", "--json", "local", "up"],
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "EMRFS_ENDPOINT_URL"},
    )
    try:
        info = json.loads(proc.stdout.readline())
        url = info["endpoint_url"]
        assert url.startswith("http://127.0.0.1:")
        assert info["environment"]["EMRFS_ENDPOINT_URL"] == url
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="local-up-check")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["local-up-check"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0

"""The configurations under test and the servers, proxy, buckets and tables
each run gets."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .ops import MiB

AES_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # base64 of bytes(range(32)); a test key


@dataclass(frozen=True)
class Config:
    """One way to build the filesystem under test."""

    name: str
    description: str
    sse: bool = False
    cse: str | None = None  # "aes" (a raw key) or "kms" (a key made in the server's KMS)
    cache: bool = False  # the block cache and its ephemeral tier
    consistent: bool = False  # the consistent view, behind a FaultProxy injecting faults


CONFIGS: dict[str, Config] = {
    c.name: c
    for c in (
        Config("plain", "no options"),
        Config("sse", "fs.s3.enableServerSideEncryption=true", sse=True),
        Config("cse", "client-side encryption, raw AES key", cse="aes"),
        Config("cache", "block cache + ephemeral tier (_temporary/)", cache=True),
        Config(
            "consistent",
            "consistent view; list delay, stale reads, lingering deletes, "
            "503s and DynamoDB throttling on",
            consistent=True,
        ),
        Config(
            "cse-consistent",
            "CSE (AES) + consistent view + every fault",
            cse="aes",
            consistent=True,
        ),
        Config(
            "all",
            "CSE (KMS) + cache + ephemeral tier + consistent view + every fault "
            "(SSE conflicts with CSE)",
            cse="kms",
            cache=True,
            consistent=True,
        ),
    )
}


def resolve_configs(names: str) -> list[Config]:
    """``"all-configs"``/``"every"`` or comma-separated names of :data:`CONFIGS`."""
    if names in ("every", "all-configs", "*"):
        return list(CONFIGS.values())
    out = []
    for name in names.split(","):
        if name.strip() not in CONFIGS:
            raise ValueError(
                f"unknown workload configuration {name!r}; known: {', '.join(CONFIGS)} (or 'every')"
            )
        out.append(CONFIGS[name.strip()])
    return out


class _StepClock:
    """The fault proxy's clock: real time plus a step per operation, so an
    inconsistency lasts a few operations (or ``delay`` real seconds) at most."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return time.monotonic() + self.offset

    def tick(self) -> None:
        with self._lock:
            self.offset += self.step


class Environment:
    """Servers and proxy for one configuration, shared by every run of it; each
    :meth:`fresh` run gets a new bucket, table, cache directory and filesystem."""

    def __init__(
        self, config: Config, endpoint: str, *, seed: int = 0, fault_delay: float = 0.3
    ) -> None:
        import boto3

        self.config = config
        self.endpoint = endpoint
        self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        self.ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        self.proxy = None
        self.clock = _StepClock(step=fault_delay / 2.5)
        self.kms_key: str | None = None
        self.workdir = tempfile.mkdtemp(prefix="emrfs-workload-")
        self.table = f"emrfs-workload-{uuid.uuid4().hex[:10]}"
        if config.cse == "kms":
            kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
            self.kms_key = kms.create_key(Description="emrfs workload")["KeyMetadata"]["KeyId"]
        if config.consistent:
            from ..faults import Failure, FaultPolicy, FaultProxy, Inconsistency

            policy = FaultPolicy(
                inconsistency=Inconsistency(
                    delay=fault_delay, list_delay=True, lingering_deletes=True, stale_reads=True
                ),
                slow_down=Failure(0.03),
                dynamodb_throttle=Failure(0.03),
                seed=seed,
            )
            self.proxy = FaultProxy(endpoint, policy, clock=self.clock)
            self.proxy.start()
        self._made: list[tuple[str, Any]] = []

    def options(self, cache_dir: str) -> dict[str, Any]:
        c = self.config
        opts: dict[str, Any] = {
            "skip_instance_cache": True,
            "part_size": 5 * MiB,
            "multipart_threshold": 5 * MiB,
            "retry_base_seconds": 0.01,
        }
        if c.sse:
            opts["fs.s3.enableServerSideEncryption"] = "true"
        if c.cse == "aes":
            opts["cse"] = {
                "enabled": True,
                "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
                "aes_key": AES_KEY,
            }
        elif c.cse == "kms":
            opts["cse"] = {"enabled": True, "kms_key_id": self.kms_key}
        if c.cache:
            opts["cache"] = {"enabled": True, "directories": [cache_dir], "block_size": 64 * 1024}
        if c.consistent:
            # The retry budget (20 x 0.05 s) outlasts every injected delay, so a
            # ConsistencyError is a divergence, not bad luck.
            opts.update(
                {
                    "consistent": True,
                    "consistency.table_name": self.table,
                    "consistency.retry_policy_type": "fixed",
                    "consistency.retry_period_seconds": 0.05,
                    "consistency.retry_count": 20,
                    "consistency.fast_list": False,
                    "consistency.dynamodb_retry_base_seconds": 0.01,
                }
            )
        return opts

    def fresh(self) -> tuple[Any, str]:
        """A new filesystem on a new bucket: ``(fs, bucket)``."""
        from emrfs import EmrFileSystem

        bucket = f"emrfs-wl-{uuid.uuid4().hex[:16]}"
        self.s3.create_bucket(Bucket=bucket)
        # a table per run: the side channel scans it after every mutation, and a table
        # that kept every earlier run's rows would slow each scan down
        self.table = f"emrfs-workload-{uuid.uuid4().hex[:10]}"
        cache_dir = tempfile.mkdtemp(dir=self.workdir)
        url = self.proxy.url if self.proxy is not None else self.endpoint
        fs = EmrFileSystem(endpoint_url=url, **self.options(cache_dir))
        self._made.append((bucket, fs))
        return fs, bucket

    def release(self, fs: Any, bucket: str) -> None:
        """Drop one run's filesystem and bucket (the next run starts clean)."""
        if self.proxy is not None:
            self.proxy.clear_inconsistency()
        try:
            tier = fs._cached.local.tier if getattr(fs, "_cached", None) is not None else None
            if tier is not None:
                tier.terminate()
        except Exception:  # noqa: BLE001 -- no cache, or no tier was ever made
            pass
        _empty_and_delete(self.s3, bucket)
        if self.config.consistent:
            try:
                self.ddb.delete_table(TableName=self.table)
            except self.ddb.exceptions.ResourceNotFoundException:
                pass

    def fault_counts(self) -> dict[str, int]:
        return dict(self.proxy.counters().faults) if self.proxy is not None else {}

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _empty_and_delete(s3, bucket: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=bucket)

"""Listings resolve options once, not per key, and keep the per-path rules where an
override starts inside the listed directory (checked through raw boto3)."""

from __future__ import annotations

import base64

import pytest

from emrfs import EmrFileSystem
from emrfs.config import Options

pytestmark = pytest.mark.integration

AES_KEY = base64.b64encode(bytes(range(32))).decode()
KEYS = 60


def _fs(endpoint: str, **options) -> EmrFileSystem:
    return EmrFileSystem(endpoint_url=endpoint, skip_instance_cache=True, **options)


def _count_option_lookups(monkeypatch) -> list[str]:
    calls: list[str] = []
    resolve = Options.for_path

    def counted(self, path):
        calls.append(path)
        return resolve(self, path)

    monkeypatch.setattr(Options, "for_path", counted)
    return calls


@pytest.mark.parametrize("verb", ["find", "ls"])
def test_a_listing_looks_options_up_a_few_times_not_once_per_key(
    emrfs_endpoint, emrfs_s3, bucket, monkeypatch, verb
):
    for i in range(KEYS):
        emrfs_s3.put_object(Bucket=bucket, Key=f"d/f{i:03d}", Body=b"x")
    fs = _fs(emrfs_endpoint)
    fs.ls(bucket)  # clients, transports and caches made before counting
    calls = _count_option_lookups(monkeypatch)
    got = fs.find(f"{bucket}/d") if verb == "find" else fs.ls(f"{bucket}/d", detail=False)
    assert len(got) == KEYS
    assert len(calls) < KEYS // 4, calls[:20]


def test_an_override_inside_the_listed_directory_keeps_its_cse_lengths(
    emrfs_endpoint, emrfs_s3, bucket
):
    cse = {
        "enabled": True,
        "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
        "aes_key": AES_KEY,
    }
    fs = _fs(emrfs_endpoint, overrides={f"{bucket}/enc": {"cse": cse}})
    fs.pipe({f"{bucket}/enc/a": b"secret" * 100, f"{bucket}/plain/b": b"open" * 10})
    stored = emrfs_s3.head_object(Bucket=bucket, Key="enc/a")["ContentLength"]
    assert stored > 600  # ciphertext (tag, envelope) on the server
    assert emrfs_s3.get_object(Bucket=bucket, Key="enc/a")["Body"].read()[:6] != b"secret"
    for listed in (fs.find(bucket, detail=True), {e["name"]: e for e in fs.ls(f"{bucket}/enc")}):
        assert listed[f"{bucket}/enc/a"]["size"] == 600
    assert fs.find(bucket, detail=True)[f"{bucket}/plain/b"]["size"] == 40
    assert fs.cat(f"{bucket}/enc/a") == b"secret" * 100

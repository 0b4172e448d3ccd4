"""``emrfs doctor``: each check says ok or what to do, and the exit code follows failures."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from emrfs.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def doctor(capsys, emrfs_endpoint):
    def run(*argv, endpoint=emrfs_endpoint):
        code = main(["doctor", "--json", "--endpoint-url", endpoint, *argv])
        out = json.loads(capsys.readouterr().out)
        return code, {c["name"]: c for c in out["checks"]}, out

    return run


def test_healthy_setup_passes(doctor, bucket):
    code, checks, out = doctor(f"s3://{bucket}")
    assert code == 0 and out["ok"]
    for name in ("endpoint", "tls", "credentials", "region"):
        assert checks[name]["status"] == "ok", checks[name]
    assert bucket in checks["region"]["detail"]
    assert checks["metadata"]["status"] == "skip" and checks["cache"]["status"] == "skip"


def test_failures_name_the_fix(doctor, tmp_path):
    name = f"emrfs-nope-{uuid.uuid4().hex[:8]}"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, checks, out = doctor(
        f"s3://{name}",
        "-D",
        "fs.s3.consistent=true",
        "-D",
        f"fs.s3.consistent.metadata.tableName=t-{name}",
        "-D",
        "fs.s3.consistent.metadata.autoCreate=false",
        "-D",
        "fs.s3.cache.enabled=true",
        "-D",
        f"fs.s3.cache.dirs={blocker}/sub",
    )
    assert code == 1 and not out["ok"]
    assert checks["region"]["status"] == "fail"
    assert f"emrfs mb s3://{name}" in checks["region"]["fix"]
    assert checks["metadata"]["status"] == "fail"
    assert "emrfs create-metadata" in checks["metadata"]["fix"]
    assert checks["cache"]["status"] == "fail" and "not writable" in checks["cache"]["detail"]


def test_unreachable_endpoint_fails(doctor):
    code, checks, _ = doctor(endpoint="http://127.0.0.1:9")
    assert code == 1 and checks["endpoint"]["status"] == "fail"
    assert "EMRFS_ENDPOINT_URL" in checks["endpoint"]["fix"]
    assert checks["credentials"]["status"] == "skip"


def test_metadata_table_and_kms_key(doctor, capsys, emrfs_endpoint):
    table = f"emrfs-doc-{uuid.uuid4().hex[:8]}"
    assert (
        main(["create-metadata", "-m", table, "--endpoint-url", emrfs_endpoint, "--on-demand"]) == 0
    )
    capsys.readouterr()
    kms = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    try:
        code, checks, _ = doctor(
            "-D",
            "fs.s3.consistent=true",
            "-D",
            f"fs.s3.consistent.metadata.tableName={table}",
            "-D",
            "fs.s3.cse.enabled=true",
            "-D",
            f"fs.s3.cse.kms.keyId={key}",
        )
        assert code == 0, checks
        assert checks["metadata"]["status"] == "ok" and "on-demand" in checks["metadata"]["detail"]
        assert checks["kms (cse)"]["status"] == "ok"
        code, checks, _ = doctor(
            "-D", "fs.s3.cse.enabled=true", "-D", f"fs.s3.cse.kms.keyId={uuid.uuid4()}"
        )  # no such key
        assert code == 1 and checks["kms (cse)"]["status"] == "fail"
        assert "enabled" in checks["kms (cse)"]["fix"]
    finally:
        main(["delete-metadata", "-m", table, "--endpoint-url", emrfs_endpoint])


def test_human_output_one_line_per_check(capsys, emrfs_endpoint):
    assert main(["doctor", "--endpoint-url", emrfs_endpoint]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line[7:].split()[0] for line in lines[:4]]  # after "[  OK] "
    assert names == ["endpoint", "tls", "credentials", "region"]
    assert all(line.startswith("[") for line in lines)

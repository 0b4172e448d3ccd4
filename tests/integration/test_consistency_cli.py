"""The metadata commands end to end through ``emrfs.cli.main``, ``--json`` parsed."""

from __future__ import annotations

import json
import uuid

import pytest

from emrfs.cli import main
from emrfs.cli.metadata import parse_age

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(emrfs_endpoint, capsys):
    table = f"emrfs-test-{uuid.uuid4().hex[:12]}"

    def run(*argv, json_out=True):
        args = (
            (["--json"] if json_out else [])
            + list(argv)
            + ["-m", table, "--endpoint-url", emrfs_endpoint]
        )
        code = main(args)
        out, err = capsys.readouterr()
        return code, (json.loads(out) if json_out and out.strip() else out), err

    run.table = table
    yield run
    main(["delete-metadata", "-m", table, "--endpoint-url", emrfs_endpoint])


def test_table_upkeep_commands(cli):
    code, out, _ = cli("list-metadata-stores")
    assert code == 0 and cli.table not in out["tables"]
    code, out, _ = cli("create-metadata", "-r", "5", "-w", "6")
    assert code == 0 and out["created"] and (out["read_capacity"], out["write_capacity"]) == (5, 6)
    assert out["ttl_status"] == "ENABLED"
    code, out, _ = cli("create-metadata")
    assert code == 0 and not out["created"]
    code, out, _ = cli("describe-metadata")
    assert code == 0 and out["status"] == "ACTIVE" and out["table_version"] == 1
    code, out, _ = cli("list-metadata-stores")
    assert cli.table in out["tables"]
    code, out, _ = cli("set-metadata-capacity", "-r", "7", "-w", "8")
    assert (out["read_capacity"], out["write_capacity"]) == (7, 8)
    code, out, _ = cli("set-metadata-capacity", "--on-demand")
    assert code == 0 and out["billing_mode"] == "PAY_PER_REQUEST"
    code, _, err = cli("set-metadata-capacity")
    assert code == 2 and "--on-demand" in err
    code, text, _ = cli("describe-metadata", json_out=False)
    assert "on-demand" in text and cli.table in text
    code, out, _ = cli("delete-metadata")
    assert code == 0 and out["deleted"]
    code, _, err = cli("describe-metadata")
    assert code == 3 and "create-metadata" in err


def test_import_diff_sync_delete_prune_fsck(cli, emrfs_s3, emrfs_bucket):
    b = emrfs_bucket
    for key in ("p/a", "p/sub/b", "p/sub/c"):
        emrfs_s3.put_object(Bucket=b, Key=key, Body=b"data")
    code, out, _ = cli("import", f"s3://{b}/p")
    assert code == 0 and out["counts"]["added"] == 5  # p, p/a, p/sub, p/sub/b, p/sub/c
    code, out, _ = cli("diff", f"emrfs://{b}/p")
    assert code == 0 and out["differences"] == [] and out["counts"]["same"] == 5

    emrfs_s3.delete_object(Bucket=b, Key="p/sub/c")
    emrfs_s3.put_object(Bucket=b, Key="p/new", Body=b"x")
    code, out, _ = cli("diff", f"s3://{b}/p")
    assert code == 1
    assert {(d["path"], d["status"]) for d in out["differences"]} == {
        (f"{b}/p/sub/c", "metadata_only"),
        (f"{b}/p/new", "s3_only"),
    }
    code, text, _ = cli("diff", f"s3://{b}/p", json_out=False)
    assert code == 1 and f"METADATA ONLY    - s3://{b}/p/sub/c" in text
    code, out, _ = cli("sync", f"s3://{b}/p", "--dry-run")
    assert (
        code == 1 and out["dry_run"] and out["counts"] == {"added": 1, "updated": 0, "removed": 1}
    )
    code, out, _ = cli("sync", f"s3://{b}/p")
    assert code == 0 and out["removed"] == [f"{b}/p/sub/c"] and out["added"] == [f"{b}/p/new"]
    assert cli("diff", f"s3://{b}/p")[0] == 0
    # global flags after the verb, as in the AWS CLI (was: unrecognized arguments: --json)
    code, text, _ = cli("diff", f"s3://{b}/p", "--json", "--quiet", json_out=False)
    assert code == 0 and json.loads(text)["differences"] == []

    code, out, _ = cli("fsck", f"s3://{b}")
    assert code == 0 and out["problems"] == [] and out["rows"] == 7
    code, out, _ = cli("prune", "--older-than", "0s")
    assert code == 0 and out["pruned"] == 1  # the tombstone sync left for p/sub/c
    code, out, _ = cli("delete", f"s3://{b}/p/sub", "-t", "0", "-u", "seconds")
    assert code == 0 and out["removed"] == 2  # p/sub and p/sub/b
    code, out, _ = cli("diff", f"s3://{b}/p")
    assert code == 1 and {d["status"] for d in out["differences"]} == {"s3_only"}


def test_usage_errors_exit_2(cli):
    assert cli("diff", "gs://bucket/x")[0] == 2
    assert cli("delete", "s3://bkt/x", "--older-than", "1d", "-t", "1")[0] == 2
    with pytest.raises(SystemExit) as info:
        cli("prune", "--older-than", "soon")
    assert info.value.code == 2


def test_parse_age():
    assert parse_age("90s") == 90 and parse_age("15m") == 900 and parse_age("2") == 2 * 86400
    assert parse_age("1.5h") == 5400 and parse_age("1w") == 7 * 86400


def test_progress_only_on_a_terminal(monkeypatch, capsys):
    import argparse
    import sys

    from emrfs.cli.metadata import _progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with _progress(argparse.Namespace(command="sync", path="s3://b/p"), "sync") as quiet:
        quiet(100)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr("emrfs.progress._DELAY", 0.0)
    with _progress(argparse.Namespace(command="sync", path="s3://b/p"), "sync") as loud:
        loud(100)
    err = capsys.readouterr().err
    assert "sync s3://b/p" in err and "100 objects" in err
    with _progress(argparse.Namespace(command="sync", path="s3://b/p", json=True), "x") as off:
        off(100)
    assert capsys.readouterr().err == ""

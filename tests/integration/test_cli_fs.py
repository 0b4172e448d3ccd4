"""The file verbs of the `emrfs` CLI, end to end, --json checked."""

from __future__ import annotations

import json

from emrfs.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_file_verbs(capsys, tmp_path, bucket, emrfs_endpoint, emrfs_s3):
    ep = ("--endpoint-url", emrfs_endpoint)
    local = tmp_path / "a.txt"
    local.write_bytes(b"hello")
    assert run(capsys, "mkdir", f"s3://{bucket}/d", *ep)[0] == 0
    assert run(capsys, "put", str(local), f"s3://{bucket}/d/a.txt", *ep)[0] == 0
    code, out, _ = run(capsys, "--json", "ls", f"emrfs://{bucket}/d", *ep)
    listed = json.loads(out)
    assert code == 0 and [e["name"] for e in listed] == [f"{bucket}/d/a.txt"]
    code, out, _ = run(capsys, "--json", "stat", f"s3://{bucket}/d/a.txt", *ep)
    assert json.loads(out)["length"] == 5
    assert run(capsys, "mv", f"s3://{bucket}/d", f"s3://{bucket}/e", *ep)[0] == 0
    assert emrfs_s3.get_object(Bucket=bucket, Key="e/a.txt")["Body"].read() == b"hello"
    code, out, _ = run(capsys, "--json", "du", f"s3://{bucket}", *ep)
    assert json.loads(out)["bytes"] == 5
    code, _, err = run(capsys, "cat", f"s3://{bucket}/missing", *ep)
    assert code == 3 and f"{bucket}/missing" in err
    code, _, err = run(capsys, "ls", f"s3://{bucket}", "-D", "fs.s3.bogus=1", *ep)
    assert code == 3 and "fs.s3.bogus" in err
    assert run(capsys, "rm", "-r", f"s3://{bucket}/e", *ep)[0] == 0
    assert emrfs_s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0

"""The file verbs of the `emrfs` CLI, end to end, checked with raw boto3 and --json."""

from __future__ import annotations

import gzip
import json
import re
import uuid

import pytest

from emrfs.cli import main

pytestmark = pytest.mark.integration


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli(capsys, emrfs_endpoint):
    def go(*argv):
        return run(capsys, *argv, "--endpoint-url", emrfs_endpoint)

    return go


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
    code, out, _ = run(capsys, "--json", "du", "-s", f"s3://{bucket}", *ep)
    assert json.loads(out)["bytes"] == 5
    code, _, err = run(capsys, "cat", f"s3://{bucket}/missing", *ep)
    assert code == 1 and err == f"cat: `s3://{bucket}/missing': No such file or directory\n"
    code, _, err = run(capsys, "ls", f"s3://{bucket}", "-D", "fs.s3.bogus=1", *ep)
    assert code == 1 and "fs.s3.bogus" in err
    assert run(capsys, "rm", "-r", f"s3://{bucket}/e", *ep)[0] == 0
    assert emrfs_s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_ls_prints_hadoop_format(cli, bucket, emrfs_s3):
    emrfs_s3.put_object(Bucket=bucket, Key="dir/big.bin", Body=b"x" * 3000)
    emrfs_s3.put_object(Bucket=bucket, Key="dir/sub/f", Body=b"y")
    code, out, _ = cli("ls", f"s3://{bucket}/dir")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "Found 2 items"
    # hadoop fs -ls: perms, replication (3 wide), owner, group, size (10 wide), time, path
    file_line = re.compile(
        r"^-rw-rw-rw-   1 (\S+) +(\S+) +3000 \d{4}-\d\d-\d\d \d\d:\d\d "
        + re.escape(f"s3://{bucket}/dir/big.bin")
        + "$"
    )
    assert file_line.match(lines[1]), lines[1]
    assert re.match(
        r"^drwxrwxrwx   - \S+ +\S+ +0 \d{4}-\d\d-\d\d \d\d:\d\d "
        + re.escape(f"s3://{bucket}/dir/sub")
        + "$",
        lines[2],
    ), lines[2]
    assert re.search(r" {7}3000 ", lines[1]), "size right-aligned in hadoop's 10 columns"
    code, out, _ = cli("ls", "-h", f"s3://{bucket}/dir/big.bin")
    assert " 2.9 K " in out and "Found" not in out
    code, out, _ = cli("ls", "-R", f"emrfs://{bucket}/dir")
    assert [line.split()[-1] for line in out.splitlines()] == [
        f"emrfs://{bucket}/dir/big.bin",
        f"emrfs://{bucket}/dir/sub",
        f"emrfs://{bucket}/dir/sub/f",
    ]
    code, out, _ = cli("ls", "-d", f"s3://{bucket}/dir")
    assert out.startswith("drwxrwxrwx") and out.split()[-1] == f"s3://{bucket}/dir"
    code, out, _ = cli("ls", "-C", f"s3://{bucket}/dir")
    assert out.splitlines() == [f"s3://{bucket}/dir/big.bin", f"s3://{bucket}/dir/sub"]
    code, out, err = cli("ls", f"s3://{bucket}/dir", f"s3://{bucket}/nope")
    assert code == 1 and f"ls: `s3://{bucket}/nope': No such file or directory" in err
    assert "big.bin" in out, "the good path is still listed"


def test_human_sizes_match_hadoop():
    from emrfs.cli.fs import human_size

    assert [human_size(n) for n in (5, 1023, 1024, 1536, 300_000_000, 1 << 30)] == [
        "5",
        "1023",
        "1 K",
        "1.5 K",
        "286.1 M",
        "1 G",
    ]


def test_stat_count_du_with_hadoop_formats(cli, bucket, emrfs_s3):
    emrfs_s3.put_object(Bucket=bucket, Key="d/a", Body=b"12345")
    emrfs_s3.put_object(Bucket=bucket, Key="d/e/b", Body=b"")
    code, out, _ = cli("stat", "%n %b %F %r %a %A %u:%g %o", f"s3://{bucket}/d/a")
    name, size, kind, kind2, repl, octal, sym, _ug, _block = out.split()
    assert (name, size, f"{kind} {kind2}", repl, octal, sym) == (
        "a",
        "5",
        "regular file",
        "1",
        "666",
        "rw-rw-rw-",
    )
    code, out, _ = cli("stat", "%F|%n", f"s3://{bucket}/d/e")
    assert out == "directory|e\n"
    code, out, _ = cli("stat", f"s3://{bucket}/d/a")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n", out), "default %y"
    head = emrfs_s3.head_object(Bucket=bucket, Key="d/a")
    code, out, _ = cli("stat", "%Y", f"s3://{bucket}/d/a")
    assert int(out) // 1000 == int(head["LastModified"].timestamp())
    code, out, _ = cli("count", "-v", f"s3://{bucket}/d")
    header, row = out.splitlines()
    assert header.split() == ["DIR_COUNT", "FILE_COUNT", "CONTENT_SIZE", "PATHNAME"]
    assert row.split() == ["2", "2", "5", f"s3://{bucket}/d"]
    assert row == f"{2:>12} {2:>12} {5:>18} s3://{bucket}/d"  # Hadoop's %12s %12s %18s %s
    code, out, _ = cli("count", "-q", f"s3://{bucket}/d")
    assert out.split() == ["none", "inf", "none", "inf", "2", "2", "5", f"s3://{bucket}/d"]
    code, out, _ = cli("du", f"s3://{bucket}/d")
    assert [line.split() for line in out.splitlines()] == [
        ["5", "5", f"s3://{bucket}/d/a"],
        ["0", "0", f"s3://{bucket}/d/e"],
    ]
    emrfs_s3.put_object(Bucket=bucket, Key="d/big", Body=b"z" * 2048)
    code, out, _ = cli("du", "-s", "-h", f"s3://{bucket}/d")
    assert code == 0 and out.split() == ["2.0", "K", "2.0", "K", f"s3://{bucket}/d"]


def test_test_exit_codes(cli, bucket, emrfs_s3):
    emrfs_s3.put_object(Bucket=bucket, Key="t/full", Body=b"x")
    emrfs_s3.put_object(Bucket=bucket, Key="t/empty", Body=b"")
    cases = {
        ("-e", "t/full"): 0,
        ("-e", "t/none"): 1,
        ("-d", "t"): 0,
        ("-d", "t/full"): 1,
        ("-f", "t/full"): 0,
        ("-f", "t"): 1,
        ("-s", "t/full"): 0,
        ("-s", "t/empty"): 1,
        ("-z", "t/empty"): 0,
        ("-z", "t/full"): 1,
        ("-d", "t/none"): 1,
    }
    for (flag, key), expected in cases.items():
        code, out, err = cli("test", flag, f"s3://{bucket}/{key}")
        assert (code, out, err) == (expected, "", ""), (flag, key)


def test_cat_text_getmerge_touchz(cli, bucket, emrfs_s3, tmp_path):
    emrfs_s3.put_object(Bucket=bucket, Key="m/1", Body=b"one")
    emrfs_s3.put_object(Bucket=bucket, Key="m/2", Body=b"")
    emrfs_s3.put_object(Bucket=bucket, Key="m/3", Body=b"three")
    emrfs_s3.put_object(Bucket=bucket, Key="z/t.gz", Body=gzip.compress(b"unzipped"))
    code, out, _ = cli("cat", f"s3://{bucket}/m/1", f"s3://{bucket}/m/3")
    assert (code, out) == (0, "onethree")
    code, out, _ = cli("text", f"s3://{bucket}/z/t.gz")
    assert (code, out) == (0, "unzipped")
    code, _, err = cli("cat", f"s3://{bucket}/m")
    assert code == 1 and "Is a directory" in err and "getmerge" in err
    merged = tmp_path / "merged"
    assert cli("getmerge", "-nl", "-skip-empty-file", f"s3://{bucket}/m", str(merged))[0] == 0
    assert merged.read_bytes() == b"one\nthree\n"
    assert cli("getmerge", f"s3://{bucket}/m", str(merged))[0] == 0
    assert merged.read_bytes() == b"onethree"
    assert cli("touchz", f"s3://{bucket}/m/new")[0] == 0
    assert emrfs_s3.get_object(Bucket=bucket, Key="m/new")["ContentLength"] == 0
    assert cli("touchz", f"s3://{bucket}/m/2")[0] == 0, "an empty file is fine"
    code, _, err = cli("touchz", f"s3://{bucket}/m/1")
    assert code == 1 and err.startswith(f"touchz: `s3://{bucket}/m/1': File exists")
    assert emrfs_s3.get_object(Bucket=bucket, Key="m/1")["Body"].read() == b"one"


def test_errors_name_the_path_and_the_flag(cli, bucket, emrfs_s3, tmp_path):
    emrfs_s3.put_object(Bucket=bucket, Key="dir/f", Body=b"x")
    code, _, err = cli("rm", f"s3://{bucket}/dir")
    assert code == 1 and err.startswith(f"rm: `s3://{bucket}/dir': Is a directory")
    assert "emrfs rm -r" in err and "recursive=True" not in err
    assert emrfs_s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1, "nothing deleted"
    code, _, err = cli("rm", f"s3://{bucket}/gone")
    assert code == 1 and "No such file or directory" in err and "rm -f" in err
    assert cli("rm", "-f", f"s3://{bucket}/gone")[0] == 0
    code, _, err = cli("get", f"s3://{bucket}/dir", str(tmp_path / "out"))
    assert code == 1 and "get -r" in err
    code, _, err = cli("cp", f"s3://{bucket}/dir", f"s3://{bucket}/dir2")
    assert code == 1 and "cp -r" in err
    code, _, err = cli("mkdir", f"s3://{bucket}/dir")
    assert code == 1 and "File exists" in err and "mkdir -p" in err
    assert cli("mkdir", "-p", f"s3://{bucket}/dir")[0] == 0
    code, _, err = cli("mkdir", f"s3://{bucket}/a/b")
    assert code == 1 and "mkdir -p" in err
    local = tmp_path / "f"
    local.write_bytes(b"new")
    code, _, err = cli("put", str(local), f"s3://{bucket}/dir/f")
    assert code == 1 and "File exists" in err and "put -f" in err
    assert emrfs_s3.get_object(Bucket=bucket, Key="dir/f")["Body"].read() == b"x"
    assert cli("put", "-f", str(local), f"s3://{bucket}/dir/f")[0] == 0
    assert emrfs_s3.get_object(Bucket=bucket, Key="dir/f")["Body"].read() == b"new"
    code, _, err = cli("rmdir", f"s3://{bucket}/dir")
    assert code == 1 and "rm -r" in err


def test_global_flags_before_or_after_the_verb(cli, bucket, emrfs_s3):
    emrfs_s3.put_object(Bucket=bucket, Key="g/f", Body=b"abc")
    before = cli("--json", "ls", f"s3://{bucket}/g")
    after = cli("ls", f"s3://{bucket}/g", "--json")
    assert before[0] == after[0] == 0 and json.loads(before[1]) == json.loads(after[1])
    code, out, _ = cli("du", "-s", f"s3://{bucket}/g", "--json", "--quiet")
    assert code == 0 and json.loads(out)["bytes"] == 3


def test_buckets_only_when_asked(cli, emrfs_s3, tmp_path):
    name = f"emrfs-mb-{uuid.uuid4().hex[:10]}"
    code, _, err = cli("mkdir", "-p", f"s3://{name}/dir")
    assert code == 1 and f"bucket '{name}' does not exist" in err
    assert f"emrfs mb s3://{name}" in err
    local = tmp_path / "f"
    local.write_bytes(b"x")
    code, _, err = cli("put", str(local), f"s3://{name}/f")
    assert code == 1 and f"emrfs mb s3://{name}" in err
    assert name not in [b["Name"] for b in emrfs_s3.list_buckets()["Buckets"]]
    assert cli("mb", f"s3://{name}")[0] == 0
    try:
        emrfs_s3.head_bucket(Bucket=name)
        assert cli("mkdir", "-p", f"s3://{name}/dir")[0] == 0
        assert emrfs_s3.list_objects_v2(Bucket=name)["Contents"][0]["Key"] == "dir/"
        code, _, err = cli("mb", f"s3://{name}/key")
        assert code == 2 and "bucket only" in err
        code, _, err = cli("mb", f"s3://{name}")
        assert code == 1 and f"mb: `s3://{name}': File exists" in err
    finally:
        for obj in emrfs_s3.list_objects_v2(Bucket=name).get("Contents", []):
            emrfs_s3.delete_object(Bucket=name, Key=obj["Key"])
        emrfs_s3.delete_bucket(Bucket=name)


def test_library_refuses_implicit_buckets(fs, emrfs_s3):
    name = f"emrfs-mb-{uuid.uuid4().hex[:10]}"
    with pytest.raises(FileNotFoundError, match=f"emrfs mb s3://{name}"):
        fs.makedirs(f"{name}/a/b", exist_ok=True)
    with pytest.raises(FileNotFoundError, match=f"emrfs mb s3://{name}"):
        fs.mkdir(f"{name}/a")
    with pytest.raises(FileNotFoundError, match=name):
        fs.pipe_file(f"{name}/k", b"x")
    assert name not in [b["Name"] for b in emrfs_s3.list_buckets()["Buckets"]]
    fs.mkdir(name)  # a bare bucket name is an explicit request, as in s3fs
    try:
        emrfs_s3.head_bucket(Bucket=name)
    finally:
        emrfs_s3.delete_bucket(Bucket=name)


def test_recursive_transfers(cli, bucket, emrfs_s3, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a").write_bytes(b"A")
    (tree / "sub" / "b").write_bytes(b"BB")
    assert cli("mkdir", f"s3://{bucket}/in")[0] == 0
    assert cli("put", str(tree), f"s3://{bucket}/in")[0] == 0  # into the existing directory
    keys = {o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {"in/tree/a", "in/tree/sub/b"} <= keys
    assert cli("cp", "-r", f"s3://{bucket}/in/tree", f"s3://{bucket}/copy")[0] == 0
    assert emrfs_s3.get_object(Bucket=bucket, Key="copy/sub/b")["Body"].read() == b"BB"
    assert cli("mv", "-r", f"s3://{bucket}/copy", f"s3://{bucket}/moved")[0] == 0
    assert emrfs_s3.list_objects_v2(Bucket=bucket, Prefix="copy/")["KeyCount"] == 0
    assert cli("get", "-r", f"s3://{bucket}/moved", str(tmp_path / "back"))[0] == 0
    assert (tmp_path / "back" / "sub" / "b").read_bytes() == b"BB"
    code, _, err = cli("get", f"s3://{bucket}/moved/a", str(tmp_path / "back" / "a"))
    assert code == 1 and "get -f" in err


def test_missing_credentials_is_an_error_not_a_traceback(emrfs_endpoint, bucket, tmp_path):
    import os
    import subprocess
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
    }
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        EMRFS_ENDPOINT_URL=emrfs_endpoint,
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONPATH=os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH")) if p),
    )
    done = subprocess.run(
        [sys.executable, "-m", "emrfs.cli", "ls", f"s3://{bucket}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"ls: `s3://{bucket}': Permission denied: no AWS credentials")
    assert "AWS_ACCESS_KEY_ID" in done.stderr and "emrfs doctor" in done.stderr


def test_globs_expand_like_hadoop(cli, bucket, emrfs_s3):
    for key in ("g/a.csv", "g/b.csv", "g/c.txt"):
        emrfs_s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    code, out, _ = cli("ls", "-C", f"s3://{bucket}/g/*.csv")
    assert (code, out.split()) == (0, [f"s3://{bucket}/g/a.csv", f"s3://{bucket}/g/b.csv"])
    code, out, _ = cli("cat", f"s3://{bucket}/g/*.csv")
    assert (code, out) == (0, "g/a.csvg/b.csv")
    code, _, err = cli("ls", f"s3://{bucket}/g/*.parquet")
    assert code == 1 and f"ls: `s3://{bucket}/g/*.parquet': No such file or directory" in err
    assert cli("rm", f"s3://{bucket}/g/*.csv")[0] == 0
    assert [o["Key"] for o in emrfs_s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["g/c.txt"]

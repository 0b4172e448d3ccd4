"""Hadoop's own FileOutputCommitter (algorithm v1) through two gateways, as on a cluster.

Each node of a cluster runs its own gateway, and the ephemeral tier that holds
``_temporary`` is that node's local disk.  Tasks write and commit through node
A's gateway; the driver sets up and commits (or aborts) the job through node
B's.  Here both gateways are ``emrfs gateway`` processes on the same moto
endpoint and the same consistent-view table, each with its own cache/tier
directory.  ``java/CommitterDriver.java`` (compiled once per session against
pyspark's Hadoop jars) drives the real committer, one JVM per scenario, and
pauses at named points so the test can look at the bucket through raw boto3.

Both run the staged task commit (``ephemeral.task_commit=staged``): a task
commit stages each file as an uncompleted multipart upload at its final key,
recorded in the consistent view's table; the job commit, on either gateway,
completes them; an abort aborts them.  Without it the two-gateway job commit
finds nothing to merge and writes ``_SUCCESS`` over an empty output.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import fsspec
import pytest

from emrfs.consistency.staged import STAGED_ROOT

from .test_hadoop_shell import pyspark_jars

pytestmark = [pytest.mark.spark, pytest.mark.integration]

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
TASKS = 2  # 5 files: task 0 writes 2, task 1 writes 3
BIG = 6 * 1024 * 1024 + 12345  # task 0's top-level part: two parts at s3.part_size=5MiB


# --- the two "nodes" -------------------------------------------------------------------------


@dataclass
class Node:
    """One ``emrfs gateway`` process with its own cache and ephemeral-tier directory."""

    name: str
    proc: subprocess.Popen
    url: str = ""  # http://127.0.0.1:PORT

    def hadoop_url(self, path: str) -> str:
        return self.url.replace("http://", "webhdfs://") + "/" + path.lstrip("/")

    def client(self):
        port = int(self.url.rsplit(":", 1)[1])
        return fsspec.filesystem(
            "webhdfs",
            host="127.0.0.1",
            port=port,
            use_https=False,
            user="alice",
            skip_instance_cache=True,
        )


def start_nodes(
    endpoint: str, table: str, workdir: Path, names: list[str], extra: dict[str, str]
) -> list[Node]:
    """Start one gateway per name (in parallel) and wait until each prints its URL."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    options = {
        "consistency.enabled": "true",
        "consistency.table_name": table,
        "cache.enabled": "true",
        "ephemeral.enabled": "true",
        "ephemeral.task_commit": "staged",
        "s3.part_size": "5MiB",
        **extra,
    }
    nodes = []
    for name in names:
        cache = workdir / f"cache-{name}"
        cache.mkdir()
        argv = [
            sys.executable,
            "-c",
            "import sys; from emrfs.cli import main; sys.exit(main())",
            "--json",
            "gateway",
            "--port",
            "0",
            "--endpoint-url",
            endpoint,
            "-o",
            f"cache.directories={cache}",
        ]
        for key, value in options.items():
            argv += ["-o", f"{key}={value}"]
        with open(workdir / f"gateway-{name}.log", "w") as stderr:
            nodes.append(
                Node(
                    name,
                    subprocess.Popen(
                        argv, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
                    ),
                )
            )
    try:
        for node in nodes:
            line = node.proc.stdout.readline()
            assert line, (workdir / f"gateway-{node.name}.log").read_text()
            node.url = json.loads(line)["url"]
    except BaseException:
        stop_nodes(nodes)  # the ones that did start
        raise
    return nodes


def stop_nodes(nodes: list[Node]) -> None:
    for node in nodes:
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGTERM)
    for node in nodes:
        try:
            node.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait()
        node.proc.stdout.close()


AES_KEY = base64.b64encode(bytes(range(32))).decode()


def cse_overrides(bucket: str) -> dict[str, str]:
    """Per-bucket options that turn client-side encryption on for ``bucket`` only."""
    cse = {
        "enabled": "true",
        "encryptionMaterialsProvider": "emrfs.crypto.keys:AesKeyProvider",
        "aesKey": AES_KEY,
    }
    return {f"fs.s3.bucket.{bucket}.fs.s3.cse.{k}": v for k, v in cse.items()}


@dataclass
class Cluster:
    """Gateways A and B, their consistent-view table, and the bucket they encrypt."""

    a: Node
    b: Node
    table: str
    cse_bucket: str


@pytest.fixture(scope="module")
def cluster(emrfs_endpoint, tmp_path_factory):
    """Gateways A and B: one endpoint, one consistent-view table, separate local disks."""
    import boto3

    from emrfs.testing.pytest_plugin import new_bucket_name

    table = f"emrfs-committer-{uuid.uuid4().hex[:12]}"
    cse_bucket = new_bucket_name("emrfs-committer-cse")  # named before the gateways start
    started = start_nodes(
        emrfs_endpoint,
        table,
        tmp_path_factory.mktemp("nodes"),
        ["a", "b"],
        cse_overrides(cse_bucket),
    )
    yield Cluster(*started, table, cse_bucket)
    stop_nodes(started)
    dynamodb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint)
    try:
        dynamodb.delete_table(TableName=table)
    except dynamodb.exceptions.ResourceNotFoundException:
        pass  # no request ever needed it


TWO_GATEWAYS = pytest.param("two", id="two-gateways")


@pytest.fixture(params=[pytest.param("one", id="one-gateway"), TWO_GATEWAYS])
def topology(request) -> str:
    """Tasks and driver on the same gateway ("one"), or tasks on A, the driver on B ("two")."""
    return request.param


@pytest.fixture
def sides(topology, cluster) -> tuple[Node, Node]:
    """(task side, job side)."""
    return (cluster.a, cluster.a) if topology == "one" else (cluster.a, cluster.b)


# --- the JVM ---------------------------------------------------------------------------------


class Driver:
    """CommitterDriver compiled by a javac that runs in the background (once per session),
    overlapping the gateways' start; ``argv`` waits for it."""

    def __init__(self, java: str, javac: str, jars: Path, classes: Path):
        self._javac = subprocess.Popen(
            [
                javac,
                "-nowarn",
                "-d",
                str(classes),
                "-cp",
                f"{jars}/*",
                str(HERE / "java" / "CommitterDriver.java"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._argv = [
            java,
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-cp",
            f"{classes}{os.pathsep}{jars}/*",
            "CommitterDriver",
        ]

    @property
    def argv(self) -> list[str]:
        if self._javac.returncode is None:
            output, _ = self._javac.communicate(timeout=120)
            assert self._javac.returncode == 0, output
        assert self._javac.returncode == 0, "javac failed earlier in this session"
        return self._argv


@pytest.fixture(scope="session")
def committer_driver(tmp_path_factory) -> Driver:
    jars, java, javac = pyspark_jars(), shutil.which("java"), shutil.which("javac")
    if jars is None or java is None or javac is None:
        pytest.skip("needs pyspark (its Hadoop jars) and a JDK")
    return Driver(java, javac, jars, tmp_path_factory.mktemp("committer-classes"))


@dataclass
class Run:
    """What the driver printed: ("STEP", {key: value}) per line starting with ``@@``."""

    steps: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    stderr: str = ""

    def of(self, step: str) -> list[dict[str, str]]:
        return [pairs for name, pairs in self.steps if name == step]

    def committed_files(self) -> dict[str, bytes]:
        """Output-relative path -> bytes, for every file of a committed task attempt."""
        committed = {(s["task"], s["attempt"]) for s in self.of("COMMIT_TASK")}
        return {
            w["file"]: content(w["file"], int(w["task"]), int(w["attempt"]), int(w["bytes"]))
            for w in self.of("WROTE")
            if (w["task"], w["attempt"]) in committed
        }


def content(file: str, task: int, attempt: int, size: int) -> bytes:
    """The bytes CommitterDriver.content writes (its line repeated, cut to size)."""
    line = f"{file} task {task} attempt {attempt}\n".encode()
    return (line * (size // len(line) + 1))[:size]


def parse(line: str) -> tuple[str, dict[str, str]]:
    step, *pairs = line[2:].split()
    return step, dict(p.split("=", 1) for p in pairs)


def drive(
    driver: Driver,
    task_url: str,
    job_url: str,
    actions: list[str],
    workdir: Path,
    at_pause: dict[str, Callable[[Run], None]] | None = None,
) -> Run:
    """Run the driver; at each ``pause=LABEL`` call ``at_pause[LABEL](run so far)``."""
    at_pause = at_pause or {}
    run = Run()
    errors = workdir / "driver.stderr"
    with open(errors, "w") as stderr:
        proc = subprocess.Popen(
            [*driver.argv, task_url, job_url, str(TASKS), *actions],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=workdir,
            env=dict(os.environ, HADOOP_USER_NAME="alice"),
        )
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        for line in proc.stdout:
            if not line.startswith("@@"):
                continue
            run.steps.append(parse(line))
            name, pairs = run.steps[-1]
            if name == "PAUSE":
                at_pause[pairs["label"]](run)
                proc.stdin.write("go\n")
                proc.stdin.flush()
        code = proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stdin.close()
    run.stderr = errors.read_text()
    assert code == 0 and not run.of("ERROR"), f"{run.of('ERROR')}\n{run.stderr[-4000:]}"
    return run


# --- the side channel ------------------------------------------------------------------------


class Bucket:
    """Raw boto3 views of one bucket and its consistent-view table (never a gateway)."""

    def __init__(self, s3, name: str, endpoint: str, table: str):
        import boto3

        self.s3, self.name, self.table = s3, name, table
        self.dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)

    def staged_rows(self) -> list[dict]:
        """The table's rows for this bucket's staged uploads (files and directories)."""
        root = f"{STAGED_ROOT}/{self.name}"
        pages = self.dynamodb.get_paginator("scan").paginate(
            TableName=self.table, ConsistentRead=True
        )
        return [
            i
            for page in pages
            for i in page["Items"]
            if i["parent"]["S"] == root or i["parent"]["S"].startswith(root + "/")
        ]

    def keys(self, prefix: str = "") -> set[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}

    def uploads(self) -> list[dict]:
        return self.s3.list_multipart_uploads(Bucket=self.name).get("Uploads", [])

    def staged_bytes(self, upload: dict) -> int:
        parts = self.s3.list_parts(
            Bucket=self.name, Key=upload["Key"], UploadId=upload["UploadId"]
        ).get("Parts", [])
        return sum(p["Size"] for p in parts)

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.name, Key=key)["Body"].read()


def is_marker(key: str) -> bool:
    """A directory marker (``dir/`` or ``dir_$folder$``), which carries no data."""
    return key.endswith("/") or key.endswith("_$folder$")


def check_tasks_committed(
    bucket: Bucket, before_tasks: set[str], out: str, encrypted: bool
) -> Callable:
    """At the pause after the task commits: nothing new is visible under ``out/``, each
    committed file waits whole in an uncompleted upload at its final key, and the table
    holds a staged row for it."""

    def check(run: Run) -> None:
        expected = {f"{out}/{f}": data for f, data in run.committed_files().items()}
        assert expected and len(run.of("COMMIT_TASK")) == TASKS, run.steps
        visible = bucket.keys(out + "/")
        assert visible == before_tasks, sorted(visible - before_tasks)
        uploads = bucket.uploads()
        assert sorted(u["Key"] for u in uploads) == sorted(expected), uploads
        for upload in uploads:  # CSE adds its overhead to what is staged
            staged, plain = bucket.staged_bytes(upload), len(expected[upload["Key"]])
            assert staged > plain if encrypted else staged == plain, upload
        files = [row for row in bucket.staged_rows() if "staged" in row]
        assert len(files) == len(expected), files

    return check


def check_no_leftovers(bucket: Bucket) -> None:
    """No ``_temporary`` object, pending upload, or staged row of a file or of a
    ``_temporary`` directory is left."""
    assert not [k for k in bucket.keys() if "_temporary" in k], sorted(bucket.keys())  # noqa: SIM118 (Bucket is no dict)
    assert bucket.uploads() == []
    left = [
        row
        for row in bucket.staged_rows()
        if "staged" in row or "_temporary" in f"{row['parent']['S']}/{row['child']['S']}".split("/")
    ]
    assert left == [], left


def check_committed(
    bucket: Bucket, run: Run, task_side: Node, job_side: Node, out: str, encrypted: bool
) -> None:
    """Every committed file at its final key, ``_SUCCESS``, the same files through both
    gateways.  Plain: S3 holds the exact bytes.  Encrypted: S3 holds CSE ciphertext and
    the gateways (taking turns, the task side first) read the exact bytes back."""
    expected = {f"{out}/{f}": data for f, data in run.committed_files().items()}
    data_keys = {k for k in bucket.keys(out + "/") if not is_marker(k)}
    assert data_keys == set(expected) | {f"{out}/_SUCCESS"}, sorted(data_keys)
    readers = [task_side.client(), job_side.client()]
    for i, (key, data) in enumerate(sorted(expected.items())):
        if not encrypted:
            assert bucket.read(key) == data, key
            continue
        stored = bucket.s3.get_object(Bucket=bucket.name, Key=key)
        assert any(k.startswith("x-amz-") for k in stored["Metadata"]), key  # CSE's envelope
        assert data[:64] not in stored["Body"].read(), key
        assert readers[i % 2].cat_file(f"/{bucket.name}/{key}") == data, key
    check_no_leftovers(bucket)
    for node in (task_side, job_side):
        listed = node.client().find(f"/{bucket.name}/{out}")
        assert sorted(listed) == sorted(f"/{bucket.name}/{k}" for k in data_keys), node.name


# --- the scenarios ---------------------------------------------------------------------------

OUT = "out"


@pytest.fixture
def raw(cluster, emrfs_s3, emrfs_endpoint, emrfs_bucket) -> Bucket:
    """The test's bucket, seen through the side channel."""
    return Bucket(emrfs_s3, emrfs_bucket, emrfs_endpoint, cluster.table)


def scenario(
    driver: Driver,
    sides: tuple[Node, Node],
    bucket: Bucket,
    workdir: Path,
    actions: list[str],
    encrypted: bool = False,
) -> Run:
    """Run ``actions`` (which pause at ``job-set-up`` and ``tasks-committed``) on
    ``bucket/out``; what S3 holds after the job set-up is all the tasks may leave visible."""
    task_side, job_side = sides
    created: set[str] = set()
    return drive(
        driver,
        task_side.hadoop_url(f"{bucket.name}/{OUT}"),
        job_side.hadoop_url(f"{bucket.name}/{OUT}"),
        actions,
        workdir,
        {
            "job-set-up": lambda run: created.update(bucket.keys(OUT + "/")),
            "tasks-committed": check_tasks_committed(bucket, created, OUT, encrypted),
        },
    )


COMMIT_JOB = ["setupJob", "pause=job-set-up", "tasks", "pause=tasks-committed", "commitJob"]


def test_commit_job(committer_driver, sides, raw, tmp_path):
    run = scenario(committer_driver, sides, raw, tmp_path, COMMIT_JOB)
    assert [s["value"] for s in run.of("NEEDS_TASK_COMMIT")] == ["true"] * TASKS
    assert sorted(run.committed_files()) == [
        "day=1/part-00000",
        "day=1/part-00001",
        "day=2/part-00001",
        "part-00000",
        "part-00001",
    ]
    check_committed(raw, run, *sides, OUT, encrypted=False)


@pytest.fixture
def raw_cse(cluster, emrfs_s3, emrfs_endpoint):
    """The bucket the gateways encrypt client-side, seen through the side channel."""
    from emrfs.testing.pytest_plugin import empty_and_delete_bucket

    emrfs_s3.create_bucket(Bucket=cluster.cse_bucket)
    yield Bucket(emrfs_s3, cluster.cse_bucket, emrfs_endpoint, cluster.table)
    empty_and_delete_bucket(emrfs_s3, cluster.cse_bucket)


# one gateway with CSE and the staged commit is test_spark's ephemeral-commit test
@pytest.mark.parametrize("topology", [TWO_GATEWAYS])
def test_commit_job_with_cse(committer_driver, sides, raw_cse, tmp_path):
    """The job in a bucket with client-side encryption, with a file of two parts: what a
    task commit stages is ciphertext with its envelope, readable whole after the job commit."""
    run = scenario(
        committer_driver, sides, raw_cse, tmp_path, [f"big={BIG}", *COMMIT_JOB], encrypted=True
    )
    assert len(run.committed_files()["part-00000"]) == BIG
    check_committed(raw_cse, run, *sides, OUT, encrypted=True)


def test_abort_job(committer_driver, sides, raw, tmp_path):
    run = scenario(
        committer_driver,
        sides,
        raw,
        tmp_path,
        ["setupJob", "pause=job-set-up", "tasks", "pause=tasks-committed", "abortJob"],
    )
    assert run.of("ABORT_JOB")
    left = raw.keys(OUT + "/")
    assert all(is_marker(k) for k in left), sorted(left)
    check_no_leftovers(raw)


@pytest.mark.parametrize("topology", [TWO_GATEWAYS])  # one JVM less: the cluster case
def test_retried_task_attempt(committer_driver, sides, raw, tmp_path):
    """Task 1's first attempt writes and is aborted on A; its second attempt commits; the
    job commits on B."""
    run = scenario(
        committer_driver,
        sides,
        raw,
        tmp_path,
        [
            "setupJob",
            "pause=job-set-up",
            "commit=0.0",
            "fail=1.0",
            "commit=1.1",
            "pause=tasks-committed",
            "commitJob",
        ],
    )
    assert run.of("ABORT_TASK") == [{"task": "1", "attempt": "0", "attempt_path_exists": "false"}]
    committed = {(s["task"], s["attempt"]) for s in run.of("COMMIT_TASK")}
    assert committed == {("0", "0"), ("1", "1")}
    files = run.committed_files()
    assert files["day=2/part-00001"] == content("day=2/part-00001", 1, 1, 41)
    check_committed(raw, run, *sides, OUT, encrypted=False)


@pytest.mark.parametrize("topology", [TWO_GATEWAYS])
def test_task_node_forgets_the_job(committer_driver, sides, raw, tmp_path):
    """After the job ends on B, A holds nothing of it: both list ``out`` alike, and once
    the driver deletes ``out`` (as Spark's overwrite mode does) neither reports it."""
    task_side, job_side = sides
    drive(
        committer_driver,
        task_side.hadoop_url(f"{raw.name}/{OUT}"),
        job_side.hadoop_url(f"{raw.name}/{OUT}"),
        ["setupJob", "commit=1.0", "commitJob"],
        tmp_path,
    )
    path = f"/{raw.name}/{OUT}"
    assert sorted(task_side.client().ls(path, detail=False)) == sorted(
        job_side.client().ls(path, detail=False)
    )
    job_side.client().rm(path, recursive=True)
    assert not job_side.client().exists(path)
    assert not task_side.client().exists(path)

"""The committer's path layout (pure) and the staged rows over the in-memory store
(the DynamoDB store shares its primitives; tests/integration/test_staged_commit.py
runs them against DynamoDB)."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from emrfs.commit_layout import in_task_attempt, is_task_commit, job_output_path
from emrfs.consistency.staged import STAGED_ROOT, StagedUpload, StagedUploads
from emrfs.consistency.store import InMemoryMetadataStore

J = "b/out/_temporary/0"


@pytest.mark.parametrize(
    "src, dst, expected",
    [
        (f"{J}/_temporary/attempt_1", f"{J}/task_1", True),
        ("b/_temporary/0/_temporary/a", "b/_temporary/0/t", True),  # output is the bucket root
        (f"{J}/_temporary/attempt_1", f"{J}/_temporary", False),
        (f"{J}/_temporary/attempt_1", "b/out/_temporary/1/task_1", False),  # another app attempt
        (f"{J}/task_1", "b/out/task_1", False),  # a job commit's rename
        (f"{J}/_temporary/attempt_1/part", f"{J}/task_1/part", False),
        ("b/out/x/_temporary/attempt_1", "b/out/x/task_1", False),  # not below OUT/_temporary/N
    ],
)
def test_is_task_commit(src, dst, expected):
    assert is_task_commit(src, dst) is expected


def test_in_task_attempt():
    assert in_task_attempt(f"{J}/_temporary")
    assert in_task_attempt(f"{J}/_temporary/attempt_1/part-0")
    assert not in_task_attempt(J)
    assert not in_task_attempt(f"{J}/task_1/part-0")
    assert not in_task_attempt("b/out/_temporary")


def spark_staging(segment: str) -> bool:
    return fnmatchcase(segment, ".spark-staging-*")


@pytest.mark.parametrize(
    "path, expected",
    [
        (f"{J}/task_1/part-0", "b/out/part-0"),
        (f"{J}/task_1/day=1/hour=2/part-0", "b/out/day=1/hour=2/part-0"),
        ("b/_temporary/0/task_1/part-0", "b/part-0"),
        (f"{J}/_temporary/attempt_1/part-0", None),  # not committed yet
        (f"{J}/task_1", None),  # the task directory itself
        ("b/out/part-0", None),
        ("b/t/.spark-staging-9/_temporary/0/task_1/day=1/p", "b/t/day=1/p"),
    ],
)
def test_job_output_path(path, expected):
    assert job_output_path(path, spark_staging) == expected


def upload(target: str, n: int = 2) -> StagedUpload:
    return StagedUpload(
        target,
        "upload-" + target,
        tuple(f'"e{i}"' for i in range(n)),
        10 * n,
        1_700_000_000_000,
        instruction="aW5zdHI=",
        instruction_metadata={"x-amz-iv": "abc"},
    )


def test_upload_round_trips_through_json():
    u = upload("b/out/p", 3)
    assert StagedUpload.from_json(u.to_json()) == u
    assert u.parts == [
        {"PartNumber": 1, "ETag": '"e0"'},
        {"PartNumber": 2, "ETag": '"e1"'},
        {"PartNumber": 3, "ETag": '"e2"'},
    ]


def test_rows_list_walk_move_and_forget():
    store = InMemoryMetadataStore()
    staged = StagedUploads(store)
    staged.record(
        {f"{J}/task_1/a": upload("b/out/a"), f"{J}/task_1/day=1/c": upload("b/out/day=1/c")}
    )
    # the rows live apart from every bucket's rows
    assert all(e.path.split("/")[0] == STAGED_ROOT for e in store.scan())
    assert store.get("b/out/_temporary") is None
    assert [e.path for e in staged.children(J)] == [f"{J}/task_1"]
    assert staged.get(f"{J}/task_1").is_dir
    assert staged.get(f"{J}/task_1/a").upload.target == "b/out/a"
    assert sorted(p for p, _ in staged.files("b/out/_temporary")) == [
        f"{J}/task_1/a",
        f"{J}/task_1/day=1/c",
    ]
    assert len(list(staged.all("b/out"))) == len(list(staged.all())) - 1  # minus b's row

    assert staged.move(f"{J}/task_1", f"{J}/task_2") == 2
    assert staged.get(f"{J}/task_1") is None
    assert staged.get(f"{J}/task_2/day=1/c").upload.target == "b/out/day=1/c"

    staged.forget([f"{J}/task_2/a"])
    assert [p for p, _ in staged.files(J)] == [f"{J}/task_2/day=1/c"]
    assert staged.forget_tree("b/out/_temporary") > 0
    assert staged.files("b/out") == [] and staged.get(J) is None

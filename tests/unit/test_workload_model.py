"""The workload's model (HDFS-like semantics), generator and shrinker, without a server."""

from __future__ import annotations

import pytest

from emrfs.testing.workload import (
    MUTATING,
    PATHS,
    VOCABULARY,
    Model,
    Op,
    Outcome,
    generate,
    ops_from_json,
    ops_to_json,
    payload,
    shrink,
)


def apply_all(model: Model, *ops: Op) -> list[Outcome]:
    return [model.apply(op) for op in ops]


def errors(outcomes: list[Outcome]) -> list[str | None]:
    return [o.value if o.kind == "error" else None for o in outcomes]


def test_directories_are_real_and_emptied_ones_stay():
    m = Model()
    apply_all(m, Op("pipe", "a/sub/x", size=3, fill=1), Op("rm", "a/sub/x"))
    assert m.kind("a/sub") == "directory" and m.kind("a") == "directory"
    assert m.apply(Op("ls", "a/sub")) == Outcome("ok", [])
    assert errors(apply_all(m, Op("mkdir", "a/sub"), Op("rmdir", "a"), Op("rm", "a"))) == [
        "FileExistsError",
        "OSError(ENOTEMPTY)",
        "IsADirectoryError",
    ]
    assert m.apply(Op("rm_r", "a")) == Outcome("ok") and m.kind("a") is None


def test_writes_below_a_file_and_over_a_directory_are_refused():
    m = Model()
    apply_all(m, Op("pipe", "a/x", size=1, fill=1), Op("mkdir", "b é"))
    assert errors(
        apply_all(
            m,
            Op("pipe", "a/x/x"),
            Op("mkdir", "a/x/x"),
            Op("pipe", "b é"),
            Op("pipe_create", "a/x"),
            Op("cp", "a/x", "b é"),
        )
    ) == [
        "NotADirectoryError",
        "NotADirectoryError",
        "IsADirectoryError",
        "FileExistsError",
        "IsADirectoryError",
    ]


def test_rename_follows_hdfs():
    m = Model()
    apply_all(m, Op("pipe", "a/x", size=2, fill=1), Op("mkdir", "b é"))
    data = m.files["a/x"]
    assert m.apply(Op("mv", "a/x", "a")) == Outcome("ok") and m.files["a/x"] == data  # no-op
    m.apply(Op("mv", "a/x", "b é"))  # into the directory
    assert m.files == {"b é/x": data} and m.kind("a") == "directory"
    m.apply(Op("mv", "b é", "out/_temporary"))  # a tree, to a new name, parents made
    assert m.files == {"out/_temporary/x": data}
    assert m.kind("out") == "directory" and m.kind("b é") is None
    m.apply(Op("mkdir", "x"))
    assert errors(
        apply_all(
            m, Op("mv", "out", "out/_temporary"), Op("mv", "x", "out"), Op("mv", "nothing", "a")
        )
    ) == ["InvalidPathError", None, "FileNotFoundError"]
    assert m.kind("out/x") == "directory"  # x moved into out
    m.apply(Op("mkdir", "x"))
    assert m.apply(Op("mv", "x", "out")) == Outcome("error", "FileExistsError")  # out/x exists


def test_ranges_follow_fsspec_and_read_empty_past_the_end():
    m = Model()
    m.apply(Op("pipe", "f", size=10, fill=3))
    data = payload(10, 3)
    for start, end in [(None, None), (2, 5), (-3, None), (0, -1), (50, None), (5, 2), (0, 100)]:
        assert m.apply(Op("cat_range", "f", start=start, end=end)) == Outcome(
            "ok", data[start:end]
        ), (start, end)


def test_find_and_exists():
    m = Model()
    apply_all(m, Op("pipe", "a/sub/x", size=1, fill=1), Op("mkdir", "a/e"))
    assert m.apply(Op("find", "a")) == Outcome("ok", ["a/sub/x"])
    assert m.apply(Op("find", "a", flag=True)) == Outcome("ok", ["a", "a/e", "a/sub", "a/sub/x"])
    assert m.apply(Op("find", "nothing")) == Outcome("ok", [])
    assert m.apply(Op("find", "a/sub/x")) == Outcome("ok", ["a/sub/x"])
    assert m.apply(Op("exists", "a/e")) == Outcome("ok", True)


def test_generation_is_seeded_and_covers_the_vocabulary():
    ops = generate(5, 800)
    assert ops == generate(5, 800) and ops != generate(6, 800)
    assert {op.name for op in ops} == set(VOCABULARY)
    # the universe is small (renames into directories make a few deeper names)
    assert sum(op.path in PATHS for op in ops) > len(ops) / 2
    assert any(op.name in MUTATING and " " in op.path for op in ops)
    assert any("ü" in op.path for op in ops) and any("_temporary" in op.path for op in ops)
    assert ops_from_json(ops_to_json(ops)) == ops


def test_unknown_operations_are_refused_by_name():
    with pytest.raises(ValueError, match="unknown workload operation 'chmod'"):
        Op("chmod", "a")
    with pytest.raises(ValueError, match="not JSON"):
        ops_from_json("[{")


def test_shrink_finds_the_two_operations_that_matter():
    ops = generate(9, 120)
    a, b = ops[17], ops[90]

    def fails(candidate):
        return a in candidate and b in candidate[candidate.index(a) + 1 :]

    shrunk = shrink(ops, fails)
    assert fails(shrunk) and len(shrunk) == 2

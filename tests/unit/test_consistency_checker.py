"""The S3-versus-metadata decisions, and run_with_policy with injected sleep and clock."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import given, strategies as st

from emrfs.consistency.checker import (
    DELETED_BUT_PRESENT,
    ETAG_MISMATCH,
    MISSING_IN_S3,
    TYPE_MISMATCH,
    check_listing,
    check_path,
    check_tree,
    run_with_policy,
)
from emrfs.consistency.policy import FixedRetryPolicy, NoRetryPolicy
from emrfs.consistency.sink import CallbackSink, CounterSink, MultiSink
from emrfs.consistency.store import Entry, Listing
from emrfs.errors import ConsistencyError


def s3file(name, etag="e1", size=1):
    return {"name": name, "size": size, "type": "file", "ETag": f'"{etag}"'}


def s3dir(name):
    return {"name": name, "size": 0, "type": "directory"}


F = Entry.file("b/k", 1, '"e1"')
TOMB = Entry("b/k", deleted=True, etag="e1")


@pytest.mark.parametrize(
    "info, entry, kind",
    [
        (None, None, None),  # untracked and absent
        (s3file("b/k"), None, None),  # untracked: S3's word
        (s3file("b/k"), F, None),  # agree
        (None, F, MISSING_IN_S3),  # written, not yet visible
        (s3file("b/k", "old"), F, ETAG_MISMATCH),  # stale read after overwrite
        (s3file("b/k"), TOMB, DELETED_BUT_PRESENT),  # deleted, still visible
        (None, TOMB, None),  # deleted and gone
        (s3dir("b/k"), F, TYPE_MISMATCH),
        (None, Entry.directory("b/k"), None),  # directories are the metadata's word
    ],
)
def test_check_path_cases(info, entry, kind):
    verdict = check_path("s3://b/k", info, entry)
    assert [p.kind for p in verdict.problems] == ([kind] if kind else [])
    assert verdict.status == ("retry" if kind else "consistent")
    assert verdict.s3_view is info


def test_etag_verification_off_ignores_mismatch_and_view_of_metadata_dir():
    assert check_path("b/k", s3file("b/k", "x"), F, etag_verification=False).consistent
    view = check_path("b/k", None, Entry.directory("b/k")).view
    assert view["type"] == "directory" and view["name"] == "b/k"


def test_check_listing_finds_missing_and_lingering_and_merges_dirs():
    listing = Listing(
        "b/d",
        Entry.directory("b/d"),
        (
            Entry.file("b/d/new", 1, "n"),  # written, LIST lacks it
            Entry("b/d/gone", deleted=True),  # deleted, LIST still has it
            Entry.directory("b/d/empty"),  # known only to metadata
            Entry.file("b/d/same", 1, "s"),
        ),
    )
    shown = [s3file("b/d/gone"), s3file("b/d/same", "s"), s3file("b/d/oob")]
    verdict = check_listing("b/d", shown, listing)
    assert sorted((p.path, p.kind) for p in verdict.problems) == [
        ("b/d/gone", DELETED_BUT_PRESENT),
        ("b/d/new", MISSING_IN_S3),
    ]
    assert [i["name"] for i in verdict.s3_view] == ["b/d/gone", "b/d/oob", "b/d/same"]
    ok = check_listing("b/d", [s3file("b/d/new", "n"), s3file("b/d/same", "s")], listing)
    assert ok.consistent
    assert [i["name"] for i in ok.view] == ["b/d/empty", "b/d/new", "b/d/same"]


names = st.sampled_from(["a", "b", "c", "d"])


@given(
    st.dictionaries(names, st.sampled_from(["e1", "e2"])),
    st.dictionaries(names, st.sampled_from(["e1", "e2", "deleted"])),
)
def test_listing_is_consistent_iff_each_path_is(shown, rows):
    """A listing verdict is the per-path verdicts put together."""
    infos = [s3file(f"b/d/{n}", e) for n, e in shown.items()]
    children = tuple(
        Entry(f"b/d/{n}", deleted=True) if e == "deleted" else Entry.file(f"b/d/{n}", 1, e)
        for n, e in rows.items()
    )
    verdict = check_listing("b/d", infos, Listing("b/d", Entry.directory("b/d"), children))
    per_path = [
        check_path(c.path, next((i for i in infos if i["name"] == c.path), None), c)
        for c in children
    ]
    assert sorted(p.path for p in verdict.problems) == sorted(
        p.path for v in per_path for p in v.problems
    )
    if verdict.consistent:
        assert {i["name"] for i in verdict.view} == {i["name"] for i in infos}


class Probe:
    """Disagrees ``bad`` times, then agrees."""

    def __init__(self, bad: int):
        self.bad = bad
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        entry = F
        info = None if self.calls <= self.bad else s3file("b/k")
        return check_path("b/k", info, entry)


def run(coro):
    return asyncio.run(coro)


def test_run_with_policy_recovers_and_reports_recovery():
    slept, sink = [], CounterSink()

    async def sleep(d):
        slept.append(d)

    probe = Probe(bad=2)
    view = run(
        run_with_policy(
            probe, FixedRetryPolicy(5, 0.5), operation="info", path="b/k", sink=sink, sleep=sleep
        )
    )
    assert view["name"] == "b/k" and probe.calls == 3 and slept == [0.5, 0.5]
    assert sink.snapshot() == {
        "events": 1,
        "events.recovered": 1,
        "operation.info": 1,
        "retries": 2,
        "problem.missing_in_s3": 1,
    }


def test_run_with_policy_raises_naming_paths_after_retries():
    events = []

    async def sleep(d):
        pass

    ticks = iter(range(0, 1000, 3)).__next__
    with pytest.raises(ConsistencyError) as info:
        run(
            run_with_policy(
                Probe(bad=99),
                FixedRetryPolicy(3, 1),
                operation="open",
                path="b/k",
                sink=MultiSink(CallbackSink(events.append)),
                sleep=sleep,
                clock=ticks,
            )
        )
    err = info.value
    assert err.paths == ("b/k",) and err.reason == MISSING_IN_S3
    assert "after 3 retries" in str(err) and "emrfs sync s3://b/k" in str(err)
    assert [e.outcome for e in events] == ["raised"] and events[0].retries == 3


def test_run_with_policy_without_throw_logs_and_returns_s3_view(caplog):
    probe = Probe(bad=99)
    with caplog.at_level(logging.WARNING, logger="emrfs.consistency"):
        view = run(
            run_with_policy(probe, NoRetryPolicy(), operation="info", path="b/k", throw=False)
        )
    assert view is None and probe.calls == 1
    assert "returning what S3 shows" in caplog.text and "b/k" in caplog.text


def test_callback_sink_swallows_errors():
    def boom(event):
        raise RuntimeError("sink down")

    run(
        run_with_policy(
            Probe(bad=1),
            FixedRetryPolicy(1, 0),
            operation="ls",
            path="b/k",
            sink=CallbackSink(boom),
        )
    )


def test_check_tree_waits_for_files_and_drops_nothing_it_should_keep():
    from emrfs.consistency.checker import check_tree

    shown = {
        "b/t/x/old": {"name": "b/t/x/old", "type": "file", "size": 1},
        "b/t/gone": {"name": "b/t/gone", "type": "file", "size": 1},
    }
    rows = [
        Entry.file("b/t/x/new", 3, "e1"),
        Entry.file("b/t/x/old", 1),
        Entry("b/t/gone", deleted=True),
        Entry.directory("b/t/empty"),
        Entry("b/t/x", is_dir=True, deleted=True),
    ]
    verdict = check_tree("b/t", shown, rows)
    assert [(p.path, p.kind) for p in verdict.problems] == [
        ("b/t/gone", "deleted_but_present"),
        ("b/t/x/new", "missing_in_s3"),
    ]
    assert check_tree("b/t", shown, rows[1:2]).consistent
    assert "b/t/empty" in check_tree("b/t", shown, rows[1:4], with_dirs=True).view
    assert "b/t/empty" not in check_tree("b/t", shown, rows[1:4]).view


def test_check_tree_leaves_out_a_deleted_directory_s3_still_lists():
    shown = {
        "b/d/gone": {"name": "b/d/gone", "type": "directory", "size": 0},
        "b/d/back": {"name": "b/d/back", "type": "directory", "size": 0},
        "b/d/back/f": {"name": "b/d/back/f", "type": "file", "size": 1},
    }
    rows = [
        Entry("b/d/gone", is_dir=True, deleted=True),
        Entry("b/d/back", is_dir=True, deleted=True),
    ]  # a file S3 lists is below it
    verdict = check_tree("b/d", shown, rows, with_dirs=True)
    assert verdict.consistent
    assert sorted(verdict.view) == ["b/d/back", "b/d/back/f"]

"""ConsistentView over the in-memory store, with S3 answers scripted per look."""

from __future__ import annotations

import asyncio

import pytest

from emrfs import config
from emrfs.consistency.policy import FixedRetryPolicy
from emrfs.consistency.sink import CounterSink
from emrfs.consistency.store import Entry, InMemoryMetadataStore
from emrfs.consistency.view import ConsistentView
from emrfs.errors import ConsistencyError


async def no_sleep(delay):
    pass


def make_view(**kwargs):
    sink = CounterSink()
    view = ConsistentView(
        InMemoryMetadataStore(), FixedRetryPolicy(3, 1.0), sink=sink, sleep=no_sleep, **kwargs
    )
    return view, sink


def scripted(*answers):
    """A probe returning each answer in turn, then the last one forever."""
    calls = []

    async def probe():
        calls.append(1)
        return answers[min(len(calls), len(answers)) - 1]

    probe.calls = calls
    return probe


def f(name, etag="e", size=1):
    return {"name": name, "size": size, "type": "file", "ETag": f'"{etag}"'}


def test_info_waits_for_a_fresh_write_to_show():
    view, sink = make_view()
    asyncio.run(view.record_file("b/k", 1, '"e"'))
    probe = scripted(None, None, f("b/k"))
    assert asyncio.run(view.info("b/k", probe))["name"] == "b/k"
    assert len(probe.calls) == 3 and sink.snapshot()["events.recovered"] == 1


def test_info_raises_after_retries_on_stale_overwrite():
    view, sink = make_view()
    asyncio.run(view.record_file("b/k", 1, "new"))
    with pytest.raises(ConsistencyError, match="ETag"):
        asyncio.run(view.info("b/k", scripted(f("b/k", "old"))))
    assert sink.snapshot()["problem.etag_mismatch"] == 1


def test_info_of_a_deleted_path_is_none_once_s3_agrees():
    view, _ = make_view()
    asyncio.run(view.record_file("b/k", 1, "e"))
    asyncio.run(view.record_delete("b/k"))
    assert asyncio.run(view.info("b/k", scripted(f("b/k"), None))) is None


def test_ls_merges_checks_then_lists_fast_from_the_table():
    view, _ = make_view()
    asyncio.run(view.record_files([Entry.file("b/d/a", 1, "e")]))
    asyncio.run(view.record_directory("b/d/empty"))
    probe = scripted([], [f("b/d/a"), f("b/d/oob")])
    got = asyncio.run(view.ls("b/d", probe))
    assert [i["name"] for i in got] == ["b/d/a", "b/d/empty", "b/d/oob"]
    assert len(probe.calls) == 2
    assert view.store.get("b/d/oob").live and view.store.get("b/d").authoritative
    never = scripted()
    fast = asyncio.run(view.ls("b/d", never))
    assert [i["name"] for i in fast] == ["b/d/a", "b/d/empty", "b/d/oob"] and not never.calls


def test_ls_without_fast_list_and_without_throw_returns_s3_view():
    view, sink = make_view(fast_list=False, throw=False)
    asyncio.run(view.record_files([Entry.file("b/d/a", 1, "e"), Entry.file("b/d/z", 1)]))
    asyncio.run(view.record_delete("b/d/z"))
    got = asyncio.run(view.ls("b/d", scripted([f("b/d/z")])))
    assert [i["name"] for i in got] == ["b/d/z"]
    assert sink.snapshot()["events.ignored"] == 1
    assert not view.store.get("b/d").authoritative


def test_copy_then_delete_tree_is_a_rename():
    view, _ = make_view()
    asyncio.run(view.record_files([Entry.file("b/s/x", 1, "e1")]))
    asyncio.run(view.record_copy("b/s", "b/t", {"b/t/x": Entry.file("b/t/x", 1, "e2")}))
    asyncio.run(view.record_delete_tree("b/s", ["b/s/x", "b/s/untracked"]))
    assert view.store.get("b/t/x").etag == "e2" and view.store.get("b/s/x").deleted
    assert view.store.get("b/s/untracked").deleted and view.store.get("b/s").deleted


def test_from_options_takes_the_consistency_section():
    opts = config.load(
        {
            "consistent": True,
            "fs.s3.consistent.retryPolicyType": "none",
            "fs.s3.consistent.throwExceptionOnInconsistency": "false",
            "fs.s3.consistent.fastList": "false",
        }
    )
    view = ConsistentView.from_options(opts, store=InMemoryMetadataStore())
    assert (view.throw, view.fast_list, view.policy.delay(0)) == (False, False, None)


class CountingStore(InMemoryMetadataStore):
    def __init__(self, fail: bool = False):
        super().__init__()
        self.batches: list[int] = []
        self.fail = fail

    def put_many(self, entries, **kwargs):
        entries = list(entries)
        self.batches.append(len(entries))
        if self.fail:
            raise OSError("table unavailable")
        super().put_many(entries, **kwargs)


def test_concurrent_records_are_coalesced_into_few_batches():
    store = CountingStore()
    view = ConsistentView(store, FixedRetryPolicy(0, 0))

    async def main():
        await asyncio.gather(*(view.record_file(f"b/d/f{i}", i, "e") for i in range(50)))

    asyncio.run(main())
    assert sum(store.batches) == 50 and len(store.batches) <= 3
    assert len(store.list_children("b/d").live) == 50


def test_a_failed_batch_fails_every_writer_in_it():
    view = ConsistentView(CountingStore(fail=True), FixedRetryPolicy(0, 0))

    async def main():
        return await asyncio.gather(
            *(view.record_file(f"b/f{i}", 1) for i in range(5)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert all(isinstance(r, OSError) for r in results)


def test_sequential_records_each_wait_for_their_row():
    view = ConsistentView(InMemoryMetadataStore(), FixedRetryPolicy(0, 0))

    async def main():
        for i in range(3):
            await view.record_file(f"b/s{i}", i)
            assert view.store.get(f"b/s{i}").size == i

    asyncio.run(main())


def changing_get(*outcomes):
    """A pinned GET: each outcome in turn is an ETag S3 serves instead (ChangedError)
    or a response to return."""
    from emrfs.s3.client import ChangedError

    calls = []

    async def get():
        calls.append(1)
        outcome = outcomes[min(len(calls), len(outcomes)) - 1]
        if isinstance(outcome, str):
            raise ChangedError("b/k", '"new"', f'"{outcome}"')
        return outcome

    get.calls = calls
    return get


def test_read_waits_out_a_stale_copy_of_the_recorded_version():
    view, sink = make_view()
    asyncio.run(view.record_file("b/k", 1, '"new"'))
    get = changing_get("old", "old", {"Body": "fresh"})
    assert asyncio.run(view.read("b/k", '"new"', get)) == {"Body": "fresh"}
    assert len(get.calls) == 3 and sink.snapshot()["events.recovered"] == 1


def test_read_gives_up_by_the_policy():
    from emrfs.s3.client import ChangedError

    view, _sink = make_view()
    asyncio.run(view.record_file("b/k", 1, '"new"'))
    with pytest.raises(ConsistencyError, match="stale read"):
        asyncio.run(view.read("b/k", '"new"', changing_get("old")))
    lenient, _ = make_view(throw=False)
    asyncio.run(lenient.record_file("b/k", 1, '"new"'))
    with pytest.raises(ChangedError):  # a range: the pin stays
        asyncio.run(lenient.read("b/k", '"new"', changing_get("old")))

    async def whole():
        return {"Body": "what S3 serves"}

    assert asyncio.run(lenient.read("b/k", '"new"', changing_get("old"), whole)) == {
        "Body": "what S3 serves"
    }


def test_read_of_a_version_the_table_no_longer_records_fails_at_once():
    from emrfs.s3.client import ChangedError

    view, sink = make_view()
    asyncio.run(view.record_file("b/k", 1, '"newer"'))  # overwritten since the read began
    get = changing_get("newer")
    with pytest.raises(ChangedError):
        asyncio.run(view.read("b/k", '"new"', get))
    assert len(get.calls) == 1 and not sink.snapshot().get("events.raised")

"""The merged tree a directory operation acts on, and the tombstones it leaves."""

from __future__ import annotations

from emrfs.consistency.checker import merge_tree
from emrfs.consistency.store import Entry, InMemoryMetadataStore


def test_merge_tree_waits_for_unlisted_files_and_never_offers_deleted_ones():
    shown = {
        "b/t/listed": {"name": "b/t/listed", "type": "file", "size": 1},
        "b/t/gone": {"name": "b/t/gone", "type": "file", "size": 1},
    }
    rows = [
        Entry.file("b/t/listed", 1),
        Entry.file("b/t/hidden", 2),
        Entry("b/t/gone", deleted=True),
        Entry.directory("b/t/sub"),
        Entry.directory("b/t/empty"),
        Entry.file("b/t/sub/x", 3),
    ]
    verdict = merge_tree("b/t", shown, rows)
    assert {p.path for p in verdict.problems} == {"b/t/hidden", "b/t/gone", "b/t/sub/x"}
    # proceeding anyway (throw=False): the table's live files, less its tombstones,
    # and only the directories nothing below stands for
    assert sorted(verdict.s3_view) == ["b/t/empty", "b/t/hidden", "b/t/listed", "b/t/sub/x"]
    assert verdict.s3_view["b/t/hidden"]["from_metadata"]
    assert not verdict.s3_view["b/t/listed"].get("from_metadata")


def test_delete_confirmed_tombstones_only_what_s3_deleted():
    store = InMemoryMetadataStore()
    store.put_many(
        [
            Entry.file("b/t/a/f", 1),
            Entry.file("b/t/a/g", 1),
            Entry.file("b/t/c/h", 1),
            Entry.directory("b/t/empty"),
        ]
    )
    store.delete_confirmed("b/t", ["b/t/a/f", "b/t/c/h", "b/t/empty"])
    live = {e.path for e in store.scan("b") if e.live}
    assert live == {"b", "b/t", "b/t/a", "b/t/a/g"}  # g was not deleted: it and its parents stay
    assert store.get("b/t/c").deleted and store.get("b/t/empty").deleted
    store.delete_confirmed("b/t", ["b/t/a/g"])
    assert {e.path for e in store.scan("b") if e.live} == {"b"}

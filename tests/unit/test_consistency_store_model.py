"""A stateful property test of the store: random mutations against a plain model.

After any sequence of record / mkdir / delete / delete-tree / rename, the
store answers like the model (live paths, tombstones for what was deleted)
and fsck finds no broken invariant.  Runs on the in-memory store; the contract
suite shows the DynamoDB store behaves the same.
"""

from __future__ import annotations

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from emrfs import paths as P
from emrfs.consistency.store import Entry, InMemoryMetadataStore
from emrfs.consistency.sync import fsck

NAMES = st.sampled_from(["a", "b", "c"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map(lambda parts: "bk/" + "/".join(parts))


class StoreMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.store = InMemoryMetadataStore()
        self.files: dict[str, int] = {}
        self.dirs: set[str] = set()

    def _blocked(self, path: str) -> bool:
        """A file may not sit above ``path``, nor ``path`` be a directory/file of the other kind."""
        return any(a in self.files for a in P.ancestors(path))

    def _add_parents(self, path: str) -> None:
        self.dirs.update(P.ancestors(path))

    @rule(path=PATHS, size=st.integers(0, 9))
    def write(self, path, size):
        if self._blocked(path) or path in self.dirs:
            return
        self.store.record_file(path, size, f"e{size}")
        self.files[path] = size
        self._add_parents(path)

    @rule(path=PATHS)
    def mkdir(self, path):
        if self._blocked(path) or path in self.files:
            return
        self.store.record_directory(path)
        self.dirs.add(path)
        self._add_parents(path)

    @rule(path=PATHS)
    def delete_tree(self, path):
        self.store.delete_subtree(path)
        self.files = {p: s for p, s in self.files.items() if not P.is_within(p, path)}
        self.dirs = {d for d in self.dirs if not P.is_within(d, path)}

    @rule(src=PATHS, dst=PATHS)
    def rename(self, src, dst):
        live = src in self.files or src in self.dirs
        if (
            not live
            or P.is_within(dst, src)
            or P.is_within(src, dst)
            or self._blocked(dst)
            or dst in self.files
            or dst in self.dirs
        ):
            return
        self.store.rename(src, dst)
        moved_files = {
            P.join(dst, P.relative_to(p, src)) if p != src else dst: s
            for p, s in self.files.items()
            if P.is_within(p, src)
        }
        moved_dirs = {
            P.join(dst, P.relative_to(d, src)) if d != src else dst
            for d in self.dirs
            if P.is_within(d, src)
        }
        self.files = {p: s for p, s in self.files.items() if not P.is_within(p, src)}
        self.dirs = {d for d in self.dirs if not P.is_within(d, src)}
        self.files.update(moved_files)
        self.dirs |= moved_dirs
        self._add_parents(dst)

    @invariant()
    def store_matches_model(self):
        live = {e.path: e for e in self.store.scan("bk") if e.live}
        assert {p: e.size for p, e in live.items() if not e.is_dir} == self.files
        assert {p for p, e in live.items() if e.is_dir} == self.dirs | ({"bk"} if live else set())

    @invariant()
    def table_invariants_hold(self):
        assert fsck(self.store, "bk").problems == []

    @invariant()
    def listings_agree_with_get(self):
        for directory in list(self.dirs)[:3]:
            for child in self.store.list_children(directory).children:
                assert self.store.get(child.path) == child


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


def test_entry_info_round_trips_through_sync():
    from emrfs.consistency.sync import entry_from_info

    entry = Entry.file("bk/x", 3, '"e"', "v", 1500)
    assert entry_from_info("bk/x", entry.info()) == entry

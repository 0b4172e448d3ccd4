"""``emrfs.namespace.tree.delete_all``: deletes through each path's stack, over memory.

Paths under several stacks are deleted each by its own (a CSE prefix's instruction
files go with their objects, a plain prefix's look-alike stays; the consistent
layer tombstones what the store confirmed), and a refused batch does not stop the
others: every confirmed path is reported before anything is raised.
"""

from __future__ import annotations

import asyncio
import base64

import pytest

from emrfs.config import load
from emrfs.consistency import ConsistentView, InMemoryMetadataStore, create_retry_policy
from emrfs.errors import EmrfsError
from emrfs.namespace import tree
from emrfs.stacks import Stacks
from emrfs.store import DeleteFailure, DeleteResult, MemoryStore

CSE = {
    "enabled": True,
    "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
    "aes_key": base64.b64encode(bytes(range(32))).decode(),
    "storage_mode": "InstructionFile",
}


class RefusingMemory(MemoryStore):
    """Refuses (per key, as S3's DeleteObjects does) every path in ``refused``."""

    def __init__(self, refused: set[str]):
        super().__init__()
        self.refused = refused

    async def delete(self, paths):
        asked = list(paths)
        done = await super().delete([p for p in asked if p not in self.refused])
        refusals = [DeleteFailure(p, "SlowDown", "refused") for p in asked if p in self.refused]
        return DeleteResult(done.deleted, [*done.errors, *refusals])


def held(memory: MemoryStore) -> list[str]:
    """Every path the memory store holds (the side channel: below every layer)."""

    async def listed() -> list[str]:
        return [o.path async for page in memory.list("b/") for o in page.objects]

    return sorted(asyncio.run(listed()))


def make(memory: MemoryStore, table: InMemoryMetadataStore) -> Stacks:
    options = load(
        {"consistency": {"enabled": True}, "overrides": {"b/sec": {"cse": CSE}}}, environ={}
    )
    view = ConsistentView(table, create_retry_policy("fixed", 1, 0.001))
    return Stacks(options, transport=lambda o: memory, view=lambda o: view)


def test_each_path_goes_through_its_own_stack():
    memory, table = MemoryStore(), InMemoryMetadataStore()
    stacks = make(memory, table)

    async def run() -> DeleteResult:
        await stacks.for_path("b/sec/x").put("b/sec/x", b"secret")  # object + instruction
        await stacks.for_path("b/plain/y").put("b/plain/y", b"plain")
        await memory.put("b/plain/y.instruction", b"a file of that name")
        return await tree.delete_all(stacks, ["b/sec/x", "b/plain/y"], concurrency=2)

    done = asyncio.run(run())
    assert sorted(done.deleted) == ["b/plain/y", "b/sec/x"] and not done.errors
    assert held(memory) == ["b/plain/y.instruction"]  # only the look-alike stays
    assert table.get("b/sec/x").deleted and table.get("b/plain/y").deleted


def test_a_refused_batch_does_not_stop_the_others(monkeypatch):
    monkeypatch.setattr(tree, "DELETE_BATCH", 2)
    memory, table = RefusingMemory({"b/t/c"}), InMemoryMetadataStore()
    stacks = make(memory, table)
    names = [f"b/t/{n}" for n in "abcdef"]

    async def run() -> DeleteResult:
        for name in names:
            await stacks.for_path(name).put(name, name.encode())
        return await tree.delete_all(stacks, names, concurrency=1)

    done = asyncio.run(run())
    assert sorted(done.deleted) == [n for n in names if n != "b/t/c"]
    assert [e.path for e in done.errors] == ["b/t/c"]
    assert held(memory) == ["b/t/c"]
    assert not table.get("b/t/c").deleted  # still in the store: its row stays live
    assert all(table.get(n).deleted for n in names if n != "b/t/c")
    with pytest.raises(EmrfsError, match="refused to delete 1 of 6 objects under 'b/t'"):
        done.raise_errors("b/t")

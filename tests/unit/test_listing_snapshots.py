"""The gateway's LISTSTATUS_BATCH snapshots: kept for their time, at most ``limit`` of them
(pure; a fake clock)."""

from __future__ import annotations

from emrfs.gateway.context import ListingSnapshots


def test_kept_until_the_ttl_then_listed_again():
    now = [100.0]
    kept = ListingSnapshots(ttl=60.0, limit=8, clock=lambda: now[0])
    kept.put(("b/d", "alice"), ["entries"])
    now[0] += 59.0
    assert kept.get(("b/d", "alice")) == ["entries"]
    assert kept.get(("b/d", "bob")) is None  # per user: owners differ in the statuses
    now[0] += 2.0
    assert kept.get(("b/d", "alice")) is None


def test_the_oldest_directories_go_first_past_the_limit():
    kept = ListingSnapshots(ttl=60.0, limit=2, clock=lambda: 0.0)
    kept.put(("a", None), 1)
    kept.put(("b", None), 2)
    kept.put(("a", None), 3)  # used again: now the newest
    kept.put(("c", None), 4)
    assert kept.get(("b", None)) is None
    assert (kept.get(("a", None)), kept.get(("c", None))) == (3, 4)

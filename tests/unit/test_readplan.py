"""emrfs.readplan's memories: statuses expire and are forgotten by path and subtree; tails
serve only the version (ETag) and the bytes they hold, and only while fresh."""

from __future__ import annotations

from emrfs.readplan import KnownStatuses, Tails


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def file_info(name: str, size: int = 10, etag: str | None = '"e1"') -> dict:
    return {"name": name, "type": "file", "size": size, "ETag": etag}


def test_statuses_expire_and_keep_only_files_with_an_etag():
    clock = Clock()
    known = KnownStatuses(seconds=5, clock=clock)
    known.remember(file_info("b/f"))
    known.remember(file_info("b/no-etag", etag=None))
    known.remember({"name": "b/d", "type": "directory", "size": 0})
    assert known.get("b/f")["size"] == 10
    assert known.get("b/no-etag") is None and known.get("b/d") is None
    clock.now += 5.5
    assert known.get("b/f") is None


def test_statuses_are_forgotten_by_path_and_below_a_directory():
    known = KnownStatuses()
    for name in ("b/d/x", "b/d/sub/y", "b/dx", "b/e"):
        known.remember(file_info(name))
    known.forget("b/e")
    known.forget_below("b/d")
    assert [n for n in ("b/d/x", "b/d/sub/y", "b/dx", "b/e") if known.get(n)] == ["b/dx"]


def test_statuses_are_bounded():
    known = KnownStatuses(entries=3)
    for i in range(5):
        known.remember(file_info(f"b/{i}"))
    assert [i for i in range(5) if known.get(f"b/{i}")] == [2, 3, 4]


def test_tails_serve_only_their_version_and_range_while_fresh():
    clock = Clock()
    tails = Tails(seconds=3, clock=clock)
    tails.put("b/f", '"e1"', 100, bytes(range(50)))
    assert tails.read("b/f", '"e1"', 110, 120) == bytes(range(10, 20))
    assert tails.read("b/f", '"e2"', 110, 120) is None  # another version
    assert tails.read("b/f", None, 110, 120) is None
    assert tails.read("b/f", '"e1"', 99, 120) is None  # starts before the tail
    assert tails.read("b/f", '"e1"', 140, 151) is None  # runs past what it holds
    clock.now += 3.5
    assert tails.read("b/f", '"e1"', 110, 120) is None

"""The adaptive read-ahead window: sequential scans grow it, seeks shrink it."""

from emrfs.files import AdaptiveReadahead

MiB = 1024 * 1024


class Source:
    def __init__(self, size):
        self.data = bytes(range(256)) * (size // 256)
        self.calls = []

    def __call__(self, start, end):
        self.calls.append((start, end))
        return self.data[start:end]


def test_sequential_scan_from_zero_reads_ahead_a_block():
    src = Source(256 * MiB)
    cache = AdaptiveReadahead(64 * MiB, src, len(src.data))
    for offset in range(0, 256 * MiB, MiB):
        assert cache._fetch(offset, offset + MiB) == src.data[offset : offset + MiB]
    assert len(src.calls) <= 256 // 64 + 1


def test_footer_then_column_chunks_fetch_exactly_what_is_asked():
    src = Source(64 * MiB)
    size = len(src.data)
    cache = AdaptiveReadahead(32 * MiB, src, size)
    cache._fetch(size - 8, size)
    cache._fetch(size - 70_000, size - 8)
    cache._fetch(10 * MiB, 11 * MiB)
    cache._fetch(40 * MiB, 42 * MiB)
    fetched = sum(e - s for s, e in src.calls)
    assert fetched <= 8 + 70_000 + 3 * MiB


def test_random_reads_that_turn_sequential_grow_again():
    src = Source(64 * MiB)
    cache = AdaptiveReadahead(16 * MiB, src, len(src.data))
    cache._fetch(5 * MiB, 5 * MiB + 10)
    for i in range(20):
        start = 5 * MiB + 10 + i * 100_000
        assert cache._fetch(start, start + 100_000) == src.data[start : start + 100_000]
    assert len(src.calls) < 8


def test_reads_past_the_end_are_clipped():
    src = Source(MiB)
    cache = AdaptiveReadahead(MiB, src, len(src.data))
    assert cache._fetch(MiB - 10, MiB + 100) == src.data[-10:]
    assert cache._fetch(MiB + 5, MiB + 10) == b""

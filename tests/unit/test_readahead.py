"""The adaptive read-ahead window: sequential scans grow it, seeks shrink it."""

import itertools

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


class Prefetcher:
    """Background fetches of ``src`` as futures, each recorded with how far the reader had
    read when it was asked (the futures complete when the test says so)."""

    def __init__(self, src):
        self.src = src
        self.asked = []  # (start, end, reader position)
        self.futures = []
        self.position = 0

    def __call__(self, start, end):
        import concurrent.futures

        self.asked.append((start, end, self.position))
        future = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        future.set_result(self.src.data[start:end])
        self.futures.append(future)
        return future


def _scan(cache, src, prefetcher, read_size):
    out = bytearray()
    while len(out) < len(src.data):
        prefetcher.position = len(out)
        chunk = cache._fetch(len(out), len(out) + read_size)
        assert chunk
        out += chunk
    return bytes(out)


def test_sequential_scan_fetches_the_next_block_ahead_in_pieces_and_no_further():
    """A scan from 0 reads its block in pieces while the next ones are on their way:
    every piece after the first is asked before the reader reaches it, never more than
    one block ahead of what it has read, and every byte is fetched once."""
    src = Source(32 * MiB)
    prefetcher = Prefetcher(src)
    cache = AdaptiveReadahead(8 * MiB, src, len(src.data), prefetch=prefetcher)
    assert _scan(cache, src, prefetcher, 3 * MiB) == src.data
    asked = [(s, e) for s, e, _ in prefetcher.asked]
    assert len(asked) >= 32 // 2 - 1  # 2 MiB pieces (a quarter of the block) ahead
    assert all(e - s <= 2 * MiB for s, e in asked)
    for start, end, position in prefetcher.asked:
        assert start >= position  # ahead of the reader...
        # ...by one block beyond its window (one piece, and what a read across the
        # piece's end kept of the one before) at most
        assert end - position <= 8 * MiB + 2 * MiB + 3 * MiB
    fetched = sorted(src.calls + asked)
    assert sum(e - s for s, e in fetched) == len(src.data)  # each byte once
    assert all(a[1] == b[0] for a, b in itertools.pairwise(fetched))


def test_a_seek_drops_the_pieces_ahead_and_reads_exactly():
    src = Source(64 * MiB)
    prefetcher = Prefetcher(src)
    cache = AdaptiveReadahead(16 * MiB, src, len(src.data), prefetch=prefetcher)
    cache._fetch(0, MiB)
    assert cache.ahead  # the scan's next pieces are on their way
    ahead = list(prefetcher.futures)
    src.calls.clear()
    assert cache._fetch(50 * MiB, 50 * MiB + 10) == src.data[50 * MiB : 50 * MiB + 10]
    assert not cache.ahead and all(f.cancelled() or f.done() for f in ahead)
    assert src.calls == [(50 * MiB, 50 * MiB + 10)]


def test_close_cancels_the_pieces_ahead():
    import concurrent.futures

    src = Source(16 * MiB)
    pending = []

    def never(start, end):
        future = concurrent.futures.Future()
        pending.append(future)
        return future

    cache = AdaptiveReadahead(8 * MiB, src, len(src.data), prefetch=never)
    cache._fetch(0, MiB)
    assert pending
    cache.close()
    assert all(f.cancelled() for f in pending) and not cache.ahead


def test_a_failed_piece_ahead_is_read_in_the_foreground():
    import concurrent.futures

    src = Source(16 * MiB)

    def failing(start, end):
        future = concurrent.futures.Future()
        future.set_exception(ConnectionResetError("reset"))
        return future

    cache = AdaptiveReadahead(8 * MiB, src, len(src.data), prefetch=failing)
    out = b"".join(cache._fetch(o, o + MiB) for o in range(0, 16 * MiB, MiB))
    assert out == src.data


def test_a_changed_object_met_ahead_is_the_readers_error():
    import concurrent.futures

    import pytest

    from emrfs.errors import ChangedError

    src = Source(16 * MiB)

    def changed(start, end):
        future = concurrent.futures.Future()
        future.set_exception(ChangedError("b/k", '"a"', '"b"'))
        return future

    cache = AdaptiveReadahead(8 * MiB, src, len(src.data), prefetch=changed)
    cache._fetch(0, 2 * MiB)
    with pytest.raises(ChangedError):
        cache._fetch(2 * MiB, 4 * MiB)

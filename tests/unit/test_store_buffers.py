"""A large GET's buffer (emrfs.store.buffers.FilledBytes) and the worker threads that
fill it (emrfs.store.obstore_drain): the bytes handed out are exactly what was written, and a
cancelled read returns only once its thread stopped writing."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import pytest

from emrfs.errors import ChangedError
from emrfs.store import buffers
from emrfs.store.buffers import FilledBytes
from emrfs.store.obstore_drain import Prefix, drain, in_worker


def test_filled_bytes_are_the_bytes_written_at_their_offsets():
    size = 3 * 1024 * 1024 + 5
    out = FilledBytes(size)
    pieces = [(2 * 1024 * 1024, b"c" * (1024 * 1024 + 5)), (0, b"a" * 1024 * 1024)]
    pieces.append((1024 * 1024, b"b" * 1024 * 1024))
    for offset, piece in pieces:  # out of order, as parallel parts arrive
        out.view[offset : offset + len(piece)] = piece
    value = out.value()
    assert type(value) is bytes and len(value) == size
    assert value == b"a" * 2**20 + b"b" * 2**20 + b"c" * (2**20 + 5)
    assert hash(value) == hash(bytes(value))  # an ordinary bytes object from here on
    assert FilledBytes(0).value() == b""


def test_a_view_of_a_filled_buffer_keeps_its_bytes_alive():
    """A worker thread's slice of the buffer holds the bytes it writes into: a thread
    still writing after its reader gave up (and dropped the buffer) never writes into
    freed memory."""
    out = FilledBytes(4096)
    part = out.view[100:200]
    if out._data is not None:  # CPython's uninitialised bytes, written through ctypes
        assert part.obj.owner is out._data
    part.release()
    out.view.release()


def test_filled_bytes_skip_the_zero_fill_on_cpython():
    if sys.implementation.name == "cpython":
        assert buffers._make_uninitialised is not None
    out = FilledBytes(8)
    out.view[:] = b"12345678"
    assert out.value() == b"12345678"


def test_a_drained_body_longer_than_its_part_is_a_changed_object():
    view = memoryview(bytearray(4))
    progress = [0]
    longer = ChangedError("b/k", "e", None)
    with pytest.raises(ChangedError):
        drain(iter([b"12", b"345"]), [view], progress, longer, None, threading.Event())
    assert progress == [2] and bytes(view[:2]) == b"12"


def test_a_drained_body_lands_across_the_buffers_it_is_given_and_resumes_there():
    first, second, third = bytearray(3), bytearray(0), bytearray(6)
    views = [memoryview(first), memoryview(second), memoryview(third)]
    progress = [0]
    longer = ChangedError("b/k", "e", None)
    drain(iter([b"ab", b"cdef"]), views, progress, longer, None, threading.Event())
    assert progress == [6] and (first, third) == (b"abc", b"def\0\0\0")
    drain(iter([b"gh", b"i"]), views, progress, longer, None, threading.Event())  # a resumed body
    assert progress == [9] and third == b"defghi"
    with pytest.raises(ChangedError):
        drain(iter([b"j"]), views, progress, longer, None, threading.Event())


def test_a_cancelled_read_waits_for_its_worker_thread_to_stop_writing():
    release = threading.Event()
    written: list[int] = []

    def pieces():
        yield b"ab"
        release.wait(5)  # the next piece is slow to come
        yield b"cd"
        yield b"ef"

    buffer = bytearray(6)
    view = memoryview(buffer)
    progress = [0]

    async def run() -> bool:
        task = asyncio.ensure_future(
            in_worker(drain, pieces(), [view], progress, ChangedError("b/k", "e", None))
        )
        while progress[0] < 2:
            await asyncio.sleep(0.001)
        task.cancel()
        await asyncio.sleep(0.01)
        pending = not task.done()  # the thread is still in the stream: no return yet
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        written.append(progress[0])
        return pending

    assert asyncio.run(run())
    # it stopped after the piece it was waiting for, and nothing wrote after the return
    assert written == [4] and bytes(buffer) == b"abcd\0\0"


def test_a_drain_reports_its_progress_every_step_it_passes(monkeypatch):
    from emrfs.store import obstore_drain

    monkeypatch.setattr(obstore_drain, "REPORT_STEP", 4)
    view = memoryview(bytearray(12))
    progress, reports = [0], []
    pieces = [b"ab", b"cde", b"f", b"ghijkl"]
    drain(
        iter(pieces),
        [view],
        progress,
        ChangedError("b/k", "e", None),
        reports.append,
        threading.Event(),
    )
    assert reports == [5, 12] and bytes(view) == b"abcdefghijkl"


def test_a_worker_relays_its_reports_and_stops_when_the_listener_fails():
    """``landed`` hears each report on the event loop; once it raises, the thread is told
    to stop and waited for, and the read ends with that error."""
    release = threading.Event()
    heard: list[int] = []
    ended: list[object] = []

    def work(report, stop):
        report(2)
        release.wait(5)
        report(4)
        ended.append(stop.wait(5))  # told to stop
        time.sleep(0.05)
        ended.append("done")

    def landed(n: int) -> None:
        heard.append(n)
        release.set()
        if n >= 4:
            raise ValueError("the reader gives up")

    with pytest.raises(ValueError, match="gives up"):
        asyncio.run(in_worker(work, landed=landed))
    assert heard == [2, 4] and ended == [True, "done"]  # told to stop, and waited for


def test_a_target_is_told_only_of_the_prefix_in_place():
    """Parts land in any order; the target hears of the bytes in place from the start
    only, each growth once, the last time with the whole length."""
    told: list[int] = []
    prefix = Prefix([10, 10, 5], told.append)
    prefix.landed(1, 10)  # the second part first: nothing before it yet
    prefix.landed(2, 3)
    prefix.landed(0, 4)
    prefix.landed(0, 2)  # a late, smaller report changes nothing
    prefix.landed(0, 10)
    prefix.landed(2, 5)
    prefix.landed(2, 5)
    assert told == [4, 23, 25]

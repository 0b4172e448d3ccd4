"""One aiobotocore session per process and profile (a new one parses botocore's models again)."""

from __future__ import annotations

import multiprocessing

from emrfs.s3.client import _shared_session


def _child_session_id(queue) -> None:
    queue.put(id(_shared_session(None)))


def test_one_session_per_profile_and_a_new_one_after_fork():
    first = _shared_session(None)
    assert _shared_session(None) is first
    assert _shared_session("other") is not first
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_session_id, args=(queue,))
    child.start()
    child_id = queue.get(timeout=30)
    child.join(timeout=30)
    assert child_id != id(first)  # the child made its own (its pid keys it)

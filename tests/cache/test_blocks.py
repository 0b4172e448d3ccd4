import itertools

import pytest
from hypothesis import given, strategies as st

from emrfs.cache.blocks import (
    block_count,
    block_index,
    block_span,
    blocks_for,
    clip,
    coalesce,
    run_span,
)


def test_block_arithmetic_at_edges():
    assert block_count(0, 4) == 0
    assert block_count(8, 4) == 2
    assert block_count(9, 4) == 3
    assert block_index(7, 4) == 1
    assert block_span(2, 4, 9) == (8, 9)
    with pytest.raises(ValueError):
        block_span(3, 4, 9)
    assert list(blocks_for(3, 2, 4, 9)) == [0, 1]
    assert list(blocks_for(9, 5, 4, 9)) == []
    assert list(blocks_for(5, -1, 4, 9)) == [1, 2]
    assert clip(5, 100, 9) == (5, 9)
    with pytest.raises(ValueError):
        block_index(-1, 4)
    with pytest.raises(ValueError):
        block_count(10, 0)


def test_coalesce_joins_adjacent_and_caps_runs():
    assert coalesce([5, 1, 2, 3, 7, 2]) == [(1, 3), (5, 5), (7, 7)]
    assert coalesce(range(10), max_run=4) == [(0, 3), (4, 7), (8, 9)]
    assert run_span((1, 2), 4, 9) == (4, 9)


@given(
    size=st.integers(0, 10_000),
    bs=st.integers(1, 700),
    offset=st.integers(0, 11_000),
    length=st.integers(-1, 3_000),
)
def test_blocks_cover_exactly_the_read(size, bs, offset, length):
    start, end = clip(offset, length, size)
    idx = blocks_for(offset, length, bs, size)
    if start == end:
        assert len(idx) == 0
        return
    spans = [block_span(i, bs, size) for i in idx]
    assert spans[0][0] <= start < spans[0][1]
    assert spans[-1][0] < end <= spans[-1][1]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))

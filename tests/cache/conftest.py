"""Fixtures for the cache tests."""

import pytest


@pytest.fixture
def dirs(tmp_path):
    return [str(tmp_path / "d0"), str(tmp_path / "d1")]

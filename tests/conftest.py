"""Shared fixtures; the servers come from emrfs.testing.pytest_plugin (entry point)."""

from __future__ import annotations

import pytest


@pytest.fixture
def fs(emrfs_endpoint):
    from emrfs import EmrFileSystem

    return EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)


@pytest.fixture
def bucket(emrfs_bucket):
    return emrfs_bucket


@pytest.fixture
def table(emrfs_table):
    return emrfs_table


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/integration/" in str(item.fspath) or "\\integration\\" in str(item.fspath):
            item.add_marker(pytest.mark.integration)

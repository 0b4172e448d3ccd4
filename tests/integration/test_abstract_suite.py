"""fsspec's own abstract test suite for implementations, against the embedded server."""

from __future__ import annotations

import uuid

import pytest
from fsspec.tests.abstract import AbstractFixtures
from fsspec.tests.abstract.copy import AbstractCopyTests
from fsspec.tests.abstract.get import AbstractGetTests
from fsspec.tests.abstract.open import AbstractOpenTests
from fsspec.tests.abstract.pipe import AbstractPipeTests
from fsspec.tests.abstract.put import AbstractPutTests


class EmrfsFixtures(AbstractFixtures):
    @pytest.fixture(scope="class")
    def fs(self, emrfs_endpoint):
        from emrfs import EmrFileSystem

        return EmrFileSystem(endpoint_url=emrfs_endpoint, skip_instance_cache=True)

    @pytest.fixture
    def fs_path(self, fs):
        bucket = f"emrfs-abstract-{uuid.uuid4().hex[:16]}"
        fs.mkdir(bucket)
        yield bucket
        fs.rm(bucket, recursive=True)

    @pytest.fixture
    def supports_empty_directories(self):
        return True


class TestEmrfsCopy(AbstractCopyTests, EmrfsFixtures):
    pass


class TestEmrfsGet(AbstractGetTests, EmrfsFixtures):
    pass


class TestEmrfsPut(AbstractPutTests, EmrfsFixtures):
    pass


class TestEmrfsPipe(AbstractPipeTests, EmrfsFixtures):
    pass


class TestEmrfsOpen(AbstractOpenTests, EmrfsFixtures):
    pass

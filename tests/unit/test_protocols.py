"""emrfs.protocols without touching fsspec's registry (the subprocess tests in
tests/integration/test_url_schemes.py do that)."""

from __future__ import annotations

import pytest

from emrfs import protocols
from emrfs.errors import ConfigurationError


def test_requested_schemes_from_the_environment():
    assert protocols.requested({}) == ()
    assert protocols.requested({"EMRFS_REGISTER_PROTOCOLS": " S3a , s3n://,s3a"}) == ("s3a", "s3n")
    assert protocols.requested({"EMRFS_REGISTER_PROTOCOLS": "all"}) == ("s3", "s3a", "s3n")
    with pytest.raises(ConfigurationError, match=r"EMRFS_REGISTER_PROTOCOLS names 'gs'"):
        protocols.requested({"EMRFS_REGISTER_PROTOCOLS": "s3,gs"})


def test_the_entry_point_names_resolve_per_the_environment(monkeypatch):
    import s3fs

    from emrfs.filesystem import EmrFileSystem

    monkeypatch.delenv("EMRFS_REGISTER_PROTOCOLS", raising=False)
    assert protocols.s3 is s3fs.S3FileSystem and protocols.s3a is s3fs.S3FileSystem
    monkeypatch.setenv("EMRFS_REGISTER_PROTOCOLS", "s3a")
    assert protocols.s3 is s3fs.S3FileSystem and protocols.s3a is EmrFileSystem
    with pytest.raises(AttributeError):
        protocols.gs  # noqa: B018


def test_register_refuses_unknown_schemes_before_touching_fsspec():
    with pytest.raises(ConfigurationError, match="'ftp'"):
        protocols.register(["s3", "ftp"])

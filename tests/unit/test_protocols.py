"""emrfs.protocols (the scheme rules) and emrfs's registration without touching fsspec's
registry (the subprocess tests in tests/integration/test_url_schemes.py do that)."""

from __future__ import annotations

import pytest

import emrfs
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
    assert emrfs.s3_filesystem is s3fs.S3FileSystem and emrfs.s3a_filesystem is s3fs.S3FileSystem
    monkeypatch.setenv("EMRFS_REGISTER_PROTOCOLS", "s3a")
    assert emrfs.s3_filesystem is s3fs.S3FileSystem and emrfs.s3a_filesystem is EmrFileSystem
    with pytest.raises(AttributeError):
        emrfs.gs_filesystem  # noqa: B018


def test_the_entry_points_name_attributes_that_exist():
    from pathlib import Path

    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    specs = tomllib.loads(pyproject.read_text())["project"]["entry-points"]["fsspec.specs"]
    for scheme in ("s3", "s3a"):
        module, _, name = specs[scheme].partition(":")
        assert module == "emrfs" and hasattr(emrfs, name), specs[scheme]


def test_register_refuses_unknown_schemes_before_touching_fsspec():
    with pytest.raises(ConfigurationError, match="'ftp'"):
        emrfs.register(["s3", "ftp"])

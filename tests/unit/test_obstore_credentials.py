"""Stores obstore signs with botocore's chain share one resolution per profile and
process: a store per bucket, in every filesystem, does not build a botocore session
(or, with an instance role, call the metadata service) of its own."""

from __future__ import annotations

import os

import pytest

from emrfs import config
from emrfs.store import obstore_native

pytest.importorskip("obstore")


def _store(bucket: str, **options):
    o = config.load({"endpoint_url": "http://127.0.0.1:9", **options}, environ={})
    return obstore_native.make_native_store(o.s3, o.sse, None, None, bucket)


def test_stores_of_one_profile_share_one_chain_and_resolve_it_once(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "chain-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "chain-secret")
    monkeypatch.setattr(obstore_native, "_providers", {})
    sessions = []
    import botocore.session

    real = botocore.session.Session

    def counted(*args, **kwargs):
        sessions.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(botocore.session, "Session", counted)
    a, b = _store("bucket-a"), _store("bucket-b")
    assert a.credential_provider is b.credential_provider
    assert [a.credential_provider()["access_key_id"] for _ in range(3)] == ["chain-key"] * 3
    assert b.credential_provider()["secret_access_key"] == "chain-secret"
    assert len(sessions) == 1
    other = _store("bucket-a", profile="elsewhere")
    assert other.credential_provider is not a.credential_provider


def test_static_keys_need_no_chain():
    store = _store("bucket-a", access_key_id="k", secret_access_key="s")
    assert store.credential_provider is None


def test_a_forked_child_resolves_its_own(monkeypatch):
    monkeypatch.setattr(obstore_native, "_providers", {})
    parent = obstore_native.chain_credentials(None)
    monkeypatch.setattr(os, "getpid", lambda: -1)
    assert obstore_native.chain_credentials(None) is not parent

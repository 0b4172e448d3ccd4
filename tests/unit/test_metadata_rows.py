"""Metadata rows converted to and from DynamoDB's attribute values directly give what
the pynamodb model gives (its serialize() and from_raw_data()), for every kind of row."""

from __future__ import annotations

import types

import pytest

from emrfs.consistency.dynamodb import DynamoDBMetadataStore
from emrfs.consistency.model import TableSpec, entry_of, item_of, make_metadata_model
from emrfs.consistency.store import Entry

ENTRIES = [
    Entry("bucket", is_dir=True, last_updated_ms=1_796_000_000_123),
    Entry("bucket/dir", is_dir=True, authoritative=True, last_updated_ms=5),
    Entry.file("bucket/dir/f", 1234, '"abc"', "v1", 1_796_000_000_000),
    Entry.file("bucket/dir/no etag", 0),
    Entry("bucket/dir/gone", deleted=True, ttl=1_796_086_400, last_updated_ms=9),
    Entry("bucket/_temporary/0/f", staged='{"upload_id": "u"}', size=7),
    Entry("bucket/d/ü ñ/空", size=2**40, mtime_ms=0, etag=""),
]


@pytest.fixture(scope="module")
def model():
    return make_metadata_model(
        TableSpec(
            "emrfs-rows-unit", host="http://127.0.0.1:9", access_key_id="k", secret_access_key="s"
        )
    )


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.path)
def test_a_row_is_written_as_the_model_writes_it(model, entry):
    store = types.SimpleNamespace(model=model)  # all _row needs of a store
    assert item_of(entry) == DynamoDBMetadataStore._row(store, entry).serialize()


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.path)
def test_a_row_reads_back_as_the_model_reads_it(model, entry):
    raw = item_of(entry)
    assert entry_of(raw) == DynamoDBMetadataStore._entry(model.from_raw_data(raw))
    assert entry_of(raw) == entry

"""The DynamoDB row layout of the consistent view, as a pynamodb Model factory.

One row per path, in the spirit of S3Guard's table::

    parent (HASH)   "bucket/dir"  the parent directory, bucket included
                    "/"           for a bucket's own row (the namespace root)
    child  (RANGE)  "name"        the last path segment

    is_dir, length, mod_time (ms), etag, version_id   what S3 holds
    is_deleted                                         a tombstone
    ttl              epoch seconds: DynamoDB's TTL removes tombstones after it
    is_authoritative (directories) every child of this directory is in the table
    last_updated     ms, when emrfs last wrote the row
    staged           rows under ``.emrfs-staged/`` only: a task's staged upload
                     (:mod:`emrfs.consistency.staged`)

and one version-marker row (``../VERSION``, ``../VERSION``) carrying
``table_version`` and ``table_created``, as S3Guard kept.

pynamodb keeps the table name on the class (``Meta``), so a model class is made
per (table, endpoint, region, credentials) and cached.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.models import Model

from .store import Entry

__all__ = [
    "ROOT_PARENT",
    "VERSION_KEY",
    "TABLE_VERSION",
    "HASH_KEY",
    "RANGE_KEY",
    "TTL_ATTRIBUTE",
    "TableSpec",
    "MetadataRow",
    "make_metadata_model",
    "row_key",
    "item_of",
    "entry_of",
]

#: hash key of the rows that stand for buckets (their parent is the root).
ROOT_PARENT = "/"
#: hash and range key of the version marker (no bucket may be called "..").
VERSION_KEY = "../VERSION"
#: bumped when the row layout changes incompatibly.
TABLE_VERSION = 1
HASH_KEY = "parent"
RANGE_KEY = "child"
TTL_ATTRIBUTE = "ttl"


class MetadataRow(Model):
    """Attributes of every metadata row; concrete classes come from :func:`make_metadata_model`."""

    parent = UnicodeAttribute(hash_key=True)
    child = UnicodeAttribute(range_key=True)
    is_dir = BooleanAttribute(default=False)
    length = NumberAttribute(null=True)
    mod_time = NumberAttribute(null=True)
    etag = UnicodeAttribute(null=True)
    version_id = UnicodeAttribute(null=True)
    is_deleted = BooleanAttribute(default=False)
    ttl = TTLAttribute(null=True)
    is_authoritative = BooleanAttribute(default=False)
    last_updated = NumberAttribute(null=True)
    table_version = NumberAttribute(null=True)
    table_created = NumberAttribute(null=True)
    staged = UnicodeAttribute(null=True)


@dataclass(frozen=True)
class TableSpec:
    """Where a metadata table lives and how to sign requests to it."""

    table_name: str
    host: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_pool_connections: int = 32


_models: dict[TableSpec, type[MetadataRow]] = {}
_models_lock = threading.Lock()


def _forget_models() -> None:
    """After fork: the parent's models hold its HTTP connections; build new ones."""
    global _models_lock
    _models.clear()
    _models_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_models)


def make_metadata_model(spec: TableSpec) -> type[MetadataRow]:
    """The (cached) model class for ``spec``'s table.

    botocore's own retries are off (one attempt per call): the store retries
    throttling itself, with backoff it can test and a clear error at the end.
    """
    with _models_lock:
        model = _models.get(spec)
        if model is not None:
            return model
        meta = type(
            "Meta",
            (),
            {
                "table_name": spec.table_name,
                "host": spec.host,
                "region": spec.region,
                "aws_access_key_id": spec.access_key_id,
                "aws_secret_access_key": spec.secret_access_key,
                "aws_session_token": spec.session_token,
                "connect_timeout_seconds": spec.connect_timeout,
                "read_timeout_seconds": spec.read_timeout,
                "max_retry_attempts": 0,
                "max_pool_connections": spec.max_pool_connections,
            },
        )
        model = type(f"Metadata_{len(_models)}", (MetadataRow,), {"Meta": meta})
        # Build the connection and botocore client now, under the lock: pynamodb
        # creates both lazily and without a lock, and the store is used from
        # worker threads (asyncio.to_thread).
        model._get_connection().connection.client  # noqa: B018
        _models[spec] = model
        return model


def row_key(path: str) -> tuple[str, str]:
    """``bucket/dir/name`` -> (``bucket/dir``, ``name``); ``bucket`` -> (``/``, ``bucket``)."""
    head, _, name = path.rpartition("/")
    return (head or ROOT_PARENT), name


# Rows as DynamoDB's attribute values, converted directly: building a pynamodb model per
# row (and serializing it attribute by attribute) cost ~0.3 ms of CPU a row, most of
# what recording a small write costs.  tests/unit/test_metadata_rows.py checks these
# give what the model's serialize() and from_raw_data() give.
_NUMBERS = (("length", "size"), ("mod_time", "mtime_ms"), ("last_updated", "last_updated_ms"))
_STRINGS = ("etag", "version_id", "staged")


def item_of(entry: Entry) -> dict[str, dict[str, Any]]:
    """``entry``'s row, as BatchWriteItem's ``PutRequest`` takes it."""
    parent, child = row_key(entry.path)
    item: dict[str, dict[str, Any]] = {
        HASH_KEY: {"S": parent},
        RANGE_KEY: {"S": child},
        "is_dir": {"BOOL": bool(entry.is_dir)},
        "is_deleted": {"BOOL": bool(entry.deleted)},
        "is_authoritative": {"BOOL": bool(entry.authoritative)},
    }
    for attribute, field in _NUMBERS:
        value = getattr(entry, field)
        if value is not None:
            item[attribute] = {"N": str(int(value))}
    if entry.ttl:
        item[TTL_ATTRIBUTE] = {"N": str(int(entry.ttl))}
    for name in _STRINGS:
        value = getattr(entry, name)
        if value is not None:
            item[name] = {"S": value}
    return item


def entry_of(item: dict[str, dict[str, Any]]) -> Entry:
    """The entry of a row as Query, Scan and BatchGetItem return it."""
    parent, child = item[HASH_KEY]["S"], item[RANGE_KEY]["S"]

    def number(name: str) -> int | None:
        value = item.get(name)
        return None if value is None else _integer(value["N"])

    def flag(name: str) -> bool:
        value = item.get(name)
        return bool(value and value.get("BOOL"))

    def text(name: str) -> str | None:
        value = item.get(name)
        return None if value is None else value["S"]

    return Entry(
        path=child if parent == ROOT_PARENT else f"{parent}/{child}",
        is_dir=flag("is_dir"),
        size=number("length") or 0,
        mtime_ms=number("mod_time"),
        etag=text("etag"),
        version_id=text("version_id"),
        deleted=flag("is_deleted"),
        authoritative=flag("is_authoritative"),
        last_updated_ms=number("last_updated"),
        ttl=number(TTL_ATTRIBUTE),
        staged=text("staged"),
    )


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # written as a float by another client
        return int(float(text))

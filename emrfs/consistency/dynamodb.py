"""The metadata store in a DynamoDB table (through pynamodb), and the table's upkeep.

Every call goes through :meth:`DynamoDBMetadataStore._call`, which retries
throttling (``ProvisionedThroughputExceededException``, 5xx answers, dropped
connections) with jittered exponential backoff, creates the table on first use
when ``auto_create`` is on, and translates what is left into the emrfs
hierarchy once, through :func:`emrfs.errors.translate_aws_error` (the table
shared with S3 and KMS): :class:`~emrfs.errors.ThrottledError`,
:class:`~emrfs.errors.TransportError` or :class:`~emrfs.errors.ServiceError`,
each naming the table and what to do.

Conditional writes guard the places where processes race: directory rows are
created only where no live row exists (so a concurrent writer's row or
authoritative flag is never clobbered), the authoritative flag is set only on
a live directory, and the version marker is written once.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from ..errors import DYNAMODB, ServiceError, translate_aws_error
from .dynamo_errors import (
    Unprocessed,
    code_and_status,
    conditional_failed,
    retryable,
    table_missing,
)
from .dynamo_table import TableAdmin, TableDescription
from .model import (
    HASH_KEY,
    RANGE_KEY,
    ROOT_PARENT,
    VERSION_KEY,
    MetadataRow,
    TableSpec,
    entry_of,
    item_of,
    make_metadata_model,
    row_key,
)
from .policy import Backoff, ExponentialRetryPolicy
from .store import Entry, MetadataStore

__all__ = ["DynamoDBMetadataStore", "TableDescription", "list_metadata_stores", "spec_from_options"]

log = logging.getLogger("emrfs.consistency")

_BATCH_WRITE = 25
_BATCH_GET = 100
#: BatchWriteItem requests of one call in flight at once (rows that need no order)
_WRITERS = 8

_writers_lock = threading.Lock()
_writers: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None


def _batch_writers() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for concurrent batch writes: their own (the caller already holds a leaf
    thread of :mod:`emrfs.blocking`; waiting there on more leaf work could starve it),
    made again in a forked child."""
    global _writers
    with _writers_lock:
        if _writers is None or _writers[0] != os.getpid():
            _writers = (
                os.getpid(),
                concurrent.futures.ThreadPoolExecutor(
                    max_workers=_WRITERS, thread_name_prefix="emrfs-dynamodb-batch"
                ),
            )
        return _writers[1]


def spec_from_options(options, table_name: str | None = None) -> TableSpec:
    """The :class:`TableSpec` an :class:`~emrfs.config.Options` tree names."""

    s3, cons = options.s3, options.consistency
    return TableSpec(
        table_name=table_name or cons.table_name,
        host=cons.dynamodb_endpoint or s3.endpoint_url,
        region=s3.region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        access_key_id=s3.access_key_id,
        secret_access_key=s3.secret_access_key,
        session_token=s3.session_token,
        connect_timeout=s3.connect_timeout,
        read_timeout=s3.read_timeout,
    )


class DynamoDBMetadataStore(TableAdmin, MetadataStore):
    """Metadata rows in one DynamoDB table, shared by any number of processes.

    Parameters
    ----------
    spec
        Table name, endpoint, region and credentials (:func:`spec_from_options`).
    auto_create
        Create the table (``read_capacity``/``write_capacity``; both 0 means
        on-demand billing) the first time a call finds it missing.
    max_retries, retry_base_seconds
        Throttling retries: ``retry_base_seconds * 2**n`` (jittered, capped
        at 20 s), ``max_retries`` times, then :class:`~emrfs.errors.ThrottledError`.
    sleep, clock, rng
        Injectable for tests.
    """

    def __init__(
        self,
        spec: TableSpec,
        *,
        tombstone_ttl_seconds: int = 86400,
        auto_create: bool = True,
        read_capacity: int = 500,
        write_capacity: int = 100,
        max_retries: int = 9,
        retry_base_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng=None,
    ):
        super().__init__(tombstone_ttl_seconds=tombstone_ttl_seconds, clock=clock)
        self.spec = spec
        self.auto_create = auto_create
        self.read_capacity = read_capacity
        self.write_capacity = write_capacity
        make_metadata_model(spec)  # fail early on a bad spec
        self._backoff = Backoff(
            ExponentialRetryPolicy(count=max_retries, period=retry_base_seconds, max_delay=20.0),
            sleep=sleep,
            rng=rng,
        )
        self._create_lock = threading.Lock()

    @classmethod
    def from_options(
        cls, options, *, table_name: str | None = None, **kwargs
    ) -> DynamoDBMetadataStore:
        """The store an options tree describes (``consistency.*`` and the S3 endpoint)."""
        cons = options.consistency
        kwargs.setdefault("tombstone_ttl_seconds", cons.tombstone_ttl_seconds)
        kwargs.setdefault("auto_create", cons.auto_create)
        kwargs.setdefault("read_capacity", cons.read_capacity)
        kwargs.setdefault("write_capacity", cons.write_capacity)
        kwargs.setdefault("max_retries", cons.dynamodb_max_retries)
        kwargs.setdefault("retry_base_seconds", cons.dynamodb_retry_base_seconds)
        return cls(spec_from_options(options, table_name), **kwargs)

    @property
    def model(self) -> type[MetadataRow]:
        """The pynamodb model (looked up per call: a forked child builds its own)."""
        return make_metadata_model(self.spec)

    @property
    def table_name(self) -> str:
        return self.spec.table_name

    def __repr__(self) -> str:
        return f"DynamoDBMetadataStore({self.table_name!r} at {self.spec.host or 'AWS'})"

    # --- the one place calls are made -------------------------------------------------

    def _call(
        self, what: str, fn: Callable[[], Any], path: str | None = None, *, create: bool = True
    ) -> Any:
        """``fn()`` with throttling retries, auto-create, and error translation."""
        while True:
            try:
                return self._backoff.run(fn, retryable)
            except Exception as exc:
                if create and self.auto_create and table_missing(exc):
                    log.info("metadata table %s is missing; creating it", self.table_name)
                    self.create_table()
                    create = False
                    continue
                new = self._translate(exc, what, path)
                if new is exc:  # not an AWS error: raised as it is (no cause loop)
                    raise
                raise new from exc

    def _translate(self, exc: Exception, what: str, path: str | None) -> BaseException:
        """The one translation (emrfs.errors' table), with the table named in the message."""
        code, _ = code_and_status(exc)
        return translate_aws_error(
            exc,
            path,
            DYNAMODB,
            code="ResourceNotFoundException" if table_missing(exc) else code,
            operation=what,
            name=self.table_name,
            resource=f"metadata table {self.table_name!r} at {self.spec.host or 'AWS'}",
            retries=getattr(exc, "retries", 0),
            elapsed=getattr(exc, "elapsed", None),
        )

    # --- rows <-> entries ---------------------------------------------------------------

    def _row(self, entry: Entry) -> MetadataRow:
        parent, child = row_key(entry.path)
        ttl = datetime.fromtimestamp(entry.ttl, tz=timezone.utc) if entry.ttl else None
        return self.model(
            parent,
            child,
            is_dir=entry.is_dir,
            length=entry.size,
            mod_time=entry.mtime_ms,
            etag=entry.etag,
            version_id=entry.version_id,
            is_deleted=entry.deleted,
            ttl=ttl,
            is_authoritative=entry.authoritative,
            last_updated=entry.last_updated_ms,
            staged=entry.staged,
        )

    @staticmethod
    def _entry(row: MetadataRow) -> Entry:
        path = row.child if row.parent == ROOT_PARENT else f"{row.parent}/{row.child}"
        return Entry(
            path=path,
            is_dir=bool(row.is_dir),
            size=int(row.length or 0),
            mtime_ms=None if row.mod_time is None else int(row.mod_time),
            etag=row.etag,
            version_id=row.version_id,
            deleted=bool(row.is_deleted),
            authoritative=bool(row.is_authoritative),
            last_updated_ms=None if row.last_updated is None else int(row.last_updated),
            ttl=int(row.ttl.timestamp()) if row.ttl is not None else None,
            staged=row.staged,
        )

    @staticmethod
    def _key(path: str) -> dict[str, dict[str, str]]:
        parent, child = row_key(path)
        return {HASH_KEY: {"S": parent}, RANGE_KEY: {"S": child}}

    def _dispatch(self, operation: str, kwargs: dict) -> dict:
        return self.model._get_connection().connection.dispatch(operation, kwargs)

    # --- primitives ------------------------------------------------------------------

    def _get_rows(self, paths: Sequence[str]) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        if len(paths) == 1:
            parent, child = row_key(paths[0])

            def get_one():
                try:
                    return self.model.get(parent, child, consistent_read=True)
                except DoesNotExist:
                    return None

            row = self._call("get", get_one, paths[0])
            if row is not None:
                out[paths[0]] = self._entry(row)
            return out
        for i in range(0, len(paths), _BATCH_GET):
            pending = [self._key(p) for p in paths[i : i + _BATCH_GET]]
            items: list[dict] = []

            def fetch():
                # unprocessed keys (soft throttling) go round again, with backoff
                nonlocal pending
                data = self._dispatch(
                    "BatchGetItem",
                    {"RequestItems": {self.table_name: {"Keys": pending, "ConsistentRead": True}}},
                )
                # B023: fetch is called at once by _call, within this iteration
                items.extend(data.get("Responses", {}).get(self.table_name, []))  # noqa: B023
                left = (data.get("UnprocessedKeys", {}).get(self.table_name) or {}).get("Keys")
                if left:
                    pending = left
                    raise Unprocessed(f"{len(left)} keys of a batch get unprocessed")

            self._call("batch get", fetch, paths[i])
            for item in items:
                entry = entry_of(item)
                out[entry.path] = entry
        return out

    def _batch_write(
        self, requests: list[dict], what: str, path: str | None, *, ordered: bool = True
    ) -> None:
        """BatchWriteItem, 25 requests at a time: in order, or (``ordered=False``: rows
        nothing depends on) up to ``_WRITERS`` batches at once."""
        chunks = [requests[i : i + _BATCH_WRITE] for i in range(0, len(requests), _BATCH_WRITE)]

        def write(chunk: list[dict]) -> None:
            pending = chunk

            def send():
                nonlocal pending
                data = self._dispatch(
                    "BatchWriteItem", {"RequestItems": {self.table_name: pending}}
                )
                left = (data or {}).get("UnprocessedItems", {}).get(self.table_name) or []
                if left:
                    pending = left
                    raise Unprocessed(f"{len(left)} of a batch unprocessed")

            self._call(what, send, path)

        if ordered or len(chunks) < 2:
            for chunk in chunks:
                write(chunk)
            return
        # every batch runs to its end before an error is raised: nothing left writing behind
        futures = [_batch_writers().submit(write, chunk) for chunk in chunks]
        concurrent.futures.wait(futures)
        for future in futures:
            future.result()

    def _write_rows(self, entries: Sequence[Entry]) -> None:
        requests = [{"PutRequest": {"Item": item_of(e)}} for e in entries]
        # Directory rows are written in the caller's order (ancestors before what is below
        # them, children's tombstones before their directory's); rows of files depend on
        # nothing written in the same call, so their batches go at once.
        ordered = any(e.is_dir for e in entries)
        path = entries[0].path if entries else None
        self._batch_write(requests, "write rows", path, ordered=ordered)

    def _remove_rows(self, paths: Sequence[str]) -> None:
        requests = [{"DeleteRequest": {"Key": self._key(p)}} for p in paths]
        self._batch_write(requests, "remove rows", paths[0] if paths else None)

    def _create_if_absent(self, entry: Entry) -> bool:
        M = self.model
        row = self._row(entry)

        def save():
            try:
                row.save(condition=M.parent.does_not_exist() | (M.is_deleted == True))  # noqa: E712
                return True
            except PynamoDBException as exc:
                if conditional_failed(exc):
                    return False
                raise

        return self._call("create directory row", save, entry.path)

    def _create_many_if_absent(self, entries: Sequence[Entry]) -> None:
        """Conditional creates, up to 25 in one transaction (top-down order kept).

        A transaction is all or nothing: when one condition fails (another
        process created that row first) the chunk is redone row by row.
        """
        M = self.model
        condition = M.parent.does_not_exist() | (M.is_deleted == True)  # noqa: E712
        for i in range(0, len(entries), _BATCH_WRITE):
            chunk = entries[i : i + _BATCH_WRITE]
            if len(chunk) == 1:
                self._create_if_absent(chunk[0])
                continue

            def commit(rows=chunk):
                try:
                    with TransactWrite(connection=M._get_connection().connection) as tx:
                        for entry in rows:
                            tx.save(self._row(entry), condition=condition)
                    return True
                except TransactWriteError as exc:
                    if any(
                        r is not None
                        and r.code in ("ConditionalCheckFailed", "TransactionConflict")
                        for r in exc.cancellation_reasons
                    ):
                        return False
                    raise

            if not self._call("create directory rows", commit, chunk[0].path):
                for entry in chunk:
                    self._create_if_absent(entry)

    def _set_authoritative(self, path: str, flag: bool, now_ms: int) -> bool:
        M = self.model
        parent, child = row_key(path)
        condition = M.parent.exists()
        if flag:
            condition = condition & (M.is_dir == True) & (M.is_deleted == False)  # noqa: E712

        def update():
            try:
                M(parent, child).update(
                    actions=[M.is_authoritative.set(flag), M.last_updated.set(now_ms)],
                    condition=condition,
                )
                return True
            except PynamoDBException as exc:
                if conditional_failed(exc):
                    return False
                raise

        return self._call("set the authoritative flag", update, path)

    def _pages(self, what: str, operation: str, kwargs: dict, path: str | None) -> Iterator[Entry]:
        start = None
        while True:
            args = dict(kwargs, **({"ExclusiveStartKey": start} if start else {}))
            data = self._call(what, functools.partial(self._dispatch, operation, args), path)
            for item in data.get("Items", []):
                if item[HASH_KEY]["S"] != VERSION_KEY:
                    yield entry_of(item)
            start = data.get("LastEvaluatedKey")
            if not start:
                return

    def _child_rows(self, path: str) -> list[Entry]:
        kwargs = {
            "TableName": self.table_name,
            "ConsistentRead": True,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": HASH_KEY},
            "ExpressionAttributeValues": {":p": {"S": path}},
        }
        return list(self._pages("list children", "Query", kwargs, path))

    def _scan_rows(self) -> Iterator[Entry]:
        return self._pages(
            "scan", "Scan", {"TableName": self.table_name, "ConsistentRead": True}, None
        )


def list_metadata_stores(spec: TableSpec) -> list[str]:
    """Names of the tables at ``spec``'s endpoint that have the metadata key schema."""
    probe = DynamoDBMetadataStore(spec, auto_create=False)
    client = probe.model._get_connection().connection.client
    names: list[str] = []
    start = None
    while True:
        kwargs: dict[str, str] = {"ExclusiveStartTableName": start} if start else {}
        page = probe._call(
            "list tables", functools.partial(client.list_tables, **kwargs), create=False
        )
        names.extend(page.get("TableNames", []))
        start = page.get("LastEvaluatedTableName")
        if not start:
            break
    out = []
    for name in names:
        try:
            table = probe._call(
                "describe", functools.partial(client.describe_table, TableName=name), create=False
            )["Table"]
        except ServiceError:
            continue  # deleted while we looked
        schema = {k["KeyType"]: k["AttributeName"] for k in table.get("KeySchema", [])}
        if schema == {"HASH": HASH_KEY, "RANGE": RANGE_KEY}:
            out.append(name)
    return out

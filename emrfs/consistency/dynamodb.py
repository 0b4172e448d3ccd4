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

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError, ReadTimeoutError
from pynamodb.exceptions import (
    DoesNotExist,
    PynamoDBException,
    TableDoesNotExist,
    TransactWriteError,
)
from pynamodb.transactions import TransactWrite

from ..errors import (
    DYNAMODB,
    THROTTLING_CODES,
    TRANSIENT_CODES,
    ServiceError,
    aws_error_code,
    error_chain,
    translate_aws_error,
)
from .model import (
    HASH_KEY,
    RANGE_KEY,
    ROOT_PARENT,
    TABLE_VERSION,
    TTL_ATTRIBUTE,
    VERSION_KEY,
    MetadataRow,
    TableSpec,
    make_metadata_model,
    row_key,
)
from .policy import Backoff, ExponentialRetryPolicy
from .store import Entry, MetadataStore

__all__ = ["DynamoDBMetadataStore", "TableDescription", "list_metadata_stores",
           "spec_from_options"]

log = logging.getLogger("emrfs.consistency")

_BATCH_WRITE = 25
_BATCH_GET = 100
_RETRYABLE_CODES = THROTTLING_CODES | TRANSIENT_CODES | {
    "InternalServerError", "InternalFailure", "ServiceUnavailableException",
    "TransactionInProgressException", "Unprocessed"}
_TRANSPORT = (BotoConnectionError, HTTPClientError, ReadTimeoutError, ConnectionError,
              TimeoutError)


class _Unprocessed(Exception):
    """A batch came back partly unprocessed (DynamoDB's soft throttling)."""

    code = "Unprocessed"


def _code_and_status(exc: BaseException) -> tuple[str, int | None]:
    code, status = aws_error_code(exc)
    if not code and any(isinstance(e, _Unprocessed) for e in error_chain(exc)):
        code = _Unprocessed.code
    return code, status


def _is_transport(exc: BaseException) -> bool:
    return any(isinstance(e, _TRANSPORT) for e in error_chain(exc))


def _retryable(exc: BaseException) -> bool:
    code, status = _code_and_status(exc)
    return code in _RETRYABLE_CODES or (status or 0) >= 500 or _is_transport(exc)


def _conditional_failed(exc: BaseException) -> bool:
    return _code_and_status(exc)[0] == "ConditionalCheckFailedException"


def _table_missing(exc: BaseException) -> bool:
    return isinstance(exc, TableDoesNotExist) or \
        _code_and_status(exc)[0] == "ResourceNotFoundException"


@dataclass(frozen=True)
class TableDescription:
    """What ``describe-metadata`` prints."""

    name: str
    status: str
    billing_mode: str
    read_capacity: int
    write_capacity: int
    item_count: int
    size_bytes: int
    ttl_status: str | None
    table_version: int | None
    created_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def spec_from_options(options, table_name: str | None = None) -> TableSpec:
    """The :class:`TableSpec` an :class:`~emrfs.config.Options` tree names."""
    import os

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


class DynamoDBMetadataStore(MetadataStore):
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

    def __init__(self, spec: TableSpec, *, tombstone_ttl_seconds: int = 86400,
                 auto_create: bool = True, read_capacity: int = 500, write_capacity: int = 100,
                 max_retries: int = 9, retry_base_seconds: float = 0.1,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time, rng=None):
        super().__init__(tombstone_ttl_seconds=tombstone_ttl_seconds, clock=clock)
        self.spec = spec
        self.auto_create = auto_create
        self.read_capacity = read_capacity
        self.write_capacity = write_capacity
        make_metadata_model(spec)  # fail early on a bad spec
        self._backoff = Backoff(
            ExponentialRetryPolicy(count=max_retries, period=retry_base_seconds, max_delay=20.0),
            sleep=sleep, rng=rng)
        self._create_lock = threading.Lock()

    @classmethod
    def from_options(cls, options, *, table_name: str | None = None, **kwargs) -> DynamoDBMetadataStore:
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

    def _call(self, what: str, fn: Callable[[], Any], path: str | None = None, *,
              create: bool = True) -> Any:
        """``fn()`` with throttling retries, auto-create, and error translation."""
        while True:
            try:
                return self._backoff.run(fn, _retryable)
            except Exception as exc:
                if create and self.auto_create and _table_missing(exc):
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
        code, _ = _code_and_status(exc)
        return translate_aws_error(
            exc, path, DYNAMODB,
            code="ResourceNotFoundException" if _table_missing(exc) else code,
            operation=what, name=self.table_name,
            resource=f"metadata table {self.table_name!r} at {self.spec.host or 'AWS'}",
            retries=getattr(exc, "retries", 0), elapsed=getattr(exc, "elapsed", None))

    # --- rows <-> entries ---------------------------------------------------------------

    def _row(self, entry: Entry) -> MetadataRow:
        parent, child = row_key(entry.path)
        ttl = datetime.fromtimestamp(entry.ttl, tz=timezone.utc) if entry.ttl else None
        return self.model(
            parent, child, is_dir=entry.is_dir, length=entry.size, mod_time=entry.mtime_ms,
            etag=entry.etag, version_id=entry.version_id, is_deleted=entry.deleted, ttl=ttl,
            is_authoritative=entry.authoritative, last_updated=entry.last_updated_ms,
            staged=entry.staged)

    @staticmethod
    def _entry(row: MetadataRow) -> Entry:
        path = row.child if row.parent == ROOT_PARENT else f"{row.parent}/{row.child}"
        return Entry(
            path=path, is_dir=bool(row.is_dir), size=int(row.length or 0),
            mtime_ms=None if row.mod_time is None else int(row.mod_time),
            etag=row.etag, version_id=row.version_id, deleted=bool(row.is_deleted),
            authoritative=bool(row.is_authoritative),
            last_updated_ms=None if row.last_updated is None else int(row.last_updated),
            ttl=int(row.ttl.timestamp()) if row.ttl is not None else None,
            staged=row.staged)

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
            pending = [self._key(p) for p in paths[i:i + _BATCH_GET]]
            items: list[dict] = []

            def fetch():
                # unprocessed keys (soft throttling) go round again, with backoff
                nonlocal pending
                data = self._dispatch("BatchGetItem", {"RequestItems": {
                    self.table_name: {"Keys": pending, "ConsistentRead": True}}})
                items.extend(data.get("Responses", {}).get(self.table_name, []))
                left = (data.get("UnprocessedKeys", {}).get(self.table_name) or {}).get("Keys")
                if left:
                    pending = left
                    raise _Unprocessed(f"{len(left)} keys of a batch get unprocessed")

            self._call("batch get", fetch, paths[i])
            for item in items:
                entry = self._entry(self.model.from_raw_data(item))
                out[entry.path] = entry
        return out

    def _batch_write(self, requests: list[dict], what: str, path: str | None) -> None:
        for i in range(0, len(requests), _BATCH_WRITE):
            pending = requests[i:i + _BATCH_WRITE]

            def send():
                nonlocal pending
                data = self._dispatch("BatchWriteItem",
                                      {"RequestItems": {self.table_name: pending}})
                left = (data or {}).get("UnprocessedItems", {}).get(self.table_name) or []
                if left:
                    pending = left
                    raise _Unprocessed(f"{len(left)} of a batch unprocessed")

            self._call(what, send, path)

    def _write_rows(self, entries: Sequence[Entry]) -> None:
        requests = [{"PutRequest": {"Item": self._row(e).serialize()}} for e in entries]
        self._batch_write(requests, "write rows", entries[0].path if entries else None)

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
                if _conditional_failed(exc):
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
            chunk = entries[i:i + _BATCH_WRITE]
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
                    if any(r is not None and r.code in ("ConditionalCheckFailed",
                                                        "TransactionConflict")
                           for r in exc.cancellation_reasons):
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
                    condition=condition)
                return True
            except PynamoDBException as exc:
                if _conditional_failed(exc):
                    return False
                raise

        return self._call("set the authoritative flag", update, path)

    def _pages(self, what: str, operation: str, kwargs: dict, path: str | None) -> Iterator[Entry]:
        start = None
        while True:
            args = dict(kwargs, **({"ExclusiveStartKey": start} if start else {}))
            data = self._call(what, lambda a=args: self._dispatch(operation, a), path)
            for item in data.get("Items", []):
                row = self.model.from_raw_data(item)
                if row.parent != VERSION_KEY:
                    yield self._entry(row)
            start = data.get("LastEvaluatedKey")
            if not start:
                return

    def _child_rows(self, path: str) -> list[Entry]:
        kwargs = {"TableName": self.table_name, "ConsistentRead": True,
                  "KeyConditionExpression": "#p = :p",
                  "ExpressionAttributeNames": {"#p": HASH_KEY},
                  "ExpressionAttributeValues": {":p": {"S": path}}}
        return list(self._pages("list children", "Query", kwargs, path))

    def _scan_rows(self) -> Iterator[Entry]:
        return self._pages("scan", "Scan", {"TableName": self.table_name,
                                            "ConsistentRead": True}, None)

    # --- the table itself ---------------------------------------------------------

    def exists(self) -> bool:
        """True when the table exists."""
        return bool(self._call("describe", self.model.exists, create=False))

    def create_table(self, read_capacity: int | None = None, write_capacity: int | None = None,
                     *, wait: bool = True) -> bool:
        """Create the table (if missing), turn on TTL, write the version marker.

        Both capacities 0 selects on-demand (PAY_PER_REQUEST) billing.  Returns
        True when this call created it.  Safe to race: a table another process
        is creating is waited for.
        """
        rcu = self.read_capacity if read_capacity is None else read_capacity
        wcu = self.write_capacity if write_capacity is None else write_capacity
        with self._create_lock:
            created = False
            if not self.exists():
                kwargs: dict[str, Any] = {"wait": False}
                if rcu <= 0 and wcu <= 0:
                    kwargs["billing_mode"] = "PAY_PER_REQUEST"
                else:
                    kwargs.update(read_capacity_units=max(rcu, 1), write_capacity_units=max(wcu, 1),
                                  billing_mode="PROVISIONED")

                def create():
                    try:
                        self.model.create_table(ignore_update_ttl_errors=True, **kwargs)
                    except PynamoDBException as exc:
                        if _code_and_status(exc)[0] != "ResourceInUseException":
                            raise
                    return True

                created = self._call("create table", create, create=False)
            if wait:
                self._wait_for("ACTIVE")
            self._call("enable TTL", lambda: self._enable_ttl(), create=False)
            self._write_version_marker()
            return created

    def _enable_ttl(self) -> None:
        client = self.model._get_connection().connection.client
        current = client.describe_time_to_live(TableName=self.table_name).get(
            "TimeToLiveDescription", {})
        if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return
        client.update_time_to_live(TableName=self.table_name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": TTL_ATTRIBUTE})

    def _write_version_marker(self) -> None:
        M = self.model
        marker = M(VERSION_KEY, VERSION_KEY, table_version=TABLE_VERSION,
                   table_created=self.now_ms(), is_dir=False, is_deleted=False)

        def save():
            try:
                marker.save(condition=M.parent.does_not_exist())
            except PynamoDBException as exc:
                if not _conditional_failed(exc):
                    raise

        self._call("write the version marker", save, create=False)

    def _wait_for(self, status: str | None, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self._call("describe", lambda: self.model.describe_table(), create=False)
            except ServiceError as exc:
                if status is None and exc.code == "ResourceNotFoundException":
                    return
                raise
            if status is not None and data.get("TableStatus") == status:
                return
            self._backoff.sleep(0.2)
        raise ServiceError(f"metadata table {self.table_name!r} did not become "
                           f"{status or 'deleted'} within {timeout:.0f} s", None)

    def delete_table(self, *, wait: bool = True) -> bool:
        """Drop the table; False when it did not exist."""
        if not self.exists():
            return False
        self._call("delete table", lambda: self.model.delete_table(), create=False)
        if wait:
            self._wait_for(None)
        return True

    def describe(self) -> TableDescription:
        """Name, status, billing, capacity, item count, TTL and version of the table."""
        data = self._call("describe", lambda: self.model.describe_table(), create=False)
        client = self.model._get_connection().connection.client
        ttl = self._call("describe TTL", lambda: client.describe_time_to_live(
            TableName=self.table_name), create=False).get("TimeToLiveDescription", {})
        marker = self._get_marker()
        throughput = data.get("ProvisionedThroughput", {})
        billing = data.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
        if billing == "PAY_PER_REQUEST":
            throughput = {}
        created = data.get("CreationDateTime")
        return TableDescription(
            name=self.table_name, status=data.get("TableStatus", "UNKNOWN"),
            billing_mode=billing,
            read_capacity=int(throughput.get("ReadCapacityUnits", 0) or 0),
            write_capacity=int(throughput.get("WriteCapacityUnits", 0) or 0),
            item_count=int(data.get("ItemCount", 0) or 0),
            size_bytes=int(data.get("TableSizeBytes", 0) or 0),
            ttl_status=ttl.get("TimeToLiveStatus"),
            table_version=int(marker.table_version) if marker and marker.table_version else None,
            created_at=str(created) if created is not None else None)

    def _get_marker(self) -> MetadataRow | None:
        def get():
            try:
                return self.model.get(VERSION_KEY, VERSION_KEY, consistent_read=True)
            except DoesNotExist:
                return None
        return self._call("read the version marker", get, create=False)

    def set_capacity(self, read_capacity: int | None = None, write_capacity: int | None = None,
                     *, on_demand: bool = False) -> None:
        """Change provisioned capacity, or switch the table to on-demand billing."""
        if on_demand:
            kwargs: dict[str, Any] = {"TableName": self.table_name,
                                      "BillingMode": "PAY_PER_REQUEST"}
        else:
            current = self.describe()
            kwargs = {"TableName": self.table_name, "BillingMode": "PROVISIONED",
                      "ProvisionedThroughput": {
                          "ReadCapacityUnits": read_capacity or current.read_capacity or 1,
                          "WriteCapacityUnits": write_capacity or current.write_capacity or 1}}
        self._call("set capacity", lambda: self._dispatch("UpdateTable", kwargs), create=False)


def list_metadata_stores(spec: TableSpec) -> list[str]:
    """Names of the tables at ``spec``'s endpoint that have the metadata key schema."""
    probe = DynamoDBMetadataStore(spec, auto_create=False)
    client = probe.model._get_connection().connection.client
    names: list[str] = []
    start = None
    while True:
        kwargs = {"ExclusiveStartTableName": start} if start else {}
        page = probe._call("list tables", lambda k=kwargs: client.list_tables(**k), create=False)
        names.extend(page.get("TableNames", []))
        start = page.get("LastEvaluatedTableName")
        if not start:
            break
    out = []
    for name in names:
        try:
            table = probe._call("describe", lambda n=name: client.describe_table(TableName=n),
                                create=False)["Table"]
        except ServiceError:
            continue  # deleted while we looked
        schema = {k["KeyType"]: k["AttributeName"] for k in table.get("KeySchema", [])}
        if schema == {"HASH": HASH_KEY, "RANGE": RANGE_KEY}:
            out.append(name)
    return out

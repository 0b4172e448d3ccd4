"""Upkeep of the metadata table: create (with TTL and the version marker), wait, delete,
describe, and change capacity.

A mixin of :class:`~emrfs.consistency.dynamodb.DynamoDBMetadataStore`: every
call goes through the store's ``_call`` (retries, error translation).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from ..errors import ServiceError
from .dynamo_errors import code_and_status, conditional_failed
from .model import TABLE_VERSION, TTL_ATTRIBUTE, VERSION_KEY, MetadataRow, TableSpec
from .policy import Backoff


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


class TableAdmin:
    """The table's own life, for :class:`~emrfs.consistency.dynamodb.DynamoDBMetadataStore`."""

    spec: TableSpec
    read_capacity: int
    write_capacity: int
    _backoff: Backoff
    _create_lock: threading.Lock

    if TYPE_CHECKING:  # provided by DynamoDBMetadataStore

        @property
        def model(self) -> type[MetadataRow]: ...
        @property
        def table_name(self) -> str: ...
        def now_ms(self) -> int: ...
        def _call(
            self, what: str, fn: Callable[[], Any], path: str | None = None, *, create: bool = True
        ) -> Any: ...
        def _dispatch(self, operation: str, kwargs: dict) -> dict: ...

    def exists(self) -> bool:
        """True when the table exists."""
        return bool(self._call("describe", self.model.exists, create=False))

    def create_table(
        self,
        read_capacity: int | None = None,
        write_capacity: int | None = None,
        *,
        wait: bool = True,
    ) -> bool:
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
                    kwargs.update(
                        read_capacity_units=max(rcu, 1),
                        write_capacity_units=max(wcu, 1),
                        billing_mode="PROVISIONED",
                    )

                def create():
                    try:
                        self.model.create_table(ignore_update_ttl_errors=True, **kwargs)
                    except PynamoDBException as exc:
                        if code_and_status(exc)[0] != "ResourceInUseException":
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
            "TimeToLiveDescription", {}
        )
        if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return
        client.update_time_to_live(
            TableName=self.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )

    def _write_version_marker(self) -> None:
        M = self.model
        marker = M(
            VERSION_KEY,
            VERSION_KEY,
            table_version=TABLE_VERSION,
            table_created=self.now_ms(),
            is_dir=False,
            is_deleted=False,
        )

        def save():
            try:
                marker.save(condition=M.parent.does_not_exist())
            except PynamoDBException as exc:
                if not conditional_failed(exc):
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
        raise ServiceError(
            f"metadata table {self.table_name!r} did not become "
            f"{status or 'deleted'} within {timeout:.0f} s",
            None,
        )

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
        ttl = self._call(
            "describe TTL",
            lambda: client.describe_time_to_live(TableName=self.table_name),
            create=False,
        ).get("TimeToLiveDescription", {})
        marker = self._get_marker()
        throughput = data.get("ProvisionedThroughput", {})
        billing = data.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
        if billing == "PAY_PER_REQUEST":
            throughput = {}
        created = data.get("CreationDateTime")
        return TableDescription(
            name=self.table_name,
            status=data.get("TableStatus", "UNKNOWN"),
            billing_mode=billing,
            read_capacity=int(throughput.get("ReadCapacityUnits", 0) or 0),
            write_capacity=int(throughput.get("WriteCapacityUnits", 0) or 0),
            item_count=int(data.get("ItemCount", 0) or 0),
            size_bytes=int(data.get("TableSizeBytes", 0) or 0),
            ttl_status=ttl.get("TimeToLiveStatus"),
            table_version=int(marker.table_version) if marker and marker.table_version else None,
            created_at=str(created) if created is not None else None,
        )

    def _get_marker(self) -> MetadataRow | None:
        def get():
            try:
                return self.model.get(VERSION_KEY, VERSION_KEY, consistent_read=True)
            except DoesNotExist:
                return None

        return self._call("read the version marker", get, create=False)

    def set_capacity(
        self,
        read_capacity: int | None = None,
        write_capacity: int | None = None,
        *,
        on_demand: bool = False,
    ) -> None:
        """Change provisioned capacity, or switch the table to on-demand billing."""
        if on_demand:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "BillingMode": "PAY_PER_REQUEST",
            }
        else:
            current = self.describe()
            kwargs = {
                "TableName": self.table_name,
                "BillingMode": "PROVISIONED",
                "ProvisionedThroughput": {
                    "ReadCapacityUnits": read_capacity or current.read_capacity or 1,
                    "WriteCapacityUnits": write_capacity or current.write_capacity or 1,
                },
            }
        self._call("set capacity", lambda: self._dispatch("UpdateTable", kwargs), create=False)

"""Child process: serve moto on (host, port), print ``PORT n`` once bound."""

from __future__ import annotations

import functools
import socket
import sys
import traceback
from typing import Any


def untrack_models() -> None:
    """Stop moto keeping every model it ever made.

    moto's ``BaseModel.__new__`` appends each instance to a class-level list (for its
    dashboard and ``reset``): every S3 key, upload part and DynamoDB item version it
    ever made stays alive after its delete or overwrite, so a server that lives for a
    whole test session grows without bound (0.4-0.65 GiB per xdist worker late in the
    suite) and its garbage collector walks all of it.  Nobody here reads the dashboard;
    with this, a deleted object is freed as soon as moto's backends drop it.
    """
    from moto.core.common_models import BaseModel

    def new(cls, *args, **kwargs):
        return super(BaseModel, cls).__new__(cls)

    BaseModel.__new__ = staticmethod(new)  # type: ignore[method-assign]


def cache_module_listing() -> None:
    """moto matches each request's Host against its backend package names by listing
    its own directory (``os.listdir`` and an ``isdir`` per entry) on every request;
    the directory does not change while the server runs."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = functools.cache(lambda: modules)


def serialize_dynamodb() -> None:
    """Run DynamoDB requests one at a time.

    moto's ``TransactWriteItems`` snapshots the whole table when it starts and, when one
    of its conditions fails, puts the snapshot back: every write another connection
    made meanwhile is erased.  The consistent view creates ancestor directory rows in
    conditional transactions, and concurrent writers racing to create the same
    ancestors cancel them routinely; a file row recorded in between was lost, and the
    view then said a file S3 holds was deleted.  A real table never loses a write, so
    neither may the embedded one; its requests hold the GIL throughout anyway, so
    running them in turn costs next to nothing.
    """
    import threading

    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    call_action = DynamoHandler.call_action

    @functools.wraps(call_action)
    def one_at_a_time(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return call_action(self, *args, **kwargs)

    DynamoHandler.call_action = one_at_a_time  # type: ignore[method-assign]


def index_partition_queries() -> None:
    """A Query of the base table reads the asked partition, as DynamoDB does, not the table.

    moto's ``Table.query`` takes ``all_items()`` -- every row of the table, sorted -- and
    keeps the rows of the asked hash key: a Query costs O(n log n) in the table's size.
    The consistent view queries one directory's rows at a time; in a test or benchmark
    whose table grows to thousands of rows each Query cost tens of milliseconds (10 ms at
    500 rows, 78 ms at 10,000), where a real table's cost follows the partition's rows.
    Here, for the duration of a base-table Query (no index) of a table with a range key,
    ``all_items()`` on that thread returns the partition's rows; moto filters and sorts
    them as before, so the answer is the same.
    """
    import threading

    from moto.dynamodb.models.table import Table

    query, all_items = Table.query, Table.all_items
    asked = threading.local()

    def partition_or_all(self: Any) -> list:
        partition = getattr(asked, "partition", None)
        if partition is None or partition[0] is not self:
            return all_items(self)
        rows = self.items.get(partition[1])  # (a defaultdict: .get adds no partition)
        return list(rows.values()) if rows else []

    @functools.wraps(query)
    def partition_query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs["index_name"] if "index_name" in kwargs else (args[6:7] or [None])[0]
        if index_name is not None or hash_key is None or not self.range_key_attr:
            return query(self, hash_key, *args, **kwargs)
        asked.partition = (self, hash_key)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            asked.partition = None

    Table.query = partition_query  # type: ignore[method-assign]
    Table.all_items = partition_or_all  # type: ignore[method-assign]


def keep_alive_handler() -> type:
    """moto's request handler, keeping HTTP/1.1 connections open between requests.

    Werkzeug's development server answers every request with ``Connection: close``
    (it cannot tell where an unread request body ends), so each request cost the
    client a new TCP connection and the server a new thread, and after each response
    the server waited up to 10 ms for the client to hang up.  Here the request body is
    bounded by its ``Content-Length`` (or its chunked framing) and whatever the
    application left unread is drained after the response, so the connection is ready
    for the next request; the response is buffered and sent with its length.
    """
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.wsgi import LimitedStream

    class KeepAliveHandler(MotoRequestHandler):
        def setup(self) -> None:
            super().setup()
            # headers and body go out in two writes: without this, the body of a
            # kept-alive response waits for the client's delayed ACK (40 ms)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def run_wsgi(self) -> None:
            if self.headers.get("Expect", "").strip().lower() == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.environ = environ = self.make_environ()
            if not environ.get("wsgi.input_terminated"):  # not chunked: Content-Length
                length = int(environ.get("CONTENT_LENGTH") or 0)
                environ["wsgi.input"] = LimitedStream(self.rfile, length)  # type: ignore[arg-type]
                environ["wsgi.input_terminated"] = True
            _send(self, *_answer(self, environ))
            if not self.close_connection:  # the next request starts after this body
                while environ["wsgi.input"].read(1 << 20):
                    pass

        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            """Not logged: the child's stderr is discarded, the formatting is not free."""

    return KeepAliveHandler


def _answer(handler: Any, environ: dict) -> tuple[str, list, bytes]:
    """The application's status, headers and whole body (a 500 if it raised)."""
    started: list[Any] = []
    written: list[bytes] = []

    def start_response(status, headers, exc_info=None):
        started[:] = [status, headers]
        return written.append

    try:
        result = handler.server.app(environ, start_response)
        try:
            data = b"".join([*written, *result])
        finally:
            if hasattr(result, "close"):
                result.close()
    except Exception:  # noqa: BLE001 - answered 500, as werkzeug does
        handler.log_error("Error on request:\n%s", traceback.format_exc())
        handler.close_connection = True
        return (
            "500 INTERNAL SERVER ERROR",
            [("Content-Type", "text/plain")],
            b"internal server error",
        )
    status, headers = started
    return status, headers, data


def _send(handler: Any, status: str, headers: list, data: bytes) -> None:
    """The response, with its length (the connection stays open when it can)."""
    code, _, message = status.partition(" ")
    handler.send_response(int(code), message)
    bodiless = handler.command == "HEAD" or int(code) < 200 or int(code) in (204, 304)
    declared: str | None = None
    for name, value in headers:
        handler.send_header(name, value)
        if name.lower() == "content-length":
            declared = value
    if declared is None and not bodiless:
        handler.send_header("Content-Length", str(len(data)))
    elif not bodiless and declared != str(len(data)):
        # the client cannot find where this body ends: end it with the connection
        handler.close_connection = True
    if handler.close_connection:
        handler.send_header("Connection", "close")
    handler.end_headers()
    if data and not bodiless:
        handler.wfile.write(data)


def _rows_named(backend: Any, transact_items: list) -> list[tuple[Any, Any, Any, Any]]:
    """(table, hash key, range key, a deep copy of the row or None) of each row the
    transaction's operations name, as they are before it runs."""
    import copy

    from moto.dynamodb.models.dynamo_type import DynamoType

    saved = []
    for entry in transact_items:
        for op_type, op in entry.items():
            table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is None:
                continue  # moto refuses it before it writes anything
            key = op.get("Item") if op_type == "Put" else op.get("Key")
            if not key or table.hash_key_attr not in key:
                continue
            ranged = table.range_key_attr is not None
            if ranged and table.range_key_attr not in key:
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if ranged else None
            row = table.get_item(hash_value, range_value)
            saved.append((table, hash_value, range_value, copy.deepcopy(row)))
    return saved


def _put_back(table: Any, hash_value: Any, range_value: Any, row: Any) -> None:
    if range_value is None:
        if row is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = row
    elif row is None:
        table.items.get(hash_value, {}).pop(range_value, None)
    else:
        table.items[hash_value][range_value] = row


def journal_transactions() -> None:
    """A TransactWriteItems saves the rows it names, not the tables they are in.

    moto's ``transact_write_items`` deep-copies every table a transaction names before
    it starts, to put the copy back if one of its operations fails: each transaction
    costs O(rows in the table).  The consistent view writes a new directory's ancestor
    rows in a transaction, so in a benchmark whose table grows by 2,000 rows a round,
    one ``pipe`` into 20 new directories cost moto 1.2 s of CPU in the first round and
    8.9 s in the fourth, almost all of it ``deepcopy``; a real table's cost follows the
    rows a transaction names.  Here the deep copy of a table is the table itself, and
    the rows the transaction names are saved before it runs and put back, in reverse
    order, if it raises.  DynamoDB requests run one at a time (:func:`serialize_dynamodb`),
    so no other write lands in between to be overwritten.
    """
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    class _TablesKept:  # moto's module-level ``copy``, as the transaction sees it
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = _TablesKept  # type: ignore[assignment]
    transact = models.DynamoDBBackend.transact_write_items

    @functools.wraps(transact)
    def journaled(self: Any, transact_items: list) -> Any:
        saved = _rows_named(self, transact_items)
        try:
            return transact(self, transact_items)
        except BaseException:
            for table, hash_value, range_value, row in reversed(saved):
                _put_back(table, hash_value, range_value, row)
            raise

    models.DynamoDBBackend.transact_write_items = journaled  # type: ignore[method-assign]


def main() -> None:
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    untrack_models()
    cache_module_listing()
    serialize_dynamodb()
    index_partition_queries()
    journal_transactions()
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=True, request_handler=keep_alive_handler())
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

"""DynamoDB throttling is retried with backoff, against a real server.

A tiny loopback proxy in front of moto answers the first N calls of chosen
DynamoDB operations with a throttling error (or a 500), then forwards.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from emrfs.consistency.dynamodb import DynamoDBMetadataStore
from emrfs.consistency.model import TableSpec
from emrfs.consistency.store import Entry
from emrfs.errors import ServiceError, ThrottledError

pytestmark = pytest.mark.integration

THROTTLE = (
    400,
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput was exceeded",
    },
)
INTERNAL = (
    500,
    {
        "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
        "message": "internal server error",
    },
)


class ThrottlingProxy:
    """Forwards to ``upstream``; fails the first ``failures`` calls of ``operations``."""

    def __init__(self, upstream: str, operations: set[str], failures: int, answer=THROTTLE):
        self.upstream = urlsplit(upstream)
        self.operations, self.remaining, self.answer = operations, failures, answer
        self.failed = 0
        self.seen: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                op = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                with proxy.lock:
                    proxy.seen.append(op)
                    fail = op in proxy.operations and proxy.remaining > 0
                    if fail:
                        proxy.remaining -= 1
                        proxy.failed += 1
                if fail:
                    answer = proxy.answer
                    status, payload = answer(json.loads(body)) if callable(answer) else answer
                    return self._reply(
                        status,
                        json.dumps(payload).encode(),
                        {"Content-Type": "application/x-amz-json-1.0"},
                    )
                conn = http.client.HTTPConnection(
                    proxy.upstream.hostname, proxy.upstream.port, timeout=30
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request("POST", self.path, body, headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self._reply(
                    resp.status,
                    data,
                    {
                        k: v
                        for k, v in resp.getheaders()
                        if k.lower() not in ("content-length", "transfer-encoding", "connection")
                    },
                )

            def _reply(self, status, data, headers):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def make_store(emrfs_endpoint):
    made = []

    def make(operations, failures, answer=THROTTLE, max_retries=9):
        proxy = ThrottlingProxy(emrfs_endpoint, set(operations), failures, answer)
        slept: list[float] = []
        store = DynamoDBMetadataStore(
            TableSpec(f"emrfs-test-{uuid.uuid4().hex[:12]}", host=proxy.url),
            read_capacity=5,
            write_capacity=5,
            max_retries=max_retries,
            retry_base_seconds=0.05,
            sleep=slept.append,
        )
        made.append((proxy, store))
        return proxy, store, slept

    yield make
    for proxy, store in made:
        store.delete_table(wait=False)
        proxy.close()


def test_throttled_writes_and_reads_are_retried_then_succeed(make_store):
    proxy, store, slept = make_store({"BatchWriteItem", "GetItem"}, failures=5)
    store.record_file("bkt/d/f", 3, "e")  # table auto-created, then throttled writes
    assert store.get("bkt/d/f").size == 3
    assert proxy.failed == 5 and len(slept) == 5
    # jittered exponential: each wait within [d/2, d] of 0.05 * 2**n
    assert all(0.025 * 2**n <= s <= 0.05 * 2**n for n, s in enumerate(slept[:3]))


def test_throttling_beyond_the_retries_is_a_clear_error(make_store):
    _proxy, store, slept = make_store({"Query"}, failures=100, max_retries=3)
    store.record_file("bkt/d/f", 1)
    with pytest.raises(ThrottledError) as info:
        store.list_children("bkt/d")
    err = info.value
    assert err.code == "ProvisionedThroughputExceededException" and len(slept) == 3
    assert "after 3 retries" in str(err) and "set-metadata-capacity" in str(err)
    assert store.table_name in str(err) and err.path == "bkt/d"


def test_server_errors_are_retried_too(make_store):
    proxy, store, _slept = make_store({"BatchWriteItem"}, failures=2, answer=INTERNAL)
    store.delete_many(["bkt/x", "bkt/y"])
    assert proxy.failed == 2 and store.get("bkt/x").deleted


def test_other_errors_are_not_retried(make_store):
    bad = (
        400,
        {
            "__type": "com.amazon.coral.validate#ValidationException",
            "message": "One or more parameter values were invalid",
        },
    )
    _proxy, store, slept = make_store({"Query"}, failures=1, answer=bad)
    store.record_file("bkt/f", 1)
    with pytest.raises(ServiceError, match="ValidationException") as info:
        store.list_children("bkt")
    assert slept == [] and not isinstance(info.value, ThrottledError)


def unprocessed(request):
    """A 200 that processed nothing: DynamoDB's soft throttling of batch calls."""
    if "RequestItems" in request and "Keys" in next(iter(request["RequestItems"].values())):
        return 200, {"Responses": {}, "UnprocessedKeys": request["RequestItems"]}
    return 200, {"UnprocessedItems": request["RequestItems"]}


def test_unprocessed_batch_items_are_resent_with_backoff(make_store):
    proxy, store, slept = make_store(
        {"BatchWriteItem", "BatchGetItem"}, failures=4, answer=unprocessed
    )
    store.put_many([Entry.file(f"bkt/u/f{i}", i) for i in range(30)])
    got = store.get_many(f"bkt/u/f{i}" for i in range(30))
    assert len(got) == 30 and proxy.failed == 4 and len(slept) == 4


def test_unprocessed_forever_is_a_throttling_error(make_store):
    _proxy, store, _slept = make_store(
        {"BatchWriteItem"}, failures=100, answer=unprocessed, max_retries=2
    )
    with pytest.raises(ThrottledError, match="after 2 retries"):
        store.delete_many(["bkt/a", "bkt/b"])

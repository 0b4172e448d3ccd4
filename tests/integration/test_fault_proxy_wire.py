"""What the proxy puts on the wire: requests arrive upstream as the client sent
them, so SigV4 signatures made for the proxy's URL still verify.

The upstream here is a real HTTP server on 127.0.0.1 that records what it
receives (moto does not check signatures, so it could not show this).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
import pytest
from botocore.config import Config

from emrfs.testing.faults import FaultProxy

pytestmark = pytest.mark.integration

ACCESS_KEY, SECRET_KEY, REGION = "AKIDWIRETEST", "wire-test-secret", "us-east-1"
EMPTY_LISTING = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Name>b</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
    b"<IsTruncated>false</IsTruncated></ListBucketResult>"
)


class Recorder(BaseHTTPRequestHandler):
    """Records each request (method, target, headers, de-chunked body); answers 200."""

    protocol_version = "HTTP/1.1"

    def _any(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            body = b""
            while size := int(self.rfile.readline().strip(), 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path, self.headers, body))
        answer = EMPTY_LISTING if self.command == "GET" else b""
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.seen = []
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(recorder):
    with FaultProxy(f"http://127.0.0.1:{recorder.server_address[1]}") as p:
        yield p


def sigv4_is_valid(method: str, target: str, headers, secret: str) -> bool:
    """Check an ``AWS4-HMAC-SHA256`` Authorization header against the request."""
    auth = headers["Authorization"]
    fields = dict(part.strip().split("=", 1) for part in auth.split(" ", 1)[1].split(","))
    scope = fields["Credential"].split("/", 1)[1]
    date, region, service, _ = scope.split("/")
    signed = fields["SignedHeaders"].split(";")
    path, query = urlsplit(target).path, urlsplit(target).query
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(parse_qsl(query, keep_blank_values=True))
    )
    canonical_headers = "".join(f"{h}:{' '.join(headers[h].split())}\n" for h in signed)
    canonical = "\n".join(
        [
            method,
            path,
            canonical_query,
            canonical_headers,
            ";".join(signed),
            headers["X-Amz-Content-SHA256"],
        ]
    )
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            headers["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["Signature"])


def test_signed_requests_arrive_unchanged_and_verify(proxy, recorder):
    s3 = boto3.client(
        "s3",
        endpoint_url=proxy.url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"total_max_attempts": 1}),
    )
    body = b"payload with \x00 bytes" * 100
    s3.put_object(Bucket="b", Key="dir/a key+with=odd&chars", Body=body)
    s3.list_objects_v2(Bucket="b", Prefix="dir/a key", StartAfter="x=y&z")

    (put_method, put_target, put_headers, put_body), (get_method, get_target, get_headers, _) = (
        recorder.seen
    )
    proxy_netloc = urlsplit(proxy.url).netloc
    assert put_headers["Host"] == get_headers["Host"] == proxy_netloc
    assert put_body == body
    assert sigv4_is_valid(put_method, put_target, put_headers, SECRET_KEY)
    assert sigv4_is_valid(get_method, get_target, get_headers, SECRET_KEY)
    assert not sigv4_is_valid(put_method, put_target, put_headers, "another secret")
    assert proxy.counters().operations == {"PutObject": 1, "ListObjectsV2": 1}


def test_chunked_request_bodies_are_relayed(proxy, recorder):
    host, port = urlsplit(proxy.url).hostname, urlsplit(proxy.url).port
    conn = http.client.HTTPConnection(host, port, timeout=10)
    pieces = [b"first piece ", b"x" * 70_000, b" last"]
    conn.request(
        "PUT",
        "/b/chunked",
        body=iter(pieces),
        encode_chunked=True,
        headers={"Transfer-Encoding": "chunked"},
    )
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    conn.request("PUT", "/b/plain", body=b"kept alive")  # same client connection
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    conn.close()
    assert [(m, t, b) for m, t, _, b in recorder.seen] == [
        ("PUT", "/b/chunked", b"".join(pieces)),
        ("PUT", "/b/plain", b"kept alive"),
    ]
    assert proxy.counters().request_bytes == sum(map(len, pieces)) + len(b"kept alive")


def test_a_malformed_chunked_body_is_a_400(proxy, recorder):
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(proxy.url).port, timeout=10)
    conn.request(
        "PUT",
        "/b/k",
        body=iter([b"not chunk framing\r\n"]),
        headers={"Transfer-Encoding": "chunked"},
    )
    assert conn.getresponse().status == 400
    assert recorder.seen == [] or recorder.seen[0][3] == b""


def test_an_unreachable_upstream_answers_502():
    with FaultProxy("http://127.0.0.1:9") as proxy:  # discard port: nothing listens
        conn = http.client.HTTPConnection("127.0.0.1", urlsplit(proxy.url).port, timeout=10)
        conn.request("GET", "/b/k")
        response = conn.getresponse()
        assert response.status == 502
        assert b"upstream failed" in response.read()

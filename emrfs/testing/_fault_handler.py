"""The fault proxy's request handler: S3, DynamoDB, or plain forwarding.

One instance per client connection (``_relay.RelayHandler`` does the HTTP);
each request is classified, checked against the proxy's policy and state, and
forwarded, rewritten or answered by the proxy itself.
"""

from __future__ import annotations

import http.client
import json
import os
import tempfile
import uuid
import zlib
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote

from ._inconsistency import StaleObject
from ._policy import FaultKind
from ._relay import HOP_BY_HOP, RelayHandler, UpstreamError
from ._s3wire import (
    LIST_OPERATIONS,
    WRITE_OPERATIONS,
    ListEntry,
    Listing,
    ListingView,
    S3Request,
    classify,
    deleted_keys_of_request,
    error_body,
    failed_keys_of_response,
    is_error_document,
    parse_listing,
    rewrite_listing,
)

if TYPE_CHECKING:
    from ._fault_engine import FaultEngine

DYNAMODB_TARGET = "DynamoDB_20120810."

_THROTTLE_BODY = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    }
).encode()


class FaultHandler(RelayHandler):
    """Per connection: route each request to S3, DynamoDB or plain forwarding."""

    def _handle(self) -> None:
        self.begin_request()
        proxy: FaultEngine = self.server.proxy  # type: ignore[attr-defined]
        self.proxy = proxy
        try:
            target = self.headers.get("X-Amz-Target", "")
            if target.startswith(DYNAMODB_TARGET):
                self._dynamodb(target[len(DYNAMODB_TARGET) :])
            elif target or self.path.startswith("/moto-api"):
                proxy._tally.request("other", target.rpartition(".")[2] or "moto-api")
                self.relay(self.forward())
            else:
                self._s3(classify(self.command, self.path, "x-amz-copy-source" in self.headers))
        except (UpstreamError, ValueError) as exc:  # ValueError: a malformed request
            if self.head_sent:
                self.abort_connection()
            else:
                self.close_connection = True
                status, reason = (
                    (502, "Bad Gateway") if isinstance(exc, UpstreamError) else (400, "Bad Request")
                )
                self.send_whole(status, reason, [("Content-Type", "text/plain")], str(exc).encode())
        except (ConnectionError, TimeoutError):
            self.abort_connection()

    def count_bytes(self, received: int, sent: int) -> None:
        self.server.proxy._tally.add_bytes(received, sent)  # type: ignore[attr-defined]

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _handle

    # --- DynamoDB ------------------------------------------------------------

    def _dynamodb(self, action: str) -> None:
        body = self.read_request_body()
        self.proxy._tally.request("dynamodb", action)
        policy = self.proxy.policy
        if self.proxy._inject(
            FaultKind.DYNAMODB_THROTTLE,
            policy.dynamodb_throttle,
            action,
            body.decode("utf-8", "replace"),
        ):
            self.send_whole(
                400,
                "Bad Request",
                [
                    ("Content-Type", "application/x-amz-json-1.0"),
                    ("x-amzn-RequestId", uuid.uuid4().hex),
                    ("x-amz-crc32", str(zlib.crc32(_THROTTLE_BODY))),
                ],
                _THROTTLE_BODY,
            )
            return
        self.relay(self.forward(body))

    # --- S3 ------------------------------------------------------------------

    def _s3(self, req: S3Request) -> None:
        proxy, op = self.proxy, req.operation
        proxy._tally.request("s3", op)
        policy = proxy.policy
        if proxy._inject(FaultKind.SLOW_DOWN, policy.slow_down, op, req.target):
            self.drain_request_body()
            resource = "/" + req.bucket + ("/" + req.key if req.key else "")
            self.send_whole(
                503,
                "Slow Down",
                [("Content-Type", "application/xml"), ("x-amz-request-id", uuid.uuid4().hex[:16])],
                error_body("SlowDown", "Please reduce your request rate.", resource),
            )
            return
        if op in ("GetObject", "HeadObject") and not req.query.keys() & {"versionId", "partNumber"}:
            opened = proxy.state.open_stale(req.bucket, req.key)
            if opened is not None:
                with opened[1]:
                    self._serve_stale(req, *opened)
                return
        if op in WRITE_OPERATIONS:
            self._write(req)
        elif op == "DeleteObject":
            self._delete(req)
        elif op == "DeleteObjects":
            self._delete_many(req)
        elif op in LIST_OPERATIONS and proxy.state.has_listing_state(req.bucket):
            self._list(req)
        else:
            resp = self.forward()
            cut = None
            if (
                op == "GetObject"
                and resp.status in (200, 206)
                and resp.length
                and proxy._inject(FaultKind.CUT_READ, policy.cut_reads, op, req.target)
            ):
                cut = int(resp.length * policy.cut_fraction)
            self.relay(resp, cut_at=cut)

    def _write(self, req: S3Request) -> None:
        """PUT / copy / multipart complete: note it before the client hears back."""
        inc = self.proxy._delayed(req.target)
        existing, previous = None, None
        if inc is not None and (inc.list_delay or inc.stale_reads):
            existing = self._lookup_entry(req.bucket, req.key)
            if existing is not None and inc.stale_reads:
                previous = self._capture(req.bucket, req.key)
        try:
            resp = self.forward()
            body = None if req.operation == "PutObject" else resp.read()
            ok = 200 <= resp.status < 300 and not (body and is_error_document(body))
            if ok:
                state = self.proxy.state
                state.written(req.bucket, req.key)
                if inc is not None and existing is None and inc.list_delay:
                    state.hide(req.bucket, req.key, inc.delay)
                elif inc is not None and previous is not None:
                    state.make_stale(req.bucket, req.key, previous, inc.delay)
                    previous = None
        finally:
            if previous is not None:
                os.unlink(previous.path)
        if body is None:
            self.relay(resp)
        else:
            self.send_whole(resp.status, resp.reason, resp.getheaders(), body)

    def _delete(self, req: S3Request) -> None:
        inc = self.proxy._delayed(req.target)
        linger = inc is not None and inc.lingering_deletes
        entry = self._lookup_entry(req.bucket, req.key) if linger else None
        resp = self.forward()
        if 200 <= resp.status < 300:
            delay = inc.delay if linger and inc is not None else 0.0
            self.proxy.state.deleted(req.bucket, req.key, entry, delay)
        self.relay(resp)

    def _delete_many(self, req: S3Request) -> None:
        body = self.read_request_body()
        keys = deleted_keys_of_request(body)
        lingering: dict[str, tuple[ListEntry | None, float]] = {}
        for key in keys:
            inc = self.proxy._delayed(f"{req.bucket}/{key}")
            if inc is not None and inc.lingering_deletes:
                lingering[key] = (self._lookup_entry(req.bucket, key), inc.delay)
        resp = self.forward(body)
        answer = resp.read()
        if resp.status == 200:
            failed = failed_keys_of_response(answer)
            for key in keys:
                if key not in failed:
                    entry, delay = lingering.get(key, (None, 0.0))
                    self.proxy.state.deleted(req.bucket, key, entry, delay)
        self.send_whole(resp.status, resp.reason, resp.getheaders(), answer)

    def _list(self, req: S3Request) -> None:
        proxy, state = self.proxy, self.proxy.state
        v2 = req.operation == "ListObjectsV2"
        prefix = req.param("prefix", "") or ""
        # Where this page starts: start-after, or the end of the page whose
        # continuation token / marker this is (moto's markers are opaque too).
        lower = req.param("start-after") if v2 else None
        token = req.param("continuation-token" if v2 else "marker")
        if token:
            bound = proxy._token_bound(token) or ("" if v2 else token)
            lower = max(lower or "", bound) or None
        resp = self.forward()
        if resp.status != 200 or resp.getheader("Content-Encoding"):
            self.relay(resp)
            return
        hidden = state.hidden_under(req.bucket, prefix)
        view = ListingView(
            prefix=prefix,
            delimiter=req.param("delimiter", "") or "",
            lower=lower,
            hidden=hidden,
            lingering=state.lingering_under(req.bucket, prefix),
            prefix_has_visible=lambda p, n: self._has_visible(req.bucket, p, n, hidden),
            with_owner=not v2 or req.param("fetch-owner") == "true",
        )
        out = rewrite_listing(resp.read(), view)
        if out.next_token and out.upper:
            proxy._remember_token(out.next_token, out.upper)
        proxy._tally.fault(FaultKind.LIST_HIDDEN, out.hidden)
        proxy._tally.fault(FaultKind.LIST_LINGERING, out.added)
        self.send_whole(resp.status, resp.reason, resp.getheaders(), out.body)

    def _serve_stale(self, req: S3Request, obj: StaleObject, body: BinaryIO) -> None:
        self.proxy._tally.fault(FaultKind.STALE_READ)
        headers = [
            (k, v) for k, v in obj.headers if k.lower() not in ("content-length", "content-range")
        ]
        span = _parse_range(self.headers.get("Range"), obj.size)
        if isinstance(span, str):  # "invalid"
            self.send_whole(
                416,
                "Requested Range Not Satisfiable",
                [("Content-Type", "application/xml")],
                error_body(
                    "InvalidRange",
                    "The requested range is not satisfiable",
                    f"/{req.bucket}/{req.key}",
                ),
            )
            return
        status, reason, start, length = 200, "OK", 0, obj.size
        if span is not None:
            start, end = span
            status, reason, length = 206, "Partial Content", end - start + 1
            headers.append(("Content-Range", f"bytes {start}-{end}/{obj.size}"))
        headers.append(("Content-Length", str(length)))
        self.send_head(status, reason, headers)
        if self.command == "HEAD":
            return
        body.seek(start)
        cut = None
        policy = self.proxy.policy
        if length and self.proxy._inject(
            FaultKind.CUT_READ, policy.cut_reads, req.operation, req.target
        ):
            cut = int(length * policy.cut_fraction)
        self.stream_body(body, cut_at=cut, length=length)

    # --- the proxy's own look-ups ---------------------------------------------

    def _side_get(self, path: str) -> http.client.HTTPResponse:
        """GET ``path`` from the upstream, signed with the proxy's own credentials."""
        return self.side_request("GET", path, self.proxy._sign("GET", path))

    def _side_list(self, bucket: str, prefix: str, max_keys: int) -> Listing | None:
        resp = self._side_get(
            f"/{bucket}?list-type=2&max-keys={max_keys}&fetch-owner=true"
            f"&encoding-type=url&prefix={quote(prefix, safe='')}"
        )
        body = resp.read()
        return parse_listing(body) if resp.status == 200 else None

    def _lookup_entry(self, bucket: str, key: str) -> ListEntry | None:
        """The key's current LIST entry, or ``None`` if it does not exist."""
        listing = self._side_list(bucket, key, 1)
        entries = listing.entries if listing else []
        return entries[0] if entries and entries[0].key == key else None

    def _has_visible(self, bucket: str, prefix: str, n_hidden: int, hidden: frozenset[str]) -> bool:
        """Does ``prefix`` hold a key that is not hidden?  n_hidden + 1 keys settle it."""
        listing = self._side_list(bucket, prefix, n_hidden + 1)
        return listing is None or any(e.key not in hidden for e in listing.entries)

    def _capture(self, bucket: str, key: str) -> StaleObject | None:
        """Copy the current version (headers and body) to a file, before an overwrite."""
        resp = self._side_get(f"/{bucket}/{quote(key, safe='/~')}")
        if resp.status != 200:
            resp.read()
            return None
        fd, path = tempfile.mkstemp(dir=self.proxy.workdir, suffix=".stale")
        size = 0
        with os.fdopen(fd, "wb") as out:
            while data := resp.read(1 << 20):
                out.write(data)
                size += len(data)
        headers = tuple((k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP)
        return StaleObject(headers, path, size)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """``(first, last)`` of a single ``bytes=`` range, ``"invalid"``, or ``None`` (whole)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if not first:
            n = int(last)
            start, end = max(size - n, 0), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None
    if start >= size or start > end:
        return "invalid"
    return start, end

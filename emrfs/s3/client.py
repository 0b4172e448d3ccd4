"""The only code that speaks to S3: an aiobotocore client with our retry and error policy.

* One client per process and event loop, created on first use and dropped
  (not closed: its sockets belong to the parent) after ``fork``, so
  multiprocessing and dask's process workers never hang on a dead loop.
* Request-level retries (throttling, 5xx, dropped connections) are botocore's
  "standard" mode with ``s3.max_attempts``.  Streaming bodies that break
  mid-read are retried here, from the byte where they broke.
* Every error leaves through :func:`emrfs.errors.map_s3_errors`, once.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import os
import random
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..config import S3Options
from ..errors import (  # ChangedError re-exported: it lived here first
    ChangedError,
    ConfigurationError,
    ServiceError,
    TransportError,
    is_retryable,
    map_s3_errors,
)

logger = logging.getLogger("emrfs.s3")

#: botocore's own checksum computation costs a pass over every byte and is not
#: required by S3; ETags and our own checks cover integrity.
_CHECKSUM_MODE = "when_required"


class S3Client:
    """Lazily created, fork-aware aiobotocore S3 client bound to one options set.

    A GET that carries ``IfMatch`` and meets another version is :class:`ChangedError`;
    what that means (a stale copy to wait out) is the consistent layer's to decide.
    """

    def __init__(self, options: S3Options, *, sleep=asyncio.sleep):
        self.options = options
        self._sleep = sleep
        self._client: Any = None  # aiobotocore's, untyped
        self._context: Any = None
        self._pid = os.getpid()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        if options.require_tls and not (options.endpoint_url or "https://").lower().startswith(
            "https://"
        ):
            raise ConfigurationError(
                f"s3.require_tls is on but the endpoint {options.endpoint_url!r} is not https://",
                "s3.endpoint_url",
            )

    # --- lifecycle -------------------------------------------------------------

    def _stale(self) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        return self._pid != os.getpid() or (self._client is not None and loop is not self._loop)

    async def get(self):
        """The live client for this process and loop."""
        if self._stale():
            # After fork (or on another loop) the old client's connector is unusable;
            # forget it without closing: closing would touch the parent's sockets.
            self._client = self._context = None
            self._lock = None
            self._pid = os.getpid()
        if self._client is not None:
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is None:
                self._context = self._make_context()
                self._client = await self._context.__aenter__()
                self._loop = asyncio.get_running_loop()
                weakref.finalize(self, _close_at_exit, self._loop, self._context, os.getpid())
        return self._client

    def _make_context(self):
        from aiobotocore.config import AioConfig
        from botocore import UNSIGNED

        o = self.options
        style = o.addressing_style
        if style == "auto" and o.endpoint_url:
            style = "path"  # local and S3-compatible endpoints rarely have wildcard DNS
        config = AioConfig(
            retries={"max_attempts": o.max_attempts, "mode": "standard"},
            connect_timeout=o.connect_timeout,
            read_timeout=o.read_timeout,
            max_pool_connections=o.max_pool_connections,
            s3={"addressing_style": style},
            signature_version=UNSIGNED if o.anon else None,
            request_checksum_calculation=_CHECKSUM_MODE,
            response_checksum_validation=_CHECKSUM_MODE,
        )
        session = _shared_session(o.profile)
        kwargs: dict[str, Any] = {"config": config, **client_kwargs(o)}
        return session.create_client("s3", **kwargs)

    async def close(self) -> None:
        if self._context is not None and not self._stale():
            context, self._context, self._client = self._context, None, None
            await context.__aexit__(None, None, None)

    # --- calls -------------------------------------------------------------------

    async def call(self, method: str, path: str, **kwargs: Any) -> dict:
        """``client.<method>(**kwargs)`` with errors translated for ``path``."""
        client = await self.get()
        with map_s3_errors(path):
            return await getattr(client, method)(**kwargs)

    async def read_range(
        self,
        path: str,
        bucket: str,
        key: str,
        start: int,
        end: int,
        *,
        on_response: Callable[[dict], None] | None = None,
        **kwargs: Any,
    ) -> bytes:
        """Bytes ``[start, end)`` of an object; a body that breaks is resumed, not restarted.

        ``on_response`` sees each GetObject response (headers, user metadata)
        before its body is read, and may raise to stop the read.

        As a local file reads: a range starting at or after the end of the object
        is ``b""``, one running past the end is cut there (S3's 416 InvalidRange is
        not an error here).
        """
        if end <= start:
            return b""
        parts: list[bytes] = []
        got = 0
        attempt = 0
        while True:
            response = await self._get_from(path, bucket, key, start + got, end, kwargs)
            if response is None:
                break  # nothing at or after start + got: the object ends there
            size = _object_size(response)
            if size is not None:
                end = min(end, size)  # a range past the end is cut there
            kwargs = _resume_pinned(kwargs, response)
            if on_response is not None:
                on_response(response)
            try:
                await _read_into(response["Body"], parts)
            except Exception as exc:  # classified just below
                got = sum(map(len, parts))
                if not is_retryable(exc) or attempt + 1 >= self.options.max_attempts:
                    with map_s3_errors(path):
                        raise
                attempt += 1
                logger.info("read of %s broke at byte %d (%s); resuming", path, start + got, exc)
                await self._sleep(self.backoff(attempt))
                continue
            got = sum(map(len, parts))
            if got < end - start and response.get("ContentLength", 0) == 0:
                break
            if got >= end - start:
                break
            # short read without an error: the server closed early; resume from there
            attempt += 1
            if attempt >= self.options.max_attempts:
                raise TransportError(
                    f"S3 kept ending the body of {path!r} early (got {got} of {end - start} "
                    "bytes); check the endpoint",
                    path,
                )
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def _get_from(
        self, path: str, bucket: str, key: str, start: int, end: int, kwargs: dict[str, Any]
    ) -> dict | None:
        """GetObject of bytes ``[start, end)``; None when nothing is at or after ``start``
        (S3's 416 InvalidRange)."""
        try:
            return await self._conditional_get(
                path, Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **kwargs
            )
        except ServiceError as exc:
            if exc.code != "InvalidRange":
                raise
            return None

    async def get_object_stream(
        self,
        path: str,
        bucket: str,
        key: str,
        chunk_size: int = 8 * 1024 * 1024,
        on_response: Callable[[dict], None] | None = None,
        *,
        start: int = 0,
        end: int | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[bytes]:
        """The object (or bytes ``[start, end)`` of it) as chunks of about ``chunk_size``,
        from one GET, resuming from the last byte if the body breaks.

        ``on_response`` sees each GetObject response before its body is read.
        Memory stays at one chunk whatever the length: this is for piping through.
        """
        got = 0
        attempt = 0
        total: int | None = None if end is None else max(0, end - start)
        while total is None or got < total:
            extra = dict(kwargs)
            if got or start or end is not None:
                last = "" if end is None else str(end - 1)
                extra["Range"] = f"bytes={start + got}-{last}"
            try:
                response = await self._conditional_get(path, Bucket=bucket, Key=key, **extra)
            except ServiceError as exc:
                if exc.code != "InvalidRange":
                    raise
                return  # nothing at or after the start: the object ends there
            size = _object_size(response)
            if total is not None and size is not None:
                total = min(total, size - start)  # a range past the end is cut there
            kwargs = _resume_pinned(kwargs, response)
            if on_response is not None:
                on_response(response)
            if total is None:
                total = response.get("ContentLength", 0)
            body = response["Body"]
            try:
                async with body:
                    async for chunk in _gathered(body, chunk_size):
                        got += len(chunk)
                        yield chunk
            except Exception as exc:
                if not is_retryable(exc) or attempt + 1 >= self.options.max_attempts:
                    with map_s3_errors(path):
                        raise
                attempt += 1
                await self._sleep(self.backoff(attempt))
                continue
            if got < total:
                attempt += 1
                if attempt >= self.options.max_attempts:
                    raise TransportError(f"S3 kept ending the body of {path!r} early", path)

    async def _conditional_get(self, path: str, **kwargs: Any) -> dict:
        """GET that reports a changed object as :class:`ChangedError` when ``IfMatch`` is set.

        S3 answers 412 to a failed If-Match; an intermediary (a cache, a lagging
        replica, the fault proxy) may ignore the condition, so the ETag is checked too.
        """
        expected = kwargs.get("IfMatch")
        try:
            response = await self.call("get_object", path, **kwargs)
        except FileExistsError as exc:  # the table's reading of 412
            if expected is None:
                raise
            raise ChangedError(path, expected, None) from exc
        got = response.get("ETag")
        if expected is not None and got is not None and got.strip('"') != expected.strip('"'):
            response["Body"].close()
            raise ChangedError(path, expected, got)
        return response

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (1-based)."""
        cap = min(
            self.options.retry_max_seconds, self.options.retry_base_seconds * (2 ** (attempt - 1))
        )
        return (rng or random).uniform(0, cap)


_sessions: dict[tuple[int, str | None], Any] = {}


def _shared_session(profile: str | None):
    """One aiobotocore session per process and profile: a new session parses botocore's
    S3 model again (0.2-1 s); clients made from one session share the parsed model.

    A forked child makes its own session (a parent's holds credentials whose locks may
    have been held at the fork) but takes over the parent's data loader: the models it
    already parsed are plain data, and parsing them again would cost the child's first
    request half a second.
    """
    from aiobotocore.session import get_session

    key = (os.getpid(), profile)
    session = _sessions.get(key)
    if session is None:
        inherited = next(iter(_sessions.values()), None)  # a parent's (or a sibling profile's)
        if len(_sessions) > 16:  # stale entries of forked parents
            _sessions.clear()
        session = get_session()
        if inherited is not None:
            session.register_component("data_loader", inherited.get_component("data_loader"))
        session.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=_parse_timestamp
        )
        _check_200_errors_but_whole_listings(session)
        if profile:
            session.set_config_variable("profile", profile)
        _sessions[key] = session
    return session


def _parse_timestamp(value: Any) -> Any:
    """S3's XML timestamps (ISO 8601 with a zone, ``2026-12-06T07:00:00.000Z``) read by
    the C ``datetime`` parser; anything else (HTTP dates of headers, epoch numbers) by
    botocore's own, which goes through dateutil at ~20x the cost: a LIST page carries one
    per key, and in a forked child (botocore transport) they were most of a listing's CPU."""
    if isinstance(value, str):
        try:
            moment = _dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return moment
    from botocore.utils import parse_timestamp

    return parse_timestamp(value)


def _check_200_errors_but_whole_listings(session: Any) -> None:
    """botocore parses every 200 answer of S3 once more (a whole XML tree) to catch an
    error or a body cut short before the real parse; a LIST page that ends with its
    closing tag is neither, so it skips that second parse (a fifth of a forked child's
    listing CPU).  Other answers are checked by botocore's own handler, as before."""
    try:
        from botocore.handlers import _handle_200_error as check
    except ImportError:  # another botocore: its own checks stay as they are
        return

    def check_but_whole_listings(operation_model: Any, response_dict: Any, **kwargs: Any) -> None:
        body = response_dict.get("body") if response_dict else None
        if (
            operation_model.name in ("ListObjectsV2", "ListObjects")
            and response_dict.get("status_code") == 200
            and isinstance(body, bytes)
            and body.rstrip().endswith(b"</ListBucketResult>")
        ):
            return
        check(operation_model, response_dict, **kwargs)

    events = session.get_component("event_emitter")
    events.unregister("before-parse.s3.*", check)
    events.register_first("before-parse.s3.*", check_but_whole_listings)


def _resume_pinned(kwargs: dict[str, Any], response: dict) -> dict[str, Any]:
    """GET kwargs for resuming a body that broke: pinned to the version the first
    response served, so a resumed read never mixes two versions."""
    etag = response.get("ETag")
    if not etag or kwargs.get("IfMatch") == etag:
        return kwargs
    return {**kwargs, "IfMatch": etag}


def _object_size(response: dict) -> int | None:
    """The whole object's length from a ranged GET's ``Content-Range`` (``bytes a-b/size``),
    or None when the response does not say."""
    _, _, size = (response.get("ContentRange") or "").rpartition("/")
    return int(size) if size.isdigit() else None


async def _read_into(body: Any, parts: list[bytes]) -> None:
    """A GetObject body appended to ``parts`` in 4 MiB reads (what came before a break stays)."""
    async with body:
        while True:
            chunk = await body.read(4 * 1024 * 1024)
            if not chunk:
                return
            parts.append(chunk)


async def _gathered(body, size: int) -> AsyncIterator[bytes]:
    """A body's bytes in pieces of ``size`` (the last one shorter): the socket hands out
    whatever has arrived, often 64 KiB, and each piece costs its reader a round."""
    parts: list[bytes] = []
    held = 0
    while True:
        piece = await body.read(size - held)
        if not piece:
            break
        parts.append(piece)
        held += len(piece)
        if held >= size:
            yield parts[0] if len(parts) == 1 else b"".join(parts)
            parts, held = [], 0
    if parts:
        yield b"".join(parts)


def client_kwargs(o: S3Options, endpoint_url: str | None = None) -> dict[str, Any]:
    """Endpoint, region, credentials and CA bundle for an aiobotocore client
    (S3, or KMS beside it with ``endpoint_url``)."""
    kwargs: dict[str, Any] = {}
    endpoint = endpoint_url or o.endpoint_url
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    kwargs["region_name"] = (
        o.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    if o.access_key_id:
        kwargs["aws_access_key_id"] = o.access_key_id
        kwargs["aws_secret_access_key"] = o.secret_access_key
        if o.session_token:
            kwargs["aws_session_token"] = o.session_token
    if o.ca_bundle:
        kwargs["verify"] = o.ca_bundle
    return kwargs


def _close_at_exit(loop: asyncio.AbstractEventLoop, context, pid: int) -> None:
    """Close a client whose owner was collected (or at exit), if its loop still runs."""
    if pid != os.getpid() or loop.is_closed() or not loop.is_running():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        # collected on the loop's own thread (GC runs anywhere): waiting for the
        # close here would block the loop on itself for the whole timeout
        loop.create_task(context.__aexit__(None, None, None))
        return
    try:
        asyncio.run_coroutine_threadsafe(context.__aexit__(None, None, None), loop).result(2)
    except Exception:  # noqa: BLE001 - best effort at shutdown
        pass

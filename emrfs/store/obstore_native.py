"""What the obstore transport needs outside its verbs: whether obstore may serve this
process (fork safety), which transport the options pick, which keys obstore can
address, and obstore's ``S3Store`` built from emrfs's options (credentials from
botocore's chain)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # obstore's TypedDicts exist only for type checkers
    from obstore.store import ClientConfig, RetryConfig, S3Config, S3Credential

from ..config import S3Options, SSEOptions
from ..errors import ConfigurationError
from ..workers import PerProcess, WorkerPool

logger = logging.getLogger("emrfs.store.obstore")

#: obstore's path type refuses these characters (Rust's ``char::is_control``).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

# --- fork safety ----------------------------------------------------------------------
# obstore's tokio runtime is per process and does not survive fork: once a parent made a
# request, any request in a forked child hangs, even through a new S3Store.  We record
# that this process used obstore; a child forked afterwards inherits the mark and
# routes every verb to botocore.

_used_in: int | None = None  # pid of the process that made obstore requests
_forked_after_use = False  # this process was forked from one that had


def _after_fork_in_child() -> None:
    global _forked_after_use
    if _used_in is not None:
        _forked_after_use = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _mark_used() -> None:
    global _used_in
    if _used_in is None:
        _used_in = os.getpid()


# --- calls off the event loop -----------------------------------------------------------
# obstore's async API finishes each call on a tokio thread, which sets the result on the
# event loop and then writes the loop's wake-up byte without the GIL.  Should the program
# end in that instant (its work done, the loop already woken by the result), the tokio
# thread takes the GIL back during finalization, CPython ends it with pthread_exit through
# Rust frames, and the process aborts (SIGABRT, exit 134): 2-7% of short scripts here.
# obstore's blocking API waits without the GIL on the calling thread, and no tokio thread
# enters Python; so every obstore call runs blocking on one of these threads, which
# Python joins before it finalizes.

_T = TypeVar("_T")
_END = object()
_native = PerProcess(64, "emrfs-obstore")


def native_pool() -> WorkerPool:
    """The threads obstore's calls block on (made on first need, per process).  One per
    call in flight: a large GET keeps one per part it drains, several GETs at once each up
    to eight; a call beyond the pool's size waits for a thread."""
    return _native()


async def blocking(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """``fn(*args, **kwargs)`` (an obstore call that blocks) on a pool thread."""
    if kwargs:
        return await native_pool().run(partial(fn, *args, **kwargs))
    return await native_pool().run(fn, *args)


def get_reading_small(
    store: Any, key: str, options: Any, small: Callable[[int], bool] | None
) -> tuple[Any, bytes | None]:
    """obstore's GET, and its body read on the same pool thread when ``small(size)`` says
    the object's size makes the GET the whole read: a small read is one trip through the
    pool, not one for the headers and another for the body.  ``(result, body or None)``."""
    import obstore

    result = obstore.get(store, key, options=options)
    if small is not None and small(result.meta["size"]):
        return result, bytes(result.bytes())
    return result, None


async def each(items: Iterator[_T]) -> AsyncIterator[_T]:
    """A blocking iterator's items (obstore's list and body streams), each fetched on a
    pool thread; the next one is asked for while the caller uses this one (a listing's
    next page comes while this page is folded, not after)."""
    pending: asyncio.Future[Any] = native_pool().run(next, items, _END)
    try:
        while True:
            item = await pending
            if item is _END:
                return
            pending = native_pool().run(next, items, _END)
            yield item
    finally:
        pending.cancel()  # a consumer that stopped early: the item is dropped


def obstore_available() -> bool:
    """obstore is installed, with arro3-core (its listings come as Arrow batches): both
    are dependencies; a trimmed install may lack them."""
    try:
        import arro3.core  # noqa: F401
        import obstore  # noqa: F401
    except ImportError:
        return False
    return True


def obstore_usable() -> bool:
    """obstore can serve requests in this process: installed, and this process was not
    forked from one whose obstore runtime had started (see the module doc)."""
    return (
        not _forked_after_use
        and (_used_in is None or _used_in == os.getpid())
        and obstore_available()
    )


def unsupported_by_obstore(s3: S3Options, sse: SSEOptions) -> str | None:
    """Why obstore cannot serve a store with these options (a reason), or None."""
    if sse.customer_key and sse.algorithm == "SSE-C" and not sse.enabled:
        return (
            "an SSE-C key is configured for reads with sse.enabled off: obstore sends "
            "the key on writes too"
        )
    return None


def choose_transport(s3: S3Options, sse: SSEOptions) -> str:
    """``"obstore"`` or ``"botocore"`` for ``s3.transport`` in this process.

    ``auto`` and ``obstore`` both fall back to botocore (``auto`` also for an option
    obstore cannot honour); a forked child of a process that used obstore always does.
    """
    if s3.transport == "botocore":
        return "botocore"
    if not obstore_available():
        if s3.transport == "obstore":
            raise ConfigurationError(
                "s3.transport is 'obstore' but obstore is not installed: "
                "pip install obstore, or set s3.transport=auto",
                "s3.transport",
            )
        return "botocore"
    if not obstore_usable():
        logger.debug("forked from a process that used obstore: using the botocore transport")
        return "botocore"
    if s3.transport == "auto":
        reason = unsupported_by_obstore(s3, sse)
        if reason:
            logger.debug("s3.transport=auto picks botocore: %s", reason)
            return "botocore"
    return "obstore"


def forked_after_use(store_pid: int) -> bool:
    """This process may not use obstore (forked after a process, or the process that
    made the store of ``store_pid``, started obstore's runtime)."""
    return _forked_after_use or (store_pid != os.getpid() and _used_in not in (None, os.getpid()))


def obstore_key(key: str) -> bool:
    """True when obstore addresses exactly this key (its path type strips a trailing
    ``/`` and refuses empty, ``.`` and ``..`` segments and control characters)."""
    if not key or key.startswith("/") or key.endswith("/") or "//" in key:
        return False
    if _CONTROL.search(key):
        return False
    return not any(part in (".", "..") for part in key.split("/"))


def _seconds(value: float) -> _dt.timedelta:
    return _dt.timedelta(seconds=value)


def make_native_store(
    o: S3Options, sse: SSEOptions, write_sse: str | None, customer_key: Any, bucket: str
) -> Any:
    """obstore's ``S3Store`` for ``bucket`` with these resolved options."""
    from obstore.store import S3Store

    config: S3Config = {
        "region": o.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1",
    }
    client = _client_options(o)
    _address(o, bucket, config, client)
    credential_provider = _credentials(o, config)
    _encryption(sse, write_sse, customer_key, config)
    return S3Store(
        bucket,
        config=config,
        client_options=client,
        retry_config=_retries(o),
        credential_provider=credential_provider,
    )


def _client_options(o: S3Options) -> ClientConfig:
    """The HTTP client's timeouts, pool and trusted certificates."""
    client: ClientConfig = {
        "connect_timeout": _seconds(o.connect_timeout),
        "read_timeout": _seconds(o.read_timeout),
        # the whole request, body included: a stream is read at its consumer's pace,
        # so only a stall (read_timeout) may end it
        "timeout": _dt.timedelta(days=1),
        "pool_max_idle_per_host": str(o.max_pool_connections),
    }
    if o.ca_bundle:
        with open(o.ca_bundle, "rb") as f:
            client["root_certificate"] = f.read()
    return client


def _address(o: S3Options, bucket: str, config: S3Config, client: ClientConfig) -> None:
    """The endpoint and addressing style of ``bucket`` into ``config`` (and whether the
    client may speak plain http)."""
    style = o.addressing_style
    if style == "auto":
        style = "path" if o.endpoint_url or "." in bucket else "virtual"
    if o.endpoint_url:
        endpoint = o.endpoint_url.rstrip("/")
        if style == "virtual":  # obstore wants the bucket in a virtual-hosted endpoint
            scheme, _, host = endpoint.partition("://")
            endpoint = f"{scheme}://{bucket}.{host}"
        config["endpoint"] = endpoint
        client["allow_http"] = endpoint.lower().startswith("http://")
    config["virtual_hosted_style_request"] = style == "virtual"


def _credentials(o: S3Options, config: S3Config) -> _BotocoreCredentials | None:
    """Static keys (or no signing) into ``config``; else the provider of botocore's chain."""
    if o.anon:
        config["skip_signature"] = True
    if o.access_key_id:
        config["access_key_id"] = o.access_key_id
        config["secret_access_key"] = o.secret_access_key or ""
        if o.session_token:
            config["session_token"] = o.session_token
    elif not o.anon:
        return chain_credentials(o.profile)
    return None


_providers: dict[tuple[int, str | None], _BotocoreCredentials] = {}


def chain_credentials(profile: str | None) -> _BotocoreCredentials:
    """botocore's chain for ``profile``, one per process: every bucket's store, in every
    filesystem, signs with what one resolution found (a new botocore session per store
    cost ~6 ms of CPU, and with an instance role a metadata-service call, per bucket)."""
    key = (os.getpid(), profile)  # a forked child resolves anew
    provider = _providers.get(key)
    if provider is None:
        provider = _providers[key] = _BotocoreCredentials(profile)
    return provider


def _encryption(
    sse: SSEOptions, write_sse: str | None, customer_key: Any, config: S3Config
) -> None:
    """The writes' server-side encryption (SSE-S3, SSE-KMS or SSE-C) into ``config``."""
    if write_sse == "SSE-C" and customer_key:
        config["server_side_encryption"] = "sse-c"
        config["sse_customer_key_base64"] = customer_key[0]
    elif write_sse:
        config["server_side_encryption"] = write_sse
        if sse.kms_key_id and write_sse.startswith("aws:kms"):
            config["sse_kms_key_id"] = sse.kms_key_id
        if sse.bucket_key_enabled:
            config["sse_bucket_key_enabled"] = True


def _retries(o: S3Options) -> RetryConfig:
    return {
        "max_retries": o.max_attempts - 1,
        "backoff": {
            "init_backoff": _seconds(max(o.retry_base_seconds, 0.001)),
            "max_backoff": _seconds(max(o.retry_max_seconds, 0.001)),
            "base": 2,
        },
    }


def _unparseable(exc: BaseException) -> bool:
    """obstore met a key its path type cannot hold (``a//b``, ``./``, a control character)."""
    for item in (exc, exc.__cause__):
        if item is not None and (
            (
                type(item).__name__ == "InvalidPathError"
                and type(item).__module__.startswith("obstore")
            )
            or "Could not parse path" in str(item)
        ):
            return True
    return False


class _BotocoreCredentials:
    """obstore credentials from botocore's chain (profiles, ``~/.aws``, SSO, roles),
    refreshed when botocore's expire; obstore's own chain knows no profiles."""

    def __init__(self, profile: str | None):
        self.profile = profile
        self._credentials: Any = None

    def __call__(self) -> S3Credential:
        if self._credentials is None:
            import botocore.session

            session = botocore.session.Session(profile=self.profile)
            self._credentials = session.get_credentials()
            if self._credentials is None:
                from botocore.exceptions import NoCredentialsError

                raise NoCredentialsError()
        frozen = self._credentials.get_frozen_credentials()
        expiry = getattr(self._credentials, "_expiry_time", None)
        return {
            "access_key_id": frozen.access_key,
            "secret_access_key": frozen.secret_key,
            "token": frozen.token,
            "expires_at": expiry,
        }

"""Reading what a provider raised (botocore's ``ClientError``, obstore's message text,
pynamodb's causes) and translating it, once, through :data:`AWS_ERROR_TABLE`."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from .hierarchy import (
    EmrfsError,
    ThrottledError,
    TransportError,
)
from .table import (
    ANY,
    AWS_ERROR_TABLE,
    DEFAULT,
    NO_CREDENTIALS,
    S3,
    THROTTLED,
    THROTTLING_CODES,
    TRANSIENT_CODES,
    TRANSPORT,
    AwsFailure,
)


def error_chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and what caused it (``__cause__``, or pynamodb's ``cause``), without loops."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "cause", None) or exc.__cause__


def aws_error_code(exc: BaseException) -> tuple[str, int | None]:
    """The provider's error code and HTTP status of the first ``ClientError`` (or obstore
    error) in the chain."""
    from botocore.exceptions import ClientError

    for item in error_chain(exc):
        if isinstance(item, ClientError):
            return (
                str((item.response.get("Error") or {}).get("Code", "") or ""),
                item.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            )
        if is_obstore_error(item):
            return obstore_error_code(item)
    return "", None


#: obstore (Rust object_store) reports S3's answer only in its message text.
_OBSTORE_STATUS = re.compile(r"Server returned non-2xx status code: (\d{3})")
_OBSTORE_CODE = re.compile(r"<Code>([^<]+)</Code>")
_OBSTORE_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_OBSTORE_TLS = re.compile(r"(\w*Certificate\w*)\(\s*(\w+)")
_OBSTORE_OS_MESSAGE = re.compile(r'message: "([^"]+)"')
#: reqwest's failure kinds that mean the connection, not the service, failed
_OBSTORE_TRANSPORT = re.compile(r"HTTP error: |kind: (Connect|Timeout|Request|Body|Decode)\b")
#: obstore's exception classes for what S3 said (the rest are built-ins it raises too)
_OBSTORE_PRECONDITION = {
    "AlreadyExistsError": "PreconditionFailed",
    "PreconditionError": "PreconditionFailed",
    "PermissionDeniedError": "AccessDenied",
    "UnauthenticatedError": "InvalidAccessKeyId",
}


def is_obstore_error(exc: BaseException) -> bool:
    """An exception raised by obstore: its own classes, or a built-in it raised (obstore
    raises ``FileNotFoundError`` itself, with its debug trace in the message)."""
    if type(exc).__module__.startswith("obstore"):
        return True
    return isinstance(exc, (FileNotFoundError, ValueError)) and "Debug source:" in str(exc)


def obstore_error_code(exc: BaseException) -> tuple[str, int | None]:
    """S3's error code and HTTP status read from an obstore exception's text (the XML
    body it quotes), or its class when the body has none (a HEAD's 404 has no body)."""
    text = str(exc)
    status_match = _OBSTORE_STATUS.search(text)
    status = int(status_match.group(1)) if status_match else None
    code_match = _OBSTORE_CODE.search(text)
    if code_match:
        return code_match.group(1), status
    code = _OBSTORE_PRECONDITION.get(type(exc).__name__, "")
    if not code and isinstance(exc, FileNotFoundError):
        code = "NotFound"
    return code, status


def _row_key(service: str, exc: BaseException, code: str, status: int | None) -> tuple[str, str]:
    for key in ((service, code), (ANY, code)):
        if code and key in AWS_ERROR_TABLE:
            return key
    if status is not None and (service, str(status)) in AWS_ERROR_TABLE:
        return service, str(status)
    if code in THROTTLING_CODES or status == 503:
        return service, THROTTLED
    if any(_is_missing_credentials(e) for e in error_chain(exc)):
        return ANY, NO_CREDENTIALS
    if not code and any(_is_transport_error(e) for e in error_chain(exc)):
        return service, TRANSPORT
    return service, DEFAULT


_OURS = (
    EmrfsError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def _already_translated(exc: BaseException) -> bool:
    """An error emrfs (or Python) already classified; obstore raises a bare
    ``FileNotFoundError`` of its own, which still needs the table."""
    return isinstance(exc, _OURS) and not is_obstore_error(exc)


def translate_aws_error(
    exc: BaseException,
    path: str | None,
    service: str = S3,
    *,
    code: str | None = None,
    operation: str = "",
    resource: str = "",
    name: str = "",
    retries: int | None = None,
    elapsed: float | None = None,
) -> BaseException:
    """The emrfs/built-in exception for what an AWS call about ``path`` raised.

    One lookup in :data:`AWS_ERROR_TABLE` by ``(service, code)``; ``code``
    overrides the one read from the exception (for conditions a boundary
    recognises itself).  Errors emrfs already raised, and exceptions that are
    neither an AWS answer nor a transport failure, come back unchanged.  The
    result has ``exc`` as its ``__cause__``.
    """
    if _already_translated(exc):
        return exc
    read_code, status = aws_error_code(exc)
    code = code if code is not None else read_code
    key = _row_key(service, exc, code, status)
    if key[1] == DEFAULT and not code and not _is_aws_error(exc):
        return exc  # not ours to translate (a bug, a cancellation...)
    make, hint = AWS_ERROR_TABLE[key]
    failure = AwsFailure(
        service,
        path,
        code,
        status,
        _provider_message(exc),
        operation,
        resource,
        name,
        retries,
        elapsed,
    )
    new = make(failure, hint.format(name=name, path=path) if hint else hint)
    new.__cause__ = exc
    return new


def translate_s3_error(exc: BaseException, path: str) -> BaseException:
    """:func:`translate_aws_error` for S3 (the transport's boundary)."""
    return translate_aws_error(exc, path, S3)


def _provider_message(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    for item in error_chain(exc):
        if isinstance(item, ClientError):
            return (item.response.get("Error") or {}).get("Message") or str(item)
        if is_obstore_error(item):  # S3's own <Message>, else obstore's first line
            text = str(item)
            found = _OBSTORE_XML_MESSAGE.search(text)
            if found:
                return found.group(1)
            # and the root cause its debug trace names (a refused connection, a TLS
            # certificate not trusted), which the first line leaves out
            cause = _OBSTORE_TLS.search(text) or _OBSTORE_OS_MESSAGE.search(text)
            first = text.split("\n", 1)[0]
            if cause is None:
                return first
            return f"{first} ({' '.join(g for g in cause.groups() if g)})"
    return str(exc)


def _is_aws_error(exc: BaseException) -> bool:
    """A botocore or pynamodb error anywhere in the chain (the service's, or the SDK's)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from pynamodb.exceptions import PynamoDBException

    return any(
        isinstance(e, (BotoCoreError, ClientError, PynamoDBException)) or is_obstore_error(e)
        for e in error_chain(exc)
    )


def _is_missing_credentials(exc: BaseException) -> bool:
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    return isinstance(exc, (NoCredentialsError, PartialCredentialsError))


def _is_transport_error(exc: BaseException) -> bool:
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
        HTTPClientError,
        ReadTimeoutError,
        ResponseStreamingError,
    )

    if is_obstore_error(exc):  # no S3 answer, and reqwest says the connection failed
        return (
            _OBSTORE_STATUS.search(str(exc)) is None
            and _OBSTORE_TRANSPORT.search(str(exc)) is not None
        )
    transport: tuple[type[BaseException], ...] = (
        BotoConnectionError,
        HTTPClientError,
        ReadTimeoutError,
        ResponseStreamingError,
        ConnectionError,
        TimeoutError,
    )
    try:
        import aiohttp

        transport = (*transport, aiohttp.ClientError)
    except ImportError:  # pragma: no cover - aiohttp comes with aiobotocore
        pass
    return isinstance(exc, transport)


def is_retryable(exc: BaseException) -> bool:
    """True for throttling, transient server errors and dropped connections."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {}) or {}
        code = str(error.get("Code", "") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in THROTTLING_CODES or code in TRANSIENT_CODES or status in (500, 502, 503, 504)
    return _is_transport_error(exc) or isinstance(exc, (ThrottledError, TransportError))


@contextlib.contextmanager
def map_s3_errors(path: str) -> Iterator[None]:
    """Translate what S3 raises inside the block into the emrfs hierarchy, once."""
    try:
        yield
    except Exception as exc:
        new = translate_s3_error(exc, path)  # errors already ours come back unchanged
        if new is exc:
            raise
        raise new from exc

"""How a DynamoDB failure is classified: retryable, conditional check failed, table missing.

Pure predicates over an exception's chain (botocore and pynamodb errors, and
:class:`Unprocessed`, raised for a batch DynamoDB left partly unprocessed);
the translation into emrfs errors is :func:`emrfs.errors.translate_aws_error`.
"""

from __future__ import annotations

from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)
from pynamodb.exceptions import TableDoesNotExist

from ..errors import THROTTLING_CODES, TRANSIENT_CODES, aws_error_code, error_chain

_RETRYABLE_CODES = (
    THROTTLING_CODES
    | TRANSIENT_CODES
    | {
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailableException",
        "TransactionInProgressException",
        "Unprocessed",
    }
)
_TRANSPORT = (BotoConnectionError, HTTPClientError, ReadTimeoutError, ConnectionError, TimeoutError)


class Unprocessed(Exception):
    """A batch came back partly unprocessed (DynamoDB's soft throttling)."""

    code = "Unprocessed"


def code_and_status(exc: BaseException) -> tuple[str, int | None]:
    code, status = aws_error_code(exc)
    if not code and any(isinstance(e, Unprocessed) for e in error_chain(exc)):
        code = Unprocessed.code
    return code, status


def is_transport(exc: BaseException) -> bool:
    return any(isinstance(e, _TRANSPORT) for e in error_chain(exc))


def retryable(exc: BaseException) -> bool:
    code, status = code_and_status(exc)
    return code in _RETRYABLE_CODES or (status or 0) >= 500 or is_transport(exc)


def conditional_failed(exc: BaseException) -> bool:
    return code_and_status(exc)[0] == "ConditionalCheckFailedException"


def table_missing(exc: BaseException) -> bool:
    return (
        isinstance(exc, TableDoesNotExist) or code_and_status(exc)[0] == "ResourceNotFoundException"
    )

"""Server-side encryption: from :class:`~emrfs.config.SSEOptions` to request kwargs.

Pure functions, one per request family.  The filesystem resolves the options
for the path first (``options.for_path(path).sse``) and merges the returned
dict into the boto call::

    put_object / create_multipart_upload   write_kwargs(sse)
    upload_part                            part_kwargs(sse)
    get_object / head_object               read_kwargs(sse)
    copy_object                            copy_kwargs(dest_sse, source_sse)
    upload_part_copy                       copy_part_kwargs(dest_sse, source_sse)

(a multipart copy starts with ``create_multipart_upload(**write_kwargs(dest))``).

SSE-C keys go out as base64 with their MD5 already computed, so botocore's
own SSE-C customisation (which only runs when the MD5 is missing) leaves them
alone and the same dict works for boto3 and aiobotocore.  The SSE-C key is
sent on reads and copies whenever one is configured, even with ``sse.enabled``
off: objects written earlier with it stay readable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from ..config import SSEOptions
from ..errors import ConfigurationError

__all__ = [
    "effective_algorithm",
    "customer_key",
    "write_kwargs",
    "part_kwargs",
    "read_kwargs",
    "copy_kwargs",
    "copy_part_kwargs",
]

_SSE_C = "SSE-C"
_KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


def effective_algorithm(sse: SSEOptions) -> str | None:
    """The algorithm new objects get, or None when SSE is off.

    A KMS key id with the default algorithm means SSE-KMS, as EMRFS reads
    ``fs.s3.serverSideEncryption.kms.keyId``.
    """
    if not sse.enabled:
        return None
    if sse.kms_key_id and sse.algorithm == "AES256":
        return "aws:kms"
    return sse.algorithm


def customer_key(sse: SSEOptions) -> tuple[str, str] | None:
    """``(base64 key, base64 MD5 of the key)`` of the SSE-C key, or None.

    Raises :class:`ConfigurationError` when the key is not base64 of 32 bytes.
    """
    if sse.algorithm != _SSE_C or not sse.customer_key:
        return None
    text = sse.customer_key.strip()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(
            "sse.customer_key (fs.s3.serverSideEncryption.customerKey) is not valid base64; "
            "give base64 of a 256-bit key, e.g. from `openssl rand -base64 32`",
            "sse.customer_key",
        ) from exc
    if len(raw) != 32:
        raise ConfigurationError(
            f"sse.customer_key (fs.s3.serverSideEncryption.customerKey) decodes to {len(raw)} "
            "bytes; SSE-C needs a 256-bit (32-byte) key, base64-encoded",
            "sse.customer_key",
        )
    md5 = base64.b64encode(hashlib.md5(raw).digest()).decode("ascii")  # noqa: S324 - S3's protocol
    return base64.b64encode(raw).decode("ascii"), md5


def _customer_kwargs(sse: SSEOptions, prefix: str) -> dict[str, str]:
    key = customer_key(sse)
    if key is None:
        return {}
    return {f"{prefix}Algorithm": "AES256", f"{prefix}Key": key[0], f"{prefix}KeyMD5": key[1]}


def write_kwargs(sse: SSEOptions) -> dict[str, Any]:
    """Kwargs for ``put_object`` and ``create_multipart_upload``."""
    algorithm = effective_algorithm(sse)
    if algorithm is None:
        return {}
    if algorithm == _SSE_C:
        return _customer_kwargs(sse, "SSECustomer")
    kwargs: dict[str, Any] = {"ServerSideEncryption": algorithm}
    if algorithm in _KMS_ALGORITHMS:
        if sse.kms_key_id:
            kwargs["SSEKMSKeyId"] = sse.kms_key_id
        if sse.bucket_key_enabled:
            kwargs["BucketKeyEnabled"] = True
    return kwargs


def part_kwargs(sse: SSEOptions) -> dict[str, Any]:
    """Kwargs for ``upload_part``: S3 wants the SSE-C key again on every part."""
    return _customer_kwargs(sse, "SSECustomer") if effective_algorithm(sse) == _SSE_C else {}


def read_kwargs(sse: SSEOptions) -> dict[str, Any]:
    """Kwargs for ``get_object`` and ``head_object``: the SSE-C key, if one is configured."""
    return _customer_kwargs(sse, "SSECustomer")


def copy_kwargs(dest: SSEOptions, source: SSEOptions) -> dict[str, Any]:
    """Kwargs for ``copy_object``: the destination's settings plus the source's SSE-C key.

    S3 does not carry encryption over on copy unless asked, so the destination
    settings are always stated; with SSE off at the destination the copy gets
    the bucket default.
    """
    return {**write_kwargs(dest), **_customer_kwargs(source, "CopySourceSSECustomer")}


def copy_part_kwargs(dest: SSEOptions, source: SSEOptions) -> dict[str, Any]:
    """Kwargs for ``upload_part_copy``: destination SSE-C key and source SSE-C key."""
    return {**part_kwargs(dest), **_customer_kwargs(source, "CopySourceSSECustomer")}

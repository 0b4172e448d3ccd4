"""What the botocore transport (:mod:`emrfs.store.s3`) sends and reads back, as pure
functions: the SSE arguments of each request family, and responses as
:class:`~emrfs.store.protocol.ObjectMeta` (user metadata with lower-case names and no
``x-amz-meta-`` prefix, the ETag quoted as S3 sends it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import SSEOptions
from ..crypto import sse as _sse
from ..errors import not_found
from .protocol import ObjectMeta, check_range, split

__all__ = ["SSEArguments", "sse_arguments", "meta_from_response", "object_key", "check_range"]

#: UploadPartCopy takes the SSE-C keys of both ends but none of the write settings.
COPY_PART_KEYS = (
    "SSECustomerAlgorithm",
    "SSECustomerKey",
    "SSECustomerKeyMD5",
    "CopySourceSSECustomerAlgorithm",
    "CopySourceSSECustomerKey",
    "CopySourceSSECustomerKeyMD5",
)


@dataclass(frozen=True)
class SSEArguments:
    """The SSE request arguments of one set of options, per request family."""

    write: Mapping[str, Any]  # put_object, create_multipart_upload
    part: Mapping[str, Any]  # upload_part
    read: Mapping[str, Any]  # get_object, head_object

    @staticmethod
    def copy(dest: SSEOptions, source: SSEOptions) -> dict[str, Any]:
        """copy_object: the destination's settings and the source's SSE-C key."""
        return _sse.copy_kwargs(dest, source)


def sse_arguments(options: SSEOptions) -> SSEArguments:
    """The SSE arguments every request of a store with ``options`` carries (pure; raises
    :class:`~emrfs.errors.ConfigurationError` for a malformed SSE-C key)."""
    return SSEArguments(
        _sse.write_kwargs(options), _sse.part_kwargs(options), _sse.read_kwargs(options)
    )


def meta_from_response(
    path: str, response: Mapping[str, Any], size: int | None = None
) -> ObjectMeta:
    """An ObjectMeta from a HeadObject/GetObject/PutObject/Complete response (``size`` when
    the response does not carry the length, as a PUT's does not)."""
    length = response.get("ContentLength") if size is None else size
    return ObjectMeta(
        path,
        int(length or 0),
        etag=response.get("ETag"),
        last_modified=response.get("LastModified"),
        version_id=response.get("VersionId"),
        metadata={k.lower(): v for k, v in (response.get("Metadata") or {}).items()},
        content_type=response.get("ContentType"),
        storage_class=response.get("StorageClass"),
    )


def object_key(path: str) -> tuple[str, str]:
    bucket, key = split(path)
    if not bucket or not key:
        raise not_found(path, "a bucket is not an object; give bucket/key")
    return bucket, key

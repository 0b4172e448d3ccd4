"""The obstore transport's writes: ``put``, server-side ``copy`` and batched ``delete``
through obstore; multipart uploads by upload id (``writer``, staged uploads) and the copies
obstore cannot do go to the botocore fallback."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..crypto import sse as _sse
from .obstore_base import ObstoreBase
from .obstore_native import blocking, obstore_key
from .progress import send_progress
from .protocol import (
    DeleteFailure,
    DeleteResult,
    ObjectMeta,
    ObjectWriter,
    StagedUpload,
    split,
)


class ObstoreWrites(ObstoreBase):
    """The write verbs of :class:`~emrfs.store.obstore.ObstoreStore`."""

    # --- writes -------------------------------------------------------------------------

    async def put(
        self,
        path: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectMeta:
        # a caller watching the bytes go (send_progress): obstore sends a buffer it
        # cannot report on; botocore reads the body as it sends it
        if not self._direct(path) or send_progress() is not None:
            return await self.fallback.put(
                path,
                data,
                if_none_match=if_none_match,
                metadata=metadata,
                content_type=content_type,
            )
        import obstore

        bucket, key = split(path)
        attributes: dict[str, str] = dict(metadata or {})
        if content_type:
            attributes["Content-Type"] = content_type
        with self._errors(path):
            result = await blocking(
                obstore.put,
                self._store(bucket),
                key,
                data,
                attributes=attributes or None,
                mode="create" if if_none_match else "overwrite",
                use_multipart=False,
            )
        return ObjectMeta(
            path,
            len(data),
            etag=result.get("e_tag"),
            version_id=result.get("version"),
            metadata={k.lower(): v for k, v in (metadata or {}).items()},
            content_type=content_type,
        )

    async def writer(
        self,
        path: str,
        *,
        if_none_match: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectWriter:
        # parts by upload id (staged for another process to complete): botocore's
        return await self.fallback.writer(
            path, if_none_match=if_none_match, metadata=metadata, content_type=content_type
        )

    async def complete_staged(self, staged: StagedUpload) -> ObjectMeta:
        return await self.fallback.complete_staged(staged)

    async def abort_staged(self, staged: StagedUpload) -> None:
        await self.fallback.abort_staged(staged)

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
    ) -> ObjectMeta:
        (src_bucket, src_key), (dst_bucket, _) = split(src), split(dst)
        if (
            metadata is not None
            # a known size: botocore's one CopyObject reports the ETag (obstore's
            # copy reports nothing, so it would cost a HEAD after)
            or source_size is not None
            or src_bucket != dst_bucket
            or not self._direct(src)
            or not self._direct(dst)
            or self.s3.copy_threshold < 5 * 1024**3
            or self._customer_key is not None
            or (self._source_sse is not None and _sse.customer_key(self._source_sse(src)))
        ):
            # replacing metadata, across buckets, multipart copies, SSE-C source keys
            return await self.fallback.copy(src, dst, metadata=metadata, source_size=source_size)
        import obstore

        try:
            with self._errors(src):
                await blocking(obstore.copy, self._store(src_bucket), src_key, split(dst)[1])
        except Exception as exc:
            if "larger than the maximum allowable size" not in str(exc.__cause__ or exc):
                raise
            return await self.fallback.copy(src, dst, metadata=metadata)
        return await self.head(dst)

    async def delete(self, paths: Sequence[str]) -> DeleteResult:
        if not self._native():
            return await self.fallback.delete(paths)
        import obstore

        by_bucket: dict[str, list[str]] = {}
        odd: list[str] = []
        for path in dict.fromkeys(paths):
            bucket, key = split(path)
            (by_bucket.setdefault(bucket, []) if obstore_key(key) else odd).append(path)
        deleted: list[str] = []
        errors: list[DeleteFailure] = []
        if odd:
            other = await self.fallback.delete(odd)
            deleted += other.deleted
            errors += other.errors
        for bucket, group in by_bucket.items():
            for i in range(0, len(group), 1000):  # DeleteObjects takes 1,000 keys
                batch = group[i : i + 1000]
                try:
                    with self._errors(batch[0]):
                        await blocking(
                            obstore.delete, self._store(bucket), [split(p)[1] for p in batch]
                        )
                except OSError as exc:  # obstore reports no per-key outcome: the batch
                    code = getattr(exc, "code", None)
                    errors += [DeleteFailure(p, code, str(exc), exc) for p in batch]
                    continue
                deleted += batch
        return DeleteResult(deleted, errors)

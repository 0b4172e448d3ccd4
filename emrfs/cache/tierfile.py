"""A file of the ephemeral tier as fsspec opens it (:class:`TierFile`): reads and writes
local blocks only, never S3."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fsspec.spec import AbstractBufferedFile

from ..errors import exists, is_a_directory

if TYPE_CHECKING:
    from .ephemeral import EphemeralReader, EphemeralTier, EphemeralWriter

_CHUNK = 8 * 1024 * 1024


class TierFile(AbstractBufferedFile):
    """A file of the ephemeral tier (modes rb, wb, xb, ab); never touches S3."""

    def __init__(
        self,
        fs,
        path: str,
        mode: str = "rb",
        *,
        tier: EphemeralTier,
        block_size: int | None = None,
        autocommit: bool = True,
        **kwargs: Any,
    ):
        self.tier = tier
        self._reader: EphemeralReader | None = None
        self._writer: EphemeralWriter | None = None
        size = None
        if mode == "rb":
            entry = tier.info(path)
            if entry["type"] != "file":
                raise is_a_directory(path, "open a file below it, or use ls")
            size = entry["size"]
            self._reader = tier.open_read(path)
        elif mode in ("wb", "xb", "ab"):
            if tier.isdir(path):
                raise is_a_directory(path, "cannot write a file over a directory")
            if mode == "xb" and tier.exists(path):
                raise exists(path, "mode 'xb' creates only new files")
        if mode != "rb":
            # before the buffered file exists: a refused writer (below a file, ...) leaves
            # nothing that a later close() would try to flush
            self._writer = tier.open_write(path)
        try:
            super().__init__(
                fs,
                path,
                mode,
                block_size=block_size or tier.block_size,
                autocommit=autocommit,
                cache_type="none",
                size=size,
                **kwargs,
            )
            if mode == "ab" and tier.exists(path):
                with tier.open_read(path) as r:
                    while chunk := r.read(_CHUNK):
                        self._out.write(chunk)
                self.loc = self._out.tell()
        except BaseException:
            self.closed = True
            if self._writer is not None:
                self._writer.abort()
            if self._reader is not None:
                self._reader.close()
            raise

    @property
    def _in(self) -> EphemeralReader:
        if self._reader is None:
            raise ValueError(f"{self.path!r} is open for writing, not reading")
        return self._reader

    @property
    def _out(self) -> EphemeralWriter:
        if self._writer is None:
            raise ValueError(f"{self.path!r} is open for reading, not writing")
        return self._writer

    def _fetch_range(self, start: int, end: int) -> bytes:
        self._in.seek(start)
        return self._in.read(end - start)

    def _initiate_upload(self) -> None:
        pass

    def _upload_chunk(self, final: bool = False) -> bool:
        self._out.write(self.buffer.getbuffer())
        if final and self.autocommit:
            self._out.close()  # the file appears, whole
        return True

    def commit(self) -> None:
        self._out.close()

    def discard(self) -> None:
        self._out.abort()

    def close(self) -> None:
        failed = True
        try:
            super().close()  # a no-op once closed
            failed = False
        finally:
            if self._reader is not None:
                self._reader.close()
            if failed and self._writer is not None:
                self._writer.abort()  # nothing half-written appears

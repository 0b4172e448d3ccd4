"""Progress bars for long transfers, through fsspec's ``Callback`` API.

``TransferProgress`` is an :class:`fsspec.callbacks.Callback`, so the bar the
``emrfs`` command shows is the one Python code gets with::

    from emrfs.progress import TransferProgress
    fs.put("big.bin", "bucket/dir/big.bin", callback=TransferProgress())
    fs.get("bucket/dir", "local/", recursive=True, callback=TransferProgress())
    fs.copy("bucket/a", "bucket/b", recursive=True, callback=TransferProgress())

fsspec's bulk calls (``put``, ``get``) call ``set_size(items)`` on it,
``relative_update(1)`` per finished item, and hand each item a child from
``branched()``; emrfs's per-file calls then report bytes on the child
(``set_size(bytes)``, ``relative_update(bytes)``).  Files are counted as their
children finish (fsspec counts a directory as an item too).  The bar shows bytes done,
rate and ETA, with files done/total beside it.  It draws with tqdm on stderr,
and draws nothing when stderr is not a terminal (or with ``disable=True``).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import IO, Any

from fsspec.callbacks import Callback

#: seconds before a bar appears, so quick commands print nothing; tqdm's own variable
_DELAY = float(os.environ.get("TQDM_DELAY", "0.5"))


def _bar(
    desc: str, unit: str, file: IO[str] | None, disable: bool | None, total: int | None = None
):
    from tqdm import tqdm

    stream = file if file is not None else sys.stderr
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit == "B",
        unit_divisor=1024,
        file=stream,
        disable=disable,
        leave=True,
        dynamic_ncols=True,
        mininterval=0.2,
        delay=_DELAY,
    )


class TransferProgress(Callback):
    """Bytes and files of a transfer as one terminal progress bar.

    ``total_bytes``/``total_files``: known totals (the CLI lists first); when
    not given, the totals grow as fsspec announces files and their sizes.
    ``disable``: ``None`` draws only on a terminal (tqdm's rule), ``True`` never.
    """

    def __init__(
        self,
        desc: str = "",
        *,
        total_bytes: int | None = None,
        total_files: int | None = None,
        file: IO[str] | None = None,
        disable: bool | None = None,
        **kwargs: Any,
    ):
        super().__init__(size=total_files, **kwargs)
        self._lock = threading.Lock()
        self._fixed_bytes = total_bytes is not None
        self._fixed_files = total_files is not None
        self.files_done = 0
        self.bytes_done = 0
        self.bytes_total = total_bytes or 0
        self.bar = _bar(desc, "B", file, disable, total=total_bytes)
        self._show_files()

    # --- the fsspec interface: the parent counts files ------------------------------------

    def set_size(self, size: int | None) -> None:
        if not self._fixed_files:
            self.size = size
            self._show_files()

    def absolute_update(self, value: int) -> None:
        self.value = value

    def relative_update(self, inc: int = 1) -> None:
        # fsspec updates once per item, directories included (get, copy): files are
        # counted as their children finish instead (file_finished)
        self.value += inc

    def file_finished(self) -> None:
        with self._lock:
            self.files_done += 1
            self._show_files()
            self.bar.refresh()

    def branched(self, path_1: str, path_2: str, **kwargs: Any) -> FileBytes:
        return FileBytes(self)

    def close(self) -> None:
        self.bar.close()

    # --- bytes, from the children ------------------------------------------------------

    def add_total(self, nbytes: int) -> None:
        if self._fixed_bytes or not nbytes:
            return
        with self._lock:
            self.bytes_total += nbytes
            self.bar.total = self.bytes_total
            self.bar.refresh()

    def add_bytes(self, nbytes: int) -> None:
        if nbytes:
            with self._lock:
                self.bytes_done += nbytes
                self.bar.update(nbytes)

    def _show_files(self) -> None:
        total = "?" if self.size is None else self.size
        self.bar.set_postfix_str(f"files {self.files_done}/{total}", refresh=False)


class FileBytes(Callback):
    """The child callback of one file: its bytes go to the parent's bar."""

    size: int | None  # fsspec's Callback sets it

    def __init__(self, parent: TransferProgress):
        super().__init__()
        self.parent = parent

    def set_size(self, size: int | None) -> None:
        if size is not None and self.size is None:
            self.size = size
            self.parent.add_total(size)

    def relative_update(self, inc: int = 1) -> None:
        self.value += inc
        self.parent.add_bytes(inc)

    def absolute_update(self, value: int) -> None:
        self.relative_update(value - self.value)

    def close(self) -> None:
        if self.size is not None:  # a file (directories are never told a size)
            self.parent.file_finished()


class CountProgress(Callback):
    """Objects walked or deleted (sync, import, diff, rm -r): a count and a rate, and a
    total with ETA once ``set_size`` knows it.  Also callable with an absolute count,
    as the metadata walks report theirs."""

    def __init__(
        self,
        desc: str,
        unit: str = " objects",
        *,
        file: IO[str] | None = None,
        disable: bool | None = None,
        total: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(size=total, **kwargs)
        self.bar = _bar(desc, unit, file, disable, total=total)

    def set_size(self, size: int | None) -> None:
        self.size = size
        if size:
            self.bar.total = size
            self.bar.refresh()

    def relative_update(self, inc: int = 1) -> None:
        self.value += inc
        self.bar.update(inc)

    def absolute_update(self, value: int) -> None:
        if value > self.value:
            self.relative_update(value - self.value)

    def __call__(self, count: int) -> None:
        self.absolute_update(count)

    def close(self) -> None:
        self.bar.close()

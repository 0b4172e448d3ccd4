"""Which paths a verb's argument names: literal names, glob patterns, fsspec's expansion.

A name that exists as written means itself, even when it holds ``*``, ``?`` or ``[``
(S3 keys may); otherwise a name with glob characters is a pattern, as in Hadoop's
shell.  The filesystem hands in the calls this needs, so nothing here names it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from glob import has_magic
from typing import Any, TypeVar

from fsspec.asyn import _get_batch_size
from fsspec.implementations.local import trailing_sep
from fsspec.utils import other_paths

from . import paths
from .errors import not_found


def glob_kwargs(stripped: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` for fsspec's glob, plus the pattern's literal prefix when the bucket is
    literal, so the listing sends that prefix to S3 instead of listing the bucket."""
    if isinstance(stripped, str) and paths.has_magic(stripped):
        literal = paths.glob_literal_prefix(stripped)
        if "/" in literal:
            return {**kwargs, "_literal_prefix": literal}
    return kwargs


T = TypeVar("T")


@dataclass(frozen=True)
class Expansion:
    """Expansion over one filesystem's status and listing calls."""

    strip: Callable[[Any], Any]  # the path without its protocol
    norm: Callable[[str], str]  # the path validated
    exists: Callable[[str], Awaitable[bool]]
    isdir: Callable[[str], Awaitable[bool]]
    glob: Callable[[str], Awaitable[Any]]
    base_expand: Callable[..., Awaitable[list[str]]]  # fsspec's own expansion

    async def literal_or_glob(self, path: str) -> list[str]:
        """The paths ``path`` names: itself when it exists as written, else, if it has glob
        characters, what the pattern matches; a literal path that does not exist is
        returned as is, for the caller's own not-found error."""
        stripped = self.strip(path)
        if not paths.has_magic(stripped) or await self.exists(stripped):
            return [self.norm(stripped)]
        return await self.glob(stripped)

    async def matches(self, path: str) -> list[str] | None:
        """What the pattern ``path`` matches (raises when nothing does), or None when
        ``path`` is one name: no glob characters, or a name that exists as written."""
        stripped = self.strip(path)
        if not paths.has_magic(stripped):
            return None
        named = await self.literal_or_glob(path)
        if named == [self.norm(path)]:
            return None
        if not named:
            raise not_found(stripped, "no path matches this pattern")
        return named

    async def expand_path(
        self,
        path: Any,
        recursive: bool = False,
        maxdepth: int | None = None,
        assume_literal: bool = False,
    ) -> list[str]:
        """fsspec's expansion, except that a path which exists as written means itself."""
        if isinstance(path, str):
            path = [path]
        literal, patterns = [], []
        for p in (self.strip(p) for p in path):
            if assume_literal or not paths.has_magic(p) or await self.exists(p):
                literal.append(p)
            else:
                patterns.append(p)
        out: set[str] = set()
        for group, as_written in ((literal, True), (patterns, False)):
            if group:
                try:
                    out.update(
                        await self.base_expand(
                            group, recursive=recursive, maxdepth=maxdepth, assume_literal=as_written
                        )
                    )
                except FileNotFoundError:
                    pass  # the other group may match; nothing at all is raised below
        if not out:
            raise not_found(", ".join(literal + patterns), "nothing matches")
        return sorted(out)

    async def copy_pairs(
        self, path1: Any, path2: Any, recursive: bool, maxdepth: int | None
    ) -> list[tuple[str, str]]:
        """``copy``'s (source, destination) pairs, placed by fsspec's rules (its ``_copy``
        computes them the same way): a list of sources onto a list of destinations pairs
        them as given; otherwise the sources are expanded, and land under ``path2`` when
        it is a directory.  Empty when a non-recursive copy names only directories.  A
        name with glob characters that exists as written is that name, not a pattern."""
        if isinstance(path1, list) and isinstance(path2, list):
            if len(path1) != len(path2):
                raise ValueError(
                    f"copy of {len(path1)} sources to {len(path2)} destinations: give one "
                    "destination per source (or one directory as a string)"
                )
            return list(zip(path1, path2, strict=True))
        source_is_str = isinstance(path1, str)
        magic = source_is_str and has_magic(path1)
        if magic and paths.has_magic(self.strip(path1)) and await self.exists(path1):
            magic = False  # placed as a name, as fsspec would place a plain one
        sources = await self.expand_path(path1, recursive=recursive, maxdepth=maxdepth)
        if source_is_str and (not recursive or maxdepth is not None):
            # a non-recursive glob does not copy directories
            sources = [p for p in sources if not (trailing_sep(p) or await self.isdir(p))]
            if not sources:
                return []
        dest_is_dir = isinstance(path2, str) and (trailing_sep(path2) or await self.isdir(path2))
        exists = source_is_str and (
            (magic and len(sources) == 1) or (not magic and dest_is_dir and not trailing_sep(path1))
        )
        return list(
            zip(
                sources,
                other_paths(sources, path2, exists=exists, flatten=not source_is_str),
                strict=True,
            )
        )


async def gather_each(
    found: Sequence[T], read: Callable[[T], Awaitable[Any]], batch_size: int | None
) -> list[Any]:
    """``read`` of every path, at most ``batch_size`` at once (-1: all), each result or the
    exception it raised, in order.

    ``batch_size`` workers take the next path as each finishes one.  fsspec's chunked
    runner waits on every pending read again after each completes, and an
    ``asyncio.Semaphore`` over a task per path rescans the woken waiters still queued at
    each release (CPython 3.11: ~460 per release in a ``pipe`` of 2,000 files); both are
    quadratic in the batch."""
    size = batch_size or _get_batch_size(nofiles=True)
    workers = len(found) if size == -1 else max(1, min(size, len(found)))
    out: list[Any] = [None] * len(found)
    todo = iter(enumerate(found))

    async def worker() -> None:
        for i, p in todo:  # one iterator shared by all: each path is taken once
            try:
                out[i] = await read(p)
            except Exception as exc:  # noqa: BLE001 - reported per path, as fsspec does
                out[i] = exc

    await asyncio.gather(*(worker() for _ in range(workers)))
    return out


def raise_first_failure(out: list[Any]) -> None:
    """Raise the first exception :func:`gather_each` returned, if any."""
    failed = next((r for r in out if isinstance(r, Exception)), None)
    if failed is not None:
        raise failed


def cat_result(path: Any, found: list[str], out: list[Any], on_error: str, stripped: Any) -> Any:
    """fsspec's shape of ``cat``'s answer: the bytes for one path named as such, else a
    dict by path (without failures when ``on_error="omit"``); raises the first failure
    when ``on_error="raise"``."""
    if on_error == "raise":
        raise_first_failure(out)
    if len(found) > 1 or isinstance(path, list) or found[0] != stripped:
        return {
            k: v
            for k, v in zip(found, out, strict=True)
            if on_error != "omit" or not isinstance(v, Exception)
        }
    return out[0]

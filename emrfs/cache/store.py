"""On-disk block files: placement, atomic writes, checksums, pins and LRU eviction.

Layout of one cache directory::

    <dir>/c/<h2>/<owner>/<tag>.<index>   read-cache blocks (owner = hash of the path,
                                         tag = hash of the object version)
    <dir>/e/<h2>/<owner>/<tag>.<index>   ephemeral-tier blocks (never evicted)
    <dir>/tmp/                           blocks being written (flock-held by the writer)
    <dir>/stats.json                     hit/miss/eviction counters of all processes

A block file is a header (magic, flags, chunk size, length, the block id, one
checksum per chunk, a checksum of the header itself) followed by the data in
chunks of :data:`CHUNK_SIZE`; sealed blocks store each chunk as an AES-GCM unit
(see :mod:`emrfs.crypto.atrest`).  Every read verifies the chunks it touches,
so a random read checks only what it returns.

Guarantees, across any number of processes on one machine:

* a block is written to ``tmp/`` and renamed into place: a reader sees a whole
  block or none; a writer killed half-way leaves only a ``tmp/`` file, which
  is never served and is removed once no process holds its lock;
* a block that fails its checksum (or its GCM tag) is deleted and reported as
  a miss, so the caller fetches it again;
* a block a process has open holds a shared ``flock``; eviction takes an
  exclusive non-blocking lock first and skips blocks it cannot lock (pins);
* two processes filling the same block both write whole files; the last
  rename wins and both hold the same bytes.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import mmap
import os
import shutil
import stat
import struct
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

from ..crypto.atrest import OVERHEAD as _OVERHEAD
from ..errors import IntegrityError
from .stats import DirStats

try:  # xxh3 runs ~6x faster than zlib.crc32 here (see benchmarks/bench_cache.py)
    import xxhash

    def _xxh3(data) -> int:
        return xxhash.xxh3_64_intdigest(data)
except ImportError:  # pragma: no cover - fallback keeps the cache working without xxhash
    xxhash = None
    _xxh3 = None
import zlib

log = logging.getLogger("emrfs.cache")

MAGIC = b"EMRFSBK1"
CHUNK_SIZE = 128 * 1024
FLAG_SEALED = 1
ALGO_XXH3, ALGO_CRC32 = 1, 2
_FIXED = struct.Struct("<8sBBHIQHI")  # magic flags algo reserved chunk len idlen nchunks
_U64 = struct.Struct("<Q")
SPACES = ("c", "e")
TOUCH_EVERY = 1.0  # seconds between LRU touches of one block by one process
RESCAN_EVERY = 64  # puts between recounts of a directory's bytes


def _checksum(algo: int, data) -> int:
    if algo == ALGO_XXH3:
        if _xxh3 is None:
            raise IntegrityError("block written with xxh3 but the xxhash module is missing; "
                                 "pip install xxhash")
        return _xxh3(data)
    return zlib.crc32(data)


def _checksum_parts(algo: int, parts) -> int:
    """Checksum of the concatenation of ``parts`` without joining them."""
    if algo == ALGO_XXH3:
        hasher = xxhash.xxh3_64()
        for p in parts:
            hasher.update(p)
        return hasher.intdigest()
    value = 0
    for p in parts:
        value = zlib.crc32(p, value)
    return value


_WRITE_ALGO = ALGO_XXH3 if _xxh3 is not None else ALGO_CRC32


def path_owner(path: str) -> str:
    """Stable hex id of an object path (the read cache keys blocks by it)."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class BlockId:
    """Where a block belongs: space ('c' cache, 'e' ephemeral), owner, version tag, index."""

    space: str
    owner: str
    tag: str
    index: int

    @cached_property
    def key(self) -> bytes:
        """Identity bytes: stored in the header and used as AES-GCM associated data."""
        return f"{self.space}/{self.owner}/{self.tag}/{self.index}".encode()

    @cached_property
    def relpath(self) -> str:
        return f"{self.space}/{self.owner[:2]}/{self.owner}/{self.tag}.{self.index}"


@dataclass(frozen=True)
class ObjectIdentity:
    """One version of one object: blocks are valid only for the identity they came from.

    ``stamp`` carries whatever else pins the version (the consistent view's
    record, for instance); any field changing makes a new identity.
    """

    path: str
    size: int
    etag: str | None = None
    version_id: str | None = None
    stamp: str | None = None

    @cached_property
    def owner(self) -> str:
        return path_owner(self.path)

    @cached_property
    def tag(self) -> str:
        text = f"{self.size}\0{self.etag or ''}\0{self.version_id or ''}\0{self.stamp or ''}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def block(self, index: int) -> BlockId:
        return BlockId("c", self.owner, self.tag, index)


@dataclass
class _Header:
    sealed: bool
    algo: int
    chunk_size: int
    length: int
    checksums: tuple[int, ...]
    data_offset: int

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        """Stored ``(offset, length)`` of a chunk in the file."""
        plain = self.chunk_size
        stored = plain + (_OVERHEAD if self.sealed else 0)
        off = self.data_offset + chunk * stored
        n = min(plain, self.length - chunk * plain) + (_OVERHEAD if self.sealed else 0)
        return off, n


def _header_bytes(bid: BlockId, sealed: bool, algo: int, length: int,
                  checksums: list[int]) -> bytes:
    key = bid.key
    nchunks = -(-length // CHUNK_SIZE)
    body = _FIXED.pack(MAGIC, FLAG_SEALED if sealed else 0, algo, 0, CHUNK_SIZE, length,
                       len(key), nchunks) + key + b"".join(_U64.pack(c) for c in checksums)
    return body + _U64.pack(xxhash.xxh3_64_intdigest(body) if xxhash else zlib.crc32(body))


def _header_size(bid: BlockId, length: int) -> int:
    return _FIXED.size + len(bid.key) + 8 * (-(-length // CHUNK_SIZE)) + 8


def _parse_header(buf, bid: BlockId, where: str) -> _Header:
    try:
        magic, flags, algo, _, chunk, length, idlen, nchunks = _FIXED.unpack_from(buf, 0)
    except struct.error as exc:
        raise IntegrityError(f"cache block for {where!r} is truncated", where) from exc
    if magic != MAGIC:
        raise IntegrityError(f"cache block for {where!r} has a bad magic number", where)
    end = _FIXED.size + idlen + 8 * nchunks
    if len(buf) < end + 8 or nchunks != -(-length // max(chunk, 1)):
        raise IntegrityError(f"cache block header for {where!r} is truncated", where)
    body = bytes(buf[:end])
    stored = _U64.unpack_from(buf, end)[0]
    expect = xxhash.xxh3_64_intdigest(body) if (xxhash and algo == ALGO_XXH3) else zlib.crc32(body)
    if stored != expect:
        raise IntegrityError(f"cache block header for {where!r} fails its checksum", where)
    if body[_FIXED.size:_FIXED.size + idlen] != bid.key:
        raise IntegrityError(f"cache block for {where!r} belongs to another block", where)
    sums = struct.unpack_from(f"<{nchunks}Q", buf, _FIXED.size + idlen)
    return _Header(bool(flags & FLAG_SEALED), algo, chunk, length, sums, end + 8)


class _Handle:
    """An open, shared-locked, mapped block file; refcounted by the store."""

    __slots__ = ("fd", "map", "header", "refs", "pinned", "path", "touched", "dir_index",
                 "verified", "__weakref__")

    def __init__(self, fd: int, mapped: mmap.mmap, header: _Header, path: str, dir_index: int):
        self.fd, self.map, self.header, self.path = fd, mapped, header, path
        self.refs = 0
        self.pinned = 0
        self.touched = 0.0
        self.dir_index = dir_index
        self.verified = bytearray(len(header.checksums))  # chunks checked through this map

    def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self.map.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)  # closing the fd releases the flock


class BlockStore:
    """Blocks on local disk over one or more cache directories.

    Parameters
    ----------
    directories
        Cache directories (created if missing).  Blocks spread over them by a
        hash of the block id; each directory gets ``capacity_bytes / n``.
    capacity_bytes
        Most bytes of read-cache blocks kept; writes past it evict the least
        recently used unpinned blocks down to ``low_water`` of it.
    free_space_floor
        Fraction of each disk kept free; eviction also runs to keep it.
    sealer
        A :class:`~emrfs.crypto.atrest.BlockSealer`; with ``encrypt_all`` every
        block is sealed, otherwise only blocks written with ``sealed=True``.
        Sealed writes without a sealer use a per-boot shared-memory key.
    max_open
        Block files kept open and mapped per process (they stay pinned).
    max_pending_writes
        Block-write jobs queued on the writer threads before readers stop
        caching what they fetch (bounds memory when the disk is slower than
        the network).
    verify
        ``"always"``: every read checks the checksums of the chunks it returns;
        ``"open"``: each process checks a chunk the first time it reads it
        through an open block (faster warm reads; a block corrupted on disk
        while this process keeps it open and mapped is not noticed).
    clock
        ``time.time`` replacement for tests (LRU order uses file mtimes).
    """

    def __init__(self, directories: Iterable[str], *, capacity_bytes: int = 10 << 30,
                 free_space_floor: float = 0.1, sealer=None, encrypt_all: bool = False,
                 max_open: int = 64, low_water: float = 0.9, verify: str = "always",
                 max_pending_writes: int = 8,
                 clock=time.time):
        dirs = [os.path.abspath(os.path.expanduser(d)) for d in directories]
        if not dirs:
            raise ValueError("BlockStore needs at least one cache directory (cache.directories)")
        if len(set(dirs)) != len(dirs):
            raise ValueError(f"cache.directories lists a directory twice: {dirs}")
        if capacity_bytes <= 0:
            raise ValueError(f"cache.capacity_bytes must be positive, got {capacity_bytes}")
        if not 0 <= free_space_floor < 1:
            raise ValueError(f"cache.free_space_floor must be in [0, 1), got {free_space_floor}")
        if verify not in ("always", "open"):
            raise ValueError(f"cache.verify is {verify!r}; use 'always' or 'open'")
        if encrypt_all and sealer is None:
            raise ValueError("encrypt_all needs a sealer (emrfs.crypto.atrest.BlockSealer)")
        self.directories = dirs
        self.capacity_bytes = capacity_bytes
        self.free_space_floor = free_space_floor
        self.encrypt_all = encrypt_all
        self.low_water = low_water
        self.max_open = max_open
        self.verify = verify
        self._sealer = sealer
        self._own_key = None  # the shared-memory key of CSE blocks, when this store made it
        self._clock = clock
        self._lock = threading.RLock()
        self._handles: OrderedDict[str, _Handle] = OrderedDict()
        self._used: list[int | None] = [None] * len(dirs)
        self._first: dict[bytes, int] = {}  # block key -> first directory (memo)
        self._puts = 0
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._writer_pid = -1
        self.pending_writes = 0
        self.max_pending_writes = max_pending_writes
        self.stats = [DirStats(d) for d in dirs]
        self._flushed = [DirStats(d) for d in dirs]
        for d in dirs:
            self._prepare(d)
        self._pid = os.getpid()
        ref = weakref.ref(self)
        atexit.register(_flush_at_exit, ref)
        os.register_at_fork(after_in_child=lambda: _reset_in_child(ref))

    def _after_fork(self) -> None:
        """In a forked child: fresh lock and handles (the parent's may be mid-use)."""
        self._lock = threading.RLock()
        handles, self._handles = self._handles, OrderedDict()
        for h in handles.values():
            with contextlib.suppress(Exception):
                h.close()  # the parent's flock stays: it holds its own descriptor
        self._writer, self.pending_writes = None, 0
        self._pid = os.getpid()
        self.stats = [DirStats(d) for d in self.directories]
        self._flushed = [DirStats(d) for d in self.directories]

    # --- placement --------------------------------------------------------------------

    def _prepare(self, d: str) -> None:
        makedirs_private(os.path.join(d, "tmp"))
        self._clean_tmp(d)

    def placements(self, bid: BlockId, copies: int = 1) -> list[int]:
        """Directory indices for the ``copies`` replicas of ``bid`` (distinct when possible)."""
        first = self._first.get(bid.key)
        n = len(self.directories)
        if first is None:
            if len(self._first) > 65536:
                self._first.clear()
            first = int.from_bytes(hashlib.blake2b(bid.key, digest_size=8).digest(), "little") % n
            self._first[bid.key] = first
        if copies <= 1:
            return [first]
        return [(first + k) % n for k in range(min(copies, n))]

    def block_path(self, bid: BlockId, dir_index: int) -> str:
        return self.directories[dir_index] + os.sep + bid.relpath

    # --- reading ----------------------------------------------------------------------

    def read(self, bid: BlockId, start: int = 0, end: int | None = None, *,
             copies: int = 1, where: str | None = None, count_miss: bool = True,
             sealer=None) -> bytes | None:
        """Bytes ``[start, end)`` of block ``bid``, or None when it is not cached.

        A block that fails verification is deleted and reported as a miss.
        """
        where = where or bid.relpath
        for d in self.placements(bid, copies):
            handle = self._acquire(bid, d, where)
            if handle is None:
                continue
            try:
                data = self._read_handle(handle, bid, start, end, where, sealer)
            except IntegrityError as exc:
                log.warning("%s; dropping it", exc)
                self.stats[d].corruptions += 1
                self._discard(bid, d, handle)
                continue
            finally:
                self._release(handle)
            self.stats[d].hits += 1
            return data
        if count_miss:
            self.stats[self.placements(bid)[0]].misses += 1
        return None

    def contains(self, bid: BlockId, copies: int = 1) -> bool:
        return any(os.path.isfile(self.block_path(bid, d)) for d in self.placements(bid, copies))

    def length(self, bid: BlockId, copies: int = 1) -> int | None:
        """Stored data length of a block, or None if absent."""
        for d in self.placements(bid, copies):
            handle = self._acquire(bid, d, bid.relpath)
            if handle is not None:
                self._release(handle)
                return handle.header.length
        return None

    def _read_handle(self, handle: _Handle, bid: BlockId, start: int, end: int | None,
                     where: str, sealer=None) -> bytes:
        h = handle.header
        end = h.length if end is None else min(end, h.length)
        if start >= end:
            return b""
        first, last = start // h.chunk_size, (end - 1) // h.chunk_size
        view = memoryview(handle.map)
        try:
            cs = h.chunk_size
            aligned = start % cs == 0 and (end % cs == 0 or end == h.length)
            if not h.sealed and self.verify == "always" and aligned:
                # A chunk-aligned read: one pread (no page faults on a fresh map),
                # checked while hot in the CPU cache, returned without another copy.
                # (Unaligned reads would need a second copy: the map serves them.)
                base = h.data_offset
                a, b = first * cs, min((last + 1) * cs, h.length)
                buf = os.pread(handle.fd, b - a, base + a)
                if len(buf) != b - a:
                    raise IntegrityError(f"cache block for {where!r} is truncated", where)
                bv = memoryview(buf)
                for c in range(first, last + 1):
                    c0 = c * cs - a
                    if _checksum(h.algo, bv[c0:min(c0 + cs, b - a)]) != h.checksums[c]:
                        raise IntegrityError(
                            f"cache block for {where!r} fails its checksum (chunk {c})", where)
                bv.release()
                data = buf
            elif not h.sealed:
                # Copy first, then check the copy (hot in the CPU cache, and exactly
                # what is returned); chunk edges outside the read come from the map.
                base, cs = h.data_offset, h.chunk_size
                data = handle.map[base + start:base + end]
                out = memoryview(data)
                verified = handle.verified if self.verify == "open" else None
                for c in range(first, last + 1):
                    if verified is not None and verified[c]:
                        continue
                    c0, c1 = c * cs, min(c * cs + cs, h.length)
                    if c0 >= start and c1 <= end:
                        digest = _checksum(h.algo, out[c0 - start:c1 - start])
                    else:
                        digest = _checksum_parts(h.algo, (
                            view[base + c0:base + start] if c0 < start else b"",
                            out[max(c0, start) - start:min(c1, end) - start],
                            view[base + end:base + c1] if c1 > end else b""))
                    if digest != h.checksums[c]:
                        raise IntegrityError(
                            f"cache block for {where!r} fails its checksum (chunk {c})", where)
                    if verified is not None:
                        verified[c] = 1
                out.release()
            else:
                sealer = sealer or self._get_sealer()
                parts = []
                for c in range(first, last + 1):
                    off, n = h.chunk_range(c)
                    parts.append(sealer.open(view[off:off + n], bid.key + b"#%d" % c, where))
                skip = start - first * h.chunk_size
                joined = parts[0] if len(parts) == 1 else b"".join(parts)
                data = joined[skip:skip + (end - start)]
        finally:
            view.release()
        now = self._clock()
        if now - handle.touched >= TOUCH_EVERY:  # LRU: mtime is the last use, across processes
            handle.touched = now
            with contextlib.suppress(OSError):
                os.utime(handle.fd, (now, now))
        return data

    def _acquire(self, bid: BlockId, d: int, where: str) -> _Handle | None:
        path = self.block_path(bid, d)
        with self._lock:
            handle = self._handles.get(path)
            if handle is not None:
                self._handles.move_to_end(path)
                handle.refs += 1
                return handle
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            st = os.fstat(fd)
            if st.st_nlink == 0:  # evicted between open and lock
                os.close(fd)
                return None
            if not stat.S_ISREG(st.st_mode):
                raise IntegrityError(f"cache block for {where!r} is not a regular file", where)
            mapped = mmap.mmap(fd, st.st_size, access=mmap.ACCESS_READ) if st.st_size else None
            if mapped is None:
                raise IntegrityError(f"cache block for {where!r} is empty", where)
            try:
                header = _parse_header(mapped, bid, where)
                if header.data_offset + self._stored_len(header) > st.st_size:
                    raise IntegrityError(f"cache block for {where!r} is truncated", where)
            except IntegrityError:
                mapped.close()
                raise
        except IntegrityError as exc:
            os.close(fd)
            log.warning("%s; dropping it", exc)
            self.stats[d].corruptions += 1
            self._unlink(path)
            return None
        except BaseException:
            os.close(fd)
            raise
        handle = _Handle(fd, mapped, header, path, d)
        handle.touched = st.st_mtime
        with self._lock:
            other = self._handles.get(path)
            if other is not None:  # another thread opened it meanwhile
                handle.close()
                other.refs += 1
                return other
            handle.refs = 1
            self._handles[path] = handle
            self._trim_handles()
        return handle

    @staticmethod
    def _stored_len(h: _Header) -> int:
        if not h.length:
            return 0
        off, n = h.chunk_range(len(h.checksums) - 1)
        return off + n - h.data_offset

    def _release(self, handle: _Handle) -> None:
        with self._lock:
            handle.refs -= 1
            if handle.refs <= 0 and self._handles.get(handle.path) is not handle:
                handle.close()
            else:
                self._trim_handles()

    def _trim_handles(self) -> None:
        excess = len(self._handles) - self.max_open
        for path in list(self._handles):
            if excess <= 0:
                break
            h = self._handles[path]
            if h.refs <= 0 and not h.pinned:
                del self._handles[path]
                h.close()
                excess -= 1

    def _forget(self, path: str) -> None:
        with self._lock:
            h = self._handles.pop(path, None)
            if h is not None and h.refs <= 0:
                h.close()

    def _discard(self, bid: BlockId, d: int, handle: _Handle) -> None:
        self._forget(handle.path)
        self._unlink(handle.path)

    @contextlib.contextmanager
    def pin(self, bid: BlockId, copies: int = 1) -> Iterator[bool]:
        """Keep ``bid`` from eviction (by any process) inside the block; yields whether it exists."""
        handles = [h for h in (self._acquire(bid, d, bid.relpath)
                               for d in self.placements(bid, copies)) if h is not None]
        with self._lock:
            for h in handles:
                h.pinned += 1
        try:
            yield bool(handles)
        finally:
            with self._lock:
                for h in handles:
                    h.pinned -= 1
            for h in handles:
                self._release(h)

    # --- writing ----------------------------------------------------------------------

    def put(self, bid: BlockId, data, *, length: int | None = None, sealed: bool = False,
            copies: int = 1, evictable: bool = True, where: str | None = None,
            sealer=None) -> bool:
        """Store block ``bid`` atomically in ``copies`` directories.

        ``data`` is bytes-like, or an iterable of bytes-like pieces with their
        total ``length`` given.  Returns False when a read-cache block was not
        stored (no room); raises ``OSError(ENOSPC)`` for an unevictable
        (ephemeral) block that does not fit.
        """
        where = where or bid.relpath
        if isinstance(data, (bytes, bytearray, memoryview)):
            length = len(data)
            pieces: Iterable = (data,)
        elif length is None:
            raise ValueError("put(): give length= with an iterable of pieces")
        else:
            pieces = data
        sealed = sealed or self.encrypt_all
        targets = self.placements(bid, copies)
        size = _header_size(bid, length) + length + (
            _OVERHEAD * (-(-length // CHUNK_SIZE)) if sealed else 0)
        for d in targets:
            if not self._make_room(d, size, evictable):
                if not evictable:
                    raise OSError(errno.ENOSPC,
                                  f"no room in cache directory {self.directories[d]!r} for "
                                  f"{where!r} (capacity or free-space floor reached); raise "
                                  "cache.capacity_bytes or free disk space", where)
                return False
        tmps = self._write_tmp(bid, pieces, length, sealed, targets, where, sealer)
        try:
            for d, (fd, tmp) in zip(targets, tmps):
                final = self.block_path(bid, d)
                makedirs_private(os.path.dirname(final))
                self._forget(final)
                try:
                    os.replace(tmp, final)
                except (IsADirectoryError, NotADirectoryError, FileExistsError):
                    self._unlink(final)  # something else stands there (a directory): it goes
                    os.replace(tmp, final)
                self.stats[d].blocks_written += 1
                self.stats[d].bytes_written += length
                if self._used[d] is not None:
                    self._used[d] += size
        finally:
            for fd, tmp in tmps:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return True

    def _write_tmp(self, bid, pieces, length, sealed, targets, where, sealer=None):
        tmps = []
        try:
            for d in targets:
                tmp_dir = os.path.join(self.directories[d], "tmp")
                tmp = os.path.join(tmp_dir, f"{os.getpid()}-{uuid.uuid4().hex}.part")
                try:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                except FileNotFoundError:  # the directory was lost: recreate it
                    makedirs_private(tmp_dir)
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                tmps.append((fd, tmp))
                fcntl.flock(fd, fcntl.LOCK_EX)  # marks the temp file as being written
            hsize = _header_size(bid, length)
            for fd, _ in tmps:
                os.lseek(fd, hsize, os.SEEK_SET)
            sums = []
            sealer = (sealer or self._get_sealer()) if sealed else None
            written = 0
            batch: list = []
            # One writev per input piece: few GIL hand-overs, so a busy writer thread
            # does not stall the event loop's own I/O (the GIL convoy effect).
            for chunk in _rechunk(pieces, CHUNK_SIZE):
                if chunk is None:
                    for fd, _ in tmps:
                        _writev_all(fd, batch)
                    batch = []
                    continue
                if sealed:
                    c = len(sums)
                    batch.append(sealer.seal(chunk, bid.key + b"#%d" % c))
                    sums.append(0)
                else:
                    batch.append(chunk)
                    sums.append(_checksum(_WRITE_ALGO, chunk))
                written += len(chunk)
            for fd, _ in tmps:
                _writev_all(fd, batch)
            if written != length:
                raise ValueError(f"block for {where!r}: got {written} bytes, expected {length}")
            header = _header_bytes(bid, sealed, _WRITE_ALGO, length, sums)
            for fd, _ in tmps:
                os.pwrite(fd, header, 0)
            return tmps
        except BaseException:
            for fd, tmp in tmps:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise

    def submit(self, fn, *args) -> concurrent.futures.Future:
        """Run ``fn(*args)`` on the store's writer threads (block writes off the event loop)."""
        with self._lock:
            if self._writer is None or self._writer_pid != os.getpid():
                self._writer = concurrent.futures.ThreadPoolExecutor(
                    max_workers=2, thread_name_prefix="emrfs-cache-writer")
                self._writer_pid = os.getpid()
                self.pending_writes = 0
            self.pending_writes += 1
            future = self._writer.submit(fn, *args)
        future.add_done_callback(self._write_done)
        return future

    def _write_done(self, _future) -> None:
        with self._lock:
            self.pending_writes -= 1

    def write_backlog_full(self) -> bool:
        """True when queued block writes hold ``max_pending_writes`` or more jobs (a slow disk):
        readers then serve what they fetched without caching it, so memory stays bounded."""
        return self.pending_writes >= self.max_pending_writes

    def _get_sealer(self):
        if self._sealer is None:
            from ..crypto.atrest import BlockSealer, CacheKey

            name = "cache-" + hashlib.sha256("\0".join(self.directories).encode()).hexdigest()[:16]
            self._own_key = CacheKey.shared_memory(name)
            self._sealer = BlockSealer(self._own_key)
        return self._sealer

    # --- capacity and eviction ----------------------------------------------------------

    def usage(self, d: int) -> tuple[int, int]:
        """``(cache bytes, ephemeral bytes)`` in directory ``d`` (a scan)."""
        totals = {s: 0 for s in SPACES}
        for space, _path, size, _mtime in self._scan(d):
            totals[space] += size
        return totals["c"], totals["e"]

    def _scan(self, d: int) -> Iterator[tuple[str, str, int, float]]:
        for space in SPACES:
            root = os.path.join(self.directories[d], space)
            for top in _scandir(root):
                for owner in _scandir(top.path):
                    for entry in _scandir(owner.path):
                        try:
                            st = entry.stat()
                        except FileNotFoundError:
                            continue
                        yield space, entry.path, st.st_size, st.st_mtime

    def _make_room(self, d: int, size: int, evictable: bool) -> bool:
        per_dir = self.capacity_bytes // len(self.directories)
        self._puts += 1
        if self._used[d] is None or self._puts % RESCAN_EVERY == 0:
            # a fresh count now and then: other processes fill the same directories
            self._used[d] = sum(self.usage(d))
        need_free = self._free_shortfall(d, size)
        if self._used[d] + size <= per_dir and need_free <= 0:
            return True
        self.evict(d, target=min(int(per_dir * self.low_water), per_dir - size),
                   extra=max(need_free, 0))
        if self._free_shortfall(d, size) > 0:
            return False
        return evictable is False or self._used[d] + size <= per_dir

    def _free_shortfall(self, d: int, size: int) -> int:
        try:
            st = os.statvfs(self.directories[d])
        except FileNotFoundError:
            makedirs_private(os.path.join(self.directories[d], "tmp"))
            st = os.statvfs(self.directories[d])
        total = st.f_blocks * st.f_frsize
        free = st.f_bavail * st.f_frsize
        return int(self.free_space_floor * total) - (free - size)

    def evict(self, d: int, target: int, extra: int = 0) -> int:
        """Evict least recently used unpinned cache blocks of directory ``d`` until its
        bytes are at most ``target`` and ``extra`` more bytes were freed.  Returns bytes freed.

        Only one process evicts a directory at a time; the others skip.
        """
        lock_path = os.path.join(self.directories[d], "evict.lock")
        lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            entries = list(self._scan(d))
            used = sum(e[2] for e in entries)
            freed = 0
            for space, path, size, _mtime in sorted(
                    (e for e in entries if e[0] == "c"), key=lambda e: e[3]):
                if used <= target and freed >= extra:
                    break
                if self._try_evict(path):
                    used -= size
                    freed += size
                    self.stats[d].evictions += 1
            self._used[d] = used
            return freed
        finally:
            os.close(lock_fd)

    def _try_evict(self, path: str) -> bool:
        with self._lock:
            h = self._handles.get(path)
            if h is not None:
                if h.refs > 0 or h.pinned:
                    return False
                del self._handles[path]
                h.close()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # pinned by a reader somewhere
            self._unlink(path)
            return True
        finally:
            os.close(fd)

    # --- invalidation -----------------------------------------------------------------

    def owner_dirs(self, space: str, owner: str) -> list[str]:
        return [os.path.join(d, space, owner[:2], owner) for d in self.directories]

    def drop_owner(self, space: str, owner: str, keep_tag: str | None = None) -> int:
        """Delete blocks of ``owner`` in every directory (all tags but ``keep_tag``)."""
        removed = 0
        prefix = f"{space}/{owner[:2]}/{owner}/"
        with self._lock:
            for path in [p for p in self._handles if prefix in p]:
                if keep_tag is None or not os.path.basename(path).startswith(keep_tag + "."):
                    self._forget(path)
        for odir in self.owner_dirs(space, owner):
            for entry in _scandir(odir):
                if keep_tag is not None and entry.name.startswith(keep_tag + "."):
                    continue
                if self._unlink(entry.path):
                    removed += 1
            if keep_tag is None:
                with contextlib.suppress(OSError):
                    os.rmdir(odir)
        if removed:
            self._used = [None] * len(self.directories)
        return removed

    def clear(self, spaces: tuple[str, ...] = SPACES) -> None:
        """Remove every block of ``spaces`` from every directory."""
        with self._lock:
            for path in list(self._handles):
                self._forget(path)
        for d in self.directories:
            for space in spaces:
                shutil.rmtree(os.path.join(d, space), ignore_errors=True)
        self._used = [None] * len(self.directories)
        if "c" in spaces and self._own_key is not None:
            self._own_key.destroy()  # no sealed cache block is left to need it
            self._own_key = self._sealer = None

    # --- housekeeping -----------------------------------------------------------------

    @staticmethod
    def _unlink(path: str) -> bool:
        """Remove a block file (or whatever stands at its path: a directory goes whole)."""
        try:
            os.unlink(path)
            return True
        except FileNotFoundError:
            return False
        except IsADirectoryError:
            shutil.rmtree(path, ignore_errors=True)
            return not os.path.lexists(path)

    @staticmethod
    def _clean_tmp(d: str) -> None:
        """Remove temp files whose writer is gone (its flock was released)."""
        for entry in _scandir(os.path.join(d, "tmp")):
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(entry.path)
            except (BlockingIOError, FileNotFoundError):
                pass
            finally:
                os.close(fd)

    def metrics(self) -> dict[str, dict[str, int]]:
        """In-process counters per directory: hits, misses, evictions, corruptions, writes."""
        return {s.directory: s.counters() for s in self.stats}

    def flush_stats(self) -> None:
        """Add this process's counters since the last flush to each ``stats.json``."""
        if os.getpid() != self._pid:
            return
        for d, (now, before) in enumerate(zip(self.stats, self._flushed)):
            delta = now.minus(before)
            if not any(delta.values()):
                continue
            with contextlib.suppress(OSError):
                DirStats.add_to_file(os.path.join(self.directories[d], "stats.json"), delta)
                self._flushed[d] = now.copy()

    def close(self) -> None:
        """Finish queued block writes, flush counters and close every open block (releasing pins)."""
        writer, self._writer = self._writer, None
        if writer is not None and self._writer_pid == os.getpid():
            writer.shutdown(wait=True)
        self.flush_stats()
        with self._lock:
            for path in list(self._handles):
                h = self._handles.pop(path)
                h.close()


def makedirs_private(path: str) -> None:
    """``mkdir -p`` where every directory created is mode 0700 whatever the umask.

    Cache and tier directories hold other users' data otherwise readable by
    name (a 0755 directory lists every owner hash and file name); directories
    that already exist are left as they are.
    """
    parent = os.path.dirname(path)
    if parent != path and not os.path.isdir(parent):
        makedirs_private(parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return
    with contextlib.suppress(FileNotFoundError):  # removed meanwhile: as after makedirs
        os.chmod(path, 0o700)  # mkdir's mode is masked by the umask: set it exactly


def _reset_in_child(ref) -> None:
    store = ref()
    if store is not None:
        store._after_fork()


def _flush_at_exit(ref) -> None:
    store = ref()
    if store is not None:
        with contextlib.suppress(Exception):
            store.flush_stats()


def _scandir(path: str):
    try:
        with os.scandir(path) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _rechunk(pieces: Iterable, size: int) -> Iterator[memoryview | bytes | None]:
    """Re-cut a stream of bytes-like pieces into ``size``-byte chunks (last one shorter).

    ``None`` follows the chunks completed by each input piece (a point to flush at).
    """
    pending = bytearray()
    for piece in pieces:
        view = memoryview(piece).cast("B")
        if not pending:
            while len(view) >= size:
                yield view[:size]
                view = view[size:]
        pending += view
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
        yield None
    if pending:
        yield bytes(pending)


def _writev_all(fd: int, bufs: list) -> None:
    """Write every buffer of ``bufs`` in order (writev, resumed after short writes)."""
    views = [memoryview(b).cast("B") for b in bufs if len(b)]
    while views:
        n = os.writev(fd, views[:1024])  # IOV_MAX
        while n and views:
            if n >= len(views[0]):
                n -= len(views.pop(0))
            else:
                views[0] = views[0][n:]
                n = 0


def read_stats_file(directory: str) -> dict[str, int]:
    """Counters every process flushed into ``directory/stats.json``."""
    try:
        with open(os.path.join(directory, "stats.json")) as f:
            return {k: int(v) for k, v in json.load(f).items()}
    except (FileNotFoundError, ValueError):
        return {}

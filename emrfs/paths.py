"""Pure path logic: URLs to ``bucket/key``, validation, parents and folder markers.

No I/O here.  An emrfs path is ``bucket`` or ``bucket/key`` with no leading or
trailing slash; the root of the namespace (all buckets) is ``""``.

Folder markers: emrfs *reads* both kinds that exist in the wild,

* ``dir/``          written by S3A, the S3 console, s3fs and pyarrow, and
* ``dir_$folder$``  written by Amazon EMRFS,

and *writes* only the first (``dir/``): every other S3 tool understands it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .errors import InvalidPathError

PROTOCOLS: tuple[str, ...] = ("emrfs", "s3", "s3a", "s3n")
DIR_MARKER_SUFFIX = "/"
EMRFS_FOLDER_SUFFIX = "_$folder$"
GLOB_MAGIC = re.compile(r"[*?\[]")

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_IPV4_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_SLASHES_RE = re.compile(r"/{2,}")
_URL_RE = re.compile(r"^(?P<proto>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.S)
#: Characters no key may hold: every request that lists or bulk-deletes keys is XML 1.0,
#: which cannot carry C0 controls (tab aside; a newline comes back altered) nor
#: U+FFFE/U+FFFF, so S3 stores such a key but then fails (500) to list or delete it;
#: a lone surrogate has no UTF-8 form at all.
_FORBIDDEN_KEY_CHARS = re.compile("[\x00-\x08\x0a-\x1f\ufffe\uffff\ud800-\udfff]")
MAX_KEY_BYTES = 1024


def strip_protocol(path: str) -> str:
    """``emrfs://b/k/`` (or ``s3://``, ``s3a://``, ``s3n://``, bare) -> ``b/k``.

    ``//`` runs collapse (as Hadoop's ``Path`` does); a protocol we do not serve
    is an error naming it.
    """
    if not isinstance(path, str):
        path = str(path)
    if "//" not in path:  # already bare, as most paths inside emrfs are: no pattern to run
        return path.strip("/")
    match = _URL_RE.match(path)
    if match:
        proto = match.group("proto").lower()
        if proto not in PROTOCOLS:
            raise InvalidPathError(
                f"unsupported scheme {proto!r} in {path!r}; use one of "
                + ", ".join(p + "://" for p in PROTOCOLS),
                path,
            )
        path = match.group("rest")
    path = _SLASHES_RE.sub("/", path)
    return path.strip("/")


def split(path: str) -> tuple[str, str]:
    """``b/k/x`` -> (``b``, ``k/x``); ``b`` -> (``b``, ``""``)."""
    path = strip_protocol(path)
    bucket, _, key = path.partition("/")
    return bucket, key


def join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def parent(path: str) -> str:
    """Parent of ``b/k/x`` is ``b/k``; of ``b`` is ``""`` (the root)."""
    path = strip_protocol(path)
    return path.rpartition("/")[0] if "/" in path else ""


def basename(path: str) -> str:
    return strip_protocol(path).rpartition("/")[2]


def ancestors(path: str) -> list[str]:
    """Directories strictly above ``path`` inside its bucket, nearest first.

    ``b/x/y/f`` -> [``b/x/y``, ``b/x``]; the bucket itself is not included.
    """
    bucket, key = split(path)
    parts = key.split("/")[:-1] if key else []
    out = []
    while parts:
        out.append(bucket + "/" + "/".join(parts))
        parts.pop()
    return out


def is_within(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` or lies below it (segment-wise, not by prefix)."""
    path, root = strip_protocol(path), strip_protocol(root)
    return not root or path == root or path.startswith(root + "/")


def relative_to(path: str, root: str) -> str:
    path, root = strip_protocol(path), strip_protocol(root)
    if not is_within(path, root):
        raise InvalidPathError(f"{path!r} is not below {root!r}", path)
    return path[len(root) :].lstrip("/") if root else path


def validate_bucket(bucket: str, path: str | None = None) -> None:
    """Raise :class:`InvalidPathError` for a bucket name S3 would refuse."""
    where = path if path is not None else bucket
    if (
        not _BUCKET_RE.match(bucket)
        or ".." in bucket
        or _IPV4_RE.match(bucket)
        or bucket.startswith("xn--")
        or bucket.endswith("-s3alias")
    ):
        raise InvalidPathError(
            f"invalid bucket name {bucket!r} in {where!r}: bucket names are 3-63 "
            "characters of lowercase a-z, 0-9, '.' and '-', starting and ending with a "
            "letter or digit",
            where,
        )


def validate(path: str) -> str:
    """Normalise ``path`` and check it names something S3 and HDFS can both hold.

    Returns the normalised path.  Refuses bad bucket names, ``.`` and ``..``
    segments (HDFS has no such names and S3 would store them literally),
    folder-marker suffixes, characters a key cannot hold (NUL and the other
    control characters but tab, U+FFFE, U+FFFF, lone surrogates: see
    ``_FORBIDDEN_KEY_CHARS``), and keys over S3's 1024-byte limit, all before
    any request is sent.
    """
    norm = strip_protocol(path)
    if not norm:
        return norm
    bad = _FORBIDDEN_KEY_CHARS.search(norm)
    if bad is not None:
        char = bad.group()
        what = (
            "a lone surrogate"
            if "\ud800" <= char <= "\udfff"
            else "a control character"
            if char < " "
            else "a non-character"
        )
        raise InvalidPathError(
            f"path {path!r} holds {what} ({char!r}, U+{ord(char):04X}); "
            "S3 keys cannot hold NUL, control characters other than tab, U+FFFE, U+FFFF or "
            "unpaired surrogates (decode file names with errors='strict', or rename them)",
            path,
        )
    bucket, key = split(norm)
    validate_bucket(bucket, path)
    if key:
        for segment in key.split("/"):
            if segment in (".", ".."):
                raise InvalidPathError(
                    f"path {path!r} has a {segment!r} segment; emrfs paths are absolute "
                    "and never contain '.' or '..' (resolve it before calling)",
                    path,
                )
        if key.endswith(EMRFS_FOLDER_SUFFIX):
            raise InvalidPathError(
                f"path {path!r} ends in {EMRFS_FOLDER_SUFFIX!r}, which is reserved for "
                "EMRFS folder markers",
                path,
            )
        size = len(key.encode("utf-8"))
        if size > MAX_KEY_BYTES:
            raise InvalidPathError(
                f"path {path!r} has a key of {size} bytes in UTF-8; S3 allows {MAX_KEY_BYTES} "
                "(shorten the path)",
                path,
            )
    return norm


# --- folder markers ---------------------------------------------------------------


def marker_keys(key: str) -> tuple[str, str]:
    """The two marker object keys that can stand for directory ``key``."""
    return key + DIR_MARKER_SUFFIX, key + EMRFS_FOLDER_SUFFIX


def marker_dir(key: str) -> str | None:
    """If ``key`` is a folder marker (either kind), the directory key it stands for."""
    if key.endswith(DIR_MARKER_SUFFIX):
        return key[:-1]
    if key.endswith(EMRFS_FOLDER_SUFFIX):
        return key[: -len(EMRFS_FOLDER_SUFFIX)]
    return None


def implied_dirs(key: str, below: str = "") -> Iterator[str]:
    """Directory keys implied by object ``key`` strictly between ``below`` and it.

    ``implied_dirs("a/b/c/f", "a")`` yields ``a/b/c`` then ``a/b``.
    """
    stop = below.rstrip("/")
    head = key.rpartition("/")[0]
    while head and head != stop and (not stop or head.startswith(stop + "/")):
        yield head
        head = head.rpartition("/")[0]


# --- globbing ---------------------------------------------------------------------


def glob_literal_prefix(pattern: str) -> str:
    """The part of a glob before its first magic character (may end mid-segment)."""
    match = GLOB_MAGIC.search(pattern)
    return pattern if match is None else pattern[: match.start()]


def has_magic(pattern: str) -> bool:
    return GLOB_MAGIC.search(pattern) is not None

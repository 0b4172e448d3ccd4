"""S3 wire details the fault proxy needs: which operation a request is, error
bodies, and rewriting LIST responses (hide keys, re-insert deleted ones).

Pure functions over bytes and strings; no sockets here.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, unquote_plus, urlsplit

# Sub-resources that turn an object/bucket request into a different operation.
_OBJECT_SUBRESOURCES = (
    "acl",
    "tagging",
    "retention",
    "legal-hold",
    "attributes",
    "torrent",
    "restore",
    "select",
)

WRITE_OPERATIONS = frozenset({"PutObject", "CopyObject", "CompleteMultipartUpload"})
LIST_OPERATIONS = frozenset({"ListObjects", "ListObjectsV2"})


@dataclass(frozen=True)
class S3Request:
    """What a path-style S3 request is about."""

    operation: str
    bucket: str
    key: str
    query: Mapping[str, list[str]]

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def target(self) -> str:
        """``bucket/key`` (or ``bucket/prefix`` for a LIST): what key substrings match."""
        return f"{self.bucket}/{self.key or self.param('prefix', '')}"


def split_target(target: str) -> tuple[str, str]:
    """``(path, query)`` of a request target, absolute-form (proxy style) or not."""
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path, query


def classify(method: str, target: str, has_copy_source: bool = False) -> S3Request:
    """Name the S3 operation of a path-style request (``GET /bucket/key?...``)."""
    raw_path, raw_query = split_target(target)
    query = parse_qs(raw_query, keep_blank_values=True)
    bucket, _, key = unquote(raw_path).lstrip("/").partition("/")
    return S3Request(_operation(method, bucket, key, query, has_copy_source), bucket, key, query)


def _operation(
    method: str, bucket: str, key: str, query: Mapping[str, list[str]], copy: bool
) -> str:
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method.title()}Service"
    if not key:
        return _bucket_operation(method, query)
    sub = next((s for s in _OBJECT_SUBRESOURCES if s in query), None)
    if method == "GET":
        if "uploadId" in query:
            return "ListParts"
        return "GetObject" + _camel(sub)
    if method == "HEAD":
        return "HeadObject"
    if method == "PUT":
        if "partNumber" in query and "uploadId" in query:
            return "UploadPartCopy" if copy else "UploadPart"
        if sub:
            return "PutObject" + _camel(sub)
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        return "PostObject" + _camel(sub)
    if method == "DELETE":
        if "uploadId" in query:
            return "AbortMultipartUpload"
        return "DeleteObject" + _camel(sub)
    return f"{method.title()}Object"


def _bucket_operation(method: str, query: Mapping[str, list[str]]) -> str:
    first = next(iter(query), "")
    if method == "GET":
        if query.get("list-type") == ["2"]:
            return "ListObjectsV2"
        if "uploads" in query:
            return "ListMultipartUploads"
        if "versions" in query:
            return "ListObjectVersions"
        if first and first not in ("prefix", "delimiter", "marker", "max-keys", "encoding-type"):
            return "GetBucket" + _camel(first)
        return "ListObjects"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if method == "PUT":
        return "PutBucket" + _camel(first) if first else "CreateBucket"
    if method == "DELETE":
        return "DeleteBucket" + _camel(first)
    if method == "HEAD":
        return "HeadBucket"
    return f"{method.title()}Bucket"


def _camel(sub: str | None) -> str:
    return "".join(part.title() for part in sub.split("-")) if sub else ""


def error_body(code: str, message: str, resource: str) -> bytes:
    """An S3 XML error document, as S3 sends it with a 4xx/5xx status."""
    root = ET.Element("Error")
    for tag, text in (
        ("Code", code),
        ("Message", message),
        ("Resource", resource),
        ("RequestId", uuid.uuid4().hex[:16].upper()),
    ):
        ET.SubElement(root, tag).text = text
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# --- listings -----------------------------------------------------------------


@dataclass(frozen=True)
class ListEntry:
    """One ``<Contents>`` entry of a listing, keys decoded."""

    key: str
    last_modified: str
    etag: str
    size: int
    storage_class: str = "STANDARD"
    owner_id: str | None = None
    owner_name: str | None = None


@dataclass(frozen=True)
class Listing:
    entries: list[ListEntry]
    prefixes: list[str]
    truncated: bool


def _ns(root: ET.Element) -> str:
    return root.tag[1 : root.tag.index("}")] if root.tag.startswith("{") else ""


def _qualifier(ns: str) -> Callable[[str], str]:
    """Tag name -> ElementTree's ``{namespace}tag``."""
    return (lambda tag: f"{{{ns}}}{tag}") if ns else (lambda tag: tag)


def _text(elem: ET.Element, tag: str, ns: str) -> str | None:
    child = elem.find(_qualifier(ns)(tag))
    return child.text if child is not None else None


def _decoder(root: ET.Element, ns: str) -> Callable[[str], str]:
    return unquote_plus if _text(root, "EncodingType", ns) == "url" else (lambda s: s)


def parse_listing(body: bytes) -> Listing:
    """Entries, common prefixes and truncation of a ListObjects(V2) response."""
    root = ET.fromstring(body)
    ns = _ns(root)
    decode = _decoder(root, ns)
    q = _qualifier(ns)
    entries = [_parse_entry(el, ns, decode) for el in root.iter(q("Contents"))]
    prefixes = [decode(_text(el, "Prefix", ns) or "") for el in root.iter(q("CommonPrefixes"))]
    return Listing(entries, prefixes, (_text(root, "IsTruncated", ns) or "").lower() == "true")


def _parse_entry(elem: ET.Element, ns: str, decode: Callable[[str], str]) -> ListEntry:
    owner = elem.find(_qualifier(ns)("Owner"))
    return ListEntry(
        key=decode(_text(elem, "Key", ns) or ""),
        last_modified=_text(elem, "LastModified", ns) or "",
        etag=_text(elem, "ETag", ns) or "",
        size=int(_text(elem, "Size", ns) or 0),
        storage_class=_text(elem, "StorageClass", ns) or "STANDARD",
        owner_id=_text(owner, "ID", ns) if owner is not None else None,
        owner_name=_text(owner, "DisplayName", ns) if owner is not None else None,
    )


@dataclass(frozen=True)
class ListingView:
    """How one LIST request should look: its parameters and the injected state."""

    prefix: str
    delimiter: str
    lower: str | None  # entries <= lower belong to earlier pages
    hidden: frozenset[str]  # keys to hide (newly written, within delay)
    lingering: Mapping[str, ListEntry]  # deleted keys to show (within delay)
    prefix_has_visible: Callable[[str, int], bool]  # (prefix, n hidden under it)
    with_owner: bool


@dataclass(frozen=True)
class Rewritten:
    body: bytes
    hidden: int
    added: int
    upper: str | None  # last entry of the upstream page if truncated (next page's lower)
    next_token: str | None  # NextContinuationToken, or NextMarker (opaque in moto)


def rewrite_listing(body: bytes, view: ListingView) -> Rewritten:
    """Hide ``view.hidden`` keys (and the common prefixes only they imply) and
    insert ``view.lingering`` entries (and their prefixes) in key order."""
    root = ET.fromstring(body)
    ns = _ns(root)
    q = _qualifier(ns)
    encoded = _text(root, "EncodingType", ns) == "url"
    decode = _decoder(root, ns)
    encode = (lambda s: quote(s, safe="/")) if encoded else (lambda s: s)
    contents = [el for el in root if el.tag == q("Contents")]
    prefix_elems = [el for el in root if el.tag == q("CommonPrefixes")]
    keys = {decode(_text(el, "Key", ns) or ""): el for el in contents}
    prefixes = {decode(_text(el, "Prefix", ns) or ""): el for el in prefix_elems}
    truncated = (_text(root, "IsTruncated", ns) or "").lower() == "true"
    upper = max([*keys, *prefixes], default=None) if truncated else None

    hidden = _hide(view, keys, prefixes)
    added = _add_lingering(view, keys, prefixes, q, encode, upper)
    if hidden or added:
        _replace_children(
            root,
            q,
            contents + prefix_elems,
            [keys[k] for k in sorted(keys)] + [prefixes[p] for p in sorted(prefixes)],
        )
        count = root.find(q("KeyCount"))
        if count is not None:
            count.text = str(len(keys) + len(prefixes))
        body = ET.tostring(
            root, encoding="utf-8", xml_declaration=True, default_namespace=ns or None
        )
    token = _text(root, "NextContinuationToken", ns) or _text(root, "NextMarker", ns)
    return Rewritten(body, hidden, added, upper, token)


def _hide(view: ListingView, keys: dict, prefixes: dict) -> int:
    """Drop the hidden keys, and the common prefixes only hidden keys imply, in place."""
    hidden = 0
    for key in [k for k in keys if k in view.hidden]:
        del keys[key]
        hidden += 1
    for prefix in list(prefixes):
        under = sum(1 for k in view.hidden if k.startswith(prefix))
        if (
            under
            and not any(k.startswith(prefix) for k in view.lingering)
            and not view.prefix_has_visible(prefix, under)
        ):
            del prefixes[prefix]
            hidden += 1
    return hidden


def _add_lingering(
    view: ListingView,
    keys: dict,
    prefixes: dict,
    q: Callable[[str], str],
    encode: Callable[[str], str],
    upper: str | None,
) -> int:
    """Insert the lingering entries (or their common prefixes) this page covers, in place."""
    added = 0
    for key, entry in view.lingering.items():
        if not key.startswith(view.prefix) or key in keys:
            continue
        rest = key[len(view.prefix) :]
        if view.delimiter and view.delimiter in rest:
            name = view.prefix + rest[: rest.index(view.delimiter) + len(view.delimiter)]
            if name in prefixes or not _in_page(name, view.lower, upper):
                continue
            prefixes[name] = _prefix_element(q, encode(name))
        else:
            if not _in_page(key, view.lower, upper):
                continue
            keys[key] = _entry_element(q, entry, encode(key), view.with_owner)
        added += 1
    return added


def _in_page(name: str, lower: str | None, upper: str | None) -> bool:
    return (lower is None or name > lower) and (upper is None or name <= upper)


def _replace_children(
    root: ET.Element, q: Callable[[str], str], old: list[ET.Element], new: Iterable[ET.Element]
) -> None:
    children = list(root)
    at = min((children.index(el) for el in old), default=None)
    if at is None:  # no entries at all: S3 puts them before the continuation fields
        tail = {q("NextContinuationToken"), q("NextMarker"), q("EncodingType")}
        at = next((i for i, el in enumerate(children) if el.tag in tail), len(children))
    for el in old:
        root.remove(el)
    for offset, el in enumerate(new):
        root.insert(at + offset, el)


def _entry_element(
    q: Callable[[str], str], entry: ListEntry, key: str, with_owner: bool
) -> ET.Element:
    el = ET.Element(q("Contents"))
    for tag, text in (
        ("Key", key),
        ("LastModified", entry.last_modified),
        ("ETag", entry.etag),
        ("Size", str(entry.size)),
    ):
        ET.SubElement(el, q(tag)).text = text
    if with_owner and entry.owner_id is not None:
        owner = ET.SubElement(el, q("Owner"))
        ET.SubElement(owner, q("ID")).text = entry.owner_id
        if entry.owner_name is not None:
            ET.SubElement(owner, q("DisplayName")).text = entry.owner_name
    ET.SubElement(el, q("StorageClass")).text = entry.storage_class
    return el


def _prefix_element(q: Callable[[str], str], prefix: str) -> ET.Element:
    el = ET.Element(q("CommonPrefixes"))
    ET.SubElement(el, q("Prefix")).text = prefix
    return el


def deleted_keys_of_request(body: bytes) -> list[str]:
    """Keys named in a DeleteObjects request body."""
    root = ET.fromstring(body)
    ns = _ns(root)
    q = _qualifier(ns)
    return [(_text(obj, "Key", ns) or "") for obj in root.iter(q("Object"))]


def failed_keys_of_response(body: bytes) -> set[str]:
    """Keys a DeleteObjects response reports as ``<Error>`` (not deleted)."""
    root = ET.fromstring(body)
    ns = _ns(root)
    q = _qualifier(ns)
    return {(_text(err, "Key", ns) or "") for err in root.iter(q("Error"))}


def is_error_document(body: bytes) -> bool:
    """A 200 response whose body is an ``<Error>`` (CompleteMultipartUpload, CopyObject)."""
    head = body[:512].lstrip()
    if head.startswith(b"<?xml"):
        head = head[head.find(b"?>") + 2 :].lstrip()
    return head.startswith(b"<Error")

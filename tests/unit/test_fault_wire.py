"""Pure parts of the fault proxy: request classification, LIST rewriting,
ranges, and policy validation."""

from __future__ import annotations

import pytest

from emrfs.testing._fault_handler import _parse_range
from emrfs.testing._s3wire import (
    ListEntry,
    ListingView,
    classify,
    is_error_document,
    parse_listing,
    rewrite_listing,
)
from emrfs.testing.faults import Failure, FaultPolicy, Inconsistency


@pytest.mark.parametrize(
    "method, target, copy, operation, bucket, key",
    [
        ("GET", "/", False, "ListBuckets", "", ""),
        ("GET", "/b?list-type=2&prefix=a%2F", False, "ListObjectsV2", "b", ""),
        ("GET", "/b?prefix=a&delimiter=%2F", False, "ListObjects", "b", ""),
        ("GET", "/b", False, "ListObjects", "b", ""),
        ("GET", "/b?versioning", False, "GetBucketVersioning", "b", ""),
        ("GET", "/b?uploads", False, "ListMultipartUploads", "b", ""),
        ("POST", "/b?delete", False, "DeleteObjects", "b", ""),
        ("PUT", "/b", False, "CreateBucket", "b", ""),
        ("HEAD", "/b", False, "HeadBucket", "b", ""),
        ("GET", "/b/dir/a%20b", False, "GetObject", "b", "dir/a b"),
        ("GET", "/b/k?tagging", False, "GetObjectTagging", "b", "k"),
        ("HEAD", "/b/k", False, "HeadObject", "b", "k"),
        ("PUT", "/b/k", False, "PutObject", "b", "k"),
        ("PUT", "/b/k", True, "CopyObject", "b", "k"),
        ("PUT", "/b/k?partNumber=1&uploadId=u", False, "UploadPart", "b", "k"),
        ("PUT", "/b/k?partNumber=1&uploadId=u", True, "UploadPartCopy", "b", "k"),
        ("POST", "/b/k?uploads", False, "CreateMultipartUpload", "b", "k"),
        ("POST", "/b/k?uploadId=u", False, "CompleteMultipartUpload", "b", "k"),
        ("DELETE", "/b/k?uploadId=u", False, "AbortMultipartUpload", "b", "k"),
        ("DELETE", "/b/k", False, "DeleteObject", "b", "k"),
        ("GET", "http://127.0.0.1:9/b/k", False, "GetObject", "b", "k"),
    ],
)
def test_classify(method, target, copy, operation, bucket, key):
    req = classify(method, target, copy)
    assert (req.operation, req.bucket, req.key) == (operation, bucket, key)


NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def listing(
    contents: list[str], prefixes: list[str] = (), *, truncated=False, encoded=False, token=None
) -> bytes:
    entries = "".join(
        f"<Contents><Key>{k}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
        f"<ETag>&quot;e-{k}&quot;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass>"
        f"</Contents>"
        for k in contents
    )
    cps = "".join(f"<CommonPrefixes><Prefix>{p}</Prefix></CommonPrefixes>" for p in prefixes)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{NS}">'
        f"<Name>b</Name><Prefix></Prefix><KeyCount>{len(contents) + len(prefixes)}</KeyCount>"
        f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{entries}{cps}"
        + (f"<NextContinuationToken>{token}</NextContinuationToken>" if token else "")
        + ("<EncodingType>url</EncodingType>" if encoded else "")
        + "</ListBucketResult>"
    ).encode()


def view(**kwargs) -> ListingView:
    defaults = dict(
        prefix="",
        delimiter="",
        lower=None,
        hidden=frozenset(),
        lingering={},
        prefix_has_visible=lambda p, n: False,
        with_owner=False,
    )
    return ListingView(**{**defaults, **kwargs})


def entry(key: str) -> ListEntry:
    return ListEntry(key, "2025-01-01T00:00:00.000Z", '"gone"', 7)


def test_rewrite_hides_keys_and_the_prefixes_only_they_imply():
    body = listing(["a", "c"], ["d/", "e/"])
    out = rewrite_listing(
        body,
        view(
            delimiter="/",
            hidden=frozenset({"c", "d/x", "e/y"}),
            prefix_has_visible=lambda p, n: p == "e/",
        ),
    )
    parsed = parse_listing(out.body)
    assert [e.key for e in parsed.entries] == ["a"]
    assert parsed.prefixes == ["e/"]
    assert out.hidden == 2 and out.added == 0
    assert b"<KeyCount>2</KeyCount>" in out.body
    assert out.body.count(b"xmlns=") == 1 and b"ns0:" not in out.body


def test_rewrite_inserts_lingering_entries_in_order_and_url_encoded():
    body = listing(["a", "z"], encoded=True)
    out = rewrite_listing(
        body, view(lingering={"m n": entry("m n"), "sub/k": entry("sub/k")}, delimiter="/")
    )
    parsed = parse_listing(out.body)
    assert [e.key for e in parsed.entries] == ["a", "m n", "z"]
    assert parsed.prefixes == ["sub/"]
    assert b"<Key>m%20n</Key>" in out.body
    assert parsed.entries[1] == entry("m n")


def test_rewrite_keeps_lingering_entries_within_the_page():
    page1 = listing(["k1", "k3"], truncated=True, token="T1")
    out = rewrite_listing(page1, view(lingering={"k2": entry("k2"), "k4": entry("k4")}))
    assert [e.key for e in parse_listing(out.body).entries] == ["k1", "k2", "k3"]
    assert (out.upper, out.next_token) == ("k3", "T1")
    page2 = listing(["k5"])
    out = rewrite_listing(page2, view(lower="k3", lingering={"k2": entry("k2"), "k4": entry("k4")}))
    assert [e.key for e in parse_listing(out.body).entries] == ["k4", "k5"]


def test_an_unchanged_listing_is_passed_through_byte_for_byte():
    body = listing(["a"])
    assert rewrite_listing(body, view(hidden=frozenset({"other"}))).body == body


def test_error_documents_are_recognised():
    assert is_error_document(b'<?xml version="1.0"?>\n<Error><Code>InternalError</Code></Error>')
    assert not is_error_document(b"<CompleteMultipartUploadResult/>")


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, None),
        ("bytes=0-3", (0, 3)),
        ("bytes=8-", (8, 10)),
        ("bytes=-3", (8, 10)),
        ("bytes=5-100", (5, 10)),
        ("bytes=11-", "invalid"),
        ("bytes=0-1,3-4", None),
        ("items=0-1", None),
    ],
)
def test_parse_range(header, expected):
    assert _parse_range(header, 11) == expected


def test_policies_reject_bad_values():
    with pytest.raises(ValueError, match="probability"):
        Failure(1.5)
    with pytest.raises(ValueError, match="limit"):
        Failure(1.0, limit=-1)
    with pytest.raises(ValueError, match="collection"):
        Failure(1.0, operations="GetObject")
    with pytest.raises(ValueError, match="delay"):
        Inconsistency(delay=-1)
    with pytest.raises(ValueError, match="cut_fraction"):
        FaultPolicy(cut_fraction=1.0)


def test_policy_from_s3a_properties():
    policy = FaultPolicy.from_properties(
        {
            "fs.s3a.failinject.inconsistency.key.substring": "DELAY",
            "fs.s3a.failinject.inconsistency.msec": "2500",
            "fs.s3a.failinject.throttle.probability": "0.25",
            "fs.s3a.endpoint": "ignored",
        },
        seed=3,
    )
    assert policy.inconsistency == Inconsistency(key_substring="DELAY", delay=2.5)
    assert policy.slow_down == Failure(0.25)
    assert policy.seed == 3
    assert FaultPolicy.from_properties({}) == FaultPolicy()
    with pytest.raises(ValueError, match=r"fs\.s3a\.failinject\.inconsistency\.typo"):
        FaultPolicy.from_properties({"fs.s3a.failinject.inconsistency.typo": "1"})

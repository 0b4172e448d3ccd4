from datetime import datetime, timezone

from emrfs.s3.listing import Listing, add_page
from emrfs.status import StatusFactory

T = datetime(2026, 1, 1, tzinfo=timezone.utc)


def obj(key, size=1):
    return {"Key": key, "Size": size, "ETag": '"e"', "LastModified": T}


def test_delimited_page_markers_and_prefixes():
    listing = Listing()
    page = {
        "Contents": [obj("d/", 0), obj("d/f"), obj("d/emr_$folder$", 0), obj("d/s3a/", 0)],
        "CommonPrefixes": [{"Prefix": "d/sub/"}],
    }
    # s3a/ as a Content only appears with delimiter when it is the own marker of a child prefix
    add_page(listing, "b", "d", page, StatusFactory(1), recursive=False)
    names = [e["name"] for e in listing.entries()]
    assert names == ["b/d/emr", "b/d/f", "b/d/s3a", "b/d/sub"]
    assert listing.self_marker == "d/"
    assert listing.files["b/d/f"]["size"] == 1


def test_recursive_page_implies_directories():
    listing = Listing()
    page = {"Contents": [obj("r/a/b/f"), obj("r/e/", 0), obj("r/x_$folder$", 0)]}
    add_page(listing, "b", "r", page, StatusFactory(1), recursive=True)
    assert sorted(listing.dirs) == ["b/r/a", "b/r/a/b", "b/r/e", "b/r/x"]
    assert list(listing.files) == ["b/r/a/b/f"]

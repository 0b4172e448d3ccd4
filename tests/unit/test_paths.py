import pytest

from emrfs import paths
from emrfs.errors import InvalidPathError


@pytest.mark.parametrize(
    "url",
    ["emrfs://b1c/k/x", "s3://b1c/k/x", "s3a://b1c/k/x/", "s3n://b1c//k/x", "b1c/k/x", "/b1c/k/x"],
)
def test_all_spellings_name_the_same_object(url):
    assert paths.strip_protocol(url) == "b1c/k/x"
    assert paths.split(url) == ("b1c", "k/x")


def test_foreign_scheme_is_named():
    with pytest.raises(InvalidPathError, match="gs"):
        paths.strip_protocol("gs://bucket/key")


@pytest.mark.parametrize(
    "bad",
    ["ab", "Upper", "under_score", "-dash", "a" * 64, "192.168.1.1", "two..dots", "xn--punycode"],
)
def test_invalid_bucket_names_are_refused_naming_the_path(bad):
    with pytest.raises(InvalidPathError, match="invalid bucket name") as info:
        paths.validate(f"emrfs://{bad}/key")
    assert bad in str(info.value)


@pytest.mark.parametrize("bad", ["bkt/a/../b", "bkt/./a", "bkt/a/..", "bkt/x_$folder$"])
def test_dot_segments_and_reserved_suffix_refused(bad):
    with pytest.raises(InvalidPathError, match=r"\.\.|'\.'|\$folder\$"):
        paths.validate(bad)


def test_key_length_limit():
    with pytest.raises(InvalidPathError, match="1024"):
        paths.validate("bkt/" + "k" * 1025)
    assert paths.validate("bkt/" + "k" * 1024)


@pytest.mark.parametrize(
    "bad",
    [
        "bkt/a\x00b",
        "bkt/a\x1fb",
        "bkt/a\rb",
        "bkt/a\ufffe",
        "bkt/a\uffff",
        "bkt/a\ud800",
        "emrfs://bkt/\udcff/x",
    ],
)
def test_characters_s3_cannot_hold_are_refused_naming_the_path(bad):
    with pytest.raises(InvalidPathError) as info:
        paths.validate(bad)
    assert info.value.path == bad
    assert repr(bad) in str(info.value) and "U+" in str(info.value)


@pytest.mark.parametrize("good", ["bkt/a\tb", "bkt/a\x7fb", "bkt/\u00e9t\u00e9", "bkt/\U0001f600"])
def test_other_characters_are_kept(good):
    assert paths.validate(good) == good


def test_key_length_counts_utf8_bytes():
    with pytest.raises(InvalidPathError, match="1026 bytes"):
        paths.validate("bkt/" + "\u00e9" * 513)
    assert paths.validate("bkt/" + "\u00e9" * 512)


def test_parents_and_ancestors():
    assert paths.parent("bkt/a/b") == "bkt/a"
    assert paths.parent("bkt") == ""
    assert paths.ancestors("bkt/x/y/f") == ["bkt/x/y", "bkt/x"]
    assert paths.ancestors("bkt/f") == []
    assert paths.is_within("bkt/a/b", "bkt/a") and not paths.is_within("bkt/ab", "bkt/a")
    assert paths.relative_to("bkt/a/b/c", "bkt/a") == "b/c"


def test_markers():
    assert paths.marker_keys("d/e") == ("d/e/", "d/e_$folder$")
    assert paths.marker_dir("d/e/") == "d/e"
    assert paths.marker_dir("d/e_$folder$") == "d/e"
    assert paths.marker_dir("d/e") is None
    assert list(paths.implied_dirs("a/b/c/f", "a")) == ["a/b/c", "a/b"]
    assert list(paths.implied_dirs("a/f", "")) == ["a"]


def test_glob_literal_prefix():
    assert paths.glob_literal_prefix("b/logs/2026-0*.log") == "b/logs/2026-0"
    assert paths.glob_literal_prefix("b/x/[ab]") == "b/x/"
    assert paths.has_magic("b/?") and not paths.has_magic("b/plain")

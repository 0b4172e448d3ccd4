"""What a listing costs per key, checked without a clock: pages fetched one ahead,
options resolved once per listing, statuses remembered under one lock, implied
directories walked once, S3's timestamps parsed without dateutil."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from emrfs.config import Options
from emrfs.readplan import KnownStatuses
from emrfs.s3.client import _parse_timestamp, _shared_session
from emrfs.s3.listing import Listing, add_page, read_ahead
from emrfs.status import StatusFactory
from emrfs.store.protocol import ListPage, ObjectMeta

T = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


class _Pages:
    """An async iterator of ``n`` pages that records when each fetch starts."""

    def __init__(self, n: int):
        self.n = n
        self.started: list[int] = []
        self.closed = False

    def __aiter__(self):
        return self

    async def __anext__(self) -> int:
        number = len(self.started)
        if number == self.n:
            raise StopAsyncIteration
        self.started.append(number)
        await asyncio.sleep(0)  # a server round trip
        return number

    async def aclose(self) -> None:
        self.closed = True


def test_read_ahead_starts_the_next_fetch_before_the_caller_works_on_a_page():
    async def run():
        pages = _Pages(4)
        seen = []
        async for page in read_ahead(pages):
            # the fetch of the next page is under way while this one is worked on
            seen.append((page, list(pages.started)))
        return seen, pages

    seen, pages = asyncio.run(run())
    assert [p for p, _ in seen] == [0, 1, 2, 3]
    for page, started in seen[:-1]:
        assert page + 1 in started
    assert pages.closed


def test_read_ahead_closes_its_source_when_the_caller_stops_early():
    async def run():
        pages = _Pages(10)
        async for page in read_ahead(pages):
            if page == 1:
                break
        await asyncio.sleep(0)
        return pages

    pages = asyncio.run(run())
    assert pages.closed
    assert len(pages.started) <= 3  # at most the page after the last one taken


def test_uniform_below_sees_overrides_inside_the_listed_path_only():
    options = Options(overrides=(("b/enc", (("cse.enabled", True),)), ("b", (("s3.owner", "x"),))))
    assert not options.uniform_below("b")  # b/enc differs from b
    assert options.uniform_below("b/enc")
    assert options.uniform_below("b/enc/deeper")
    assert options.uniform_below("b/other")
    assert options.uniform_below("b/en")  # segment-wise: b/enc is not below b/en
    assert Options().uniform_below("b")


def test_add_page_implies_each_directory_once_markers_included():
    listing = Listing()
    objects = [
        ObjectMeta("b/r/a/b/f", 1, '"e"', T),
        ObjectMeta("b/r/a/b/g", 1, '"e"', T),
        ObjectMeta("b/r/a/c/d/", 0, '"m"', T),  # a marker deep below a known directory
        ObjectMeta("b/r/x/y_$folder$", 0, '"m"', T),
        ObjectMeta("b/r/z", 3, '"e"', T),
    ]
    add_page(listing, "b", "r", ListPage(objects[:2]), StatusFactory(1), recursive=True)
    add_page(listing, "b", "r", ListPage(objects[2:]), StatusFactory(1), recursive=True)
    assert sorted(listing.dirs) == ["b/r/a", "b/r/a/b", "b/r/a/c", "b/r/a/c/d", "b/r/x", "b/r/x/y"]
    assert listing.dirs["b/r/a/c/d"]["marker"] == "r/a/c/d/"
    assert listing.dirs["b/r/x/y"]["marker"] == "r/x/y_$folder$"
    assert listing.dirs["b/r/a/c"]["marker"] is None
    assert sorted(listing.files) == ["b/r/a/b/f", "b/r/a/b/g", "b/r/z"]
    assert listing.files["b/r/z"]["size"] == 3 and listing.files["b/r/z"]["length"] == 3


def test_status_dicts_keep_their_fields():
    sf = StatusFactory(128, owner="o", group="g")
    f = sf.file("b/k", 5, etag='"e"', last_modified=T, version_id="v", extra_field=1)
    assert f == {
        "name": "b/k",
        "size": 5,
        "type": "file",
        "ETag": '"e"',
        "LastModified": T,
        "mtime": T.timestamp(),
        "StorageClass": "STANDARD",
        "VersionId": "v",
        "length": 5,
        "blockSize": 128,
        "replication": 1,
        "modificationTime": int(T.timestamp() * 1000),
        "accessTime": 0,
        "owner": "o",
        "group": "g",
        "permission": "666",
        "extra_field": 1,
    }
    d = sf.directory("b/d")
    assert d["modificationTime"] == 0 and d["mtime"] is None and d["permission"] == "777"
    assert d["blockSize"] == 0 and d["replication"] == 0 and d["marker"] is None


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-06T07:00:00.000Z",
        "2026-12-06T07:00:00Z",
        "2026-12-06T07:00:00.123456+00:00",
        "Sun, 06 Dec 2026 07:00:00 GMT",
        "2026-12-06T07:00:00",
        1700000000,
    ],
)
def test_timestamps_parse_as_botocore_parses_them(text):
    from botocore.utils import parse_timestamp

    ours, theirs = _parse_timestamp(text), parse_timestamp(text)
    assert ours == theirs
    assert (ours.tzinfo is None) == (theirs.tzinfo is None)


def test_the_shared_session_parses_timestamps_with_the_fast_parser():
    factory = _shared_session(None).get_component("response_parser_factory")
    parser = factory.create_parser("rest-xml")
    assert parser._timestamp_parser is _parse_timestamp


def test_whole_listing_pages_skip_botocores_second_parse_and_cut_ones_still_retry(monkeypatch):
    import botocore.handlers

    session = _shared_session(None)
    model = asyncio.run(session.get_service_model("s3")).operation_model("ListObjectsV2")
    events = session.get_component("event_emitter")
    head = b'<?xml version="1.0" encoding="UTF-8"?>\n'
    answers = {
        "whole": head
        + b"<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount></ListBucketResult>\n",
        "cut": head + b"<ListBucketResult><Contents><Key>a</Ke",
        "error": head + b"<Error><Code>InternalError</Code><Message>x</Message></Error>",
    }
    parses: list[int] = []
    tree_parser = botocore.handlers.ETree.XMLParser

    def counted_parser(*args, **kwargs):
        parses.append(1)
        return tree_parser(*args, **kwargs)

    monkeypatch.setattr(botocore.handlers.ETree, "XMLParser", counted_parser)
    status = {}
    for name, body in answers.items():
        response = {"status_code": 200, "body": body, "headers": {}}
        parses.clear()
        asyncio.run(
            events.emit(
                "before-parse.s3.ListObjectsV2",
                operation_model=model,
                response_dict=response,
                customized_response_dict={},
            )
        )
        status[name] = (response["status_code"], len(parses))
    assert status["whole"] == (200, 0)  # no second parse of a whole page
    assert status["cut"][0] == 500 and status["error"][0] == 500  # retried, as botocore does


def test_listed_meta_is_the_object_meta_the_constructor_makes():
    import dataclasses

    from emrfs.store.protocol import listed_meta

    made = ObjectMeta("b/k", 3, '"e"', T, "v1", storage_class="GLACIER")
    listed = listed_meta("b/k", 3, '"e"', T, "v1", "GLACIER")
    assert type(listed) is ObjectMeta
    assert listed == made and repr(listed) == repr(made)
    assert listed.metadata == {} and listed.content_type is None
    assert listed.metadata is not listed_meta("b/k", 3, None, None).metadata  # not shared
    assert dataclasses.replace(listed, size=5) == dataclasses.replace(made, size=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        listed.size = 4  # type: ignore[misc]
    assert listed_meta("b/d/", 0, None, None) == ObjectMeta("b/d/", 0)


def test_listed_file_status_without_etag_or_time_keeps_the_defaults():
    sf = StatusFactory(128, owner="o", group="g")
    assert list(sf.listed_file("b/k", 0, None, None).items()) == [
        ("name", "b/k"),
        ("size", 0),
        ("type", "file"),
        ("ETag", None),
        ("LastModified", None),
        ("mtime", None),
        ("StorageClass", "STANDARD"),
        ("VersionId", None),
        ("length", 0),
        ("blockSize", 128),
        ("replication", 1),
        ("modificationTime", 0),
        ("accessTime", 0),
        ("owner", "o"),
        ("group", "g"),
        ("permission", "666"),
    ]
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    assert sf.listed_file("b/e", 1, None, epoch)["modificationTime"] == 0
    glacier = sf.listed_file("b/g", 1, '"e"', T, "GLACIER")
    assert glacier["StorageClass"] == "GLACIER" and glacier["mtime"] == T.timestamp()
    # the template holds these: they cannot change under it
    with pytest.raises(AttributeError):
        sf.block_size = 1  # type: ignore[misc]


def test_add_page_at_the_bucket_root_implies_the_directories_of_nested_keys_only():
    listing = Listing()
    objects = [ObjectMeta(f"b/{k}", 1, '"e"', T) for k in ("a/b/f", "a/g", "top", "/odd")]
    add_page(listing, "b", "", ListPage(objects), StatusFactory(1), recursive=True)
    assert sorted(listing.dirs) == ["b/a", "b/a/b"]
    assert sorted(listing.files) == ["b//odd", "b/a/b/f", "b/a/g", "b/top"]


def test_a_page_of_rows_gives_the_objects_a_page_of_objects_holds():
    from emrfs.store.protocol import listed_meta

    objects = [ObjectMeta("b/a", 1, '"e"', T, "v1", storage_class="GLACIER"), ObjectMeta("b/d/", 0)]
    rows = [("b/a", 1, '"e"', T, "v1", "GLACIER"), ("b/d/", 0, None, None, None, None)]
    of_rows, of_objects = ListPage.of_rows(rows, ["b/p/"]), ListPage(objects, ["b/p/"])
    assert of_rows.rows is rows and of_objects.objects is objects  # their own, not copies
    assert repr(of_rows) == f"ListPage.of_rows({rows!r}, prefixes=['b/p/'])"  # builds nothing
    assert of_rows._objects is None
    assert of_rows.objects == objects and of_objects.rows == rows
    assert of_rows.objects is of_rows.objects  # made once
    assert of_rows == of_objects and repr(of_rows) == repr(of_objects)
    assert ListPage() == ListPage.of_rows(()) and ListPage().prefixes == ()
    assert ListPage.of_rows(rows) != ListPage.of_rows(rows[:1])
    assert [type(o) for o in of_rows.objects] == [ObjectMeta, ObjectMeta]
    assert of_rows.objects[1] == listed_meta(*rows[1])
    with pytest.raises(AttributeError):
        of_rows.prefixes = ()  # type: ignore[misc]


def test_add_page_folds_a_page_of_rows_as_the_same_page_of_objects():
    objects = [
        ObjectMeta("b/r/a/b/f", 1, '"e"', T),
        ObjectMeta("b/r/a/c/d/", 0, '"m"', T),
        ObjectMeta("b/r/x/y_$folder$", 0, '"m"', T),
        ObjectMeta("b/r/z", 3, '"e"', T, storage_class="GLACIER"),
    ]
    by_objects, by_rows = Listing(), Listing()
    add_page(by_objects, "b", "r", ListPage(objects), StatusFactory(1), recursive=True)
    rows = ListPage(objects).rows
    add_page(by_rows, "b", "r", ListPage.of_rows(rows), StatusFactory(1), recursive=True)
    assert by_rows == by_objects
    assert by_rows.files["b/r/z"]["StorageClass"] == "GLACIER"


def test_listed_files_in_one_loop_are_the_dicts_listed_file_makes():
    sf = StatusFactory(128, owner="o", group="g")
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    rows = [
        ("b/a", 3, '"e"', T, "v1", "GLACIER"),
        ("b/none", 0, None, None, None, None),
        ("b/epoch", 1, '"e"', epoch, None, None),
    ]
    files: dict[str, dict] = {"b/kept": {"name": "b/kept"}}
    sf.add_listed_files(files, rows)
    assert list(files) == ["b/kept", "b/a", "b/none", "b/epoch"]
    for path, size, etag, modified, _version, storage_class in rows:
        one = sf.listed_file(path, size, etag, modified, storage_class)
        assert list(files[path].items()) == list(one.items())  # same fields, same order
    assert files["b/a"]["StorageClass"] == "GLACIER" and files["b/a"]["mtime"] == T.timestamp()


class _CountingStatus(StatusFactory):
    """A factory that counts the file status dicts it makes."""

    made = 0

    def add_listed_files(self, files, rows):  # type: ignore[override]
        rows = list(rows)
        self.made += len(rows)
        super().add_listed_files(files, rows)


def test_listed_files_make_a_status_dict_only_when_one_is_read():
    from emrfs.s3.listing import ListedFiles

    sf = _CountingStatus(128, owner="o", group="g")
    rows = [(f"b/d/f{i}", i, f'"{i}"', T, None, None) for i in range(3)]
    files = ListedFiles()
    files.add_rows([r[0] for r in rows], rows, sf)
    assert len(files) == 3 and "b/d/f1" in files and "b/d/x" not in files
    assert sorted(files) == ["b/d/f0", "b/d/f1", "b/d/f2"] and files.rows() == rows
    assert sf.made == 0  # names, membership and rows: no dict
    assert files["b/d/f1"] == sf.listed_file(*rows[1][:4])
    assert sf.made == 2 and files["b/d/f1"] is files["b/d/f1"]  # made once (1 + the check)
    files["b/d/f2"] = {"name": "b/d/f2", "type": "directory"}  # a directory wins its name
    del files["b/d/f0"]
    with pytest.raises(KeyError):
        del files["b/d/f0"]
    with pytest.raises(KeyError):
        files["b/d/f0"]
    assert files.rows() == []
    assert dict(files.items()) == {"b/d/f1": files["b/d/f1"], "b/d/f2": files["b/d/f2"]}
    files.add_rows([rows[2][0]], [rows[2]], sf)  # a later row replaces what its path held
    assert files["b/d/f2"]["type"] == "file" and len(files) == 2


def test_a_listing_folded_for_names_makes_no_status_dicts_and_the_same_ones_when_read():
    objects = [ObjectMeta(f"b/r/a/f{i}", i, f'"{i}"', T) for i in range(20)]
    objects.append(ObjectMeta("b/r/m/", 0, '"m"', T))
    lazy, eager = _CountingStatus(1), StatusFactory(1)
    listing = Listing()
    add_page(listing, "b", "r", ListPage(objects), lazy, recursive=True)
    assert sorted(listing.dirs) == ["b/r/a", "b/r/m"] and len(listing.files) == 20
    assert lazy.made == 0
    expected: dict[str, dict] = {}
    eager.add_listed_files(expected, ListPage(objects[:20]).rows)
    assert listing.files == expected and lazy.made == 20


def test_remembered_rows_keep_what_one_by_one_remembering_keeps():
    sf = _CountingStatus(1)
    rows = [(f"b/d/f{i:03d}", i, f'"{i}"', T, None, None) for i in range(50)]
    rows.insert(30, ("b/d/no-etag", 1, None, T, None, None))
    dicts: dict[str, dict] = {}
    StatusFactory(1).add_listed_files(dicts, rows)
    by_rows, one_by_one = KnownStatuses(entries=20), KnownStatuses(entries=20)
    by_rows.remember_rows(rows, sf)
    for info in dicts.values():
        one_by_one.remember(info)
    assert list(by_rows._known) == list(one_by_one._known) and sf.made == 0
    assert by_rows.get("b/d/f049") == one_by_one.get("b/d/f049") and sf.made == 1
    assert by_rows.get("b/d/f049") is by_rows.get("b/d/f049")  # made once
    assert by_rows.get("b/d/f049")["size"] == 49
    assert by_rows.get("b/d/no-etag") is None and by_rows.get("b/d/f000") is None  # pushed out


def test_remembering_rows_again_moves_them_to_the_end_as_one_by_one_remembering_does():
    sf = _CountingStatus(1)
    first = [(f"b/d/f{i:03d}", i, f'"{i}"', T, None, None) for i in range(15)]
    again = [first[3], ("b/d/new", 1, '"n"', T, None, None), first[10]]
    full = [(f"b/e/g{i:03d}", i, f'"{i}"', T, None, None) for i in range(20)]
    dicts: dict[str, dict] = {}
    StatusFactory(1).add_listed_files(dicts, first + again + full)
    by_rows, one_by_one = KnownStatuses(entries=20), KnownStatuses(entries=20)
    for batch in (first, again):
        by_rows.remember_rows(batch, sf)
        for row in batch:
            one_by_one.remember(dicts[row[0]])
        assert list(by_rows._known) == list(one_by_one._known)
    by_rows.remember_rows(full, sf)  # as many as it keeps: all the others pushed out
    for row in full:
        one_by_one.remember(dicts[row[0]])
    assert list(by_rows._known) == list(one_by_one._known) == [r[0] for r in full]
    assert sf.made == 0


def _fold_key_by_key(listing: Listing, bucket: str, dir_key: str, rows, status) -> None:
    """The rules add_page keeps, one key at a time (a recursive listing)."""
    from emrfs.paths import implied_dirs, marker_dir

    def add_dir(name, mtime=None, marker=None):
        existing = listing.dirs.get(name)
        if existing is None or (marker and not existing.get("marker")):
            listing.dirs[name] = status.directory(name, last_modified=mtime, marker=marker)

    def imply(key):
        for d in implied_dirs(key, dir_key):
            listing.dirs.setdefault(f"{bucket}/{d}", status.directory(f"{bucket}/{d}"))

    for row in rows:
        key = row[0][len(bucket) + 1 :]
        as_dir = marker_dir(key)
        if as_dir is None:
            listing.files[row[0]] = status.listed_file(*row[:4])
            imply(key)
        elif dir_key and key in (dir_key + "/", dir_key + "_$folder$"):
            listing.self_marker = key
        elif as_dir != dir_key:
            add_dir(f"{bucket}/{as_dir}", row[3], key)
            imply(as_dir)


_KEY_PARTS = ["a", "b", "/", "\n", "\nb/r/", "_$folder$", "r/", "r"]


@pytest.mark.parametrize("dir_key", ["", "r", "r/a"])
def test_a_page_folds_as_the_rules_fold_each_key(dir_key):
    from hypothesis import given, settings, strategies as st

    prefix = dir_key + "/" if dir_key else ""
    key = st.lists(st.sampled_from(_KEY_PARTS), min_size=1, max_size=6).map("".join)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.lists(key, max_size=12), min_size=1, max_size=3))
    def check(drawn):
        seen: set[str] = set()  # each key listed once, in one page
        pages = []
        for page in drawn:
            pages.append(sorted({prefix + k for k in page} - seen))
            seen.update(pages[-1])
        status = StatusFactory(1)
        folded, expected = Listing(), Listing()
        for page in pages:
            rows = [(f"b/{k}", len(k), '"e"', T, None, None) for k in page]
            add_page(folded, "b", dir_key, ListPage.of_rows(rows), status, recursive=True)
            _fold_key_by_key(expected, "b", dir_key, rows, status)
        assert folded.dirs == expected.dirs
        assert folded.files == expected.files
        assert folded.self_marker == expected.self_marker

    check()


def test_an_arrow_listing_batch_becomes_the_python_values_it_holds():
    """The obstore transport reads its listing's Arrow batches (or a delimited listing's
    table) a column at a time, each distinct timestamp made a datetime once: the values
    are those Arrow's own conversion gives, nulls and sub-second times included."""
    pa = pytest.importorskip("pyarrow")
    from arro3.core import RecordBatch, Table

    from emrfs.store.obstore_listing import _columns

    times = [
        dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=dt.timezone.utc),
        dt.datetime(1969, 12, 31, 23, 59, 59, 1000, tzinfo=dt.timezone.utc),
        None,
    ]
    batch = pa.record_batch(
        {
            "path": ["a", "b/c", "d", "e"],
            "last_modified": pa.array(times, pa.timestamp("us", tz="UTC")),
            "size": pa.array([3, 0, 2**40, 1], pa.uint64()),
            "e_tag": ['"x"', None, '"y"', '"z"'],
            "version": [None, "v1", None, None],
        }
    )
    expected = (["a", "b/c", "d", "e"], [3, 0, 2**40, 1], ['"x"', None, '"y"', '"z"'], times)
    for arrow in (RecordBatch.from_arrow(batch), Table.from_arrow(pa.table(batch))):
        columns = _columns(arrow)
        assert columns[:4] == expected
        assert list(columns[4]) == [None, "v1", None, None]
    unversioned = _columns(RecordBatch.from_arrow(batch.set_column(4, "version", pa.nulls(4))))
    assert list(unversioned[4]) == [None] * 4


def test_listed_files_drop_the_names_given_in_either_form_and_make_no_dict():
    from emrfs.s3.listing import ListedFiles

    sf = _CountingStatus(1)
    rows = [(f"b/d/f{i}", i, f'"{i}"', T, None, None) for i in range(4)]
    files = ListedFiles()
    files.add_rows([r[0] for r in rows], rows, sf)
    files["b/d/f3"] = {"name": "b/d/f3", "type": "directory"}
    files.drop({"b/d/f0": {}, "b/d/f3": {}, "b/d/absent": {}})
    assert sorted(files) == ["b/d/f1", "b/d/f2"] and sf.made == 0

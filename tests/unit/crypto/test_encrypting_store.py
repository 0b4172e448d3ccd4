"""EncryptingStore: the store contract over MemoryStore (several CSE configurations), and
what lies below it checked through a side channel that decrypts by hand."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import ClassVar

import pytest

from emrfs.crypto.store import EncryptingStore
from emrfs.errors import ChangedError, EncryptionError, IntegrityError
from emrfs.store import MemoryStore, WrapperStore
from emrfs.store.memory import StoredObject
from emrfs.testing.store import StoreTests

from . import by_hand
from .store_side_channel import MASTER, SealingSideChannel, cse_options

KiB = 1024
PART = 256 * KiB


class MemoryBelow(SealingSideChannel):
    """The side channel into the MemoryStore below the layer."""

    part_size = PART
    cse_kwargs: ClassVar[Mapping] = {}

    @pytest.fixture
    def store(self) -> EncryptingStore:
        self.memory = MemoryStore(versioned=True, min_part_size=PART)
        self.cse = cse_options(**self.cse_kwargs)
        return EncryptingStore(self.memory, self.cse)

    @pytest.fixture
    def root(self, store) -> str:
        self.memory.create_bucket("bucket")
        return "bucket"

    def _found(self, path: str) -> StoredObject:
        found = self.memory.stored(path)
        if found is None:
            raise FileNotFoundError(path)
        return found

    def _raw_write(self, path: str, data: bytes, metadata: Mapping[str, str]) -> None:
        self.memory.place(path, data, metadata)

    def _raw_body(self, path: str) -> bytes:
        return self._found(path).data

    def _raw_meta(self, path: str) -> dict[str, str]:
        return dict(self._found(path).metadata)

    def raw_open_uploads(self, bucket: str) -> list[str]:
        return self.memory.open_uploads(bucket)


class TestEncryptingStoreV3(MemoryBelow, StoreTests):
    """v3 in object metadata (the default); objects written past the layer are plaintext."""


class TestEncryptingStoreReadsCiphertext(MemoryBelow, StoreTests):
    """Every object written past the layer is v3 ciphertext (made by hand): the contract's
    reads, ranges, streams, listings and pinned reads run over decryption (ranges from
    the verified whole object, spooled sealed)."""

    seal_raw = True


class TestEncryptingStoreCtrRanges(MemoryBelow, StoreTests):
    seal_raw = True
    cse_kwargs: ClassVar[Mapping] = {"unauthenticated_range_reads": True}


class TestEncryptingStoreInstructionFile(MemoryBelow, StoreTests):
    """v3 with its key in instruction files.  (v2 there is covered below, not by the
    contract: a v2 object keeps no sign of its instruction file, so a plaintext object
    written past the layer over one cannot be told from it.)"""

    cse_kwargs: ClassVar[Mapping] = {"storage_mode": "InstructionFile"}


class TestEncryptingStoreSegmented(MemoryBelow, StoreTests):
    cse_kwargs: ClassVar[Mapping] = {"format": "segmented", "segment_size": 4096}


class TestEncryptingStoreListingAdjust(MemoryBelow, StoreTests):
    """Listing sizes by the format's overhead, no HEADs (every object there is v3)."""

    seal_raw = True
    cse_kwargs: ClassVar[Mapping] = {"listing_lengths": "adjust"}


# --- side-channel checks ----------------------------------------------------------------------


def run(coro):
    return asyncio.run(coro)


def layer(**kw) -> tuple[EncryptingStore, MemoryStore]:
    below = MemoryStore(min_part_size=PART)
    return EncryptingStore(below, cse_options(**kw)), below


def sample(n: int) -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(n))


def test_what_lies_below_is_aws_v3_ciphertext_decryptable_by_hand():
    store, below = layer()
    data = sample(10_000)
    meta = run(store.put("b/k", data, metadata={"Owner": "me"}))
    raw = below.stored("b/k")
    assert raw is not None and data not in raw.data and len(raw.data) == len(data) + 16
    assert raw.metadata["x-amz-c"] == "115" and raw.metadata["owner"] == "me"
    assert by_hand.decrypt(MASTER, raw.data, raw.metadata) == data
    assert meta.size == len(data) and dict(meta.metadata) == {"owner": "me"}
    head = run(store.head("b/k"))
    assert head.size == len(data) and dict(head.metadata) == {"owner": "me"}


def test_parts_make_one_gcm_stream_with_the_tag_at_the_end():
    store, below = layer()
    first, second, third = sample(PART), sample(PART + 5), sample(1000)

    async def write():
        writer = await store.writer("b/parts")
        for n, part in enumerate((first, second, third), 1):
            await writer.write_part(n, part)
        return await writer.complete()

    meta = run(write())
    raw = below.stored("b/parts")
    assert raw is not None and raw.etag.endswith('-3"')
    assert by_hand.decrypt(MASTER, raw.data, raw.metadata) == first + second + third
    assert meta.size == len(first + second + third)


def test_parts_out_of_order_are_refused_naming_the_path():
    store, _ = layer()

    async def write():
        writer = await store.writer("b/order")
        await writer.write_part(2, b"x")

    with pytest.raises(ValueError, match=r"b/order.*in order"):
        run(write())


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"format": "v2", "commitment_policy": "FORBID_ENCRYPT_ALLOW_DECRYPT"},
        {"unauthenticated_range_reads": True},
        {"format": "segmented", "segment_size": 4096},
        {"storage_mode": "InstructionFile"},
        {
            "format": "v2",
            "commitment_policy": "FORBID_ENCRYPT_ALLOW_DECRYPT",
            "storage_mode": "InstructionFile",
        },
    ],
    ids=["v3-spool", "v2-spool", "v3-ctr", "segmented", "v3-instruction-file", "v2-file"],
)
def test_ranged_reads_are_slices_of_the_plaintext(kw):
    store, _ = layer(**kw)
    data = sample(50_000)
    run(store.put("b/r", data))
    size = len(data)
    cases = [(0, 1), (1, 17), (15, 33), (4095, 4097), (4096, 8192), (10_000, 30_001)]
    cases += [(size - 20, size), (size - 1, size + 50), (size, size + 1), (0, None), (7, None)]

    async def reads():
        return [await store.get_range("b/r", s, e) for s, e in cases]

    assert run(reads()) == [data[s:e] for s, e in cases]

    async def streamed():
        return b"".join([c async for c in store.get_stream("b/r", 333, 44_444, chunk_size=5000)])

    assert run(streamed()) == data[333:44_444]


def test_segmented_ranges_fetch_only_their_segments():
    class Counting(WrapperStore):
        fetched = 0

        async def get_range(self, path, start=0, end=None, *, if_match=None):
            data = await self.inner.get_range(path, start, end, if_match=if_match)
            Counting.fetched += len(data)
            return data

    below = MemoryStore()
    store = EncryptingStore(Counting(below), cse_options(format="segmented", segment_size=4096))
    data = sample(200_000)
    run(store.put("b/s", data))
    assert run(store.get_range("b/s", 100_000, 100_010)) == data[100_000:100_010]
    assert Counting.fetched <= 2 * (4096 + 16)


@pytest.mark.parametrize(
    "kw",
    [{}, {"format": "segmented", "segment_size": 4096}, {"storage_mode": "InstructionFile"}],
    ids=["v3", "segmented", "instruction-file"],
)
def test_a_tampered_object_fails_closed(kw):
    store, below = layer(**kw)
    data = sample(20_000)
    run(store.put("b/t", data))
    raw = below.stored("b/t")
    assert raw is not None
    body = bytearray(raw.data)
    body[12_345] ^= 1
    below.place("b/t", bytes(body), raw.metadata)

    async def stream():
        return [c async for c in store.get_stream("b/t")]

    for read in (
        lambda: store.get_range("b/t"),
        lambda: store.get("b/t"),
        lambda: store.get_range("b/t", 12_000, 12_400),
        stream,
    ):
        with pytest.raises(IntegrityError) as info:
            run(read())
        assert "b/t" in str(info.value)


def test_an_altered_envelope_fails_closed():
    store, below = layer()
    run(store.put("b/e", b"secret"))
    raw = below.stored("b/e")
    assert raw is not None
    _, envelope = by_hand.v3_encrypt(MASTER, b"another")
    # the commitment of another object: the key derived does not match it
    below.place("b/e", raw.data, {**raw.metadata, "x-amz-d": envelope["x-amz-d"]})
    with pytest.raises(IntegrityError, match="commitment"):
        run(store.get_range("b/e"))


def test_a_truncated_object_lists_and_heads_but_every_read_raises():
    store, below = layer()
    run(store.put("b/cut", b"0123456789"))
    raw = below.stored("b/cut")
    assert raw is not None
    below.place("b/cut", raw.data[:10], raw.metadata)  # shorter than the tag
    assert run(store.head("b/cut")).size == 10
    with pytest.raises(IntegrityError, match="truncated"):
        run(store.get_range("b/cut", 0, 5))


def test_instruction_files_beside_objects_are_hidden_copied_and_deleted():
    store, below = layer(storage_mode="InstructionFile")
    data = sample(3000)
    run(store.put("b/d/x", data))
    instruction = below.stored("b/d/x.instruction")
    assert instruction is not None and "x-amz-crypto-instr-file" in instruction.metadata
    raw = below.stored("b/d/x")
    assert raw is not None and "x-amz-3" not in raw.metadata  # the key is in the file
    envelope = by_hand.envelope_of(raw.metadata, instruction.data)
    assert by_hand.decrypt(MASTER, raw.data, envelope) == data

    async def listing(prefix):
        return [(o.path, o.size) async for p in store.list(prefix) for o in p.objects]

    assert run(listing("b/")) == [("b/d/x", len(data))]
    run(store.copy("b/d/x", "b/e/y"))
    assert below.stored("b/e/y.instruction") is not None
    assert run(store.get_range("b/e/y")) == data
    run(store.delete(["b/d/x"]))
    assert below.stored("b/d/x") is None and below.stored("b/d/x.instruction") is None
    assert run(listing("b/")) == [("b/e/y", len(data))]


def test_a_missing_instruction_file_is_an_error_naming_both_paths():
    store, below = layer(storage_mode="InstructionFile")
    run(store.put("b/lost", b"data"))
    run(below.delete(["b/lost.instruction"]))
    with pytest.raises(EncryptionError, match=r"'b/lost'.*'b/lost\.instruction' is missing"):
        run(store.head("b/lost"))


def test_a_copy_with_new_metadata_keeps_the_envelope():
    store, below = layer()
    run(store.put("b/src", b"payload", metadata={"a": "1"}))
    meta = run(store.copy("b/src", "b/dst", metadata={"b": "2"}))
    raw = below.stored("b/dst")
    assert raw is not None and raw.metadata["b"] == "2" and "a" not in raw.metadata
    assert by_hand.decrypt(MASTER, raw.data, raw.metadata) == b"payload"
    assert dict(meta.metadata) == {"b": "2"} and meta.size == 7


def test_envelope_names_in_user_metadata_are_refused():
    store, _ = layer()
    with pytest.raises(ValueError, match="x-amz-iv"):
        run(store.put("b/k", b"x", metadata={"X-Amz-Iv": "mine"}))


def test_plaintext_objects_pass_through_and_writes_stay_plain_with_cse_off():
    store, below = layer(enabled=False)  # a key configured, CSE off for new objects
    run(store.put("b/plain", b"as is"))
    raw = below.stored("b/plain")
    assert raw is not None and raw.data == b"as is" and dict(raw.metadata) == {}
    sealed, envelope = by_hand.v3_encrypt(MASTER, b"from another client")
    below.place("b/sealed", sealed, envelope)
    assert run(store.get_range("b/sealed")) == b"from another client"
    assert run(store.get_range("b/plain", 3)) == b"is"


def test_a_pinned_read_of_a_version_seen_before_makes_no_head():
    class Heads(WrapperStore):
        count = 0

        async def head(self, path):
            Heads.count += 1
            return await self.inner.head(path)

    store = EncryptingStore(Heads(MemoryStore()), cse_options(unauthenticated_range_reads=True))
    data = sample(5000)
    etag = run(store.put("b/p", data)).etag
    assert run(store.get_range("b/p", 10, 20, if_match=etag)) == data[10:20]
    assert run(store.get_range("b/p", 30, 40, if_match=etag)) == data[30:40]
    assert Heads.count == 1
    run(store.put("b/p", b"new"))
    with pytest.raises(ChangedError):
        run(store.get_range("b/p", 0, 2, if_match=etag))


def test_instruction_file_json_is_the_aws_names():
    store, below = layer(storage_mode="InstructionFile")
    run(store.put("b/j", b"x"))
    found = below.stored("b/j.instruction")
    assert found is not None
    names = set(json.loads(found.data))
    assert {"x-amz-3", "x-amz-w"} <= names


def test_a_plaintext_object_over_a_v3_one_is_not_read_with_its_stale_instruction_file():
    store, below = layer(storage_mode="InstructionFile")
    run(store.put("b/over", b"encrypted once"))
    below.place("b/over", b"plain now")  # another writer; the instruction file stays
    assert run(store.head("b/over")).size == 9
    assert run(store.get_range("b/over")) == b"plain now"


def test_get_of_a_whole_encrypted_object_is_one_request():
    class Counted(MemoryStore):
        heads = 0

        async def head(self, path):
            Counted.heads += 1
            return await super().head(path)

    below = Counted()
    store = EncryptingStore(below, cse_options())
    data = sample(3000)
    run(store.put("b/one", data, metadata={"k": "v"}))
    meta, got = run(store.get("b/one"))
    assert got == data and meta.size == len(data) and dict(meta.metadata) == {"k": "v"}
    assert Counted.heads == 0

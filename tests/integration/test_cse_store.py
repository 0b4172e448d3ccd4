"""EncryptingStore over S3Store on the embedded moto server: the store contract, with a
raw boto3 side channel that decrypts what S3 holds by hand (AWS S3 Encryption Client
format, ``notes/cse-format.md``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import ClassVar

import pytest

from emrfs.config import S3Options
from emrfs.crypto.store import EncryptingStore
from emrfs.errors import IntegrityError
from emrfs.store.s3 import S3Store
from emrfs.testing.store import StoreTests
from tests.integration import test_store_s3 as s3_contract
from tests.unit.crypto import by_hand
from tests.unit.crypto.store_side_channel import MASTER, SealingSideChannel, cse_options


class S3Below(SealingSideChannel, s3_contract.S3SideChannel):
    """raw_* through boto3; raw_get decrypts by hand."""

    many_keys = 25
    cse_kwargs: ClassVar[Mapping] = {}

    @pytest.fixture
    def store(self, emrfs_endpoint, emrfs_s3) -> EncryptingStore:
        self.raw = emrfs_s3
        self.cse = cse_options(**self.cse_kwargs)
        below = S3Store.from_options(S3Options(endpoint_url=emrfs_endpoint), page_size=10)
        return EncryptingStore(below, self.cse)

    @pytest.fixture
    def root(self, emrfs_bucket) -> str:
        return emrfs_bucket

    def _raw_write(self, path: str, data: bytes, metadata: Mapping[str, str]) -> None:
        s3_contract.S3SideChannel.raw_put(self, path, data, metadata)

    def _raw_body(self, path: str) -> bytes:
        return s3_contract.S3SideChannel.raw_get(self, path)

    def _raw_meta(self, path: str) -> dict[str, str]:
        return {k.lower(): v for k, v in s3_contract.S3SideChannel.raw_metadata(self, path).items()}

    raw_put = SealingSideChannel.raw_put
    raw_get = SealingSideChannel.raw_get
    raw_metadata = SealingSideChannel.raw_metadata
    raw_put_many = s3_contract.S3SideChannel.raw_put_many


class TestEncryptingStoreOnMoto(S3Below, StoreTests):
    """Objects written past the layer are v3 ciphertext; keys in instruction files."""

    seal_raw = True
    cse_kwargs: ClassVar[Mapping] = {"storage_mode": "InstructionFile"}


@pytest.mark.slow
class TestEncryptingStoreOnMotoObjectMetadata(S3Below, StoreTests):
    """v3 in object metadata; objects written past the layer are plaintext (mixed bucket).
    The memory runs cover this configuration; this one adds S3's wire."""


def test_s3_holds_ciphertext_and_a_tampered_object_fails_closed(
    emrfs_endpoint, emrfs_s3, emrfs_bucket
):
    below = S3Store.from_options(S3Options(endpoint_url=emrfs_endpoint))
    store = EncryptingStore(below, cse_options(unauthenticated_range_reads=True))
    data = bytes(range(256)) * 100
    path = f"{emrfs_bucket}/sealed"

    async def scenario() -> None:
        await store.put(path, data)
        raw = emrfs_s3.get_object(Bucket=emrfs_bucket, Key="sealed")
        body = raw["Body"].read()
        assert len(body) == len(data) + 16 and body[:256] != data[:256]
        assert by_hand.decrypt(MASTER, body, raw["Metadata"]) == data
        assert await store.get_range(path, 1000, 1100) == data[1000:1100]  # CTR range
        altered = bytes([body[0] ^ 1]) + body[1:]
        emrfs_s3.put_object(
            Bucket=emrfs_bucket, Key="sealed", Body=altered, Metadata=raw["Metadata"]
        )
        with pytest.raises(IntegrityError):
            await store.get_range(path)
        await store.close()

    asyncio.run(scenario())

"""The store contract suite over S3Store: on the embedded moto server, and on SeaweedFS
(a real object store; skipped when its ``weed`` binary is not installed).  The side
channel is a raw boto3 client."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

import pytest

from emrfs.config import S3Options
from emrfs.store.s3 import S3Store
from emrfs.testing.pytest_plugin import empty_and_delete_bucket, new_bucket_name
from emrfs.testing.store import StoreTests


class S3SideChannel:
    """raw_* over a boto3 client (``self.raw``) into ``self.bucket``."""

    raw = None

    def raw_put(self, path: str, data: bytes, metadata: Mapping[str, str] | None = None) -> None:
        bucket, key = path.split("/", 1)
        self.raw.put_object(Bucket=bucket, Key=key, Body=data, Metadata=dict(metadata or {}))

    def _get(self, path: str, **kwargs):
        bucket, key = path.split("/", 1)
        try:
            return self.raw.get_object(Bucket=bucket, Key=key, **kwargs)
        except self.raw.exceptions.NoSuchKey:
            raise FileNotFoundError(path) from None

    def raw_get(self, path: str) -> bytes:
        return self._get(path)["Body"].read()

    def raw_metadata(self, path: str) -> dict[str, str]:
        return self._get(path)["Metadata"]

    def raw_open_uploads(self, bucket: str) -> list[str]:
        uploads = self.raw.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [f"{bucket}/{u['Key']}" for u in uploads]

    def raw_put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda item: self.raw_put(*item), items))


class TestS3StoreOnMoto(S3SideChannel, StoreTests):
    # moto takes ~100 PUTs a second: pages of 10 keep the listing test's continuation
    # tokens honest in well under a second; S3's own 1,000-key pages are checked below
    many_keys = 25

    @pytest.fixture
    def store(self, emrfs_endpoint, emrfs_s3) -> S3Store:
        self.raw = emrfs_s3
        return S3Store.from_options(S3Options(endpoint_url=emrfs_endpoint), page_size=10)

    @pytest.fixture
    def root(self, emrfs_bucket) -> str:
        return emrfs_bucket


@pytest.mark.slow
class TestS3StoreListsBeyondOneS3Page(TestS3StoreOnMoto):
    """S3's default 1,000-key pages: the listing test alone (1,005 PUTs take seconds)."""

    many_keys = 1005

    @pytest.fixture
    def store(self, emrfs_endpoint, emrfs_s3) -> S3Store:
        self.raw = emrfs_s3
        return S3Store.from_options(S3Options(endpoint_url=emrfs_endpoint))

    @pytest.fixture(autouse=True)
    def _only_the_listing(self, request):
        if request.node.originalname != "test_list_beyond_one_page":
            pytest.skip("run by TestS3StoreOnMoto with small pages")


@pytest.fixture(scope="session")
def seaweedfs():
    """SeaweedFS's S3 gateway on loopback for the session (skip when not installed)."""
    from benchmarks.seaweedfs import SeaweedServer, find_weed

    try:
        find_weed()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    server = SeaweedServer()
    server.start()
    yield server
    server.stop()


@pytest.mark.slow
class TestS3StoreOnSeaweedFS(S3SideChannel, StoreTests):
    @pytest.fixture
    def store(self, seaweedfs) -> S3Store:
        import boto3

        keys = {
            "aws_access_key_id": seaweedfs.access_key,
            "aws_secret_access_key": seaweedfs.secret_key,
        }
        self.raw = boto3.client(
            "s3", endpoint_url=seaweedfs.endpoint_url, region_name="us-east-1", **keys
        )
        return S3Store.from_options(
            S3Options(
                endpoint_url=seaweedfs.endpoint_url,
                access_key_id=keys["aws_access_key_id"],
                secret_access_key=keys["aws_secret_access_key"],
            )
        )

    @pytest.fixture
    def root(self, store):
        bucket = new_bucket_name()
        self.raw.create_bucket(Bucket=bucket)
        yield bucket
        empty_and_delete_bucket(self.raw, bucket)


def test_transport_for_carries_the_sse_of_the_options_it_was_resolved_for(
    emrfs_endpoint, emrfs_s3, emrfs_bucket
):
    """SSE arguments live in the transport: every write verb of a store made for an SSE
    prefix asks S3 for it (seen by a raw HEAD), and one made for a plain prefix does not."""
    import asyncio

    from emrfs.config import load
    from emrfs.store import transport_for

    options = load(
        {
            "endpoint_url": emrfs_endpoint,
            f"fs.s3.bucket.{emrfs_bucket}/secret.fs.s3.enableServerSideEncryption": "true",
        }
    )
    secret = transport_for(options.for_path(f"{emrfs_bucket}/secret/x"))
    plain = transport_for(options.for_path(f"{emrfs_bucket}/plain/x"))

    async def write() -> None:
        await secret.put(f"{emrfs_bucket}/secret/put", b"p")
        writer = await secret.writer(f"{emrfs_bucket}/secret/parts")
        await writer.write_part(1, b"w")
        await writer.complete()
        await plain.put(f"{emrfs_bucket}/plain/put", b"p")
        await secret.copy(f"{emrfs_bucket}/plain/put", f"{emrfs_bucket}/secret/copy")
        await secret.close()
        await plain.close()

    asyncio.run(write())

    def algorithm(key: str) -> str | None:
        return emrfs_s3.head_object(Bucket=emrfs_bucket, Key=key).get("ServerSideEncryption")

    for key in ("secret/put", "secret/parts", "secret/copy"):
        assert algorithm(key) == "AES256", key
    assert algorithm("plain/put") in (None, "")

"""CSE single-PUT writes go through the transport plaintext writes take (``s3.transport``);
checked through raw boto3."""

from __future__ import annotations

import base64
import os

import pytest

from emrfs import EmrFileSystem

pytestmark = pytest.mark.integration

AES = {
    "enabled": True,
    "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
    "aes_key": base64.b64encode(bytes(range(32))).decode(),
}


@pytest.mark.parametrize("transport", ["obstore", "botocore"])
@pytest.mark.parametrize("storage", ["ObjectMetadata", "InstructionFile"])
def test_cse_put_takes_the_configured_transport(
    emrfs_endpoint, emrfs_s3, emrfs_bucket, transport, storage
):
    fs = EmrFileSystem(
        endpoint_url=emrfs_endpoint,
        skip_instance_cache=True,
        transport=transport,
        cse={**AES, "storage_mode": storage},
    )
    path = f"{emrfs_bucket}/d/obj"
    store = fs._transport(path)
    puts: list[str] = []
    original = store.put

    async def spy(target, data, **kw):
        puts.append(target)
        return await original(target, data, **kw)

    store.put = spy  # type: ignore[method-assign]
    data = os.urandom(100_000)
    fs.pipe_file(path, data)
    assert fs.cat_file(path) == data
    assert puts == [path] + ([path + ".instruction"] if storage == "InstructionFile" else [])
    # side channel: ciphertext (the tag on top) with its envelope where the mode puts it
    obj = emrfs_s3.get_object(Bucket=emrfs_bucket, Key="d/obj")
    body = obj["Body"].read()
    assert len(body) == len(data) + 16 and body[:64] != data[:64]
    envelope = (
        obj["Metadata"]
        if storage == "ObjectMetadata"
        else emrfs_s3.get_object(Bucket=emrfs_bucket, Key="d/obj.instruction")["Body"]
        .read()
        .decode()
    )
    assert "x-amz-c" in str(envelope) or "x-amz-3" in str(envelope)

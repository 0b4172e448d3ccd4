import asyncio
import base64
import os

import pytest

from emrfs.config import CSEOptions
from emrfs.crypto import ContentCrypto


def aes_options(key: bytes | None = None, **kw) -> CSEOptions:
    key = os.urandom(32) if key is None else key
    return CSEOptions(
        enabled=True,
        materials_provider="emrfs.crypto.keys:AesKeyProvider",
        aes_key=base64.b64encode(key).decode(),
        **kw,
    )


def encrypt(crypto: ContentCrypto, data: bytes, path: str = "b/obj", chunk: int = 7919, **kw):
    enc = asyncio.run(crypto.new_encryptor(path, **kw))
    out = [bytes(enc.update(data[i : i + chunk])) for i in range(0, len(data), chunk)]
    return b"".join(out) + enc.finalize(), enc


def decrypt(
    crypto: ContentCrypto, body: bytes, metadata, instruction=None, path="b/obj", chunk: int = 6007
) -> bytes:
    dec = asyncio.run(crypto.decryptor(path, metadata, instruction))
    out = [dec.update(body[i : i + chunk]) for i in range(0, len(body), chunk)]
    return b"".join(out) + dec.finalize()


@pytest.fixture
def master_key():
    return bytes(range(100, 132))

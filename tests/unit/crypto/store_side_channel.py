"""The side channel of the EncryptingStore contract runs: raw_* that read what lies below
the layer and decrypt it by hand (:mod:`.by_hand`), never through the store under test."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from emrfs.config import CSEOptions
from emrfs.crypto import ContentCrypto

from . import by_hand

MASTER = bytes(range(7, 39))


def cse_options(**kw) -> CSEOptions:
    kw.setdefault("enabled", True)
    return CSEOptions(
        materials_provider="emrfs.crypto.keys:AesKeyProvider",
        aes_key=base64.b64encode(MASTER).decode(),
        **kw,
    )


class SealingSideChannel:
    """raw_put / raw_get / raw_metadata over a raw layer (``_raw_write``, ``_raw_body``,
    ``_raw_meta``: bytes and metadata exactly as stored below).

    ``seal_raw``: raw_put writes AWS v3 ciphertext (by hand), so the contract's reads run
    over encrypted objects; else it writes plaintext (the mixed-bucket case).
    raw_get decrypts what is sealed (by hand for the AWS formats; the segmented format
    through emrfs's primitives, whose vectors tests/unit/crypto/test_segmented.py pins).
    """

    seal_raw = False
    cse: CSEOptions

    def _raw_write(self, path: str, data: bytes, metadata: Mapping[str, str]) -> None:
        raise NotImplementedError

    def _raw_body(self, path: str) -> bytes:
        raise NotImplementedError

    def _raw_meta(self, path: str) -> dict[str, str]:
        raise NotImplementedError

    def raw_put(self, path: str, data: bytes, metadata: Mapping[str, str] | None = None) -> None:
        meta = {k.lower(): v for k, v in (metadata or {}).items()}
        if self.seal_raw:
            data, envelope = by_hand.v3_encrypt(MASTER, data)
            meta.update(envelope)
        self._raw_write(path, data, meta)

    def raw_instruction(self, path: str) -> bytes | None:
        try:
            return self._raw_body(path + self.cse.instruction_suffix)
        except FileNotFoundError:
            return None

    def raw_get(self, path: str) -> bytes:
        body = self._raw_body(path)
        meta = self._raw_meta(path)
        if "x-amz-crypto-instr-file" in meta:
            return body
        needs_file = not {"x-amz-3", "x-amz-key-v2", "x-emrfs-k"} & set(meta)
        instruction = self.raw_instruction(path) if needs_file else None
        envelope = by_hand.envelope_of(meta, instruction)
        if "x-emrfs-h" in envelope:
            crypto = ContentCrypto(self.cse)
            # raw_get runs inside the test's event loop: the key is unwrapped on another
            with ThreadPoolExecutor(1) as pool:
                decryptor = pool.submit(asyncio.run, crypto.decryptor(path, envelope)).result()
            return bytes(decryptor.decrypt(body))
        if not by_hand.is_sealed(envelope):
            return body
        return by_hand.decrypt(MASTER, body, envelope)

    def raw_metadata(self, path: str) -> dict[str, str]:
        meta = self._raw_meta(path)
        return {k: v for k, v in meta.items() if k not in by_hand.ENVELOPE_NAMES}

    def raw_put_many(self, items) -> None:
        for path, data in items:
            self.raw_put(path, data)

"""Unauthenticated ranged reads of AWS-format objects (AES-GCM read as AES-CTR).

GCM's keystream for 16-byte block ``n`` of the body is AES-CTR with counter
block ``iv12 || be32(2 + n)``, and the body has no header, so plaintext offset
``x`` is ciphertext offset ``x``.  A range decrypts without the rest of the
object — and without the tag, so nothing checks it.  Only behind
``cse.unauthenticated_range_reads``; the v3 key commitment is still checked
before a key is used.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .content import TAG_BYTES

__all__ = ["CtrPlan", "ctr_plan", "ctr_decrypt"]

BLOCK = 16


@dataclass(frozen=True)
class CtrPlan:
    """Fetch ciphertext ``[fetch_start, fetch_end)``; decrypt starting at block
    ``fetch_start // 16``; keep ``length`` bytes from ``skip``."""

    start: int
    end: int
    fetch_start: int
    fetch_end: int
    skip: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def first_block(self) -> int:
        return self.fetch_start // BLOCK


def ctr_plan(start: int, end: int, stored_len: int) -> CtrPlan:
    """Plaintext ``[start, end)`` of a body of ``stored_len`` bytes (tag excluded)."""
    total = max(0, stored_len - TAG_BYTES)
    start = max(0, min(start, total))
    end = max(start, min(end, total))
    fetch_start = start - start % BLOCK
    return CtrPlan(start, end, fetch_start, end, start - fetch_start)


def ctr_decrypt(key: bytes, iv: bytes, plan: CtrPlan, data: bytes | memoryview) -> bytes:
    """Decrypt the fetched ciphertext of ``plan`` (no authentication)."""
    counter = iv + struct.pack(">I", (2 + plan.first_block) & 0xFFFFFFFF)
    ctx = Cipher(algorithms.AES(key), modes.CTR(counter)).decryptor()
    plain = ctx.update(data) + ctx.finalize()
    return plain[plan.skip : plan.skip + plan.length]

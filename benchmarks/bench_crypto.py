"""Throughput of emrfs's streaming CSE API against raw AES-GCM (no network).

    python -m benchmarks.bench_crypto                 # 256 MiB, 8 MiB chunks, 3 rounds
    python -m benchmarks.bench_crypto --size 1024 --rounds 5

Prints MB/s (median of rounds, variants interleaved) and the ratio to the raw
baseline: ``AESGCM.encrypt``/``decrypt`` called once per chunk (what a naive
caller does) and a raw ``Cipher(GCM).update_into`` stream (the ceiling).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from emrfs.config import CSEOptions
from emrfs.crypto import ContentCrypto

MiB = 1024 * 1024


def _crypto(fmt: str) -> ContentCrypto:
    return ContentCrypto(
        CSEOptions(
            enabled=True,
            materials_provider="emrfs.crypto.keys:AesKeyProvider",
            aes_key=base64.b64encode(os.urandom(32)).decode(),
            format=fmt,
            commitment_policy="REQUIRE_ENCRYPT_ALLOW_DECRYPT",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="MiB of plaintext (256)")
    parser.add_argument("--chunk", type=int, default=8, help="MiB per chunk/part (8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, interleaved (3)")
    args = parser.parse_args()
    fetched_for_a_ranged_read()  # arithmetic, instant: printed before the timed runs
    size, chunk = args.size * MiB, args.chunk * MiB
    data = memoryview(os.urandom(chunk) * (size // chunk))
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    key, iv = os.urandom(32), os.urandom(12)
    out = bytearray(len(data) + 64 * 1024 + (len(data) // 4096 + 1) * 16)
    bodies: dict[str, tuple[bytes, dict]] = {}

    def raw_oneshot_encrypt():
        aead = AESGCM(key)
        for c in chunks:
            aead.encrypt(iv, c, None)

    def raw_stream_encrypt():
        ctx = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
        view, n = memoryview(out), 0
        for c in chunks:
            n += ctx.update_into(c, view[n : n + len(c)])
        ctx.finalize()

    def ours_encrypt(fmt: str, into: bool):
        crypto = _crypto(fmt)

        def run(keep: bool = False):
            enc = asyncio.run(crypto.new_encryptor("bench/obj"))
            view, n, parts = memoryview(out), 0, []
            for c in chunks:
                if into:
                    n += enc.update_into(c, view[n : n + enc.max_output(len(c))])
                else:
                    piece = enc.update(c)  # what a part upload would send
                    if keep:
                        parts.append(bytes(piece))
            tail = enc.finalize()
            if keep:
                bodies[fmt] = (b"".join(parts) + tail, enc.metadata, crypto)

        return run

    raw_bodies = [AESGCM(key).encrypt(iv, c, None) for c in chunks]

    def raw_oneshot_decrypt():
        aead = AESGCM(key)
        for b in raw_bodies:
            aead.decrypt(iv, b, None)

    def ours_decrypt(fmt: str, into: bool):
        def run():
            body, meta, crypto = bodies[fmt]
            dec = asyncio.run(crypto.decryptor("bench/obj", meta))
            view, n, mv = memoryview(out), 0, memoryview(body)
            for i in range(0, len(body), chunk):
                piece = mv[i : i + chunk]
                if into:
                    n += dec.update_into(piece, view[n : n + dec.max_output(len(piece))])
                else:
                    dec.update(piece)
            dec.finalize()

        return run

    encrypts = {
        "raw AESGCM.encrypt per chunk": raw_oneshot_encrypt,
        "raw GCM update_into stream": raw_stream_encrypt,
        "emrfs v3 update": ours_encrypt("v3", False),
        "emrfs v3 update_into": ours_encrypt("v3", True),
        "emrfs segmented update": ours_encrypt("segmented", False),
        "emrfs segmented update_into": ours_encrypt("segmented", True),
    }
    decrypts = {
        "raw AESGCM.decrypt per chunk": raw_oneshot_decrypt,
        "emrfs v3 update": ours_decrypt("v3", False),
        "emrfs v3 update_into": ours_decrypt("v3", True),
        "emrfs segmented update": ours_decrypt("segmented", False),
        "emrfs segmented update_into": ours_decrypt("segmented", True),
    }
    for title, table in (("encrypt", encrypts), ("decrypt", decrypts)):
        if title == "decrypt":
            for fmt in ("v3", "segmented"):
                encrypts[f"emrfs {fmt} update"](keep=True)  # bodies for the decrypt runs
        times: dict[str, list[float]] = {name: [] for name in table}
        names = list(table)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                start = time.perf_counter()
                table[name]()
                times[name].append(time.perf_counter() - start)
        base = statistics.median(times[names[0]])
        print(f"\n{title} {args.size} MiB in {args.chunk} MiB chunks, median of {args.rounds}")
        for name in names:
            t = statistics.median(times[name])
            print(f"  {name:32s} {len(data) / t / 1e6:9,.0f} MB/s   x{base / t:5.2f}")


def fetched_for_a_ranged_read(
    object_size: int = 1 << 30, read: int = 1 << 20, offset: int = 500_000_001
) -> None:
    """Bytes a 1 MiB read at an odd offset of a 1 GiB object fetches, per mode (arithmetic)."""
    from emrfs.crypto import ranges, segmented

    seg = 64 * 1024
    modes_ = {
        "v2/v3, authenticated (whole object, once)": object_size + 16,
        "v2/v3, cse.unauthenticated_range_reads": ranges.ctr_plan(
            offset, offset + read, object_size + 16
        ).fetch_end
        - ranges.ctr_plan(offset, offset + read, object_size + 16).fetch_start,
        "segmented (64 KiB segments)": segmented.plan(
            offset, offset + read, segmented.stored_length(object_size, seg), seg
        ).fetch_length,
    }
    print(f"\nbytes fetched for a {read >> 20} MiB read of a {object_size >> 30} GiB object")
    for name, fetched in modes_.items():
        print(f"  {name:44s} {fetched:14,d}  ({fetched / read:7.3f} x the range)")


if __name__ == "__main__":
    main()

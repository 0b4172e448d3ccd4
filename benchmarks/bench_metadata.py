"""Metadata-store rates on the local moto server (or EMRFS_ENDPOINT_URL).

    python -m benchmarks.bench_metadata [--count 200] [--json]

Measures single puts, gets and directory listings through
DynamoDBMetadataStore, concurrent ``ConsistentView.record_file`` calls (which
coalesce into batches), and one batched put of ``count`` entries against raw
boto3 ``batch_write_item`` of the same rows (the floor the store's batching can
reach).  The default is short (a few seconds); raise ``--count`` for steadier
numbers.  Rates against moto measure mostly moto's own cost: use them to compare
variants, not to predict AWS.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _coalesced_rate(store, count: int) -> float:
    """``ConsistentView.record_file`` from ``count`` concurrent writers (coalesced batches)."""
    import asyncio

    from emrfs.consistency.policy import NoRetryPolicy
    from emrfs.consistency.view import ConsistentView

    view = ConsistentView(store, NoRetryPolicy())

    async def writers() -> None:
        await asyncio.gather(
            *(view.record_file(f"bench/view/f{i}", i, f"etag{i}") for i in range(count))
        )

    start = time.perf_counter()
    asyncio.run(writers())
    return _rate(count, time.perf_counter() - start)


def run(endpoint: str, count: int) -> dict[str, float]:
    import boto3

    from emrfs.consistency.dynamodb import DynamoDBMetadataStore
    from emrfs.consistency.model import TableSpec
    from emrfs.consistency.store import Entry

    store = DynamoDBMetadataStore(
        TableSpec(f"emrfs-bench-{uuid.uuid4().hex[:10]}", host=endpoint),
        read_capacity=0,
        write_capacity=0,
    )
    store.create_table()
    results: dict[str, float] = {}
    try:
        start = time.perf_counter()
        for i in range(count):
            store.record_file(f"bench/single/f{i}", i, f"etag{i}")
        results["put_per_s"] = _rate(count, time.perf_counter() - start)

        start = time.perf_counter()
        for i in range(count):
            store.get(f"bench/single/f{i}")
        results["get_per_s"] = _rate(count, time.perf_counter() - start)

        rounds = max(1, count // 20)
        start = time.perf_counter()
        for _ in range(rounds):
            assert len(store.list_children("bench/single").children) == count
        elapsed = time.perf_counter() - start
        results["list_per_s"] = _rate(rounds, elapsed)
        results["listed_entries_per_s"] = _rate(rounds * count, elapsed)

        entries = [Entry.file(f"bench/batch/f{i}", i, f"etag{i}") for i in range(count)]
        start = time.perf_counter()
        store.put_many(entries)
        store_batch = time.perf_counter() - start
        results["batch_put_per_s"] = _rate(count, store_batch)

        results["view_concurrent_record_per_s"] = _coalesced_rate(store, count)

        ddb = boto3.client("dynamodb", endpoint_url=endpoint)
        start = time.perf_counter()
        for i in range(0, count, 25):
            ddb.batch_write_item(
                RequestItems={
                    store.table_name: [
                        {
                            "PutRequest": {
                                "Item": {
                                    "parent": {"S": "bench/raw"},
                                    "child": {"S": f"f{j}"},
                                    "length": {"N": str(j)},
                                    "etag": {"S": f"etag{j}"},
                                }
                            }
                        }
                        for j in range(i, min(i + 25, count))
                    ]
                }
            )
        raw_batch = time.perf_counter() - start
        results["boto3_batch_put_per_s"] = _rate(count, raw_batch)
        results["batch_vs_boto3_time_ratio"] = store_batch / raw_batch if raw_batch else 0.0
    finally:
        store.delete_table(wait=False)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="entries per measurement")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    from emrfs.testing import LocalServers

    with LocalServers() as servers:
        results = run(servers.endpoint_url, args.count)
    if args.json:
        print(json.dumps(results, sort_keys=True))
    else:
        for name, value in results.items():
            print(
                f"{name:<28} {value:10.1f}" if "ratio" not in name else f"{name:<28} {value:10.2f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``benchmarks.ab``: the pure parts (samples merged across rounds, the table) and the
export of the reference commit's package; the run itself needs a server and minutes."""

from __future__ import annotations

import os

from benchmarks import ab


def _report(seconds: float, cpu: float, status: str = "ok") -> dict:
    return {
        "cases": [
            {
                "case": "small_get",
                "unit": "ops/s",
                "amount": 100,
                "variants": [
                    {
                        "variant": "emrfs cat(list)",
                        "status": status,
                        "samples": [{"seconds": seconds, "client_cpu": cpu}],
                    },
                    {"variant": "boto3 8 threads", "status": "skipped", "samples": []},
                ],
            }
        ]
    }


def test_rounds_are_merged_and_compared_as_rates():
    now: dict = {}
    old: dict = {}
    for s in (1.0, 2.0, 4.0):  # 100, 50, 25 ops/s: median 50
        ab.collect(_report(s, 0.1), now)
    for s in (2.0, 4.0, 8.0):  # median 25
        ab.collect(_report(s, 0.3), old)
    assert list(now) == [("small_get", "emrfs cat(list)")]  # the skipped peer is left out
    got = now[("small_get", "emrfs cat(list)")]
    assert got.median() == 50 and got.cpu_median() == 0.1
    rows = ab.table("abc123", now, old)
    assert rows[2].startswith("| small_get | emrfs cat(list) | ops/s | 50 | 25 | 2.00× |")


def test_a_time_is_inverted_and_a_failure_is_named():
    assert ab.ratio("s", 2.0, 4.0) == 2.0  # half the time: twice as good
    assert ab.ratio("MB/s", 2.0, 4.0) == 0.5
    failed = _report(1.0, 0.1, status="failed")
    row = failed["cases"][0]["variants"][0]
    row.update(samples=[], reason="unknown option s3.transport")
    old: dict = {}
    ab.collect(failed, old)
    now: dict = {}
    ab.collect(_report(1.0, 0.1), now)
    assert "abc failed: unknown option s3.transport" in ab.table("abc", now, old)[2]


def test_the_reference_package_is_exported_and_imported_first(tmp_path):
    root = ab.export_ref("HEAD", str(tmp_path / "ref"))
    assert os.path.isfile(os.path.join(root, "emrfs", "__init__.py"))
    assert not os.path.exists(os.path.join(root, "benchmarks"))
    # run from a folder without emrfs, as ab does: the exported package wins
    found = ab.imported_from(os.pathsep.join([root, ab.HERE]), str(tmp_path))
    assert found == os.path.realpath(root)

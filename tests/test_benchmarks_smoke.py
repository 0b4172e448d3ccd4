"""The benchmark harness must not rot: every case runs with tiny sizes, one round.

Checks the shape of the report and the tables, never speeds.
"""

from __future__ import annotations

import http.client
import types
import urllib.parse

import pytest

from benchmarks import bench_s3, harness
from benchmarks.harness import Case, Variant, format_case, summarise
from benchmarks.proxy import CountingProxy

# --quick (tiny sizes, one round), smaller still where the case count makes it add up;
# moto named explicitly (the default is SeaweedFS when installed: see test_runs_against_seaweedfs)
TINY = [
    "--quick",
    "--server",
    "moto",
    "--small-count",
    "6",
    "--list-count",
    "12",
    "--parquet-rows",
    "500",
]
#: the cases the every-case run counts requests of (traffic checked in _check_report)
COUNTED = ("large_write", "large_read", "small_get", "parquet_read_2cols")
STREAM_CASES = [name for name in bench_s3.REGISTRY.factories if name.startswith("stream_")]


@pytest.fixture(autouse=True)
def _no_full_collections(monkeypatch):
    """The harness runs a full garbage collection before each timed run, for steadier
    samples; nothing here checks a timing, and in a late xdist worker each one walks the
    whole test process (0.5-2 s, 50+ per every-case run: most of that test's time)."""
    monkeypatch.setattr(harness, "gc", types.SimpleNamespace(collect=lambda *args: 0))


@pytest.mark.integration
def test_every_case_runs_and_reports(tmp_path):
    out = tmp_path / "bench.json"
    # the counting pass (each variant once more through the counting proxy) on the cases
    # whose traffic is checked below; the other cases' variants run once each
    report = bench_s3.REGISTRY.run(
        [*TINY, "--count-cases", ",".join(COUNTED), "--json", str(out)], log=lambda _: None
    )
    # The streaming cases spawn a child per variant: run them without the counting
    # pass, to keep this test in seconds (the pass is checked on every other case).
    streamed = bench_s3.REGISTRY.run(
        [*TINY, "--cases", ",".join(STREAM_CASES), "--no-count"], log=lambda _: None
    )

    assert sorted(c["case"] for c in report["cases"] + streamed["cases"]) == sorted(
        bench_s3.REGISTRY.factories
    )
    assert out.read_text().startswith("{")
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the ratios' plot
    for case in report["cases"]:
        rows = {row["variant"]: row for row in case["variants"]}
        peers = [r for name, r in rows.items() if not name.startswith("emrfs") and "median" in r]
        if peers:  # every measured variant is set against the fastest peer of the same run
            best = rows[case["best_peer"]]
            assert best["vs_best_peer"] == pytest.approx(1.0)
            assert all(r["vs_best_peer"] <= 1.0 + 1e-9 for r in peers)
    for case in streamed["cases"]:
        for row in case["variants"]:
            if row["status"] == "ok":
                assert 0 < row["base_rss_mib"] <= row["peak_rss_mib"], row["variant"]
    _check_report(report, counted=COUNTED)
    _check_report(streamed, counted=())


def _check_report(report: dict, counted: tuple[str, ...]) -> None:
    """The report's shape; request traffic for the cases in ``counted``."""
    for case in report["cases"]:
        assert "error" not in case, case
        rows = {row["variant"]: row for row in case["variants"]}
        assert case["reference"] in rows, case["case"]
        failed = {name: row["reason"] for name, row in rows.items() if row["status"] == "failed"}
        assert not failed, (case["case"], failed)
        for name, row in rows.items():
            if row["status"] == "skipped":
                assert row["reason"], (case["case"], name)
                continue
            assert row["median"] > 0 and row["spread"] == 0.0  # one round
            assert row["client_cores"] >= 0 and row["server_cores"] >= 0
            if case["case"] not in counted:
                assert "traffic" not in row
                continue
            assert row["traffic"]["requests"] >= 1, (case["case"], name)
            if case["case"] == "large_write":  # the whole object went out
                assert row["traffic"]["bytes_to_server"] >= case["amount"], name
            if case["case"] == "large_read":
                assert row["traffic"]["bytes_from_server"] >= case["amount"], name
        if rows[case["reference"]]["status"] == "ok":
            assert rows[case["reference"]]["ratio"] == pytest.approx(1.0)
        table = format_case(case)
        assert table.count("\n| ") == len(rows) + 1  # header + one line per variant
        assert f"### {case['case']} " in table


def test_summary_is_median_spread_and_ratio():
    case = Case("c", "MB/s", 100e6, reference="a", variants=[])
    samples = [{"seconds": s, "client_cpu": s / 2, "server_cpu": s} for s in (1.0, 2.0, 4.0)]
    out = summarise(case, samples)
    assert out["median"] == pytest.approx(50.0)  # 100 MB / 2 s
    assert out["spread"] == pytest.approx((100 - 25) / 50)
    assert out["client_cores"] == pytest.approx(0.5) and out["server_cores"] == pytest.approx(1.0)
    assert out["client_cpu_s"] == pytest.approx(1.0)  # median of 0.5, 1, 2 CPU seconds
    timed = summarise(Case("t", "s", 1, reference="a", variants=[]), samples)
    assert timed["median"] == pytest.approx(2.0)


@pytest.mark.integration
def test_forked_children_run_the_emrfs_variants():
    report = bench_s3.REGISTRY.run(
        [*TINY, "--cases", "list_keys", "--fork", "--no-count"], log=lambda _: None
    )
    rows = {row["variant"]: row for row in report["cases"][0]["variants"]}
    assert rows["emrfs find (forked child)"]["status"] == "ok", rows["emrfs find (forked child)"]
    assert rows["emrfs find (forked child)"]["median"] > 0
    assert "s3fs find (forked child)" not in rows  # only emrfs promises fork safety


def test_a_forked_child_that_fails_or_hangs_is_reported(monkeypatch):
    def boom():
        raise ValueError("broken in the child")

    with pytest.raises(RuntimeError, match="broken in the child"):
        harness._measure_forked(boom, harness._CpuMeter(None))
    monkeypatch.setattr(harness, "FORK_TIMEOUT", 0.5)
    with pytest.raises(RuntimeError, match="hung"):
        harness._measure_forked(lambda: __import__("time").sleep(30), harness._CpuMeter(None))


@pytest.mark.integration
def test_proxy_counts_requests_and_chunked_bodies(emrfs_endpoint, emrfs_s3, emrfs_bucket):
    import boto3

    with CountingProxy(emrfs_endpoint) as proxy:
        s3 = boto3.client("s3", endpoint_url=proxy.url, region_name="us-east-1")
        proxy.reset()
        for i in range(3):
            s3.put_object(Bucket=emrfs_bucket, Key=f"k{i}", Body=b"x" * 1000)
        assert s3.get_object(Bucket=emrfs_bucket, Key="k1")["Body"].read() == b"x" * 1000
        seen = proxy.snapshot()
        assert dict(seen.requests) == {"PUT": 3, "GET": 1}
        assert seen.bytes_to_server > 3000 and seen.bytes_from_server > 1000

        # A chunked body on a kept-alive connection, then a second request on it.
        host = urllib.parse.urlsplit(proxy.url)
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
        proxy.reset()
        conn.request(
            "PUT",
            f"/{emrfs_bucket}/chunked",
            body=iter([b"ab" * 500, b"cd" * 500]),
            encode_chunked=True,
        )
        assert conn.getresponse().read() is not None
        conn.close()
        assert proxy.snapshot().requests == {"PUT": 1}
    body = emrfs_s3.get_object(Bucket=emrfs_bucket, Key="chunked")["Body"].read()
    assert body == b"ab" * 500 + b"cd" * 500


@pytest.mark.integration
def test_rounds_rotate_the_order(emrfs_endpoint):
    from benchmarks.harness import Bench, run_case
    from benchmarks.servers import Server

    calls: list[str] = []

    def variant(name):
        return Variant(name, lambda env: lambda: calls.append(name))

    case = Case(
        "order", "ops/s", 1, reference="a", variants=[variant("a"), variant("b"), variant("c")]
    )
    with Bench(Server("moto", emrfs_endpoint, None)) as bench:
        result = run_case(case, bench, rounds=3, log=lambda _: None)
    assert calls[:9] == list("abcbcacab")
    assert calls[9:] == list("abc")  # the counting pass
    assert all(row["traffic"]["requests"] == 0 for row in result["variants"])


@pytest.mark.integration
def test_runs_against_seaweedfs():
    from benchmarks.seaweedfs import find_weed

    try:
        find_weed()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    report = bench_s3.REGISTRY.run(
        [*TINY, "--server", "seaweedfs", "--cases", "list_keys"], log=lambda _: None
    )
    assert report["server"]["kind"] == "seaweedfs"
    _check_report(report, counted=("list_keys",))


def test_skip_variants_marks_them_skipped_with_the_reason():
    from benchmarks.harness import _skip_variants

    case = Case(
        "c",
        "MB/s",
        1,
        reference="a",
        variants=[Variant(n, lambda env: lambda: None) for n in ("a x", "b y", "c x")],
    )
    _skip_variants(case, ["x", ""])
    assert [v.skip is not None for v in case.variants] == [True, False, True]
    assert "--skip-variants" in case.variants[0].skip


def test_summary_sets_emrfs_against_each_peer_library(tmp_path):
    from benchmarks import summary

    rows = [
        {"variant": "boto3 get", "median": 100.0},
        {"variant": "obstore get", "median": 200.0},
        {"variant": "emrfs cat", "median": 180.0},
        {"variant": "emrfs cat (forked child)", "median": 90.0},
    ]
    lines = summary.peer_table([{"case": "g", "unit": "MB/s", "variants": rows}])
    assert "0.90× (obstore get)" in lines[2] and "| 180 (cat) | 90 |" in lines[2]
    feature = [
        {"variant": "emrfs plaintext", "median": 10.0, "ratio": 1.0},
        {"variant": "emrfs cse", "median": 9.0, "ratio": 0.9},
    ]
    assert "0.90×" in summary.feature_table([{"case": "w", "unit": "MB/s", "variants": feature}])[3]


@pytest.mark.integration
def test_a_run_that_fails_once_is_reported_beside_the_others(emrfs_endpoint):
    from benchmarks.harness import Bench, run_case
    from benchmarks.servers import Server

    calls = {"flaky": 0}

    def flaky(env):
        def op():
            calls["flaky"] += 1
            if calls["flaky"] == 1:
                raise TimeoutError("the server was busy")

        return op

    case = Case(
        "partial",
        "ops/s",
        1,
        reference="flaky",
        variants=[Variant("flaky", flaky), Variant("dead", lambda env: lambda: 1 / 0)],
    )
    with Bench(Server("moto", emrfs_endpoint, None), count=False) as bench:
        result = run_case(case, bench, rounds=3, log=lambda _: None)
    rows = {row["variant"]: row for row in result["variants"]}
    assert rows["flaky"]["status"] == "ok" and len(rows["flaky"]["samples"]) == 2
    assert any("flaky: 1 of 3 runs failed" in n and "busy" in n for n in result["notes"])
    assert rows["dead"]["status"] == "failed" and "ZeroDivisionError" in rows["dead"]["reason"]

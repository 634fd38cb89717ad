"""The benchmark suite's machinery, on a tiny load: it runs, counts and reports.

These check that `nox -s bench` keeps working as the SDK changes; they assert nothing
about speed (the suite itself measures that).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import methods, micro, profile, report, runner

# Run once in CI, on the oldest Python; the benchmark starts its clients as processes.
pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_a_tiny_run_measures_every_scenario_and_fills_the_page(tmp_path):
    """Every scenario runs for the SDK, get_many and raw aiohttp with no error; the page fills."""
    clients = ["sdk", "sdk-get_many", "aiohttp"]
    lines: list[str] = []
    rows = runner.run_all(1, 0.002, clients, lines.append)
    plan = runner.scenarios(0.002)
    assert len(lines) == len(rows) == len(plan) * len(clients)
    for row in rows:
        assert "failed" not in row, row
        assert row["errors"] == 0
        assert row["rate"] > 0
        assert row["connections"] >= 1
        assert row["loop_lag"] is not None
        # Ratios to a client that did not run are absent, not made up.
        assert row["vs_httpx"] is None
    assert all(row["vs_aiohttp"] is not None for row in rows)
    sdk_rows = [row for row in rows if row["client"] == "sdk"]
    assert all(row["p50_ms"] is not None for row in sdk_rows)

    figures = {"converter_us": 4.0, "by_hand_us": 3.0, "ratio": 4 / 3, "import_ms": 100.0}
    meta = {"date": "2026-01-01", "command": "test", "reps": 1, "server_share": 0.1}
    page = tmp_path / "performance.md"
    page.write_text(f"# P\n\nbefore\n{report.START}\nSTALE\n{report.END}\nafter\n")
    report.write_page(page, report.markdown(rows, figures, meta))
    text = page.read_text()
    assert "STALE" not in text
    assert text.startswith("# P\n\nbefore\n")
    assert text.endswith(f"{report.END}\nafter\n")
    assert text.count("| inkit-async (defaults) |") == len(plan)
    assert "| 1.33x (4.0 vs 3.0 us) | yes |" in text


def test_the_decode_micro_benchmark_compares_equal_records():
    """The hand-written baseline builds the very record the converter builds."""
    assert micro.by_hand(micro.PAYLOAD) == micro.structure(micro.PAYLOAD, micro.Batch)
    timings = micro.decode(repeat=1, number=10)
    assert timings["ratio"] == timings["converter_us"] / timings["by_hand_us"]


def test_a_tiny_rate_limited_run_counts_requests_and_fills_its_page(tmp_path):
    """Both variants run for get_many, gather and naive aiohttp; counts add up; the page fills."""
    plan = runner.rate_scenarios(n=60, rate=100, burst=10)
    clients = ["sdk-get_many", "sdk", "aiohttp-naive"]
    lines: list[str] = []
    rate = runner.run_rate_limits(1, plan, clients, lines.append)
    rows = rate["rows"]
    assert len(lines) == len(rows) == len(rate["runs"]) == len(plan) * len(clients)
    for row in rows:
        assert "failed" not in row, row
        assert row["requests"] >= 60
        # Every request the server let through is one lookup that succeeded.
        assert row["requests"] - row["refused"] == 60 - row["errors"]
        # The timeline covers the timed run exactly (not the warm-up).
        assert sum(row["timeline"]["requests"]) == row["requests"]
        assert sum(row["timeline"]["refused"]) == row["refused"]
    for run in rate["runs"]:
        if run["client"].startswith("sdk"):
            assert run["errors"] == 0, run["error_kinds"]
    rate["meta"] = {"date": "2026-01-01", "command": "test", "reps": 1, "server_share": 0.1}
    page = tmp_path / "rate-limits.md"
    page.write_text(f"# R\n\nbefore\n{report.RATE_START}\nSTALE\n{report.RATE_END}\nafter\n")
    report.write_page(page, report.rate_markdown(rate), report.RATE_START, report.RATE_END)
    text = page.read_text()
    assert "STALE" not in text
    assert text.startswith("# R\n\nbefore\n")
    assert text.endswith(f"{report.RATE_END}\nafter\n")
    assert text.count("| inkit-async `get_many` (defaults) |") == len(plan)
    assert len(report.rate_targets(rows)) == 2 * len(plan)


def test_a_tiny_run_of_the_uvloop_tls_and_tracing_rows_compares_them_in_one_repetition():
    """The uvloop, TLS and tracing rows run on a tiny load; their ratios and table fill."""
    # httpx-aiohttp is the bench's own dependency, not the tests': left out here.
    clients = ["sdk", "sdk-otel-off", "sdk-otel-on", "aiohttp", "httpx"]
    parts = ("uvloop", "tls", "tracing")
    lines: list[str] = []
    rows = runner.run_all(
        1,
        0.002,
        clients,
        lines.append,
        lambda scenario, client: any(runner.SUBSETS[p](scenario, client) for p in parts),
    )
    by = {(row["scenario"]["name"], row["client"]): row for row in rows}
    assert len(lines) == len(rows) == 9  # 4 plain, 2 on uvloop, 3 over TLS
    for row in rows:
        assert "failed" not in row, row
        assert row["errors"] == 0
        assert len(row["per_rep"]) == 1
    uvloop = by["C=100, uvloop", "sdk"]
    assert None not in (uvloop["vs_aiohttp"], uvloop["vs_plain"], uvloop["vs_aiohttp_vs_plain"])
    assert by["C=100, TLS", "httpx"]["vs_aiohttp"] is not None
    assert by["C=100, TLS", "httpx"]["vs_plain"] is None  # plain httpx did not run
    # A call span and an attempt span for each lookup, the warm-up's too.
    assert by["C=100", "sdk-otel-on"]["spans"] == 2 * (by["C=100", "sdk"]["scenario"]["n"] + 1)
    assert by["C=100", "sdk-otel-off"]["vs_sdk"] is not None
    names = [target for target, _, _ in report.targets(rows, {})]
    assert sum("TLS" in name for name in names) == 1
    assert sum("uvloop" in name for name in names) == 1
    assert sum("tracing" in name for name in names) == 2
    meta = {"date": "2026-01-01", "command": "test", "reps": 1, "server_share": 0.1}
    text = report.markdown(rows, {}, meta)
    assert "### Event loops, TLS, flow control and tracing (C=100, 0 ms)" in text
    assert "| raw aiohttp, over TLS |" in text
    assert "| inkit-async, traces and metrics to an SDK provider |" in text


def test_the_profile_table_fills_its_markers_and_adds_up(tmp_path):
    """Groups sum to 100%, biggest first; the page's profile block is filled in place."""
    places = {("aiohttp", "client"): 3.0, ("inkit-async", "_engine"): 2.0, ("tiny", "x"): 0.001}
    groups = profile.grouped(places)
    assert abs(sum(group["share"] for group in groups) - 1) < 1e-9
    assert groups[0]["name"].startswith("aiohttp")
    assert groups[-1]["name"] == "other packages"
    figures = {
        "date": "2026-01-01",
        "command": "python -m benchmarks.profile",
        "ids": 100,
        "latency_ms": 0,
        "loop": "asyncio",
        "interval_ms": 0.2,
        "groups": groups,
        "wall": 0.5,
        "lags": [(0.012, 0.1)],
        "pauses": [(0.002, 0.2)],
        "collections": 3,
    }
    page = tmp_path / "performance.md"
    page.write_text(f"# P\n\n{report.PROFILE_START}\nSTALE\n{report.PROFILE_END}\nafter\n")
    profile.write(tmp_path, figures)
    text = page.read_text()
    assert "STALE" not in text
    assert text.endswith(f"{report.PROFILE_END}\nafter\n")
    assert "| inkit-async itself | 40% |" in text


def test_a_tiny_run_of_every_call_compares_the_sdk_before_and_after_with_raw_aiohttp(tmp_path):
    """Every call runs for both SDKs and raw aiohttp, one request per call; the page fills."""
    calls = {"get": 30, "list": 10, "create": 30}
    lines: list[str] = []
    # The SDK "before" is HEAD's, exported to a directory of its own: its runs must import
    # the SDK from there, not from the working directory that `python -m` puts first.
    with methods.sdk_version("HEAD") as (before, commit):
        result = methods.run_all(1, calls, 10, before, lines.append)
    assert commit == methods.git("rev-parse", "--short", "HEAD")
    rows = {(row["method"], row["client"]): row for row in result["rows"]}
    assert len(lines) == len(rows) == len(result["runs"]) == 10  # 3 x 3, and the fresh create
    for (method, client), row in rows.items():
        assert "failed" not in row, row
        assert row["errors"] == 0
        assert row["rate"] > 0
        # A list asks for one page: the server's only one.
        assert row["requests_per_call"] == 1
        if client != "aiohttp":
            assert row["vs_aiohttp"] is not None
        assert (row["vs_aiohttp-fresh"] is not None) == (
            method == "create" and client != "aiohttp-fresh"
        )
    assert rows["create", "sdk-after"]["vs_sdk-before"] is not None
    assert rows["get", "sdk-before"]["sdk_files"][0].startswith(str(Path(before).resolve()))
    assert rows["get", "sdk-after"]["sdk_files"] == [
        str(runner.ROOT / "inkit_async" / "__init__.py")
    ]
    # Each create goes on a connection of its own: one opened per create.
    assert rows["create", "sdk-after"]["connections"] == calls["create"]
    assert rows["create", "aiohttp-fresh"]["connections"] == calls["create"]
    result["meta"] = {
        "date": "2026-01-01",
        "command": "test",
        "reps": 1,
        "calls": 30,
        "pages": 10,
        "concurrency": 10,
        "before": "test",
        "after": "test",
        "aiohttp": "x",
        "machine": "test",
    }
    page = tmp_path / "performance.md"
    page.write_text(f"# P\n\n{methods.START}\nSTALE\n{methods.END}\nafter\n")
    report.write_page(page, methods.markdown(result), methods.START, methods.END)
    text = page.read_text()
    assert "STALE" not in text
    assert text.count("| `create` |") == 4
    assert len(methods.targets(result["rows"])) == 4  # get, list, create twice


def test_a_run_of_the_sdk_before_fails_when_its_sdk_is_imported_from_elsewhere(tmp_path):
    """A directory without inkit_async/ would run this checkout's SDK: the run says so."""
    spec = {"method": "get", "client": "sdk-before", "n": 1, "concurrency": 1}
    with runner.server(0) as base_url:
        result = methods.run_one({**spec, "base_url": base_url}, str(tmp_path))
    assert result["failed"].startswith("inkit_async came from"), result


def test_a_tiny_download_run_measures_every_row_and_fills_the_table(tmp_path):
    """Both clients download every file whole; the big file and the cancellation run."""
    from benchmarks import downloads

    figures = downloads.measure(1, 20, 50_000, 4 * downloads.MIB, lambda line: None)
    assert [row["files"] for row in figures["sdk"] + figures["aiohttp"]] == [20, 20]
    assert figures["big"]["files"] == 1
    assert figures["cancel"]["left"] == []
    meta = {"date": "2026-01-01", "command": "test", "machine": "m", "reps": 1}
    meta |= {"n": 20, "size": 50_000, "big": 4 * downloads.MIB}
    page = tmp_path / "downloads.md"
    page.write_text(f"# D\n\n{downloads.START}\nSTALE\n{downloads.END}\n")
    report.write_page(page, downloads.markdown(figures, meta), downloads.START, downloads.END)
    text = page.read_text()
    assert "STALE" not in text
    assert "| inkit-async (`download_many`) |" in text

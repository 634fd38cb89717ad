"""Run every client through every scenario, several times, interleaved; keep medians.

The server runs in its own process pinned to one CPU and each client process to another,
so the two sides never share a core. Repetitions are interleaved (all scenarios and
clients once, then again) so that a slow minute on a shared machine costs every client
alike, and ratios are taken within one repetition before their median is taken.

The rate-limited scenario (``run_rate_limits``) runs the same way against a server that
enforces a per-token rate: every client once per variant (429 without ``Retry-After``,
and with one), then again, a fresh server per variant and repetition.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterator

CLIENTS = ("sdk", "sdk-nothrottle", "sdk-get_many", "httpx", "httpx-aiohttp", "aiohttp", "inkit")
LABELS = {
    "sdk": "inkit-async (defaults)",
    "sdk-nothrottle": "inkit-async (`throttle=False`)",
    "sdk-get_many": "inkit-async `get_many`",
    "httpx": "raw httpx",
    "httpx-aiohttp": "httpx + aiohttp transport",
    "aiohttp": "raw aiohttp",
    "inkit": "official `inkit` SDK (threads)",
}
# The rate-limited scenario's clients: the SDK's two ways of fanning out with its defaults,
# get_many without flow control (the SDK before it), raw clients with naive retries, and
# the official SDK (no retries at all).
RATE_CLIENTS = (
    "sdk-get_many",
    "sdk",
    "sdk-get_many-nothrottle",
    "aiohttp-naive",
    "httpx-naive",
    "inkit",
)
RATE_LABELS = {
    "sdk-get_many": "inkit-async `get_many` (defaults)",
    "sdk": "inkit-async gather (defaults)",
    "sdk-get_many-nothrottle": "inkit-async `get_many`, `throttle=False`",
    "aiohttp-naive": "raw aiohttp, naive retries",
    "httpx-naive": "raw httpx, naive retries",
    "inkit": "official `inkit` SDK (threads, no retries)",
}
# The healthy-server clients that run in one scenario only: C=100 at 0 ms.
ONLY_AT_C100 = frozenset({"sdk-nothrottle"})
ROOT = Path(__file__).resolve().parent.parent  # where `python -m benchmarks.*` resolves
# A run that takes longer than this is reported as a timeout, not waited for.
RUN_TIMEOUT = 300.0


class Scenario(NamedTuple):
    """One load shape: *concurrency* workers (0: one gathered task per id) over *n* ids."""

    name: str
    latency_ms: int
    n: int
    concurrency: int

    @property
    def gather(self) -> bool:
        """Whether this is the every-id-at-once case."""
        return self.concurrency == 0


def scenarios(scale: float) -> list[Scenario]:
    """The scenarios, with *n* scaled down for a quick run.

    With 50 ms latency every lookup waits 50 ms, so N only sets the run's length: C=1 and
    C=10 there use 100 and 1,000 ids (5 s each) instead of 5,000 (250 s and 25 s).
    """
    shapes = [
        ("C=1", 0, 5000, 1),
        ("C=10", 0, 5000, 10),
        ("C=100", 0, 5000, 100),
        ("gather", 0, 10_000, 0),
        ("C=1", 50, 100, 1),
        ("C=10", 50, 1000, 10),
        ("C=100", 50, 5000, 100),
        ("gather", 50, 10_000, 0),
    ]
    plan = []
    for name, latency, n, concurrency in shapes:
        scaled = max(int(n * scale), 10)
        plan.append(
            Scenario(
                f"{scaled:,}-way gather" if name == "gather" else name, latency, scaled, concurrency
            )
        )
    return plan


class RateScenario(NamedTuple):
    """A server that allows *rate* requests/s per token (bucket *burst*); *n* ids, C wide."""

    name: str
    retry_after: float | None
    rate: float
    burst: int
    n: int
    concurrency: int

    @property
    def ideal(self) -> float:
        """Seconds the lookups take at exactly the allowed rate."""
        return self.n / self.rate


def rate_scenarios(
    n: int = 3000, rate: float = 200, burst: int = 20, concurrency: int = 100
) -> list[RateScenario]:
    """The rate-limited scenario's two variants: 429 without Retry-After, and with 1 s."""
    return [
        RateScenario("no Retry-After", None, rate, burst, n, concurrency),
        RateScenario("Retry-After: 1", 1.0, rate, burst, n, concurrency),
    ]


def available(client: str) -> bool:
    """Whether a client's library imports here (the official SDK fails on 3.12+)."""
    module = {
        "sdk": "inkit_async",
        "sdk-nothrottle": "inkit_async",
        "sdk-get_many": "inkit_async",
        "sdk-get_many-nothrottle": "inkit_async",
        "httpx-aiohttp": "httpx_aiohttp",
        "aiohttp-naive": "aiohttp",
        "httpx-naive": "httpx",
    }
    probe = subprocess.run(
        [sys.executable, "-c", f"import {module.get(client, client)}"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@contextlib.contextmanager
def server(latency_ms: int, limit: RateScenario | None = None) -> Iterator[str]:
    """Start the loopback server on a CPU of its own; yield its base URL; stop it.

    With *limit*, the server enforces that scenario's rate, burst and Retry-After.
    """
    command = [sys.executable, "-m", "benchmarks.server", "--latency-ms", str(latency_ms)]
    if limit is not None:
        command += ["--rate", str(limit.rate), "--burst", str(limit.burst)]
        if limit.retry_after is not None:
            command += ["--retry-after", str(limit.retry_after)]
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    ) as process:
        # Closing its stdin (when the block ends) is the server's signal to stop.
        assert process.stdout is not None
        pin(process.pid, 0)
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"


def pin(pid: int, side: int) -> None:
    """Keep a process on the first (*side* 0) or second (1) CPU we may use, if there are two."""
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > 1:
            os.sched_setaffinity(pid, {cpus[side]})


def run_one(client: str, scenario: Scenario, base_url: str) -> dict[str, Any]:
    """One client process through one scenario; its figures, or why there are none."""
    if client == "sdk-get_many":
        mode = "get_many"
    elif scenario.gather:
        mode = "gather"
    else:
        mode = "workers"
    spec = {
        "client": client,
        "base_url": base_url,
        "n": scenario.n,
        "concurrency": scenario.concurrency,
        "mode": mode,
    }
    return run_worker(spec)


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Start the worker process for *spec*; its figures, or why there are none."""
    with subprocess.Popen(
        [sys.executable, "-m", "benchmarks.worker", json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    ) as process:
        pin(process.pid, 1)
        try:
            stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return {"failed": f"took over {RUN_TIMEOUT:.0f} s"}
    if process.returncode != 0:
        return {"failed": stderr.strip().splitlines()[-1]}
    return dict(json.loads(stdout))


def applies(client: str, scenario: Scenario) -> bool:
    """The official SDK is synchronous: it has no 10,000-way gather.

    The SDK with ``throttle=False`` runs at C=100, 0 ms only: beside the defaults, it
    shows what flow control costs on a healthy server.
    """
    if client in ONLY_AT_C100:
        return scenario.concurrency == 100 and scenario.latency_ms == 0
    return not (client == "inkit" and scenario.gather)


def run_all(reps: int, scale: float, clients: list[str], log: Any) -> list[dict[str, Any]]:
    """Every scenario x client, *reps* times, interleaved; one row per scenario x client."""
    plan = scenarios(scale)
    runs: dict[tuple[Scenario, str], list[dict[str, Any]]] = {}
    for rep in range(reps):
        for latency in sorted({s.latency_ms for s in plan}):
            with server(latency) as base_url:
                for scenario in (s for s in plan if s.latency_ms == latency):
                    for client in (c for c in clients if applies(c, scenario)):
                        result = run_one(client, scenario, base_url)
                        runs.setdefault((scenario, client), []).append(result)
                        log(
                            f"rep {rep + 1}/{reps} {latency} ms {scenario.name} {client}: "
                            f"{result.get('rate', 0):,.0f}/s {result.get('failed', '')}"
                        )
    return summarise(plan, clients, runs)


def summarise(
    plan: list[Scenario], clients: list[str], runs: dict[tuple[Scenario, str], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Medians over repetitions; throughput ratios taken within each repetition first."""
    rows = []
    for scenario in plan:
        for client in clients:
            results = runs.get((scenario, client))
            if not results:
                continue
            row: dict[str, Any] = {"scenario": scenario._asdict(), "client": client}
            ok = [r for r in results if "failed" not in r]
            if len(ok) < len(results):
                row["failed"] = next(r["failed"] for r in results if "failed" in r)
            for key in (
                "rate",
                "cpu_per_lookup_us",
                "p50_ms",
                "p99_ms",
                "rss_growth",
                "connections",
                "loop_lag",
                "errors",
                "server_cpu_share",
            ):
                values = [r[key] for r in ok if r.get(key) is not None]
                row[key] = statistics.median(values) if values else None
            for base in ("aiohttp", "httpx", "httpx-aiohttp", "inkit", "sdk-nothrottle"):
                ratios = [
                    mine["rate"] / theirs["rate"]
                    for mine, theirs in zip(results, runs.get((scenario, base), []), strict=False)
                    if "rate" in mine and "rate" in theirs
                ]
                row[f"vs_{base}"] = statistics.median(ratios) if ratios else None
            # Flow control's cost in CPU, also within each repetition (lower is cheaper).
            cpu_ratios = [
                mine["cpu_per_lookup_us"] / theirs["cpu_per_lookup_us"]
                for mine, theirs in zip(
                    results, runs.get((scenario, "sdk-nothrottle"), []), strict=False
                )
                if "rate" in mine and "rate" in theirs
            ]
            row["cpu_vs_sdk-nothrottle"] = statistics.median(cpu_ratios) if cpu_ratios else None
            rows.append(row)
    return rows


# --- the rate-limited scenario ----------------------------------------------------------

# The figures of a rate-limited run whose medians make its row.
RATE_FIGURES = (
    "errors",
    "requests",
    "refused",
    "requests_per_lookup",
    "wall",
    "goodput",
    "goodput_share",
    "wall_vs_ideal",
    "cpu_per_lookup_us",
    "connections",
    "server_cpu_share",
)


def run_rate_one(client: str, scenario: RateScenario, base_url: str) -> dict[str, Any]:
    """One client process against the rate-limited server; its figures, with the derived."""
    if client.startswith("sdk-get_many"):
        mode = "get_many"
    elif client == "inkit":
        mode = "threads"
    else:
        mode = "gather"  # the naive clients bound themselves with a semaphore
    # get_many and the SDK's gather run with the client's defaults (C=100).
    concurrency = 0 if client.startswith("sdk") else scenario.concurrency
    spec = {
        "client": client,
        "base_url": base_url,
        "n": scenario.n,
        "concurrency": concurrency,
        "mode": mode,
        "rate_limited": True,
    }
    result = run_worker(spec)
    if "failed" in result:
        return result
    good = scenario.n - result["errors"]
    result.update(
        requests_per_lookup=result["requests"] / scenario.n,
        goodput=good / result["wall"],
        goodput_share=good / result["wall"] / scenario.rate,
        wall_vs_ideal=result["wall"] / scenario.ideal,
    )
    return result


def run_rate_limits(
    reps: int, plan: list[RateScenario], clients: list[str], log: Any
) -> dict[str, Any]:
    """Every variant x client, *reps* times, interleaved; rows of medians and every run."""
    runs: dict[tuple[RateScenario, str], list[dict[str, Any]]] = {}
    for rep in range(reps):
        for scenario in plan:
            with server(0, scenario) as base_url:
                for client in clients:
                    result = run_rate_one(client, scenario, base_url)
                    runs.setdefault((scenario, client), []).append(result)
                    if "failed" in result:
                        summary = result["failed"]
                    else:
                        summary = (
                            f"{result['errors']:,} failed, {result['requests_per_lookup']:.2f} "
                            f"requests/lookup, {result['wall']:.1f} s "
                            f"({result['wall_vs_ideal']:.2f}x ideal)"
                        )
                    log(f"rep {rep + 1}/{reps} rate-limited, {scenario.name}, {client}: {summary}")
    rows = []
    for scenario in plan:
        for client in clients:
            results = runs.get((scenario, client))
            if not results:
                continue
            row: dict[str, Any] = {"scenario": scenario_json(scenario), "client": client}
            ok = [r for r in results if "failed" not in r]
            if len(ok) < len(results):
                row["failed"] = next(r["failed"] for r in results if "failed" in r)
            for key in RATE_FIGURES:
                values = [r[key] for r in ok if r.get(key) is not None]
                row[key] = statistics.median(values) if values else None
            # The timeline of the run with the median wall time: the one the chart shows.
            middle = sorted(ok, key=lambda r: r["wall"])[len(ok) // 2] if ok else None
            row["timeline"] = middle["timeline"] if middle else None
            rows.append(row)
    return {
        "rows": rows,
        "runs": [
            {"scenario": scenario_json(scenario), "client": client, "rep": rep + 1, **result}
            for (scenario, client), results in runs.items()
            for rep, result in enumerate(results)
        ],
    }


def scenario_json(scenario: RateScenario) -> dict[str, Any]:
    """A rate-limited variant as plain JSON, with its ideal wall time."""
    return {**scenario._asdict(), "ideal": scenario.ideal}

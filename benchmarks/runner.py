"""Run every client through every scenario, several times, interleaved; keep medians.

The server runs in its own process pinned to one CPU and each client process to another,
so the two sides never share a core. Repetitions are interleaved (all scenarios and
clients once, then again) so that a slow minute on a shared machine costs every client
alike, and ratios are taken within one repetition before their median is taken.
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

CLIENTS = ("sdk", "sdk-get_many", "httpx", "httpx-aiohttp", "aiohttp", "inkit")
LABELS = {
    "sdk": "inkit-async (defaults)",
    "sdk-get_many": "inkit-async `get_many`",
    "httpx": "raw httpx",
    "httpx-aiohttp": "httpx + aiohttp transport",
    "aiohttp": "raw aiohttp",
    "inkit": "official `inkit` SDK (threads)",
}
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


def available(client: str) -> bool:
    """Whether a client's library imports here (the official SDK fails on 3.12+)."""
    module = {"sdk": "inkit_async", "sdk-get_many": "inkit_async", "httpx-aiohttp": "httpx_aiohttp"}
    probe = subprocess.run(
        [sys.executable, "-c", f"import {module.get(client, client)}"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@contextlib.contextmanager
def server(latency_ms: int) -> Iterator[str]:
    """Start the loopback server on a CPU of its own; yield its base URL; stop it."""
    with subprocess.Popen(
        [sys.executable, "-m", "benchmarks.server", "--latency-ms", str(latency_ms)],
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
    """The official SDK is synchronous: it has no 10,000-way gather."""
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
            for base in ("aiohttp", "httpx", "httpx-aiohttp", "inkit"):
                ratios = [
                    mine["rate"] / theirs["rate"]
                    for mine, theirs in zip(results, runs.get((scenario, base), []), strict=False)
                    if "rate" in mine and "rate" in theirs
                ]
                row[f"vs_{base}"] = statistics.median(ratios) if ratios else None
            rows.append(row)
    return rows

"""Run every client through every scenario, several times, interleaved; keep medians.

The server runs in its own process pinned to one CPU and each client process to another,
so the two sides never share a core. Repetitions are interleaved (all scenarios and
clients once, then again) so that a slow minute on a shared machine costs every client
alike, and ratios are taken within one repetition before their median is taken.

Beside the plain scenarios, C=100 at 0 ms also runs on uvloop's event loop (the SDK,
``get_many`` and raw aiohttp) and over TLS (the SDK, ``get_many``, raw aiohttp, raw httpx
and httpx-aiohttp, against the same server's HTTPS port, whose CA it makes at start);
their ratios compare clients on the same loop or over the same TLS endpoint, in the same
repetition. The SDK's flow control and OpenTelemetry rows (``sdk-nothrottle``,
``sdk-otel-off``, ``sdk-otel-on``) run at plain C=100, 0 ms only, and their cost is
their ratio to the SDK with its defaults in the same repetition. ``SUBSETS`` name parts
of this plan (``--only tls``, ...).

The rate-limited scenario (``run_rate_limits``) runs the same way against a server that
enforces a per-token rate: every client once per variant (429 without ``Retry-After``,
and with one), then again, a fresh server per variant and repetition.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

CLIENTS = (
    "sdk",
    "sdk-nothrottle",
    "sdk-otel-off",
    "sdk-otel-on",
    "sdk-get_many",
    "httpx",
    "httpx-aiohttp",
    "aiohttp",
    "inkit",
)
LABELS = {
    "sdk": "inkit-async (defaults)",
    "sdk-nothrottle": "inkit-async (`throttle=False`)",
    "sdk-otel-off": "inkit-async, opentelemetry-api without a provider",
    "sdk-otel-on": "inkit-async, traces and metrics to an SDK provider",
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
# The healthy-server clients that run in one scenario only: C=100 at 0 ms, asyncio's
# loop, plain HTTP. Each is the SDK with one thing changed; its row is that thing's cost.
ONLY_AT_C100 = frozenset({"sdk-nothrottle", "sdk-otel-off", "sdk-otel-on"})
#: The clients of the uvloop scenario, and of the TLS one.
UVLOOP_CLIENTS = frozenset({"sdk", "sdk-get_many", "aiohttp"})
TLS_CLIENTS = frozenset({"sdk", "sdk-get_many", "aiohttp", "httpx", "httpx-aiohttp"})
#: What each same-repetition ratio of a row is taken against (``vs_<base>``), beside
#: the plain-scenario ratio ``vs_plain`` (the same client on asyncio's loop, over HTTP).
RATIO_BASES = ("aiohttp", "httpx", "httpx-aiohttp", "inkit", "sdk", "sdk-nothrottle")
#: The figures kept for every repetition of a row (``per_rep``), beside the medians.
PER_REP = ("rate", "cpu_per_lookup_us", "loop_lag", "rss_growth", "server_cpu_share", "errors")
#: And the CPU-per-lookup ratios (``cpu_vs_<base>``): what switching one thing on costs.
CPU_BASES = ("sdk", "sdk-nothrottle")
ROOT = Path(__file__).resolve().parent.parent  # where `python -m benchmarks.*` resolves
# A run that takes longer than this is reported as a timeout, not waited for.
RUN_TIMEOUT = 300.0


class Scenario(NamedTuple):
    """One load shape: *concurrency* workers (0: one gathered task per id) over *n* ids.

    *loop* is the clients' event loop (``asyncio`` or ``uvloop``); with *tls* they talk
    HTTPS to the server's TLS port.
    """

    name: str
    latency_ms: int
    n: int
    concurrency: int
    loop: str = "asyncio"
    tls: bool = False

    @property
    def gather(self) -> bool:
        """Whether this is the every-id-at-once case."""
        return self.concurrency == 0

    @property
    def plain(self) -> bool:
        """Whether this runs on asyncio's own loop over plain HTTP."""
        return self.loop == "asyncio" and not self.tls


def scenarios(scale: float) -> list[Scenario]:
    """The scenarios, with *n* scaled down for a quick run.

    With 50 ms latency every lookup waits 50 ms, so N only sets the run's length: C=1 and
    C=10 there use 100 and 1,000 ids (5 s each) instead of 5,000 (250 s and 25 s).
    """
    shapes: list[tuple[str, int, int, int, dict[str, Any]]] = [
        ("C=1", 0, 5000, 1, {}),
        ("C=10", 0, 5000, 10, {}),
        ("C=100", 0, 5000, 100, {}),
        ("C=100, uvloop", 0, 5000, 100, {"loop": "uvloop"}),
        ("C=100, TLS", 0, 5000, 100, {"tls": True}),
        ("gather", 0, 10_000, 0, {}),
        ("C=1", 50, 100, 1, {}),
        ("C=10", 50, 1000, 10, {}),
        ("C=100", 50, 5000, 100, {}),
        ("gather", 50, 10_000, 0, {}),
    ]
    plan = []
    for name, latency, n, concurrency, variant in shapes:
        scaled = max(int(n * scale), 10)
        plan.append(
            Scenario(
                f"{scaled:,}-way gather" if name == "gather" else name,
                latency,
                scaled,
                concurrency,
                **variant,
            )
        )
    return plan


def plain_of(scenario: Scenario, plan: list[Scenario]) -> Scenario | None:
    """The plain scenario of *scenario*'s shape (asyncio, HTTP) in *plan*, if any."""
    if scenario.plain:
        return None
    return next(
        (
            s
            for s in plan
            if s.plain
            and (s.latency_ms, s.n, s.concurrency)
            == (scenario.latency_ms, scenario.n, scenario.concurrency)
        ),
        None,
    )


def _at_c100(scenario: Scenario) -> bool:
    return scenario.concurrency == 100 and scenario.latency_ms == 0


#: Parts of the healthy-server plan, by name (``python -m benchmarks --only NAME``): which
#: (scenario, client) runs each takes. The uvloop part includes its clients on asyncio's
#: loop too, since its comparison is with them.
SUBSETS: dict[str, Callable[[Scenario, str], bool]] = {
    "c100": lambda s, _client: _at_c100(s),
    "uvloop": lambda s, client: _at_c100(s) and not s.tls and client in UVLOOP_CLIENTS,
    "tls": lambda s, _client: s.tls,
    "tracing": lambda s, client: (
        _at_c100(s) and s.plain and client in {"sdk", "sdk-otel-off", "sdk-otel-on"}
    ),
}


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


@functools.cache
def imports(module: str) -> bool:
    """Whether *module* imports here, in a fresh interpreter."""
    probe = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, check=False
    )
    return probe.returncode == 0


def available(client: str) -> bool:
    """Whether a client's library imports here (the official SDK fails on 3.12+)."""
    module = {
        "sdk": "inkit_async",
        "sdk-nothrottle": "inkit_async",
        "sdk-otel-off": "inkit_async, opentelemetry.trace",
        "sdk-otel-on": "inkit_async, opentelemetry.sdk.trace, opentelemetry.sdk.metrics",
        "sdk-get_many": "inkit_async",
        "sdk-get_many-nothrottle": "inkit_async",
        "httpx-aiohttp": "httpx_aiohttp",
        "aiohttp-naive": "aiohttp",
        "httpx-naive": "httpx",
    }
    return imports(module.get(client, client))


def usable(scenario: Scenario) -> bool:
    """Whether a scenario can run here: uvloop for its loop, trustme for its server's CA."""
    if scenario.loop != "asyncio" and not imports(scenario.loop):
        return False
    return not (scenario.tls and not imports("trustme"))


class Endpoints(NamedTuple):
    """Where a running bench server answers: its base URLs, and the CA of its HTTPS one."""

    http: str
    https: str | None = None
    ca: str | None = None


@contextlib.contextmanager
def endpoints(
    latency_ms: int, limit: RateScenario | None = None, *, tls: bool = False
) -> Iterator[Endpoints]:
    """Start the loopback server on a CPU of its own; yield where it answers; stop it.

    With *limit*, the server enforces that scenario's rate, burst and Retry-After; with
    *tls* it also serves HTTPS, with a certificate from a CA it makes at start.
    """
    command = [sys.executable, "-m", "benchmarks.server", "--latency-ms", str(latency_ms)]
    if limit is not None:
        command += ["--rate", str(limit.rate), "--burst", str(limit.burst)]
        if limit.retry_after is not None:
            command += ["--retry-after", str(limit.retry_after)]
    if tls:
        command.append("--tls")
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
        found = Endpoints(f"http://127.0.0.1:{port}/v1")
        if tls:
            secure, ca = process.stdout.readline().split(maxsplit=1)
            found = found._replace(https=f"https://127.0.0.1:{int(secure)}/v1", ca=ca.strip())
        yield found


@contextlib.contextmanager
def server(latency_ms: int, limit: RateScenario | None = None) -> Iterator[str]:
    """Start the loopback server (plain HTTP only); yield its base URL; stop it."""
    with endpoints(latency_ms, limit) as found:
        yield found.http


def pin(pid: int, side: int) -> None:
    """Keep a process on the first (*side* 0) or second (1) CPU we may use, if there are two."""
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > 1:
            os.sched_setaffinity(pid, {cpus[side]})


def run_one(client: str, scenario: Scenario, where: Endpoints | str) -> dict[str, Any]:
    """One client process through one scenario; its figures, or why there are none."""
    if isinstance(where, str):
        where = Endpoints(where)
    if client == "sdk-get_many":
        mode = "get_many"
    elif scenario.gather:
        mode = "gather"
    else:
        mode = "workers"
    spec: dict[str, Any] = {
        "client": client,
        "base_url": where.http,
        "n": scenario.n,
        "concurrency": scenario.concurrency,
        "mode": mode,
    }
    if scenario.loop != "asyncio":
        spec["loop"] = scenario.loop
    if scenario.tls:
        assert where.https is not None, "a TLS scenario needs a server started with tls=True"
        spec.update(base_url=where.https, ca=where.ca, stats_url=where.http)
    result = run_worker(spec)
    if "failed" not in result and result.get("loop", scenario.loop) != scenario.loop:
        return {"failed": f"ran on {result['loop']}, not {scenario.loop}"}
    return result


def run_worker(
    spec: dict[str, Any],
    *,
    command: tuple[str, ...] = ("benchmarks.worker",),
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Start the worker process (``python -m`` *command*) for *spec*; its figures, or why none."""
    with subprocess.Popen(
        [sys.executable, "-m", *command, json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    ) as process:
        pin(process.pid, 1)
        try:
            stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return {"failed": f"took over {RUN_TIMEOUT:.0f} s"}
    if process.returncode != 0:
        return {"failed": failure_of(stderr), "stderr": stderr[-4000:]}
    return dict(json.loads(stdout))


def failure_of(stderr: str) -> str:
    """The line of a worker's stderr that says why it failed: its exception, if it shows.

    Warnings printed at exit (an unclosed session, say) come after the traceback.
    """
    lines = stderr.strip().splitlines()
    for line in reversed(lines):
        name = line.split(":", 1)[0]
        if (
            name
            and not line[0].isspace()
            and name.replace(".", "").isidentifier()
            and name.endswith(("Error", "Exception", "Exit", "Interrupt"))
        ):
            return line
    return lines[-1] if lines else "no output"


def applies(client: str, scenario: Scenario) -> bool:
    """Whether *client* runs in *scenario*.

    The official SDK is synchronous: it has no 10,000-way gather, and no uvloop or TLS
    row. The SDK with ``throttle=False``, and with OpenTelemetry, runs at plain C=100,
    0 ms only: beside the defaults, it shows what that costs on a healthy server. The
    uvloop and TLS scenarios run their own clients only.
    """
    if scenario.tls:
        return client in TLS_CLIENTS
    if scenario.loop != "asyncio":
        return client in UVLOOP_CLIENTS
    if client in ONLY_AT_C100:
        return scenario.concurrency == 100 and scenario.latency_ms == 0
    return not (client == "inkit" and scenario.gather)


def run_all(
    reps: int,
    scale: float,
    clients: list[str],
    log: Any,
    select: Callable[[Scenario, str], bool] | None = None,
) -> list[dict[str, Any]]:
    """Every scenario x client, *reps* times, interleaved; one row per scenario x client.

    *select* keeps only the (scenario, client) pairs it accepts (a ``SUBSETS`` entry). A
    scenario whose loop or CA maker does not import here is skipped, and said so.
    """
    plan = []
    for scenario in scenarios(scale):
        if not usable(scenario):
            log(f"skipping {scenario.latency_ms} ms {scenario.name}: uvloop or trustme missing")
        else:
            plan.append(scenario)
    pairs = [
        (scenario, client)
        for scenario in plan
        for client in clients
        if applies(client, scenario) and (select is None or select(scenario, client))
    ]
    runs: dict[tuple[Scenario, str], list[dict[str, Any]]] = {}
    for rep in range(reps):
        for latency in sorted({s.latency_ms for s, _ in pairs}):
            here = [(s, c) for s, c in pairs if s.latency_ms == latency]
            with endpoints(latency, tls=any(s.tls for s, _ in here)) as where:
                for scenario, client in here:
                    result = run_one(client, scenario, where)
                    runs.setdefault((scenario, client), []).append(result)
                    # One line per run; a failure's with the end of the worker's stderr.
                    tail = "\n  ".join(result.get("stderr", "").strip().splitlines()[-12:])
                    log(
                        f"rep {rep + 1}/{reps} {latency} ms {scenario.name} {client}: "
                        f"{result.get('rate', 0):,.0f}/s {result.get('failed', '')}"
                        + (f"\n  {tail}" if tail else "")
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
            # Each repetition's own figures, in order, so any ratio can be re-taken per run.
            row["per_rep"] = [
                {key: r.get(key) for key in PER_REP}
                if "failed" not in r
                else {"failed": r["failed"]}
                for r in results
            ]
            if any("spans" in r for r in ok):
                row["spans"] = statistics.median(r["spans"] for r in ok if "spans" in r)
            for base in RATIO_BASES:
                row[f"vs_{base}"] = paired(results, runs.get((scenario, base), []), "rate")
            # The same client on asyncio's loop over plain HTTP: what uvloop or TLS changes.
            plain = plain_of(scenario, plan)
            row["vs_plain"] = paired(results, runs.get((plain, client), []), "rate")
            # What switching one thing on costs in CPU (lower is cheaper), also paired.
            for base in CPU_BASES:
                row[f"cpu_vs_{base}"] = paired(
                    results, runs.get((scenario, base), []), "cpu_per_lookup_us"
                )
            # The ratio to raw aiohttp here, over the same ratio in the plain scenario, per
            # repetition: above 1, the client is nearer raw aiohttp on this loop (or over
            # this TLS endpoint) than on asyncio's loop over plain HTTP.
            if plain is not None:
                quotients = [
                    (mine["rate"] / raw["rate"]) / (base["rate"] / base_raw["rate"])
                    for mine, raw, base, base_raw in zip(
                        results,
                        runs.get((scenario, "aiohttp"), []),
                        runs.get((plain, client), []),
                        runs.get((plain, "aiohttp"), []),
                        strict=False,
                    )
                    if all("rate" in r for r in (mine, raw, base, base_raw))
                ]
                row["vs_aiohttp_vs_plain"] = statistics.median(quotients) if quotients else None
            rows.append(row)
    return rows


def paired(mine: list[dict[str, Any]], theirs: list[dict[str, Any]], key: str) -> float | None:
    """The median over repetitions of ``mine[key] / theirs[key]``, each in one repetition."""
    ratios = [
        a[key] / b[key] for a, b in zip(mine, theirs, strict=False) if "rate" in a and "rate" in b
    ]
    return statistics.median(ratios) if ratios else None


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
    "reach_s",
)

#: What share of the server's rate a second must let through to count as reaching it.
REACH_SHARE = 0.9


def reach_seconds(timeline: dict[str, Any], rate: float) -> float | None:
    """Seconds from the first 429 until a whole second lets through 90% of *rate*.

    From the server's timeline: the start of the first one-second window (of its 100 ms
    buckets), at or after the bucket of the first 429, in which the server let through
    at least ``REACH_SHARE`` of its rate; ``None`` when no 429 came or no window did.
    """
    width = timeline["bucket_s"]
    let_through = [
        sent - refused
        for sent, refused in zip(timeline["requests"], timeline["refused"], strict=True)
    ]
    first = next((index for index, refused in enumerate(timeline["refused"]) if refused), None)
    if first is None:
        return None
    span = round(1.0 / width)
    for start in range(first, len(let_through) - span + 1):
        if sum(let_through[start : start + span]) >= REACH_SHARE * rate:
            return (start - first) * width
    return None


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
        reach_s=reach_seconds(result["timeline"], scenario.rate),
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
                            f"{result['errors']:,} failed {result.get('error_kinds') or ''}, "
                            f"{result['requests_per_lookup']:.2f} requests/lookup, "
                            f"{result['wall']:.1f} s ({result['wall_vs_ideal']:.2f}x ideal), "
                            f"90% of the limit {reach(result['reach_s'])} after the first 429"
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


def reach(seconds: float | None) -> str:
    """A ``reach_s`` figure as words."""
    return "never" if seconds is None else f"{seconds:.1f} s"


def scenario_json(scenario: RateScenario) -> dict[str, Any]:
    """A rate-limited variant as plain JSON, with its ideal wall time."""
    return {**scenario._asdict(), "ideal": scenario.ideal}

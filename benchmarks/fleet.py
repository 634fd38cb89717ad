"""``python -m benchmarks.fleet``: many worker processes on one token, local throttles or Redis.

Four worker processes share one API token against one server that allows that token 200
requests/s (bucket 20), the loopback server of the other benchmarks (``--rate``). Each
worker does 1,000 lookups through ``get_many(..., return_exceptions=True)`` with the
SDK's defaults, either with its own ``Throttle`` (what four processes get today) or with
a ``RedisThrottle`` on a real redis-server (``tests/support/redis_server.py`` starts one, on a
free port, persistence off). The runs:

- ``no Retry-After`` and ``Retry-After: 1`` (on every 429): local against Redis;
- ``rate_limit=190`` in every worker: four local throttles send 760/s, the fleet 190/s;
- ``Redis killed``: Redis is killed 3 s into the run and started again (empty) 3 s later;
- ``cost``: one process, C=100, a healthy server: ``Throttle`` against ``RedisThrottle``
  (lookups/s, interleaved repetitions), the price of being in a fleet when nothing limits.

It writes ``docs/workers.json`` (every figure), ``docs/workers.png`` (the chart on the
"Running many workers" page) and that page's results table, and prints each target with
its measured figure. Options:
``--reps N`` (fleet runs, default 1), ``--cost-reps N`` (default 8), ``--quick`` (a tenth
of the lookups: a smoke run), ``--out DIR`` (default ``docs/``). About 5 minutes.

``python -m benchmarks.fleet worker SPEC`` is one worker (SPEC is JSON; see ``worker``);
the fleet tests start the same workers.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .report import write_page
from .runner import ROOT, pin
from .worker import server_stats

if TYPE_CHECKING:
    from collections.abc import Iterator

TOKEN = "bench-fleet-token"  # noqa: S105 - the loopback server only counts it
WORKERS = 4
LOOKUPS = 1000
RATE = 200.0
BURST = 20
KNOWN_LIMIT = 190.0
#: Seconds into the run when Redis is killed, and how long it stays down.
KILL_AT = 3.0
DOWN_FOR = 3.0
#: The targets, from the issue.
MAX_REQUESTS = 1.15  # requests sent per lookup, defaults
MAX_WALL = 1.3  # wall time per ideal (N / rate), defaults
MAX_REQUESTS_KNOWN = 1.03  # with rate_limit=190
MAX_WALL_KNOWN = 1.2  # per N / 190
MAX_WALL_KILLED = 2.0  # per ideal, Redis killed and restarted
MAX_COST = 0.10  # RedisThrottle's throughput may be this much below Throttle's


# --- one worker ------------------------------------------------------------------------


class _Warnings(logging.Handler):
    """Counts the WARNING records of the ``inkit_async`` logger."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:  # noqa: ARG002
        self.count += 1


async def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one worker's lookups and return its figures.

    SPEC keys: ``base_url``, ``token``, ``n`` (lookups), ``prefix`` (of the ids:
    ``<prefix><k>``), ``redis_url`` (``None``: a local ``Throttle``), ``rate_limit``,
    ``max_in_flight``, ``lease_ttl``, ``max_concurrency`` (default 100), ``max_retries``
    (default: the client's). Once its client
    is made (and its ``RedisThrottle`` has joined, or 2 s have passed) the worker prints
    ``ready`` and waits for a line on stdin, so that the workers of a run start together.
    """
    from inkit_async import AsyncInkit, Throttle  # noqa: PLC0415 - after the spec is read
    from inkit_async.redis import RedisThrottle  # noqa: PLC0415

    warnings = _Warnings()
    logging.getLogger("inkit_async").addHandler(warnings)
    redis_url = spec.get("redis_url")
    options: dict[str, Any] = {"rate_limit": spec.get("rate_limit")}
    throttle: Throttle
    if redis_url is None:
        throttle = Throttle(**options)
    else:
        for name in ("max_in_flight", "lease_ttl"):
            if spec.get(name) is not None:
                options[name] = spec[name]
        throttle = RedisThrottle.from_url(redis_url, **options)
    ids = [f"{spec['prefix']}{k}" for k in range(spec["n"])]
    async with AsyncInkit(
        spec["token"],
        base_url=spec["base_url"],
        throttle=throttle,
        max_concurrency=spec.get("max_concurrency", 100),
        **({"max_retries": spec["max_retries"]} if spec.get("max_retries") is not None else {}),
    ) as client:
        if isinstance(throttle, RedisThrottle):
            deadline = time.monotonic() + 2
            while not throttle.fleet.connected and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        started = time.time()
        clock = time.perf_counter()
        results = await client.batch.get_many(ids, return_exceptions=True)
        wall = time.perf_counter() - clock
        errors = collections.Counter(
            type(result).__name__ for result in results if isinstance(result, BaseException)
        )
        state = throttle.state
        figures: dict[str, Any] = {
            "ok": len(ids) - sum(errors.values()),
            "failed": sum(errors.values()),
            "errors": dict(errors),
            "wall": wall,
            "started": started,
            "rate": len(ids) / wall,
            "throttled": state.throttled,
            "cuts": state.cuts,
            "pauses": state.pauses,
        }
        if isinstance(throttle, RedisThrottle):
            fleet = throttle.fleet
            figures |= {"outages": fleet.outages, "connected": fleet.connected}
            await throttle.aclose()
    figures["warnings"] = warnings.count
    return figures


def worker_command(spec: dict[str, Any]) -> list[str]:
    """The command line of one worker process."""
    return [sys.executable, "-m", "benchmarks.fleet", "worker", json.dumps(spec)]


async def start_workers(
    specs: list[dict[str, Any]], within: float = 60, pin_to: int | None = None
) -> list[asyncio.subprocess.Process]:
    """Start one worker process per spec (from the repository root); once all are ready, go.

    *pin_to* keeps them on the first (0) or second (1) CPU, if there are two.
    """
    processes = [
        await asyncio.create_subprocess_exec(
            *worker_command(spec),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for spec in specs
    ]
    for process in processes:
        if pin_to is not None:
            pin(process.pid, pin_to)
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), within)
        if line.strip() != b"ready":
            for other in processes:
                with contextlib.suppress(ProcessLookupError):
                    other.kill()
            raise RuntimeError(f"a worker did not start: {line!r}")
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()
    return processes


async def finish(process: asyncio.subprocess.Process, within: float = 120) -> dict[str, Any]:
    """The figures a worker printed, once it has ended (``{"exit": code}`` if it died)."""
    out, _ = await asyncio.wait_for(process.communicate(), within)
    lines = out.decode().strip().splitlines()
    if process.returncode != 0 or not lines:
        return {"exit": process.returncode}
    return dict(json.loads(lines[-1]))


# --- the runs --------------------------------------------------------------------------


def fleet_specs(
    base_url: str,
    redis_url: str | None,
    n: int,
    *,
    token: str = TOKEN,
    workers: int = WORKERS,
    **options: Any,
) -> list[dict[str, Any]]:
    """The specs of one run's workers: ids ``rb_w<worker>_<k>``."""
    return [
        {
            "base_url": base_url,
            "token": token,
            "n": n,
            "prefix": f"rb_w{index}_",
            "redis_url": redis_url,
            **options,
        }
        for index in range(workers)
    ]


async def fleet_run(
    base_url: str,
    redis: Any,  # tests.support.redis_server.RedisServer, imported lazily
    *,
    use_redis: bool,
    n: int,
    rate_limit: float | None = None,
    kill: bool = False,
) -> dict[str, Any]:
    """One run: four workers at once; the server's counts and each worker's figures."""
    server_stats(base_url, "reset")
    specs = fleet_specs(base_url, redis.url if use_redis else None, n, rate_limit=rate_limit)
    processes = await start_workers(specs)
    if kill:
        await asyncio.sleep(KILL_AT)
        redis.kill()
        await asyncio.sleep(DOWN_FOR)
        redis.start()
    workers = [await finish(process) for process in processes]
    stats = server_stats(base_url, "timeline")
    timeline = stats.pop("timeline")
    lookups = n * WORKERS
    walls = [w.get("wall", 0.0) for w in workers]
    starts = [w.get("started", 0.0) for w in workers]
    span = max(s + w for s, w in zip(starts, walls, strict=True)) - min(starts)
    return {
        "lookups": lookups,
        "failed": sum(w.get("failed", w.get("n", 0)) for w in workers),
        "requests": stats["requests"],
        "refused": stats["refused"],
        "requests_per_lookup": stats["requests"] / lookups,
        "wall": span,
        "slowest_worker": max(walls),
        "goodput": lookups / span,
        "workers": workers,
        "timeline": timeline,
    }


def kinds(quick: bool) -> list[dict[str, Any]]:  # noqa: FBT001 - a flag of the command
    """The fleet runs: name, variant (Retry-After), client, options."""
    n = LOOKUPS // 10 if quick else LOOKUPS
    plan: list[dict[str, Any]] = [
        {"retry_after": retry_after, "use_redis": use_redis, "n": n}
        for retry_after in (None, 1.0)
        for use_redis in (False, True)
    ]
    plan += [
        {"retry_after": None, "use_redis": use_redis, "n": n, "rate_limit": KNOWN_LIMIT}
        for use_redis in (False, True)
    ]
    plan.append({"retry_after": None, "use_redis": True, "n": n, "kill": True})
    return plan


def label(run: dict[str, Any]) -> str:
    """A run's name in the tables and the chart."""
    who = "RedisThrottle" if run["use_redis"] else "4 local throttles"
    if run.get("kill"):
        return f"{who}, Redis killed at 3 s for 3 s"
    if run.get("rate_limit"):
        return f"{who}, rate_limit=190"
    return f"{who}, {'Retry-After: 1' if run['retry_after'] else 'no Retry-After'}"


@contextlib.contextmanager
def loopback_server(
    *, rate: float | None = None, retry_after: float | None = None, pin_to: int | None = None
) -> Iterator[str]:
    """The benchmarks' loopback server (``benchmarks/server.py``); yield its base URL.

    With *rate*, it allows each token that many requests/s, with a bucket of ``BURST``,
    and answers the rest 429 (with ``Retry-After: <retry_after>`` when given).
    """
    command = [sys.executable, "-m", "benchmarks.server", "--latency-ms", "0"]
    if rate is not None:
        command += ["--rate", str(rate), "--burst", str(BURST)]
        if retry_after is not None:
            command += ["--retry-after", str(retry_after)]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    ) as process:
        # Closing its stdin (when the block ends) is the server's signal to stop.
        assert process.stdout is not None
        if pin_to is not None:
            pin(process.pid, pin_to)
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"


async def run_fleet(reps: int, quick: bool, log: Any) -> list[dict[str, Any]]:  # noqa: FBT001
    """Every fleet run, *reps* times; each with its own server and a fresh Redis."""
    from tests.support.redis_server import RedisServer  # noqa: PLC0415 - the tests' helper

    rows = []
    for rep in range(reps):
        for run in kinds(quick):
            with (
                loopback_server(rate=RATE, retry_after=run["retry_after"]) as base_url,
                RedisServer() as redis,
            ):
                result = await fleet_run(
                    base_url,
                    redis,
                    use_redis=run["use_redis"],
                    n=run["n"],
                    rate_limit=run.get("rate_limit"),
                    kill=run.get("kill", False),
                )
            row = {**run, "label": label(run), "rep": rep, **result}
            rows.append(row)
            log(
                f"rep {rep + 1}/{reps} {row['label']}: {row['failed']} failed, "
                f"{row['requests_per_lookup']:.3f} requests/lookup, wall {row['wall']:.1f} s, "
                f"{row['goodput']:.0f} lookups/s"
            )
    return rows


async def cost_run(base_url: str, redis_url: str, n: int, reps: int) -> dict[str, Any]:
    """One process, C=100, healthy server: lookups/s with Throttle and with RedisThrottle.

    The worker runs on the second CPU (the server and Redis on the first); the two kinds
    alternate ABBA, so a slow stretch of the machine costs both alike.
    """
    rates: dict[str, list[float]] = {"local": [], "redis": []}
    for rep in range(reps):
        for kind in ("local", "redis") if rep % 2 == 0 else ("redis", "local"):
            spec = {
                "base_url": base_url,
                "token": TOKEN,
                "n": n,
                "prefix": "rb_c",
                "redis_url": redis_url if kind == "redis" else None,
            }
            [process] = await start_workers([spec], pin_to=1)
            figures = await finish(process)
            rates[kind].append(figures["rate"])
    ratios = [r / lo for r, lo in zip(rates["redis"], rates["local"], strict=True)]
    return {
        "local": statistics.median(rates["local"]),
        "redis": statistics.median(rates["redis"]),
        "ratio": statistics.median(ratios),
        "runs": rates,
    }


# --- the report ------------------------------------------------------------------------


def targets(rows: list[dict[str, Any]], cost: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Each target of the issue with what was measured: (target, measured, met)."""
    checks: list[tuple[str, str, bool]] = []

    def worst(**match: Any) -> dict[str, Any]:
        chosen = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
        return max(chosen, key=lambda r: (r["failed"], r["requests_per_lookup"], r["wall"]))

    def figures(row: dict[str, Any], ideal: float, per: str) -> str:
        return (
            f"{row['failed']} failed, {row['requests_per_lookup']:.3f} x N, "
            f"{row['wall'] / ideal:.2f} x {per} ({row['wall']:.1f} s)"
        )

    for retry_after in (None, 1.0):
        row = worst(use_redis=True, retry_after=retry_after, rate_limit=None, kill=None)
        ideal = row["lookups"] / RATE
        variant = "Retry-After: 1" if retry_after else "no Retry-After"
        target = (
            f"defaults, {variant}: 0 failed, requests <= {MAX_REQUESTS} x N, "
            f"wall <= {MAX_WALL} x ideal"
        )
        met = (
            row["failed"] == 0
            and row["requests_per_lookup"] <= MAX_REQUESTS
            and row["wall"] <= MAX_WALL * ideal
        )
        checks.append((target, figures(row, ideal, "ideal"), met))
    row = worst(use_redis=True, rate_limit=KNOWN_LIMIT)
    ideal = row["lookups"] / KNOWN_LIMIT
    target = (
        f"rate_limit=190 in every worker: 0 failed, requests <= {MAX_REQUESTS_KNOWN} x N, "
        f"wall <= {MAX_WALL_KNOWN} x N/190"
    )
    met = (
        row["failed"] == 0
        and row["requests_per_lookup"] <= MAX_REQUESTS_KNOWN
        and row["wall"] <= MAX_WALL_KNOWN * ideal
    )
    checks.append((target, figures(row, ideal, "N/190"), met))
    row = worst(use_redis=True, kill=True)
    ideal = row["lookups"] / RATE
    slowest = row["slowest_worker"]
    target = (
        f"Redis killed 3 s in, back 3 s later: 0 failed, every worker within "
        f"{MAX_WALL_KILLED} x ideal"
    )
    measured = (
        f"{row['failed']} failed, slowest worker {slowest / ideal:.2f} x ideal ({slowest:.1f} s)"
    )
    checks.append((target, measured, row["failed"] == 0 and slowest <= MAX_WALL_KILLED * ideal))
    target = f"C=100, healthy server: RedisThrottle at most {MAX_COST:.0%} below Throttle"
    measured = f"{cost['redis']:,.0f} vs {cost['local']:,.0f} lookups/s ({cost['ratio']:.3f} x)"
    checks.append((target, measured, cost["ratio"] >= 1 - MAX_COST))
    return checks


#: The part of docs/workers.md this bench writes.
START, END = "<!-- workers:start -->", "<!-- workers:end -->"


def markdown(
    rows: list[dict[str, Any]],
    cost: dict[str, Any],
    checks: list[tuple[str, str, bool]],
    meta: dict[str, Any],
) -> str:
    """The page's results: a row per run (the worst repetition), the cost, the targets."""
    lines = [
        (
            f"Measured {meta['date']} with `{meta['command']}` ({meta['reps']} repetitions of each "
            "run; each row shows the worst)."
        ),
        "",
        "| run | failed | requests per lookup | 429s | wall | x ideal | fleet goodput |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(row["label"] for row in rows):
        mine = [row for row in rows if row["label"] == name]
        worst = max(mine, key=lambda row: row["wall"])
        rate = KNOWN_LIMIT if worst.get("rate_limit") else RATE
        ideal = worst["lookups"] / rate
        per = "N/190" if worst.get("rate_limit") else "ideal"
        lines.append(
            f"| {name} | {sum(row['failed'] for row in mine)} "
            f"| {max(row['requests_per_lookup'] for row in mine):.3f} "
            f"| {max(row['refused'] for row in mine)} | {worst['wall']:.1f} s "
            f"| {worst['wall'] / ideal:.2f} x {per} | {worst['goodput']:.0f}/s |"
        )
    lines += [
        "",
        (
            "On a healthy server, one process at C=100: "
            f"`Throttle` {cost['local']:,.0f} lookups/s, "
            f"`RedisThrottle` {cost['redis']:,.0f} lookups/s "
            f"(medians of {len(cost['runs']['local'])} alternating runs each; "
            f"the median ratio {cost['ratio']:.3f})."
        ),
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    lines += [
        f"| {target} | {measured} | {'met' if met else '**not met**'} |"
        for target, measured, met in checks
    ]
    return "\n".join(lines)


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    """Fleet goodput per run (bars), and requests/s at the server over time for two runs."""
    import matplotlib as mpl  # noqa: PLC0415 - only the bench draws

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, (bars, lines) = plt.subplots(1, 2, figsize=(12, 4.6), width_ratios=[1, 1.2])
    names = list(dict.fromkeys(row["label"] for row in rows))
    goodput = [
        statistics.median(row["goodput"] for row in rows if row["label"] == name) for name in names
    ]
    colours = ["#1f77b4" if name.startswith("RedisThrottle") else "#bbbbbb" for name in names]
    bars.barh(range(len(names)), goodput, color=colours)
    bars.set_yticks(range(len(names)), names, fontsize=8)
    bars.invert_yaxis()
    bars.axvline(RATE, color="black", linestyle=":", linewidth=1)
    bars.set_xlabel("fleet goodput, lookups/s (dotted: the token's 200/s)")
    bars.set_title("4 workers x 1,000 lookups, one token at 200/s")
    for name, style in (
        ("4 local throttles, Retry-After: 1", "#999999"),
        ("RedisThrottle, Retry-After: 1", "#1f77b4"),
    ):
        row = next((r for r in rows if r["label"] == name), None)
        if row is None:
            continue
        timeline = row["timeline"]
        width = timeline["bucket_s"]
        xs = [index * width for index in range(len(timeline["requests"]))]
        lines.plot(
            xs, [c / width for c in timeline["requests"]], color=style, label=f"{name}: sent"
        )
        lines.plot(
            xs,
            [c / width for c in timeline["refused"]],
            color=style,
            linestyle="--",
            label=f"{name}: 429s",
        )
    lines.axhline(RATE, color="black", linestyle=":", linewidth=1)
    lines.set_xlabel("seconds into the run")
    lines.set_ylabel("requests/s at the server (100 ms bins)")
    lines.set_ylim(0, 1200)
    lines.legend(fontsize=7)
    lines.set_title("What the server saw, Retry-After: 1 on every 429")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


async def main_async(args: argparse.Namespace) -> None:
    """Run everything; write the JSON and the chart; print the targets."""
    from tests.support.redis_server import RedisServer  # noqa: PLC0415 - the tests' helper

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    rows = await run_fleet(args.reps, args.quick, log)
    n = 2000 if args.quick else 20000
    with loopback_server(pin_to=0) as base_url, RedisServer() as redis:
        assert redis.process is not None
        pin(redis.process.pid, 0)
        cost = await cost_run(base_url, redis.url, n, args.cost_reps)
    log(f"cost: Throttle {cost['local']:,.0f}/s, RedisThrottle {cost['redis']:,.0f}/s")
    checks = targets(rows, cost)
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "command": "python -m benchmarks.fleet" + (" --quick" if args.quick else ""),
        "workers": WORKERS,
        "rate": RATE,
        "burst": BURST,
        "reps": args.reps,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    summary = [{k: v for k, v in row.items() if k not in {"timeline", "workers"}} for row in rows]
    (args.out / "workers.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in checks],
                "cost": cost,
                "rows": summary,
                "runs": rows,
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    chart(rows, args.out / "workers.png")
    page = args.out / "workers.md"
    if not page.exists():
        page.write_text(f"# Running many workers\n\n{START}\n{END}\n", encoding="utf-8")
    write_page(page, markdown(rows, cost, checks, meta), START, END)
    for target, measured, met in checks:
        log(f"{'met    ' if met else 'NOT MET'}  {target}: {measured}")


def main() -> None:
    """``python -m benchmarks.fleet [--reps N] [--quick] [--out DIR]`` or ``worker SPEC``."""
    if sys.argv[1:2] == ["worker"]:
        print(json.dumps(asyncio.run(worker(json.loads(sys.argv[2])))), flush=True)
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--cost-reps", type=int, default=8)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

"""Fan-out shared between callers: 16 callers of one client, the same 500 ids.

``python -m benchmarks --only fanout [--reps N] [--out DIR]`` (or ``python -m
benchmarks.fanout``) runs, in this process against ``FakeInkit`` in process with 5 ms
latency (issue 25's scenario), each way of fanning out: a ``gather`` of ``get`` calls,
``get_many`` and ``iter_many``. 16 callers share one client; they start together, or
one every 0.5 ms (as the handlers of a dashboard many people open do). For each it
records the requests sent and each call's duration; the per-call p50 is compared with
``gather``'s of the same repetition, so a slow minute costs every way alike.

Then ``iter_many`` over 2,000 ids (10 ms latency) beside a task that takes 2 ms of every
loop iteration, left after 50 results: the requests sent when the first result came and
in all, and the time to the first result.

Targets (issue 25): at most 525 requests; per-call p50 within 1.2 x gather's; the
early ``break`` at most 200 requests in all. Each repetition starts with a warm-up call,
so the first request's one-time costs (imports, the pool) count for no way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inkit_async.testing import FakeInkit

if TYPE_CHECKING:
    from inkit_async import AsyncInkit

WAYS = ("gather", "get_many", "iter_many")
CALLERS = 16
IDS = 500
LATENCY = 0.005
GAPS = (0.0, 0.0005)
#: The targets, as (what, limit).
MOST_REQUESTS = 525
P50_RATIO = 1.2
MOST_AFTER_BREAK = 200


async def _one_call(client: AsyncInkit, way: str, ids: list[str]) -> None:
    if way == "gather":
        await asyncio.gather(*(client.batch.get(batch_id) for batch_id in ids))
    elif way == "get_many":
        await client.batch.get_many(ids)
    else:
        async for _ in client.batch.iter_many(ids):
            pass


async def callers(way: str, gap: float) -> dict[str, Any]:
    """16 callers of the same 500 ids: requests sent and each call's seconds."""
    fake = FakeInkit(latency=LATENCY)
    ids = [fake.add_batch() for _ in range(IDS)]
    async with fake.client() as client:
        await _one_call(client, way, ids[:100])  # warm-up: imports, the pool
        fake.requests.clear()

        async def caller(number: int) -> float:
            await asyncio.sleep(gap * number)
            started = time.perf_counter()
            await _one_call(client, way, ids)
            return time.perf_counter() - started

        seconds = await asyncio.gather(*(caller(number) for number in range(CALLERS)))
    return {"requests": len(fake.requests), "p50": statistics.median(seconds)}


async def _busy() -> None:
    while True:
        time.sleep(0.002)  # noqa: ASYNC251 - a task that holds the loop is the scenario
        await asyncio.sleep(0)


async def early_break(ids: int = 2000, take: int = 50) -> dict[str, Any]:
    """iter_many on a busy loop, left after *take* results."""
    fake = FakeInkit(latency=0.01)
    batch_ids = [fake.add_batch() for _ in range(ids)]
    async with fake.client() as client:
        await client.batch.get_many(batch_ids[:100])  # warm-up
        fake.requests.clear()
        busy = asyncio.create_task(_busy())
        started = time.perf_counter()
        first: float | None = None
        at_first = 0
        taken = 0
        async with contextlib.aclosing(client.batch.iter_many(batch_ids)) as results:
            async for _ in results:
                if first is None:
                    first, at_first = time.perf_counter() - started, len(fake.requests)
                taken += 1
                if taken == take:
                    break
        await asyncio.sleep(0.05)
        busy.cancel()
    return {"first_result_s": first, "sent_at_first": at_first, "sent": len(fake.requests)}


def run(reps: int, log: Any) -> dict[str, Any]:
    """Every scenario *reps* times, interleaved; medians and same-repetition ratios."""
    rows: dict[str, dict[str, list[float]]] = {}
    for rep in range(reps):
        for gap in GAPS:
            p50s: dict[str, float] = {}
            for way in WAYS:
                figures = asyncio.run(callers(way, gap))
                key = f"{way}, gap {gap * 1000:g} ms"
                row = rows.setdefault(key, {"requests": [], "p50": [], "p50_vs_gather": []})
                row["requests"].append(figures["requests"])
                row["p50"].append(figures["p50"])
                p50s[way] = figures["p50"]
                log(
                    f"fanout rep {rep + 1}: {key}: {figures['requests']} requests, "
                    f"p50 {figures['p50'] * 1000:.0f} ms"
                )
            for way in WAYS:
                rows[f"{way}, gap {gap * 1000:g} ms"]["p50_vs_gather"].append(
                    p50s[way] / p50s["gather"]
                )
    breaks = [asyncio.run(early_break()) for _ in range(reps)]
    summary = {
        key: {name: statistics.median(values) for name, values in row.items()}
        for key, row in rows.items()
    }
    return {
        "callers": CALLERS,
        "ids": IDS,
        "latency_ms": LATENCY * 1000,
        "reps": reps,
        "rows": summary,
        "per_rep": rows,
        "early_break": {
            "runs": breaks,
            "sent_max": max(run["sent"] for run in breaks),
            "first_result_s_median": statistics.median(
                run["first_result_s"] or 0.0 for run in breaks
            ),
        },
    }


def targets(figures: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each of the issue's targets."""
    checks = []
    for key, row in figures["rows"].items():
        if key.startswith("gather"):
            continue
        requests, ratio = row["requests"], row["p50_vs_gather"]
        checks.append(
            (
                f"16 callers x 500 ids via {key}: <= {MOST_REQUESTS} requests",
                f"{requests:.0f}",
                requests <= MOST_REQUESTS,
            )
        )
        checks.append(
            (
                f"16 callers x 500 ids via {key}: per-call p50 <= {P50_RATIO} x gather's",
                f"{ratio:.2f} x",
                ratio <= P50_RATIO,
            )
        )
    sent = figures["early_break"]["sent_max"]
    checks.append(
        (
            f"iter_many of 2,000 ids on a busy loop, break after 50: <= {MOST_AFTER_BREAK} sent",
            f"{sent} (worst of {figures['reps']})",
            sent <= MOST_AFTER_BREAK,
        )
    )
    return checks


def report(figures: dict[str, Any], out: Path | None, log: Any) -> None:
    """Write DIR/fanout.json when *out* is given; log the time to the first result."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "fanout.json").write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    first = figures["early_break"]["first_result_s_median"]
    log(f"fanout: iter_many's first result on the busy loop after {first * 1000:.0f} ms (median)")


def main() -> None:
    """``python -m benchmarks.fanout [--reps N] [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout", description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    figures = run(args.reps, log)
    report(figures, args.out, log)
    for target, measured, met in targets(figures):
        log(f"{'met    ' if met else 'NOT MET'}  {target}: {measured}")


if __name__ == "__main__":
    main()

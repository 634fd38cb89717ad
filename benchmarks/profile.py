"""Where a 10,000-id ``get_many`` spends its time, and what blocks the event loop.

``python -m benchmarks.profile [--ids 10000] [--latency-ms 0] [--loop uvloop] [--out DIR]``
starts the bench server (pinned to one CPU, this process to the other, as the bench does),
runs ``get_many`` once under pyinstrument and once without it, each with a 10 ms ticker
task and a garbage-collector callback beside it, and prints:

- the CPU time by package (each frame's own time, so the shares add up to 100%);
- from the run without the profiler, the ticker's five worst lateness figures (event-loop
  lag) and the five longest garbage-collection passes, with when they happened.

It also writes the profile table of DIR/performance.md (default docs/), between the
page's ``<!-- profile:start -->`` and ``<!-- profile:end -->`` markers: the CPU by group
(inkit-async, aiohttp, asyncio, ...) with each group's biggest parts, and one line on the
lag and the collections. ``--json`` prints the figures as JSON instead of writing the page
(``python -m benchmarks`` runs it so, and writes the page with the rest of its results).
As in the bench, the SDK runs as a default install does, without ``opentelemetry``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .runner import pin, server
from .worker import settle, ticker, without_opentelemetry

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyinstrument.frame import Frame

#: The sampling interval of the profiler, in seconds.
INTERVAL = 0.0002
#: The groups of the page's table, and what each one's code is.
GROUPS = {
    "inkit-async": "inkit-async itself",
    "aiohttp": "aiohttp (connection pool, HTTP parser, request writer)",
    "yarl": "yarl (aiohttp's URLs)",
    "multidict": "multidict (aiohttp's headers)",
    "httpx": "httpx",
    "asyncio": "asyncio (event loop, tasks, timers)",
    "built-ins": "built-ins (socket I/O, the JSON scanner, ...)",
    "stdlib": "the rest of the standard library",
    "the benchmark itself": "the benchmark itself (its 10 ms ticker)",
}
#: Parts shown per group in the page's table, and the smallest group shown on its own.
PARTS_SHOWN = 3
SMALLEST_GROUP = 0.005


def place_of(frame: Frame) -> tuple[str, str]:
    """The group and part of the code a frame runs: (``aiohttp``, ``client_reqrep``)."""
    path = frame.file_path or ""
    module = path.rsplit("/", 1)[-1].removesuffix(".py")
    if "inkit_async" in path:
        # cattrs' generated structuring code names the SDK's record in its "file name".
        return "inkit-async", "_converter (generated)" if path.startswith("<") else module
    if "site-packages/" in path:
        package, _, rest = path.split("site-packages/")[1].partition("/")
        return package, rest.removesuffix(".py") or package
    if "/asyncio/" in path:
        return "asyncio", module
    if not path or path.startswith("<built-in"):
        return "built-ins", frame.function
    if "/benchmarks/" in path:
        return "the benchmark itself", module
    return "stdlib", module.removeprefix("<frozen ").removesuffix(">")


def package_of(frame: Frame) -> str:
    """A short name for the code a frame runs: the package, or the SDK module."""
    group, part = place_of(frame)
    if group == "inkit-async":
        return f"inkit_async/{part}"
    if group == "built-ins":
        return "built-ins (socket I/O, ...)"
    if group == "stdlib":
        return f"stdlib {part}"
    return group


def own_time_by(root: Frame, key: Callable[[Frame], Any]) -> dict[Any, float]:
    """Sum every frame's own time under its *key*."""
    totals: dict[Any, float] = collections.defaultdict(float)
    stack: list[tuple[Frame, Frame | None]] = [(root, None)]
    while stack:
        frame, parent = stack.pop()
        own = frame.time - sum(child.time for child in frame.children)
        # pyinstrument shows self time as a synthetic "[self]" child: charge the parent.
        owner = parent if frame.function.startswith("[") and parent is not None else frame
        totals[key(owner)] += own
        stack.extend((child, frame) for child in frame.children)
    return totals


def own_time_by_package(root: Frame) -> dict[str, float]:
    """Sum every frame's own time under the name of its package."""
    return own_time_by(root, package_of)


def grouped(places: dict[tuple[str, str], float]) -> list[dict[str, Any]]:
    """The page's rows: each group's share of the CPU, with its biggest parts, largest first.

    Groups under ``SMALLEST_GROUP`` (other packages) are summed into one row.
    """
    total = sum(places.values()) or 1.0
    groups: dict[str, dict[str, float]] = collections.defaultdict(dict)
    for (group, part), seconds in places.items():
        groups[group][part] = groups[group].get(part, 0.0) + seconds / total
    rows = []
    others: dict[str, float] = {}
    for group, parts in groups.items():
        share = sum(parts.values())
        if group not in GROUPS and share < SMALLEST_GROUP:
            others[group] = share
            continue
        biggest = sorted(parts.items(), key=lambda item: item[1], reverse=True)[:PARTS_SHOWN]
        rows.append({"name": GROUPS.get(group, group), "share": share, "parts": biggest})
    rows.sort(key=lambda row: row["share"], reverse=True)
    if others:
        biggest = sorted(others.items(), key=lambda item: item[1], reverse=True)[:PARTS_SHOWN]
        rows.append({"name": "other packages", "share": sum(others.values()), "parts": biggest})
    return rows


async def measure(base_url: str, ids: int, *, profile: bool) -> dict[str, Any]:
    """One get_many with the ticker and the GC callback, under the profiler if *profile*.

    The profiler slows everything down, so lag and pauses come from a run without it.
    """
    from pyinstrument import Profiler  # noqa: PLC0415 - only the bench extra has it

    from inkit_async import AsyncInkit  # noqa: PLC0415

    lags: list[tuple[float, float]] = []
    pauses: list[tuple[float, float]] = []  # (duration, when), as the ticker's lags
    gc_started = [0.0]

    def on_gc(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - gc_started[0], gc_started[0]))

    stop = asyncio.Event()
    profiler = Profiler(interval=INTERVAL, async_mode="disabled") if profile else None
    async with AsyncInkit("bench-token", base_url=base_url) as client:
        await client.batch.get("warm-up")
        # Start from a settled process, as the bench's client processes do.
        settle()
        tick = asyncio.create_task(ticker(lags, stop))
        await asyncio.sleep(0.02)
        gc.callbacks.append(on_gc)
        began = time.perf_counter()
        if profiler:
            profiler.start()
        try:
            await client.batch.get_many([f"rb_{n:08d}" for n in range(ids)])
        finally:
            wall = time.perf_counter() - began
            if profiler:
                profiler.stop()
            gc.callbacks.remove(on_gc)
            stop.set()
            await tick
    session = profiler.last_session if profiler else None
    root = session.root_frame() if session else None
    return {
        "by_package": own_time_by_package(root) if root else {},
        "by_place": own_time_by(root, place_of) if root else {},
        # Times from the start of get_many.
        "lags": [(lag, at - began) for lag, at in lags],
        "pauses": [(pause, at - began) for pause, at in pauses],
        "wall": wall,
    }


def run_loop(loop: str, work: Any) -> dict[str, Any]:
    """Run *work* on asyncio's own loop or on uvloop's."""
    factory = None
    if loop == "uvloop":
        import uvloop  # noqa: PLC0415 - only for --loop uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return dict(runner.run(work))


def run(ids: int = 10_000, latency_ms: int = 0, loop: str = "asyncio") -> dict[str, Any]:
    """Both runs (plain, then profiled); their figures as plain JSON, for the page."""
    without_opentelemetry()  # as the bench's SDK rows: a default install
    pin(os.getpid(), 1)  # the server is on the other CPU
    with server(latency_ms) as base_url:
        # The plain run first: the profiler's own data would weigh on its collections.
        found = run_loop(loop, measure(base_url, ids, profile=False))
        profiled = run_loop(loop, measure(base_url, ids, profile=True))
    shares = profiled["by_package"]
    total = sum(shares.values()) or 1.0
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "command": " ".join(["python -m benchmarks.profile", *sys.argv[1:]]).replace(" --json", ""),
        "ids": ids,
        "latency_ms": latency_ms,
        "loop": loop,
        "interval_ms": INTERVAL * 1e3,
        "by_package": dict(sorted(((k, v / total) for k, v in shares.items()), key=_second)),
        "groups": grouped(profiled["by_place"]),
        "wall": found["wall"],
        "lags": sorted(found["lags"], reverse=True)[:5],
        "pauses": sorted(found["pauses"], reverse=True)[:5],
        "collections": len(found["pauses"]),
    }


def _second(item: tuple[str, float]) -> float:
    return -item[1]


def write(out: Path, figures: dict[str, Any]) -> Path:
    """Write the profile table into DIR/performance.md, between its profile markers.

    A page without them gets them at its end (a page that does not exist is created).
    """
    from . import report  # noqa: PLC0415 - the page's format

    page = out / "performance.md"
    if not page.exists():
        page.write_text("# Performance\n", encoding="utf-8")
    text = page.read_text(encoding="utf-8")
    if report.PROFILE_START not in text:
        block = f"\n## Where the time goes\n\n{report.PROFILE_START}\n{report.PROFILE_END}\n"
        page.write_text(text.rstrip("\n") + "\n" + block, encoding="utf-8")
    report.write_page(
        page, report.profile_markdown(figures), report.PROFILE_START, report.PROFILE_END
    )
    return page


def main() -> None:
    """Run the profile, print the three tables, and write the page's (or print JSON)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--ids", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args()
    figures = run(args.ids, args.latency_ms, args.loop)
    if args.json:
        print(json.dumps(figures))
        return
    shares = figures["by_package"]
    print(f"get_many over {args.ids:,} ids, {args.latency_ms} ms latency: CPU by package")
    for name in list(shares)[:12]:
        print(f"  {shares[name]:6.1%}  {name}")
    print(f"without the profiler ({figures['wall']:.2f} s):")
    print("worst event-loop lag (10 ms ticker)")
    for lag, at in figures["lags"]:
        print(f"  {lag * 1e3:6.1f} ms at {at:5.2f} s")
    print(f"longest garbage-collection passes ({figures['collections']} in all)")
    for pause, at in figures["pauses"]:
        print(f"  {pause * 1e3:6.1f} ms at {at:5.2f} s")
    print(f"wrote {write(args.out, figures)}")


if __name__ == "__main__":
    main()

"""Where a 10,000-id ``get_many`` spends its time, and what blocks the event loop.

``python -m benchmarks.profile [--ids 10000] [--latency-ms 0]`` starts the bench server,
runs ``get_many`` once under pyinstrument and once without it, each with a 10 ms ticker
task and a garbage-collector callback beside it, and prints:

- the CPU time by package (each frame's own time, so the shares add up to 100%);
- from the run without the profiler, the ticker's five worst lateness figures (event-loop
  lag) and the five longest garbage-collection passes, with when they happened.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import time
from typing import TYPE_CHECKING, Any

from .runner import server
from .worker import ticker

if TYPE_CHECKING:
    from pyinstrument.frame import Frame


def package_of(frame: Frame) -> str:
    """A short name for the code a frame runs: the package, or the SDK module."""
    path = frame.file_path or ""
    if "inkit_async" in path:
        return "inkit_async/" + path.rsplit("/", 1)[-1].removesuffix(".py")
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0]
    if "/asyncio/" in path:
        return "asyncio"
    if not path or path.startswith("<built-in"):
        return "built-ins (socket I/O, ...)"
    return "stdlib " + path.rsplit("/", 1)[-1].removesuffix(".py")


def own_time_by_package(root: Frame) -> dict[str, float]:
    """Sum every frame's own time under the name of its package."""
    totals: dict[str, float] = collections.defaultdict(float)
    stack: list[tuple[Frame, Frame | None]] = [(root, None)]
    while stack:
        frame, parent = stack.pop()
        own = frame.time - sum(child.time for child in frame.children)
        # pyinstrument shows self time as a synthetic "[self]" child: charge the parent.
        owner = parent if frame.function.startswith("[") and parent is not None else frame
        totals[package_of(owner)] += own
        stack.extend((child, frame) for child in frame.children)
    return totals


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
    profiler = Profiler(interval=0.0002, async_mode="disabled") if profile else None
    async with AsyncInkit("bench-token", base_url=base_url) as client:
        await client.batch.get("warm-up")
        # Start from a settled heap, as the bench's client processes do.
        gc.collect()
        tick = asyncio.create_task(ticker(lags, stop))
        await asyncio.sleep(0.02)
        gc.callbacks.append(on_gc)
        began = time.perf_counter()
        if profiler:
            profiler.start()
        try:
            await client.batch.get_many([f"rb_{n:08d}" for n in range(ids)])
        finally:
            if profiler:
                profiler.stop()
            gc.callbacks.remove(on_gc)
            stop.set()
            await tick
    session = profiler.last_session if profiler else None
    root = session.root_frame() if session else None
    return {
        "by_package": own_time_by_package(root) if root else {},
        # Times from the start of get_many.
        "lags": [(lag, at - began) for lag, at in lags],
        "pauses": [(pause, at - began) for pause, at in pauses],
    }


def main() -> None:
    """Run the profile and print the three tables."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--ids", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    with server(args.latency_ms) as base_url:
        # The plain run first: the profiler's own data would weigh on its collections.
        found = asyncio.run(measure(base_url, args.ids, profile=False))
        profiled = asyncio.run(measure(base_url, args.ids, profile=True))
    shares = profiled["by_package"]
    total = sum(shares.values())
    print(f"get_many over {args.ids:,} ids, {args.latency_ms} ms latency: CPU by package")
    for name in sorted(shares, key=shares.__getitem__, reverse=True)[:12]:
        print(f"  {shares[name] / total:6.1%}  {name}")
    print("without the profiler:")
    print("worst event-loop lag (10 ms ticker)")
    for lag, at in sorted(found["lags"], reverse=True)[:5]:
        print(f"  {lag * 1e3:6.1f} ms at {at:5.2f} s")
    print(f"longest garbage-collection passes ({len(found['pauses'])} in all)")
    for pause, at in sorted(found["pauses"], reverse=True)[:5]:
        print(f"  {pause * 1e3:6.1f} ms at {at:5.2f} s")


if __name__ == "__main__":
    main()

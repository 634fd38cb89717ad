"""``python -m benchmarks.downloads``: download rows, the SDK against raw aiohttp, same run.

Issue 26's targets, measured on loopback:

- ``many``: 1,000 downloads of 1 MiB at C=100 into a fresh directory: the SDK's
  ``download_many`` machinery (``Downloads.many``: atomic temporary file and rename per
  file, the engine's slots, throttle and retries) against raw aiohttp (one
  ``ClientSession`` over ``TCPConnector(limit=100)``, 100 workers, each answer's body
  read with ``iter_chunked(64 KiB)`` and written to its file as it comes). Throughput
  (MiB/s), the client process's RSS growth (peak during the run over its RSS after a
  warm-up download), and the longest event-loop stall a 5 ms ticker saw.
- ``big``: one 500 MiB download to a path: RSS growth.
- ``cancel``: the same download cancelled once half of it is on disk: what is left in
  the directory afterwards (nothing, is the target).

Until the resources are wired (``client.render.download_many``), the SDK rows bind the
machinery to ``/render/{id}/pdf`` as a resource does. Each run is a process of its own
pinned to the second CPU, the server (aiohttp.web, bodies from memory) to the first.
Repetitions are interleaved (SDK then aiohttp, then the other way round); the throughput ratio is
taken within each repetition and the median reported (so is the ratio of CPU time per
byte, which a loaded machine disturbs less). Options: ``--reps N`` (5),
``--n N`` (1,000), ``--size MiB`` (1), ``--big MiB`` (500), ``--out FILE`` (the JSON,
``docs/downloads.json``), ``--page FILE`` (the page whose ``downloads`` markers get the
table, ``docs/downloads.md``; ``--page ''``: none). About a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

from .report import machine, write_page
from .runner import ROOT, pin, run_worker

MIB = 1024 * 1024
START = "<!-- downloads:start -->"
END = "<!-- downloads:end -->"
TOKEN = "tok_bench"  # noqa: S105 - the loopback server checks nothing
PIECE = 64 * 1024


# -- the server ------------------------------------------------------------------------


def serve() -> None:
    """Serve ``/v1/render/{id}/pdf?size=N`` (N bytes, default 1 MiB); print the port."""
    from aiohttp import web  # noqa: PLC0415 - only the server process needs it

    block = bytes(range(256)) * (MIB // 256)

    async def pdf(request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("size", MIB))
        if size <= MIB:
            return web.Response(body=block[:size], content_type="application/pdf")
        response = web.StreamResponse(headers={"Content-Type": "application/pdf"})
        response.content_length = size
        await response.prepare(request)
        sent = 0
        with contextlib.suppress(ConnectionError):  # the cancel row hangs up half-way
            while sent < size:
                part = block[: min(MIB, size - sent)]
                await response.write(part)
                sent += len(part)
            await response.write_eof()
        return response

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/v1/render/{id}/pdf", pdf)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)  # the port the OS chose
        await asyncio.Event().wait()

    asyncio.run(main())


@contextlib.contextmanager
def server() -> Iterator[str]:
    """Start the server on the first CPU; yield its base URL; stop it."""
    with subprocess.Popen(
        [sys.executable, "-m", "benchmarks.downloads", "serve"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    ) as process:
        try:
            pin(process.pid, 0)
            assert process.stdout is not None
            port = int(process.stdout.readline())
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            process.terminate()
            process.wait(10)


# -- one run (a worker process) --------------------------------------------------------


def rss() -> int:
    """This process's resident set now, in bytes."""
    with open("/proc/self/statm", encoding="ascii") as statm:  # noqa: PTH123
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Watch:
    """Samples RSS (its peak) and the event loop's lateness every 5 ms while running."""

    def __init__(self) -> None:
        self.base = rss()
        self.peak = self.base
        self.cpu = time.process_time()
        self.lag = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(0.005)
            self.lag = max(self.lag, loop.time() - asked - 0.005)
            self.peak = max(self.peak, rss())

    def __enter__(self) -> Self:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, rss())
        self.cpu = time.process_time() - self.cpu


async def sdk_many(base_url: str, ids: list[str], size: int, folder: Path, width: int) -> None:
    """The SDK's fan-out of downloads into *folder*."""
    from inkit_async import AsyncInkit  # noqa: PLC0415 - imported in the worker only
    from inkit_async._download import Downloads  # noqa: PLC0415

    async with AsyncInkit(TOKEN, base_url=base_url, max_concurrency=width) as client:
        loads = Downloads(
            client._engine,  # noqa: SLF001 - bound as a resource binds it
            name="render",
            path=lambda segment: f"/render/{segment}/pdf?size={size}",
        )
        await loads.many(ids[:1], folder / "warm")  # connections, imports, caches
        shutil.rmtree(folder / "warm")
        with Watch() as watch:
            started = time.perf_counter()
            await loads.many(ids, folder)
            seconds = time.perf_counter() - started
    report(watch, seconds, len(ids) * size, folder)


async def aiohttp_many(base_url: str, ids: list[str], size: int, folder: Path, width: int) -> None:
    """Raw aiohttp: 100 workers, each body streamed to its file in 64 KiB pieces."""
    import aiohttp  # noqa: PLC0415

    headers = {"X-Inkit-API-Token": TOKEN, "Accept-Encoding": "identity"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=width)) as session:

        async def fetch(resource_id: str, into: Path) -> None:
            url = f"{base_url}/render/{resource_id}/pdf?size={size}"
            async with session.get(url, headers=headers) as response:
                response.raise_for_status()
                with (into / f"{resource_id}.pdf").open("wb") as file:
                    async for chunk in response.content.iter_chunked(PIECE):
                        file.write(chunk)

        async def run(keys: list[str], into: Path) -> None:
            queue = iter(keys)

            async def worker() -> None:
                for key in queue:
                    await fetch(key, into)

            await asyncio.gather(*(worker() for _ in range(min(width, len(keys)))))

        (folder / "warm").mkdir()
        await run(ids[:1], folder / "warm")
        shutil.rmtree(folder / "warm")
        with Watch() as watch:
            started = time.perf_counter()
            await run(ids, folder)
            seconds = time.perf_counter() - started
    report(watch, seconds, len(ids) * size, folder)


async def sdk_big(base_url: str, size: int, folder: Path, *, cancel: bool) -> None:
    """One big download to a path; with *cancel*, cancelled once half of it is on disk."""
    from inkit_async import AsyncInkit  # noqa: PLC0415
    from inkit_async._download import Downloads  # noqa: PLC0415

    async with AsyncInkit(TOKEN, base_url=base_url) as client:
        loads = Downloads(
            client._engine,  # noqa: SLF001 - bound as a resource binds it
            name="render",
            path=lambda segment: f"/render/{segment}/pdf?size={size}",
        )
        warm = Downloads(
            client._engine,  # noqa: SLF001 - bound as a resource binds it
            name="render",
            path=lambda segment: f"/render/{segment}/pdf?size=1000",
        )
        await warm.to_path("warm", folder / "warm.pdf")
        (folder / "warm.pdf").unlink()
        target = folder / "big.pdf"
        with Watch() as watch:
            started = time.perf_counter()
            task = asyncio.create_task(loads.to_path("big", target))
            if cancel:
                while not half_written(folder, size):
                    await asyncio.sleep(0.001)
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            seconds = time.perf_counter() - started
    if cancel:
        left = listing(folder)
        print(json.dumps({"left": left, "rss_growth_mb": (watch.peak - watch.base) / MIB}))
    else:
        report(watch, seconds, size, folder)


def half_written(folder: Path, size: int) -> bool:
    """Whether the big download's temporary file holds half of its *size* bytes yet."""
    return any(p.stat().st_size >= size // 2 for p in folder.glob(".big.pdf.*.part"))


def listing(folder: Path) -> list[str]:
    """Every name in *folder*, temporary files included."""
    return sorted(p.name for p in folder.iterdir())


def report(watch: Watch, seconds: float, size: int, folder: Path) -> None:
    """Print the run's figures as JSON, after checking every file is whole."""
    files = [p for p in folder.iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) == size, "a file is missing or short"
    print(
        json.dumps(
            {
                "seconds": seconds,
                "mib_s": size / MIB / seconds,
                "rss_growth_mb": (watch.peak - watch.base) / MIB,
                "loop_lag_ms": watch.lag * 1000,
                "cpu_s_per_gib": watch.cpu / (size / 1024**3),
                "files": len(files),
            }
        )
    )


def work(spec: dict[str, Any]) -> None:
    """One run, in this process: *spec* says which."""
    folder = Path(spec["directory"])
    folder.mkdir(parents=True, exist_ok=True)
    size = int(spec["size"])
    ids = [f"rend_{n:05d}" for n in range(int(spec.get("n", 1)))]
    kind = spec["kind"]
    if kind == "sdk":
        work_ = sdk_many(spec["base_url"], ids, size, folder, spec["concurrency"])
    elif kind == "aiohttp":
        work_ = aiohttp_many(spec["base_url"], ids, size, folder, spec["concurrency"])
    else:
        work_ = sdk_big(spec["base_url"], size, folder, cancel=kind == "cancel")
    asyncio.run(work_)


# -- the suite -------------------------------------------------------------------------


def measure(reps: int, n: int, size: int, big: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Every row, interleaved; the figures and the same-run ratios."""
    rows: dict[str, list[dict[str, Any]]] = {"sdk": [], "aiohttp": []}
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    with server() as base_url, tempfile.TemporaryDirectory(dir=ROOT) as scratch:
        for rep in range(reps):
            # Each goes first every other time: a machine whose load drifts favours neither.
            for kind in ("sdk", "aiohttp") if rep % 2 == 0 else ("aiohttp", "sdk"):
                folder = Path(scratch) / f"{kind}-{rep}"
                spec = {
                    "kind": kind,
                    "base_url": base_url,
                    "n": n,
                    "size": size,
                    "concurrency": 100,
                    "directory": str(folder),
                }
                result = run_worker(spec, command=("benchmarks.downloads", "worker"))
                shutil.rmtree(folder, ignore_errors=True)
                if "failed" in result:
                    raise SystemExit(f"{kind} failed: {result['failed']}\n{result.get('stderr')}")
                rows[kind].append(result)
                log(f"{kind} rep {rep + 1}: {json.dumps(result)}")
            ratios.append(rows["sdk"][-1]["mib_s"] / rows["aiohttp"][-1]["mib_s"])
            cpu_ratios.append(
                rows["sdk"][-1]["cpu_s_per_gib"] / rows["aiohttp"][-1]["cpu_s_per_gib"]
            )
        extra: dict[str, dict[str, Any]] = {}
        for kind in ("big", "cancel"):
            folder = Path(scratch) / kind
            spec = {"kind": kind, "base_url": base_url, "size": big, "directory": str(folder)}
            extra[kind] = run_worker(spec, command=("benchmarks.downloads", "worker"))
            shutil.rmtree(folder, ignore_errors=True)
            log(f"{kind}: {json.dumps(extra[kind])}")
    return {
        "sdk": rows["sdk"],
        "aiohttp": rows["aiohttp"],
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "cpu_ratio": statistics.median(cpu_ratios),
        "big": extra["big"],
        "cancel": extra["cancel"],
    }


def markdown(figures: dict[str, Any], meta: dict[str, Any]) -> str:
    """The page's table: medians of the repetitions, and the targets."""

    def median(kind: str, key: str) -> float:
        return float(statistics.median(row[key] for row in figures[kind]))

    n, size_mib = meta["n"], meta["size"] // MIB
    big_mib = meta["big"] // MIB
    growth = max(row["rss_growth_mb"] for row in figures["sdk"])
    ratio = figures["ratio"]
    big, cancel = figures["big"], figures["cancel"]

    def row(*cells: object) -> str:
        return "| " + " | ".join(str(cell) for cell in cells) + " |"

    def met(ok: bool) -> str:  # noqa: FBT001 - a verdict
        return "yes" if ok else "no"

    aiohttp_growth = max(row_["rss_growth_mb"] for row_ in figures["aiohttp"])
    each = ", ".join(f"{r:.2f}" for r in figures["ratios"])
    lines = [
        (
            f"Measured {meta['date']} with `{meta['command']}` on {meta['machine']}; "
            f"{meta['reps']} interleaved repetitions, medians (RSS growth: the largest)."
        ),
        "",
        row(
            f"{n:,} downloads of {size_mib} MiB, C=100",
            "MiB/s",
            "CPU s per GiB",
            "RSS growth (MB)",
            "longest loop stall (ms)",
        ),
        "|---|---:|---:|---:|---:|",
        row(
            "inkit-async (`download_many`)",
            f"{median('sdk', 'mib_s'):,.0f}",
            f"{median('sdk', 'cpu_s_per_gib'):.2f}",
            f"{growth:.1f}",
            f"{median('sdk', 'loop_lag_ms'):.1f}",
        ),
        row(
            "raw aiohttp, streamed to disk",
            f"{median('aiohttp', 'mib_s'):,.0f}",
            f"{median('aiohttp', 'cpu_s_per_gib'):.2f}",
            f"{aiohttp_growth:.1f}",
            f"{median('aiohttp', 'loop_lag_ms'):.1f}",
        ),
        "",
        "| Target | Measured | Met |",
        "|---|---|---|",
        row(
            f"{n:,} x {size_mib} MiB at C=100: RSS growth <= 50 MB",
            f"{growth:.1f} MB",
            met(growth <= 50),
        ),
        row(
            "... throughput >= 0.8x raw aiohttp (same run)",
            f"{ratio:.2f}x (each run: {each}; CPU per byte: {figures['cpu_ratio']:.2f}x)",
            met(ratio >= 0.8),
        ),
        row(
            f"one {big_mib} MiB download: RSS growth < 30 MB",
            f"{big['rss_growth_mb']:.1f} MB ({big['mib_s']:,.0f} MiB/s)",
            met(big["rss_growth_mb"] < 30),
        ),
        row(
            "... cancelled half-way: nothing left in the directory",
            cancel["left"] or "nothing",
            met(not cancel["left"]),
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    """Run the rows, print them, write the JSON and the page's table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.downloads", description=__doc__)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1, help="MiB per file")
    parser.add_argument("--big", type=int, default=500, help="MiB of the one big file")
    parser.add_argument("--out", type=Path, default=Path("docs/downloads.json"))
    parser.add_argument("--page", default="docs/downloads.md")
    args = parser.parse_args()

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    figures = measure(args.reps, args.n, args.size * MIB, args.big * MIB, log)
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "command": "python -m benchmarks.downloads"
        + (f" {' '.join(sys.argv[1:])}" if sys.argv[1:] else ""),
        "machine": machine(),
        "reps": args.reps,
        "n": args.n,
        "size": args.size * MIB,
        "big": args.big * MIB,
    }
    table = markdown(figures, meta)
    print(table)
    args.out.write_text(json.dumps({"meta": meta, **figures}, indent=1) + "\n", encoding="utf-8")
    if args.page:
        write_page(Path(args.page), table, START, END)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    elif sys.argv[1:2] == ["worker"]:
        work(json.loads(sys.argv[2]))
    else:
        main()

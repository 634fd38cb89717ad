"""Run one client through one scenario, in a process of its own, and print the figures.

Every run is a fresh interpreter, so imports, memory and connection pools never carry
over from one client to the next. The runner starts ``python -m benchmarks.worker SPEC``
(SPEC is JSON: client, base_url, n, concurrency, mode, and ``rate_limited`` for the
rate-limited scenario) and reads one JSON line back.

Each client does the same job for one id: GET ``{base_url}/batch/{id}`` with the token
header, check the status, decode the JSON. The SDK also builds its frozen record; that is
part of what it costs. Against a rate-limited server the raw clients retry a 429 as a
typical user writes it (``naive_retries``); the SDK uses its own retries and flow control.

With ``rate_limited``, the run also resets the server's timeline just before its clock
starts (after the warm-up), and reports the requests and 429s the server saw during the
run itself and the server's timeline of them.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import http.client
import json
import resource
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

TOKEN = "bench-token"  # noqa: S105 - the loopback server ignores it
# A lookup takes one id (or, for get_many, the list of them).
Lookup = Callable[[Any], Awaitable[Any]]


# The naive retries of the raw clients: this many attempts per lookup, and on a 429
# without Retry-After a sleep of NAIVE_BACKOFF * 2**attempt seconds.
NAIVE_ATTEMPTS = 3
NAIVE_BACKOFF = 0.5


def server_stats(base_url: str, query: str = "") -> dict[str, Any]:
    """The server's counters, read over a separate connection outside the timed part.

    *query* is ``timeline`` (add the rate-limited server's timeline) or ``reset`` (then
    start that timeline afresh and refill its buckets).
    """
    host, _, port = base_url.split("//")[1].split("/", maxsplit=1)[0].partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/__stats" + (f"?{query}" if query else ""))
        return dict(json.loads(connection.getresponse().read()))
    finally:
        connection.close()


def before_clock(spec: dict[str, Any]) -> dict[str, Any] | None:
    """For a rate-limited run, just before its clock starts: reset the server's timeline.

    Returns the server's counters at that moment (so the run's own requests are counted
    without the warm-up), or ``None`` for the other scenarios, which touch nothing here.
    """
    return server_stats(spec["base_url"], "reset") if spec.get("rate_limited") else None


def current_rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    with open("/proc/self/statm", encoding="ascii") as statm:  # noqa: PTH123
        return int(statm.read().split()[1]) * resource.getpagesize() / 1e6


def peak_rss_mb() -> float:
    """The most resident memory this process has had, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


# --- the clients: each returns (lookup, aclose) -------------------------------------


async def make_sdk(
    base_url: str, _concurrency: int, **options: Any
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """The SDK with its defaults (or *options*); callers bring the concurrency."""
    from inkit_async import AsyncInkit  # noqa: PLC0415 - imports are part of each client's run

    client = AsyncInkit(TOKEN, base_url=base_url, **options)
    return client.batch.get, client.aclose


async def make_sdk_get_many(
    base_url: str, concurrency: int, **options: Any
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """The SDK's own fan-out: ``get_many`` over all ids, ``max_concurrency`` = C.

    The lookup it returns takes the whole list of ids at once. *options* go to
    ``AsyncInkit`` as they are (``throttle=False``).
    """
    from inkit_async import AsyncInkit, InkitError  # noqa: PLC0415

    # C=0 is the 10,000-way case (and the rate-limited one): the client's default width.
    if concurrency:
        options["max_concurrency"] = concurrency
    client = AsyncInkit(TOKEN, base_url=base_url, **options)

    async def lookup_all(ids: list[str]) -> int:
        results = await client.batch.get_many(ids, return_exceptions=True)
        return sum(isinstance(result, InkitError) for result in results)

    return lookup_all, client.aclose


def httpx_lookup(client: Any) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """The lookup both httpx clients run: GET, check the status, decode the JSON."""

    async def lookup(batch_id: str) -> object:
        response = await client.get(f"/batch/{batch_id}")
        response.raise_for_status()
        return response.json()

    return lookup, client.aclose


async def make_httpx(
    base_url: str, _concurrency: int
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """Stock httpx with its default pool (100 connections)."""
    import httpx  # noqa: PLC0415

    return httpx_lookup(httpx.AsyncClient(base_url=base_url, headers={"X-Inkit-API-Token": TOKEN}))


async def make_httpx_aiohttp(
    base_url: str, _concurrency: int
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """The httpx client over the httpx-aiohttp transport, as the openai SDK offers it."""
    from httpx_aiohttp import HttpxAiohttpClient  # noqa: PLC0415

    return httpx_lookup(HttpxAiohttpClient(base_url=base_url, headers={"X-Inkit-API-Token": TOKEN}))


async def make_aiohttp(
    base_url: str, _concurrency: int
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """Raw aiohttp with its default connector (100 connections)."""
    import aiohttp  # noqa: PLC0415

    session = aiohttp.ClientSession(headers={"X-Inkit-API-Token": TOKEN})

    async def lookup(batch_id: str) -> object:
        async with session.get(f"{base_url}/batch/{batch_id}") as response:
            response.raise_for_status()
            return json.loads(await response.read())

    return lookup, session.close


# --- naive retries: what a typical user writes against a rate limit --------------------


def retry_after_seconds(value: str | None, attempt: int) -> float:
    """The sleep before the next attempt: ``Retry-After`` if given, else exponential."""
    try:
        return float(value) if value is not None else NAIVE_BACKOFF * 2**attempt
    except ValueError:
        return NAIVE_BACKOFF * 2**attempt


async def make_aiohttp_naive(
    base_url: str, concurrency: int
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """Raw aiohttp, C lookups at once via a semaphore, up to 3 attempts on a 429."""
    import aiohttp  # noqa: PLC0415

    session = aiohttp.ClientSession(headers={"X-Inkit-API-Token": TOKEN})
    semaphore = asyncio.Semaphore(concurrency or 100)

    async def lookup(batch_id: str) -> object:
        async with semaphore:
            for attempt in range(NAIVE_ATTEMPTS):
                async with session.get(f"{base_url}/batch/{batch_id}") as response:
                    if response.status == 429 and attempt < NAIVE_ATTEMPTS - 1:
                        delay = retry_after_seconds(response.headers.get("Retry-After"), attempt)
                    else:
                        response.raise_for_status()
                        return json.loads(await response.read())
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    return lookup, session.close


async def make_httpx_naive(
    base_url: str, concurrency: int
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """Stock httpx, C lookups at once via a semaphore, up to 3 attempts on a 429."""
    import httpx  # noqa: PLC0415

    client = httpx.AsyncClient(base_url=base_url, headers={"X-Inkit-API-Token": TOKEN})
    semaphore = asyncio.Semaphore(concurrency or 100)

    async def lookup(batch_id: str) -> object:
        async with semaphore:
            for attempt in range(NAIVE_ATTEMPTS):
                response = await client.get(f"/batch/{batch_id}")
                if response.status_code == 429 and attempt < NAIVE_ATTEMPTS - 1:
                    await asyncio.sleep(
                        retry_after_seconds(response.headers.get("Retry-After"), attempt)
                    )
                    continue
                response.raise_for_status()
                return response.json()
        raise AssertionError("unreachable")

    return lookup, client.aclose


ASYNC_CLIENTS: dict[str, Callable[[str, int], Awaitable[tuple[Lookup, Any]]]] = {
    "sdk": make_sdk,
    "sdk-nothrottle": functools.partial(make_sdk, throttle=False),
    "sdk-get_many": make_sdk_get_many,
    "sdk-get_many-nothrottle": functools.partial(make_sdk_get_many, throttle=False),
    "httpx": make_httpx,
    "httpx-aiohttp": make_httpx_aiohttp,
    "aiohttp": make_aiohttp,
    "aiohttp-naive": make_aiohttp_naive,
    "httpx-naive": make_httpx_naive,
}


# --- the async run ---------------------------------------------------------------------


async def ticker(lags: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """Wake every 10 ms until *stop*, recording how late each wake-up was.

    Each entry is (lateness, the ``time.perf_counter()`` its tick began): how long the
    event loop was blocked, and when.
    """
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append((time.perf_counter() - start - 0.01, start))


async def run_async(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure one async client: workers pulling ids, a plain gather, or ``get_many``."""
    base_url, n, concurrency, mode = spec["base_url"], spec["n"], spec["concurrency"], spec["mode"]
    lookup, aclose = await ASYNC_CLIENTS[spec["client"]](base_url, concurrency)
    many = mode == "get_many"
    # Lazy imports and the first connection, outside the clock.
    await lookup(["warm-up"] if many else "warm-up")
    ids = [f"rb_{i:08d}" for i in range(n)]
    latencies: list[float] = []
    errors = 0

    async def timed(batch_id: str) -> None:
        nonlocal errors
        start = time.perf_counter()
        try:
            await lookup(batch_id)
        except Exception:  # noqa: BLE001 - any failure counts, none may stop the run
            errors += 1
        latencies.append(time.perf_counter() - start)

    async def worker(queue: Iterator[str]) -> None:
        for batch_id in queue:
            await timed(batch_id)

    mark = before_clock(spec)
    # Start from a settled heap, as a server that has been up a while has: otherwise the
    # first full collection of the freshly imported modules lands inside the run.
    gc.collect()
    lags: list[tuple[float, float]] = []
    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(lags, stop))
    await asyncio.sleep(0.02)  # the ticker's first tick, so its task creation is not counted
    rss_before = current_rss_mb()
    cpu, wall = time.process_time(), time.perf_counter()
    if many:
        errors = await lookup(ids)
    elif mode == "gather":
        await asyncio.gather(*(timed(batch_id) for batch_id in ids))
    else:
        queue = iter(ids)
        await asyncio.gather(*(worker(queue) for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stop.set()
    await tick
    await aclose()
    return {
        "wall": wall,
        "cpu": cpu,
        "errors": errors,
        "latencies": latencies,
        "loop_lag": max((lag for lag, _ in lags), default=0.0),
        "rss_growth": peak_rss_mb() - rss_before,
        "mark": mark,
    }


# --- the official SDK: synchronous, on threads -----------------------------------------


def run_official(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure the official ``inkit`` SDK: *concurrency* threads share one id iterator."""
    import inkit  # type: ignore[import-untyped]  # noqa: PLC0415
    import inkit.client  # type: ignore[import-untyped]  # noqa: PLC0415

    inkit.api_token = TOKEN
    # The SDK has no base-URL option; its module constant is the only way in.
    inkit.client.HOST = spec["base_url"]
    inkit.Batch.get("warm-up")
    ids = iter([f"rb_{i:08d}" for i in range(spec["n"])])
    lock = threading.Lock()
    latencies: list[float] = []
    errors = 0

    def worker() -> None:
        nonlocal errors
        while True:
            with lock:
                batch_id = next(ids, None)
            if batch_id is None:
                return
            start = time.perf_counter()
            try:
                inkit.Batch.get(batch_id).data  # noqa: B018 - decode the body, as users do
            except Exception:  # noqa: BLE001
                errors += 1
            latencies.append(time.perf_counter() - start)

    mark = before_clock(spec)
    gc.collect()  # a settled heap, as in run_async
    rss_before = current_rss_mb()
    cpu, wall = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(spec["concurrency"]) as pool:
        for future in [pool.submit(worker) for _ in range(spec["concurrency"])]:
            future.result()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "wall": wall,
        "cpu": cpu,
        "errors": errors,
        "latencies": latencies,
        "loop_lag": None,
        "rss_growth": peak_rss_mb() - rss_before,
        "mark": mark,
    }


def main() -> None:
    """Run the spec given as the only argument; print the result as one JSON line."""
    spec = json.loads(sys.argv[1])
    before = server_stats(spec["base_url"])
    result = run_official(spec) if spec["client"] == "inkit" else asyncio.run(run_async(spec))
    mark = result.pop("mark")
    after = server_stats(spec["base_url"], "timeline" if mark else "")
    if mark:
        # The run's own requests, from the server's view: the warm-up came before the mark.
        result.update(
            requests=after["requests"] - mark["requests"],
            refused=after["refused"] - mark["refused"],
            timeline=after["timeline"],
        )
    latencies = sorted(result.pop("latencies"))
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else None
    result.update(
        rate=spec["n"] / result["wall"],
        cpu_per_lookup_us=result["cpu"] / spec["n"] * 1e6,
        p50_ms=quantiles[49] * 1e3 if quantiles else None,
        p99_ms=quantiles[98] * 1e3 if quantiles else None,
        connections=after["opened"] - before["opened"],
        # Includes the warm-up and start-up, so it over- rather than under-states.
        server_cpu_share=(after["cpu"] - before["cpu"]) / result["wall"],
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

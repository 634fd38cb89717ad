"""Run one client through one scenario, in a process of its own, and print the figures.

Every run is a fresh interpreter, so imports, memory and connection pools never carry
over from one client to the next. The runner starts ``python -m benchmarks.worker SPEC``
(SPEC is JSON: client, base_url, n, concurrency, mode, and ``rate_limited`` for the
rate-limited scenario) and reads one JSON line back. Optional keys: ``loop`` (``uvloop``:
run on uvloop's event loop instead of asyncio's), ``ca`` (the CA file of an HTTPS
``base_url``, which every client trusts: the SDK through ``verify=``, the others through
an ``ssl`` context made from it) and ``stats_url`` (where to read the server's counters,
over plain HTTP, when ``base_url`` is HTTPS).

Each client does the same job for one id: GET ``{base_url}/batch/{id}`` with the token
header, check the status, decode the JSON. The SDK also builds its frozen record; that is
part of what it costs. Against a rate-limited server the raw clients retry a 429 as a
typical user writes it (``naive_retries``); the SDK uses its own retries and flow control.

OpenTelemetry: the SDK's own rows run as a default install does, without the ``otel``
extra (``opentelemetry`` is made unimportable before the SDK is imported, even when the
environment has it). ``sdk-otel-off`` runs with ``opentelemetry-api`` importable and no
provider set (what an app that has the package for other reasons gets); ``sdk-otel-on``
sets an SDK ``TracerProvider`` with a ``BatchSpanProcessor`` to an exporter that drops
the spans, and a ``MeterProvider`` with an in-memory reader, before the client is made:
every span and data point is made, none is sent anywhere. Its result also says how many
spans were exported (``spans``), so a run that traced nothing shows.

With ``rate_limited``, the run also resets the server's timeline just before its clock
starts (after the warm-up), and reports the requests and 429s the server saw during the
run itself and the server's timeline of them.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import gc
import http.client
import json
import resource
import ssl
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
# A client's maker: (base_url, concurrency, CA file or None) -> (lookup, aclose).
Maker = Callable[[str, int, str | None], Awaitable[tuple[Lookup, Callable[[], Awaitable[None]]]]]
#: Figures a client adds to its run's result (the spans ``sdk-otel-on`` exported).
EXTRA: dict[str, Any] = {}


# The naive retries of the raw clients: this many attempts per lookup, and on a 429
# without Retry-After a sleep of NAIVE_BACKOFF * 2**attempt seconds.
NAIVE_ATTEMPTS = 3
NAIVE_BACKOFF = 0.5


def server_stats(base_url: str, query: str = "") -> dict[str, Any]:
    """The server's counters, read over a separate connection outside the timed part.

    *base_url* is a plain ``http://`` one (a TLS run reads them from the server's plain
    port, ``stats_url``). *query* is ``timeline`` (add the rate-limited server's timeline)
    or ``reset`` (then start that timeline afresh and refill its buckets).
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
    return server_stats(stats_url(spec), "reset") if spec.get("rate_limited") else None


def stats_url(spec: dict[str, Any]) -> str:
    """Where the run's server answers its counters over plain HTTP."""
    return str(spec.get("stats_url") or spec["base_url"])


def trust(ca: str | None) -> dict[str, Any]:
    """The SDK's options for the bench's CA: ``verify=ca`` over TLS, none otherwise.

    Only when there is one: the SDK's default is ``verify=True``, and leaving it out keeps
    the worker able to measure older versions of the SDK.
    """
    return {"verify": ca} if ca else {}


def client_context(ca: str) -> ssl.SSLContext:
    """The TLS context the raw clients trust the bench's CA with (what ``verify=ca`` makes)."""
    return ssl.create_default_context(cafile=ca)


def current_rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    with open("/proc/self/statm", encoding="ascii") as statm:  # noqa: PTH123
        return int(statm.read().split()[1]) * resource.getpagesize() / 1e6


def settle() -> None:
    """Start the clock from a settled process, as a server that has been up a while is.

    A full garbage collection, so that the first one of the freshly imported modules does
    not land inside the run; and one large block allocated and freed. glibc's ``malloc``
    serves blocks above its mmap threshold (128 KiB at start) with a fresh ``mmap`` and
    raises that threshold only when such a block is freed, so until then every 256 KiB
    read buffer that asyncio's socket transports allocate costs an ``mmap``, two page
    faults and a ``munmap``: measured here at ~10 us of CPU a lookup, 2 faults a lookup,
    for raw aiohttp and the SDK alike. Whether a fresh process has freed such a block yet
    depends on what it happened to import (with opentelemetry imported, it had), which
    made rows differ by up to 12% for nothing they do; a long-running process has.
    """
    block = bytes(4 << 20)
    del block
    gc.collect()


def peak_rss_mb() -> float:
    """The most resident memory this process has had, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


# --- the clients: each returns (lookup, aclose) -------------------------------------


def error_name(error: BaseException) -> str:
    """An error as a run reports it: its class, and the HTTP status if it has one."""
    status = getattr(error, "status_code", None)
    return f"{type(error).__name__} {status}" if status else type(error).__name__


def without_opentelemetry() -> None:
    """Make ``opentelemetry`` unimportable here, as on a default install (no ``otel`` extra)."""
    for name in [name for name in sys.modules if name.split(".")[0] == "opentelemetry"]:
        del sys.modules[name]
    sys.modules["opentelemetry"] = None  # type: ignore[assignment]  # import raises ImportError


async def make_sdk(
    base_url: str, _concurrency: int, ca: str | None, **options: Any
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """The SDK with its defaults (or *options*); callers bring the concurrency."""
    without_opentelemetry()
    from inkit_async import AsyncInkit  # noqa: PLC0415 - imports are part of each client's run

    client = AsyncInkit(TOKEN, base_url=base_url, **trust(ca), **options)
    return client.batch.get, client.aclose


async def make_sdk_otel_off(
    base_url: str, _concurrency: int, ca: str | None
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """The SDK with ``opentelemetry-api`` importable and no provider: tracing off."""
    import opentelemetry.trace  # noqa: PLC0415, F401 - the API is there, nothing is set

    from inkit_async import AsyncInkit  # noqa: PLC0415

    client = AsyncInkit(TOKEN, base_url=base_url, **trust(ca))
    return client.batch.get, client.aclose


async def make_sdk_otel_on(
    base_url: str, _concurrency: int, ca: str | None
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """The SDK under an SDK TracerProvider and MeterProvider whose output goes nowhere."""
    from opentelemetry import metrics, trace  # noqa: PLC0415
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    from inkit_async import AsyncInkit  # noqa: PLC0415

    class Dropping(SpanExporter):
        """Counts the spans it is given, and drops them."""

        exported = 0

        def export(self, spans: Any) -> SpanExportResult:
            Dropping.exported += len(spans)
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropping()))
    trace.set_tracer_provider(tracer_provider)
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)
    client = AsyncInkit(TOKEN, base_url=base_url, **trust(ca))

    async def aclose() -> None:
        await client.aclose()
        tracer_provider.force_flush()
        EXTRA["spans"] = Dropping.exported
        data = reader.get_metrics_data()
        EXTRA["metric_points"] = sum(
            len(metric.data.data_points)
            for resource_metrics in (data.resource_metrics if data else ())
            for scope in resource_metrics.scope_metrics
            for metric in scope.metrics
        )
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return client.batch.get, aclose


async def make_sdk_get_many(
    base_url: str, concurrency: int, ca: str | None, **options: Any
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """The SDK's own fan-out: ``get_many`` over all ids, ``max_concurrency`` = C.

    The lookup it returns takes the whole list of ids at once. *options* go to
    ``AsyncInkit`` as they are (``throttle=False``).
    """
    without_opentelemetry()
    from inkit_async import AsyncInkit, InkitError  # noqa: PLC0415

    # C=0 is the 10,000-way case (and the rate-limited one): the client's default width.
    if concurrency:
        options["max_concurrency"] = concurrency
    client = AsyncInkit(TOKEN, base_url=base_url, **trust(ca), **options)

    async def lookup_all(ids: list[str]) -> list[str]:
        """The name of each error's class, one per lookup that failed."""
        results = await client.batch.get_many(ids, return_exceptions=True)
        return [error_name(result) for result in results if isinstance(result, InkitError)]

    return lookup_all, client.aclose


def httpx_lookup(client: Any) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """The lookup both httpx clients run: GET, check the status, decode the JSON."""

    async def lookup(batch_id: str) -> object:
        response = await client.get(f"/batch/{batch_id}")
        response.raise_for_status()
        return response.json()

    return lookup, client.aclose


async def make_httpx(
    base_url: str, _concurrency: int, ca: str | None
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """Stock httpx with its default pool (100 connections)."""
    import httpx  # noqa: PLC0415

    verify: ssl.SSLContext | bool = client_context(ca) if ca else True
    return httpx_lookup(
        httpx.AsyncClient(base_url=base_url, headers={"X-Inkit-API-Token": TOKEN}, verify=verify)
    )


async def make_httpx_aiohttp(
    base_url: str, _concurrency: int, ca: str | None
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """The httpx client over the httpx-aiohttp transport, as the openai SDK offers it."""
    from httpx_aiohttp import HttpxAiohttpClient  # noqa: PLC0415

    verify: ssl.SSLContext | bool = client_context(ca) if ca else True
    return httpx_lookup(
        HttpxAiohttpClient(base_url=base_url, headers={"X-Inkit-API-Token": TOKEN}, verify=verify)
    )


async def make_aiohttp(
    base_url: str, _concurrency: int, ca: str | None
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """Raw aiohttp with its default connector (100 connections)."""
    import aiohttp  # noqa: PLC0415

    # Over TLS, the default connector with the CA's context: still 100 connections.
    connector = aiohttp.TCPConnector(ssl=client_context(ca)) if ca else None
    session = aiohttp.ClientSession(headers={"X-Inkit-API-Token": TOKEN}, connector=connector)

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
    base_url: str, concurrency: int, _ca: str | None
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
    base_url: str, concurrency: int, _ca: str | None
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


ASYNC_CLIENTS: dict[str, Maker] = {
    "sdk": make_sdk,
    "sdk-nothrottle": functools.partial(make_sdk, throttle=False),
    "sdk-otel-off": make_sdk_otel_off,
    "sdk-otel-on": make_sdk_otel_on,
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
    lookup, aclose = await ASYNC_CLIENTS[spec["client"]](base_url, concurrency, spec.get("ca"))
    many = mode == "get_many"
    # Lazy imports and the first connection, outside the clock.
    await lookup(["warm-up"] if many else "warm-up")
    ids = [f"rb_{i:08d}" for i in range(n)]
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()

    async def timed(batch_id: str) -> None:
        start = time.perf_counter()
        try:
            await lookup(batch_id)
        except Exception as error:  # noqa: BLE001 - any failure counts, none may stop the run
            errors[error_name(error)] += 1
        latencies.append(time.perf_counter() - start)

    async def worker(queue: Iterator[str]) -> None:
        for batch_id in queue:
            await timed(batch_id)

    mark = before_clock(spec)
    settle()
    lags: list[tuple[float, float]] = []
    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(lags, stop))
    await asyncio.sleep(0.02)  # the ticker's first tick, so its task creation is not counted
    rss_before = current_rss_mb()
    cpu, wall = time.process_time(), time.perf_counter()
    if many:
        errors.update(await lookup(ids))
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
        "errors": errors.total(),
        # What failed, so that a run with errors says why.
        "error_kinds": dict(errors),
        "latencies": latencies,
        "loop_lag": max((lag for lag, _ in lags), default=0.0),
        "rss_growth": peak_rss_mb() - rss_before,
        "mark": mark,
        # What the run really ran on, so a row can never claim uvloop by mistake.
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        **EXTRA,
    }


def run_on_loop(spec: dict[str, Any]) -> dict[str, Any]:
    """``run_async`` on asyncio's own event loop, or on uvloop's (spec ``"loop": "uvloop"``)."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if spec.get("loop", "asyncio") == "uvloop":
        import uvloop  # noqa: PLC0415 - only the uvloop scenario needs it

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run_async(spec))


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
    settle()  # as in run_async
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
    before = server_stats(stats_url(spec))
    result = run_official(spec) if spec["client"] == "inkit" else run_on_loop(spec)
    mark = result.pop("mark")
    after = server_stats(stats_url(spec), "timeline" if mark else "")
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

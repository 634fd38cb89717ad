"""Draw docs/observability.png: the spans of one get_many, as the in-memory exporter kept them.

    python docs/render_trace.py

A FakeInkit served by uvicorn on 127.0.0.1, with 20 to 60 ms of latency per request and
its first two answers 503, is looked up by one ``get_many`` of six batches on a client
with ``max_concurrency=3``. The spans come from OpenTelemetry's ``InMemorySpanExporter``
and are drawn as bars on one time axis: the ``inkit batch.get_many`` span, each
``inkit batch.get`` under it and, under each, its CLIENT ``GET`` attempts. It needs the
``tests`` and ``bench`` dependency groups (opentelemetry-sdk, uvicorn, matplotlib).
"""

# matplotlib's stubs leave the **kwargs of its drawing methods untyped.
# pyright: reportUnknownMemberType=false

from __future__ import annotations

import asyncio
import random
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inkit_async import AsyncInkit, Backoff
from inkit_async.testing import FakeInkit

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

OUTPUT = Path(__file__).resolve().parent / "observability.png"
LOOKUPS = 6
CONCURRENCY = 3
FAILURES = 2  # the first answers the fake sends are 503s
BACKOFF = Backoff(initial=0.05, maximum=0.2, jitter=0.0)

COLOURS = {"many": "#3b3b3b", "get": "#4c72b0", "ok": "#55a868", "error": "#c44e52"}


class Latency:
    """An ASGI wrapper that holds each HTTP request 20 to 60 ms, as a distant API would."""

    def __init__(self, app: Any, seed: int) -> None:  # noqa: ANN401 - any ASGI 3 app
        self._app = app
        self._random = random.Random(seed)  # noqa: S311 - latency, not secrets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wait, then hand the request (or the lifespan) to the app."""
        if scope["type"] == "http":
            await asyncio.sleep(self._random.uniform(0.02, 0.06))
        await self._app(scope, receive, send)


async def record_trace() -> list[ReadableSpan]:
    """Serve the fake, run one get_many under an SDK TracerProvider; return its spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    fake = FakeInkit(seed=7)
    ids = [fake.add_batch(name=f"invoices {n}") for n in range(LOOKUPS)]
    fake.fail_next(FAILURES, 503)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(Latency(fake.app, seed=3), log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        async with AsyncInkit(
            fake.token,
            base_url=f"http://127.0.0.1:{port}/v1",
            max_concurrency=CONCURRENCY,
            backoff=BACKOFF,
        ) as client:
            await client.batch.get_many(ids)
    finally:
        server.should_exit = True
        await serving
        sock.close()
    provider.shutdown()
    return list(exporter.get_finished_spans())


def rows(spans: list[ReadableSpan]) -> list[tuple[str, ReadableSpan]]:
    """The spans as chart rows, top to bottom: get_many, then each get and its attempts."""

    def start(span: ReadableSpan) -> int:
        return span.start_time or 0

    def children(parent: ReadableSpan) -> list[ReadableSpan]:
        context = parent.context
        assert context is not None  # every span the SDK recorded has one
        own = context.span_id
        found = [span for span in spans if span.parent is not None and span.parent.span_id == own]
        return sorted(found, key=start)

    [many] = [span for span in spans if span.name == "inkit batch.get_many"]
    ordered = [("many", many)]
    for get in children(many):
        ordered.append(("get", get))
        for attempt in children(get):
            failed = "error.type" in (attempt.attributes or {})
            ordered.append(("error" if failed else "ok", attempt))
    return ordered


def attribute(span: ReadableSpan, name: str) -> str:
    """One attribute of *span* as text ("" when it has none)."""
    value = (span.attributes or {}).get(name)
    return "" if value is None else str(value)


def label(kind: str, span: ReadableSpan) -> str:
    """The row's label, indented by depth: the id's tail for a lookup, the status for a GET."""
    if kind == "many":
        return f"{span.name} ({attribute(span, 'inkit.batch.count')} ids)"
    if kind == "get":
        return f"   {span.name} …{attribute(span, 'inkit.batch.id')[-6:]}"
    resend = attribute(span, "http.request.resend_count")
    again = f", resend {resend}" if resend else ""
    return f"        {span.name} {attribute(span, 'http.response.status_code')}{again}"


def draw(spans: list[ReadableSpan], path: Path) -> None:
    """Bars over time (ms since get_many began), one row per span; retries marked."""
    chart = rows(spans)
    origin = chart[0][1].start_time or 0

    def ms(nanoseconds: int | None) -> float:
        return ((nanoseconds or origin) - origin) / 1e6

    figure = Figure(figsize=(10, 0.32 * len(chart) + 1.9), layout="constrained")
    axes = figure.add_subplot()
    previous_end = 0.0
    for row, (kind, span) in enumerate(chart):
        left, right = ms(span.start_time), ms(span.end_time)
        axes.barh(row, right - left, left=left, height=0.6, color=COLOURS[kind])
        if kind != "many":
            axes.text(right + 2, row, f"{right - left:.0f} ms", va="center", fontsize=7)
        if (span.attributes or {}).get("http.request.resend_count"):
            # The wait between the failed attempt's end and this one's start: the backoff.
            axes.plot([previous_end, left], [row, row], linestyle=":", color="#888888")
            axes.text((previous_end + left) / 2, row - 0.4, "backoff", ha="center", fontsize=7)
        for event in span.events:
            if event.name == "retry backoff":
                axes.plot(ms(event.timestamp), row, marker="v", color="black", markersize=6)
        if kind in {"ok", "error"}:
            previous_end = right
    axes.set_yticks(range(len(chart)), [label(kind, span) for kind, span in chart], fontsize=8)
    for tick in axes.get_yticklabels():
        tick.set_horizontalalignment("left")
    axes.tick_params(axis="y", pad=150, length=0)
    axes.invert_yaxis()
    axes.set_xlim(0, ms(chart[0][1].end_time) * 1.08)
    axes.set_xlabel("milliseconds since inkit batch.get_many began")
    axes.grid(axis="x", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.set_title(
        f"One get_many trace: {LOOKUPS} lookups at max_concurrency={CONCURRENCY}, "
        f"the first {FAILURES} answers 503 (20-60 ms per request)",
        fontsize=10,
    )
    legend = [
        Patch(color=COLOURS["many"], label="inkit batch.get_many"),
        Patch(color=COLOURS["get"], label="inkit batch.get"),
        Patch(color=COLOURS["ok"], label="GET attempt (CLIENT): 200"),
        Patch(color=COLOURS["error"], label="GET attempt (CLIENT): 503, error.type"),
    ]
    marker = axes.plot([], [], "v", color="black", label="retry backoff event")[0]
    figure.legend(handles=[*legend, marker], loc="outside lower center", ncols=5, fontsize=7)
    figure.savefig(path, dpi=130)


def describe(span: ReadableSpan) -> None:
    """Print a span's name, kind, status, duration, attributes and events."""
    status = span.status.status_code.name
    if span.status.description:
        status += f" {span.status.description!r}"
    took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    print(f"{span.name} ({span.kind.name}), status {status}, {took:.1f} ms")
    for name in span.attributes or {}:
        print(f"  {name:<27} {attribute(span, name)}")
    for event in span.events:
        fields = "  ".join(f"{key}={value!r}" for key, value in (event.attributes or {}).items())
        print(f"  event {event.name!r}: {fields}")


def main() -> None:
    spans = asyncio.run(record_trace())
    draw(spans, OUTPUT)
    print(f"{len(spans)} spans drawn to {OUTPUT}")
    # The first lookup that was retried, and its attempts: the page quotes them.
    chart = rows(spans)
    for index, (kind, span) in enumerate(chart):
        if kind == "get" and span.events:
            describe(span)
            for kind_below, below in chart[index + 1 :]:
                if kind_below in {"get", "many"}:
                    break
                describe(below)
            break


if __name__ == "__main__":
    main()

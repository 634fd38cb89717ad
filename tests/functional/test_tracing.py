"""OpenTelemetry over real sockets: call and attempt spans, events, propagation, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.test.globals_test import reset_metrics_globals, reset_trace_globals
from opentelemetry.trace import SpanKind, StatusCode

from inkit_async import (
    APIConnectionError,
    AsyncInkit,
    NotFoundError,
    PauseEvent,
    RateEvent,
    RetryEvent,
    Throttle,
)
from inkit_async._tracing import Telemetry as ClientTelemetry
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.loopback import Hang, Respond, closed_port, html_page


class Telemetry:
    """What the in-memory exporter and reader collected."""

    def __init__(self, spans: InMemorySpanExporter, reader: InMemoryMetricReader) -> None:
        self.exporter = spans
        self.reader = reader

    @property
    def spans(self) -> list[ReadableSpan]:
        """Every finished span, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        """The finished spans called *name*."""
        return [span for span in self.spans if span.name == name]

    def points(self, metric: str) -> list[object]:
        """The data points of one metric, over every scope."""
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for item in scope.metrics:
                    if item.name == metric:
                        found.extend(item.data.data_points)
        return found


def install() -> Telemetry:
    """Set a global TracerProvider and MeterProvider that keep everything in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return Telemetry(exporter, reader)


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    """A TracerProvider and a MeterProvider that keep everything in memory, for one test."""
    reset_trace_globals()
    reset_metrics_globals()
    try:
        yield install()
    finally:
        reset_trace_globals()
        reset_metrics_globals()


def attempt_spans(telemetry: Telemetry) -> list[ReadableSpan]:
    """The CLIENT spans, one per attempt."""
    return [span for span in telemetry.spans if span.kind is SpanKind.CLIENT]


async def test_a_lookup_is_a_call_span_with_one_attempt_span_under_it(server, otel):
    """batch.get: an 'inkit batch.get' span and, under it, a CLIENT 'GET' by the conventions."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        await client.batch.get("rb_1")
    [call] = otel.named("inkit batch.get")
    [attempt] = attempt_spans(otel)
    assert attempt.name == "GET"
    assert attempt.parent is not None
    assert attempt.parent.span_id == call.context.span_id
    assert dict(attempt.attributes) == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "url.full": f"{server.url}/batch/rb_1",
        "http.response.status_code": 200,
    }
    assert dict(call.attributes) == {"inkit.batch.id": "rb_1", "inkit.outcome": "ok"}
    assert attempt.status.status_code is StatusCode.UNSET


async def test_a_retry_shows_both_attempts_and_the_backoff(server, otel):
    """503 then 200: two attempt spans, the first an error, the second a resend; one event."""
    server.script(html_page(503))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        await client.batch.get("rb_1")
    first, second = attempt_spans(otel)
    assert first.attributes["error.type"] == "503"
    assert first.attributes["http.response.status_code"] == 503
    assert first.status.status_code is StatusCode.ERROR
    assert "http.request.resend_count" not in first.attributes
    assert second.attributes["http.request.resend_count"] == 1
    assert "error.type" not in second.attributes
    [call] = otel.named("inkit batch.get")
    assert [event.name for event in call.events] == ["retry backoff"]
    assert call.events[0].attributes["inkit.attempt"] == 1
    [retries] = otel.points("inkit.client.retries")
    assert retries.value == 1


async def test_a_connection_failure_is_an_error_on_every_span(otel):
    """A refused port: each attempt span has error.type ConnectError; the call fails too."""
    url = f"http://127.0.0.1:{closed_port()}/v1"
    async with AsyncInkit(TOKEN, base_url=url, backoff=NO_WAIT, max_retries=1) as client:
        with pytest.raises(APIConnectionError):
            await client.batch.get("rb_1")
    attempts = attempt_spans(otel)
    assert [span.attributes["error.type"] for span in attempts] == ["ConnectError"] * 2
    assert all(span.status.status_code is StatusCode.ERROR for span in attempts)
    assert all("http.response.status_code" not in span.attributes for span in attempts)
    [call] = otel.named("inkit batch.get")
    assert call.attributes["inkit.outcome"] == "APIConnectionError"
    assert call.attributes["error.type"] == "APIConnectionError"
    assert call.status.status_code is StatusCode.ERROR


async def test_each_request_carries_its_attempts_traceparent(server, otel):
    """The W3C traceparent on the wire names the attempt's trace and span."""
    server.script(html_page(502))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        await client.batch.get("rb_1")
    sent = [request.headers["traceparent"] for request in server.requests]
    expected = [
        f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}"
        f"-{int(span.context.trace_flags):02x}"
        for span in attempt_spans(otel)
    ]
    assert sent == expected
    assert len(set(sent)) == 2


async def test_no_attribute_or_event_holds_the_token(server, otel):
    """Across every span, attribute and event of a failing and a retried call: no token."""
    server.script(
        html_page(503),
        Respond(404, {"error": f"no batch for token {TOKEN}"}),
        Respond(429, {"error": "slow down"}, {"Retry-After": "0.01"}),
    )
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        with pytest.raises(NotFoundError):
            await client.batch.get("rb_1")
        await client.batch.get("rb_2")
    texts = []
    for span in otel.spans:
        texts += [span.name, repr(dict(span.attributes)), repr(span.status.description)]
        texts += [f"{event.name} {dict(event.attributes)!r}" for event in span.events]
    assert any("Retry-After" in text or "429" in text for text in texts)
    assert all(TOKEN not in text for text in texts)


async def test_the_duration_histogram_follows_the_conventions(server, otel):
    """http.client.request.duration: one point per attribute set, in seconds."""
    server.script(Respond(404, {"error": "no such batch"}))
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(NotFoundError):
            await client.batch.get("rb_missing")
        await client.batch.get("rb_1")
        await client.batch.get("rb_2")
    points = {
        point.attributes.get("http.response.status_code"): point
        for point in otel.points("http.client.request.duration")
    }
    assert points[200].count == 2
    assert points[404].count == 1
    assert dict(points[404].attributes) == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "http.response.status_code": 404,
        "error.type": "404",
    }
    assert 0 < points[200].sum < 5


async def test_get_many_is_one_span_over_its_lookups(server, otel):
    """get_many: an 'inkit batch.get_many' span, parent of one call span per id."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        await client.batch.get_many(["rb_1", "rb_2", "rb_3", "rb_1"])
    [many] = otel.named("inkit batch.get_many")
    gets = otel.named("inkit batch.get")
    assert many.attributes["inkit.batch.count"] == 3
    assert len(gets) == 3
    assert all(
        get.parent is not None and get.parent.span_id == many.context.span_id for get in gets
    )


async def test_pauses_and_throttle_waits_are_events_and_counts(server, otel):
    """A 429 pause and a wait in a rate-limited throttle show as events and counters."""
    server.script(Respond(429, {"error": "slow down"}, {"Retry-After": "0.05"}))
    throttle = Throttle(rate_limit=20)
    async with AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client:
        await asyncio.gather(*(client.batch.get(f"rb_{number}") for number in range(3)))
    events = [event.name for span in otel.named("inkit batch.get") for event in span.events]
    assert "pause" in events
    assert "throttle wait" in events
    [pauses] = otel.points("inkit.client.pauses")
    assert pauses.value == 1
    [waits] = otel.points("inkit.client.throttle.waits")
    assert waits.value >= 1


def test_each_kind_of_event_is_a_span_event_with_its_fields(otel):
    """A retry, a pause and a rate cut: each an event on the current span, with its fields."""
    observer = ClientTelemetry("http://127.0.0.1:9/v1")
    with trace.get_tracer("test").start_as_current_span("call"):
        for event in (
            RetryEvent(method="GET", path="/batch/rb_1", attempt=1, delay=0.5, reason="503"),
            PauseEvent(method="GET", path="/batch/rb_1", seconds=1.5, reason="429", outage=True),
            RateEvent(
                method="GET", path="/batch/rb_1", rate=8.0, previous_rate=None, status_code=429
            ),
        ):
            observer.event(event)
    [call] = otel.named("call")
    assert [(event.name, dict(event.attributes or {})) for event in call.events] == [
        ("retry backoff", {"inkit.attempt": 1, "inkit.delay_s": 0.5, "inkit.reason": "503"}),
        ("pause", {"inkit.pause_s": 1.5, "inkit.reason": "429", "inkit.outage": True}),
        ("rate cut", {"inkit.rate": 8.0}),
    ]
    [retries] = otel.points("inkit.client.retries")
    [pauses] = otel.points("inkit.client.pauses")
    assert (retries.value, dict(retries.attributes)) == (1, {"http.request.method": "GET"})
    assert (pauses.value, dict(pauses.attributes)) == (1, {"inkit.outage": True})


async def test_without_an_sdk_nothing_is_traced_or_sent(server):
    """With no provider set (the API alone), no traceparent goes out and nothing is kept."""
    reset_trace_globals()
    reset_metrics_globals()
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        await client.batch.get("rb_1")
    assert "traceparent" not in server.requests[0].headers
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


async def test_providers_set_while_a_client_runs_are_used_within_a_second(server):
    """Providers set after a client's first lookup trace and count its lookups a second on."""
    reset_trace_globals()
    reset_metrics_globals()
    try:
        async with AsyncInkit(TOKEN, base_url=server.url) as client:
            await client.batch.get("rb_before")
            telemetry = install()
            await asyncio.sleep(1.05)  # the client looks at the providers once a second
            await client.batch.get("rb_after")
    finally:
        reset_trace_globals()
        reset_metrics_globals()
    before, after = server.requests
    assert "traceparent" not in before.headers
    assert "traceparent" in after.headers
    assert [span.name for span in telemetry.spans] == ["GET", "inkit batch.get"]
    assert len(telemetry.points("http.client.request.duration")) == 1


async def test_a_meter_provider_set_after_the_client_was_made_gets_its_next_request(server):
    """A MeterProvider set between two lookups counts the second one, with no wait."""
    reset_trace_globals()
    reset_metrics_globals()
    reader = InMemoryMetricReader()
    try:
        async with AsyncInkit(TOKEN, base_url=server.url) as client:
            await client.batch.get("rb_before")
            metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
            await client.batch.get("rb_after")
    finally:
        reset_trace_globals()
        reset_metrics_globals()
    telemetry = Telemetry(InMemorySpanExporter(), reader)
    [point] = telemetry.points("http.client.request.duration")
    assert point.count == 1
    assert "traceparent" not in server.requests[1].headers  # metrics alone: no spans


class _ProxyMeterProvider(MeterProvider):
    """An application's own MeterProvider that happens to share the API's private name."""


async def test_a_meter_provider_is_used_whatever_its_class_is_called(server):
    """The client tells a set provider by the API's public calls, not by a class name."""
    reset_trace_globals()
    reset_metrics_globals()
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(_ProxyMeterProvider(metric_readers=[reader]))
    try:
        async with AsyncInkit(TOKEN, base_url=server.url) as client:
            await client.batch.get("rb_1")
    finally:
        reset_trace_globals()
        reset_metrics_globals()
    [point] = Telemetry(InMemorySpanExporter(), reader).points("http.client.request.duration")
    assert point.count == 1


async def test_a_listing_page_is_a_call_with_its_query_in_the_url(server, otel):
    """batch.list: one 'inkit batch.list' span per page, whose attempt's url.full has the query."""
    server.handler = lambda request: Respond(body={"items": [], "metadata": None})
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        assert [batch async for batch in client.batch.list(search="x")] == []
    [page] = otel.named("inkit batch.list")
    [attempt] = attempt_spans(otel)
    assert page.attributes["inkit.page"] == 1
    assert attempt.attributes["url.full"] == f"{server.url}/batch?page=1&search=x"


async def test_a_cancelled_attempt_still_ends_its_span(server, otel):
    """A lookup cancelled on the wire: its attempt span ends, with error.type CancelledError."""
    server.handler = lambda request: Hang()
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        call = asyncio.create_task(client.batch.get("rb_1"))
        await server.wait_for_requests(1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    [attempt] = attempt_spans(otel)
    assert attempt.attributes["error.type"] == "CancelledError"
    [call_span] = otel.named("inkit batch.get")
    assert call_span.attributes["inkit.outcome"] == "CancelledError"

"""OpenTelemetry spans and metrics, kept in memory; and the same events through on_event."""

import asyncio
from collections import Counter

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inkit_async import ClientEvent, PauseEvent, RateEvent, RetryEvent
from inkit_async.testing import FakeInkit

# 1. OpenTelemetry, set up once when the app starts. In production: a BatchSpanProcessor
#    with an OTLP exporter, and a PeriodicExportingMetricReader.
exporter = InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(tracer_provider)
reader = InMemoryMetricReader()
# The SDK's default histogram buckets (0 to 10,000) suit milliseconds; this one is seconds.
seconds = View(
    instrument_name="http.client.request.duration",
    aggregation=ExplicitBucketHistogramAggregation(
        (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
    ),
)
metrics.set_meter_provider(MeterProvider(metric_readers=[reader], views=[seconds]))

# 2. Without OpenTelemetry: the same events through on_event, counted with labels the
#    way a Prometheus counter is (or logged as fields, or sent as Sentry breadcrumbs).
counters: Counter[tuple[str, str]] = Counter()


def count(event: ClientEvent) -> None:
    match event:
        case RetryEvent():
            counters["inkit_retries_total", str(event.status_code or event.exception)] += 1
        case PauseEvent():
            counters["inkit_pauses_total", "outage" if event.outage else "retry_after"] += 1
        case RateEvent():
            counters["inkit_rate_cuts_total", str(event.status_code)] += 1


def show(span: ReadableSpan, spans: list[ReadableSpan], depth: int = 0) -> None:
    """Print *span* and, indented under it, the spans whose parent it is."""
    attributes = dict(span.attributes or {})
    print(f"{'  ' * depth}{span.name} [{span.kind.name}] {attributes}")
    for event in span.events:
        print(f"{'  ' * depth}  event {event.name!r} {dict(event.attributes or {})}")
    own = span.context.span_id if span.context else None
    for child in spans:
        if child.parent is not None and child.parent.span_id == own:
            show(child, spans, depth + 1)


async def main() -> None:
    fake = FakeInkit(seed=1)
    ids = [fake.add_batch(name=f"invoices {n}") for n in range(3)]
    fake.fail_next(1, 503)  # the first answer is a 503, so one lookup is retried
    async with fake.client(on_event=count) as client:
        await client.batch.get_many(ids)

    spans = sorted(exporter.get_finished_spans(), key=lambda span: span.start_time or 0)
    for root in (span for span in spans if span.parent is None):
        show(root, spans)

    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    if isinstance(point, HistogramDataPoint):
                        value = f"count={point.count} sum={point.sum:.4f} {metric.unit}"
                    elif isinstance(point, NumberDataPoint):
                        value = f"{point.value} {metric.unit}"
                    else:
                        continue
                    print(metric.name, dict(point.attributes or {}), value)

    print("on_event counters:", dict(counters))


asyncio.run(main())

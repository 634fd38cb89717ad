"""OpenTelemetry traces and metrics, by the stable HTTP client semantic conventions.

Installed with the ``otel`` extra (``opentelemetry-api`` only); ``Telemetry`` is one of
the engine's observers (``_observe.py``), made only when that package is there. The SDK
emits nothing unless the application has set a ``TracerProvider`` (for spans) or a
``MeterProvider`` (for metrics) through the OpenTelemetry SDK. Until then, tracing costs
a look at the global providers once a second, and metrics go to the instruments of
OpenTelemetry's stand-in meter provider, which drop each measurement at once and pass
them on from the moment a provider is set. Then it emits:

- a span per call that sends (``inkit batch.get``, ``batch.list`` for each page,
  ``batch.create``, and one ``batch.get_many`` over its lookups; a cache hit sends
  nothing and has none), with the batch id and the outcome, and an event on it for
  every wait: retry backoff, a 429 or outage pause, a rate cut, a wait of over 1 ms in
  the throttle;
- a CLIENT span per attempt, child of the call's span, named by the HTTP method, with
  ``http.request.method``, ``server.address``, ``server.port``, ``url.full``,
  ``http.response.status_code``, ``error.type`` (the status code as a string, or the
  exception's type name) with status ERROR, and ``http.request.resend_count`` on
  retries; the W3C ``traceparent`` header of each request is its context, through the
  globally configured propagator;
- the histogram ``http.client.request.duration`` (seconds) with the convention's
  attributes, and the counters ``inkit.client.retries``, ``inkit.client.pauses`` and
  ``inkit.client.throttle.waits``.

The token never reaches an attribute: URLs and paths carry ids, not credentials.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

import httpx
from opentelemetry import metrics, propagate, trace

from ._events import PauseEvent, RateEvent, RetryEvent
from ._observe import NO_HEADERS, Observer
from ._version import __version__

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping

    from ._events import ClientEvent

__all__ = ["AttemptSpan", "Telemetry"]

T = TypeVar("T")


_SCOPE: Final = "inkit_async"
#: Each kind of event as an event on the call's span: its name, and its attributes, each
#: the event's field named beside it (``inkit.delay_s`` is ``RetryEvent.delay``).
_SPAN_EVENTS: Final[Mapping[type[ClientEvent], tuple[str, Mapping[str, str]]]] = {
    RetryEvent: (
        "retry backoff",
        {"inkit.attempt": "attempt", "inkit.delay_s": "delay", "inkit.reason": "reason"},
    ),
    PauseEvent: (
        "pause",
        {"inkit.pause_s": "seconds", "inkit.reason": "reason", "inkit.outage": "outage"},
    ),
    RateEvent: ("rate cut", {"inkit.rate": "rate"}),
}
#: Seconds between two looks at the global providers.
_RECHECK: Final = 1.0


class _Instruments:
    """The metric instruments of one meter provider, shared by every client."""

    __slots__ = ("duration", "pauses", "provider", "retries", "waits")

    #: The instruments of the last global provider asked for (see ``of``).
    _last: ClassVar[_Instruments | None] = None

    @classmethod
    def of(cls, provider: metrics.MeterProvider) -> _Instruments:
        """The instruments on *provider*, made once for every client.

        While no ``MeterProvider`` is set, *provider* is OpenTelemetry's stand-in: it
        keeps each meter it hands out (to give it real instruments once one is set), so
        a meter per client would be kept for good. The global provider changes once
        (set once, by the API's rule), so one slot holds it.
        """
        last = cls._last
        if last is None or last.provider is not provider:
            last = cls._last = cls(provider)
        return last

    def __init__(self, provider: metrics.MeterProvider) -> None:
        """Make the instruments on a meter of *provider*."""
        self.provider = provider
        meter = provider.get_meter(_SCOPE, __version__)
        self.duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
        )
        self.retries = meter.create_counter(
            "inkit.client.retries", unit="{retry}", description="Retries the client made."
        )
        self.pauses = meter.create_counter(
            "inkit.client.pauses",
            unit="{pause}",
            description="Pauses of every caller (429 Retry-After, outages).",
        )
        self.waits = meter.create_counter(
            "inkit.client.throttle.waits",
            unit="{wait}",
            description="Attempts that waited in the throttle before they were sent.",
        )


class Telemetry(Observer):
    """Where spans and metrics go for one client; decides per call whether they go at all.

    An observer (``_observe.py``) that every engine of the client shares.
    """

    __slots__ = (
        "_meter_provider",
        "_meters",
        "_tracer",
        "_tracer_provider",
        "_until",
        "server",
    )

    def __init__(self, root: str) -> None:
        """Report requests to the API at *root* (its host and port are span attributes)."""
        self._tracer_provider: object = None
        self._tracer: Any = None
        meters = metrics.get_meter_provider()
        self._meter_provider: object = meters
        self._meters = _Instruments.of(meters)
        self._until = 0.0  # when to look at the global providers again
        url = httpx.URL(root)
        self.server: dict[str, str | int] = {
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
        }

    def _look(self) -> None:
        """Look at the global providers (``_fresh`` calls this once a second).

        At most once a second (opentelemetry reads the environment each time while none
        is set): a ``TracerProvider`` set later is used within a second. A
        ``MeterProvider`` set later gets the measurements at once, through the stand-in's
        instruments; within a second the client records on the provider's own.
        """
        self._until = time.monotonic() + _RECHECK
        tracers = trace.get_tracer_provider()
        if isinstance(tracers, trace.ProxyTracerProvider):
            self._tracer = None
        elif tracers is not self._tracer_provider:
            self._tracer_provider = tracers
            self._tracer = tracers.get_tracer(_SCOPE, __version__)
        meters = metrics.get_meter_provider()
        if meters is not self._meter_provider:
            self._meter_provider = meters
            self._meters = _Instruments.of(meters)

    def tracer(self) -> Any:  # noqa: ANN401 - opentelemetry's Tracer
        """The tracer to use now, or ``None`` when no ``TracerProvider`` is set."""
        if time.monotonic() >= self._until:
            self._look()
        return self._tracer

    def meters(self) -> _Instruments:
        """The instruments to record with now (the stand-in's until a provider is set)."""
        if time.monotonic() >= self._until:
            self._look()
        return self._meters

    def traced(
        self, operation: str, attributes: Mapping[str, str | int], work: Awaitable[T]
    ) -> Awaitable[T]:
        """*work* inside the span of one public call (``inkit batch.get``), if tracing.

        The span is the current one while the call runs, so each attempt's span is its
        child, and so is each event. Its ``inkit.outcome`` is ``ok``, or the type of the
        error the call raised (also its ``error.type``, with status ERROR). Without a
        ``TracerProvider``, *work* itself: no span, and no coroutine around it.
        """
        tracer = self.tracer()
        if tracer is None:
            return work
        return self._in_span(tracer, operation, attributes, work)

    @staticmethod
    async def _in_span(
        tracer: Any,  # noqa: ANN401 - opentelemetry's Tracer
        operation: str,
        attributes: Mapping[str, str | int],
        work: Awaitable[T],
    ) -> T:
        span = tracer.start_span(f"inkit {operation}", attributes=attributes)
        with trace.use_span(
            span, end_on_exit=True, record_exception=False, set_status_on_exception=False
        ):
            try:
                result = await work
            except BaseException as error:
                name = type(error).__name__
                span.set_attribute("inkit.outcome", name)
                span.set_attribute("error.type", name)
                span.set_status(trace.Status(trace.StatusCode.ERROR, name))
                raise
            span.set_attribute("inkit.outcome", "ok")
            return result

    def attempt_started(self, method: str, url: str, path: str, number: int) -> AttemptSpan:
        """Start the CLIENT span (if tracing) of attempt *number*; its end records the duration.

        Always a watch, with or without a ``TracerProvider``: the duration goes to an
        instrument (the stand-in's while no ``MeterProvider`` is set).
        """
        del path  # the span has the full URL
        if time.monotonic() >= self._until:  # one look for both
            self._look()
        return AttemptSpan(
            self, self._tracer, self._meters, method=method, url=url, resends=number - 1
        )

    def event(self, event: ClientEvent) -> None:
        """Record an event on the current call's span, and count it."""
        instruments = self.meters()
        if isinstance(event, RetryEvent):
            instruments.retries.add(1, {"http.request.method": event.method})
        elif isinstance(event, PauseEvent):
            instruments.pauses.add(1, {"inkit.outage": event.outage})
        if self.tracer() is not None:
            name, fields = _SPAN_EVENTS[type(event)]
            attributes = {key: getattr(event, field) for key, field in fields.items()}
            trace.get_current_span().add_event(name, attributes)

    def throttle_wait(self, seconds: float) -> None:
        """Record that an attempt waited *seconds* in the throttle before it was sent."""
        self.meters().waits.add(1)
        if self.tracer() is not None:
            trace.get_current_span().add_event("throttle wait", {"inkit.wait_s": seconds})


class AttemptSpan:
    """One attempt's CLIENT span and duration: an ``AttemptWatch`` (``_observe.py``)."""

    __slots__ = ("_attributes", "_instruments", "_span")

    def __init__(
        self,
        telemetry: Telemetry,
        tracer: Any,  # noqa: ANN401 - opentelemetry's Tracer
        instruments: _Instruments,
        *,
        method: str,
        url: str,
        resends: int,
    ) -> None:
        """Start the span now."""
        self._attributes: dict[str, str | int] = {
            "http.request.method": method,
            **telemetry.server,
        }
        self._instruments = instruments
        self._span: Any = None
        if tracer is not None:
            attributes: dict[str, str | int] = {**self._attributes, "url.full": url}
            if resends:
                attributes["http.request.resend_count"] = resends
            self._span = tracer.start_span(
                method, kind=trace.SpanKind.CLIENT, attributes=attributes
            )

    def headers(self) -> Mapping[str, str]:
        """The propagation headers (``traceparent``) that carry this attempt's context."""
        if self._span is None:
            return NO_HEADERS
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(self._span))
        return carrier

    def ended(self, status: int | None, failure: str | None, elapsed: float) -> None:
        """End with the answer's *status*, or the *failure*'s name; record *elapsed*.

        ``error.type`` is the failure's name, or the status as a string from 400 up.
        """
        error = failure if status is None else str(status) if status >= 400 else None
        attributes = self._attributes
        if status is not None:
            attributes["http.response.status_code"] = status
        if error is not None:
            attributes["error.type"] = error
        self._instruments.duration.record(elapsed, attributes)
        span = self._span
        if span is not None:
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if error is not None:
                span.set_attribute("error.type", error)
                span.set_status(trace.Status(trace.StatusCode.ERROR, error))
            span.end()

    def interrupted(self, failure: str, elapsed: float) -> None:
        """End as cut short by *failure* (``CancelledError``): an error, with no status."""
        self.ended(None, failure, elapsed)

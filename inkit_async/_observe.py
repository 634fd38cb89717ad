"""Observers: what the engine tells at fixed points of a call, to whoever listens.

The engine sends, decides and repeats; it reports what happens to a tuple of observers
made once per engine (``observers_for`` in ``_state.py``), and knows none of them by name. Three are
peers behind the one interface, called in this order:

- logging (``_log.py``): each attempt at ``DEBUG``, each event at ``INFO``;
- OpenTelemetry (``_tracing.py``, only with ``opentelemetry-api``): the call's span,
  each attempt's CLIENT span and its duration, the events and the throttle's waits;
- the ``on_event`` callback (``EventCallbackObserver``, here): each event, and a
  callback that raises is logged and ignored.

The fixed points, in the order of a call:

1. ``traced``: the call starts; an observer may wrap the work (a span around it).
2. ``throttle_wait``: its attempt waited over ``NOTABLE_WAIT`` for the throttle's leave.
3. ``attempt_started``: an attempt is about to be sent; an observer that wants to see
   it end returns an ``AttemptWatch``, whose ``headers`` go on the request
   (``traceparent``) and which hears ``ended`` (a status, or a failure's name, and the
   seconds it took) or ``interrupted`` (cancelled, or the client closed under it).
4. ``event``: a ``RateEvent`` or ``PauseEvent`` the answer caused, then a
   ``RetryEvent`` before the call sleeps and goes to 2.

A hook nobody overrides costs nothing: the engine calls ``traced`` and
``attempt_started`` only on the observers that override them (``hooked``), and an
observer with nothing to watch this time returns ``None`` (the log, below ``DEBUG``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

from ._events import PauseEvent, RateEvent, RetryEvent
from ._exceptions import failure_name
from ._policy import Answer
from ._wire import Reply

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping

    from ._events import ClientEvent, EventCallback
    from ._policy import Attempt, Outcome, Retry
    from ._throttle import Change

__all__ = [
    "NOTABLE_WAIT",
    "NO_HEADERS",
    "AttemptWatch",
    "EventCallbackObserver",
    "Observer",
    "change_events",
    "hooked",
    "retry_event",
    "summary",
]

T = TypeVar("T")

logger: Final = logging.getLogger("inkit_async")

#: A wait in the throttle shorter than this is not told to observers (seconds).
NOTABLE_WAIT: Final = 0.001

#: The headers of a watch that adds none.
NO_HEADERS: Final[Mapping[str, str]] = {}


class AttemptWatch(Protocol):
    """What one observer keeps of one attempt, from its start to its end."""

    def headers(self) -> Mapping[str, str]:
        """Headers to send with the attempt (``traceparent``), or none."""
        ...

    def ended(self, status: int | None, failure: str | None, elapsed: float) -> None:
        """The attempt came back: an answer's *status*, or a *failure*'s name (one is set).

        *elapsed* is the attempt's own time in seconds, from just before it was sent to
        its outcome being built; waiting for a slot or for the throttle is not in it.
        """
        ...

    def interrupted(self, failure: str, elapsed: float) -> None:
        """The attempt was cut short by *failure* (``CancelledError``): the call ends too."""
        ...


class Observer:
    """The interface the engine reports through; each hook does nothing unless overridden."""

    __slots__ = ()

    def traced(
        self, operation: str, attributes: Mapping[str, str | int], work: Awaitable[T]
    ) -> Awaitable[T]:
        """The *work* of one public call (``batch.get``), or something that awaits it.

        Args:
            operation: The call's name (``batch.get``, ``batch.get_many``).
            attributes: What identifies it (``inkit.batch.id``); ids, never credentials.
            work: The call itself, not started yet.
        """
        del operation, attributes
        return work

    def throttle_wait(self, seconds: float) -> None:
        """An attempt waited *seconds* (over ``NOTABLE_WAIT``) in the throttle."""

    def attempt_started(self, method: str, url: str, path: str, number: int) -> AttemptWatch | None:
        """Attempt *number* (from 1) of ``method path`` is about to go to *url*.

        Returns:
            A watch to hear how it ends, or ``None`` (the default): nothing to hear.
        """
        del method, url, path, number
        return None

    def event(self, event: ClientEvent) -> None:
        """A retry, a pause or a rate cut (``_events.py``), as it happens."""


class EventCallbackObserver(Observer):
    """Hands each event to the user's ``on_event`` callback; an exception is only logged."""

    __slots__ = ("_callback",)

    def __init__(self, callback: EventCallback) -> None:
        """Call *callback* with each event."""
        self._callback = callback

    def event(self, event: ClientEvent) -> None:
        """Call the callback; a broken metrics hook must not fail the call it observes."""
        try:
            self._callback(event)
        except Exception:
            logger.exception("The on_event callback raised; the call goes on")


def hooked(observers: tuple[Observer, ...], hook: str) -> tuple[Observer, ...]:
    """Those of *observers* whose *hook* does something: the ones that override it."""
    default = getattr(Observer, hook)
    return tuple(observer for observer in observers if getattr(type(observer), hook) is not default)


def summary(outcome: Reply | Outcome) -> tuple[int | None, str | None]:
    """An attempt's outcome as watches hear it: ``(status, None)`` or ``(None, failure)``."""
    if isinstance(outcome, Reply):
        return outcome.status, None
    if isinstance(outcome, Answer):
        return outcome.response.status_code, None
    return None, failure_name(outcome.error)


def change_events(change: Change, attempt: Attempt, outcome: Outcome) -> list[ClientEvent]:
    """The events of a throttle's ``Change`` after *outcome*: a rate cut, then a pause."""
    status, failure = summary(outcome)
    events: list[ClientEvent] = []
    if change.rate is not None:
        events.append(
            RateEvent(
                method=attempt.method,
                path=attempt.path,
                rate=change.rate,
                previous_rate=change.previous_rate,
                status_code=status,
            )
        )
    if change.pause:
        what = failure if status is None else str(status)
        reason = (
            f"{what}: the throttle pauses, then sends one probe"
            if change.outage
            else f"{what} with Retry-After {change.pause:g}"
        )
        events.append(
            PauseEvent(
                method=attempt.method,
                path=attempt.path,
                seconds=change.pause,
                reason=reason,
                status_code=status,
                outage=change.outage,
            )
        )
    return events


def retry_event(attempt: Attempt, retry: Retry, number: int) -> RetryEvent:
    """The event of retry *number* (1 for the first), which follows *attempt*.

    The number counts every retry of the call; ``attempt.retries`` counts only those that
    count against ``max_retries`` (see ``Attempt.refusal_answered``).
    """
    return RetryEvent(
        method=attempt.method,
        path=attempt.path,
        attempt=number,
        delay=retry.delay,
        reason=retry.reason,
        status_code=retry.status_code,
        exception=retry.exception,
    )

"""What the client does besides sending, as data: retries, pauses, rate changes.

Each event is a frozen record. The client hands it to the ``on_event`` callback, if one
was given, and logs it with the record under ``extra={"inkit_event": event}``, so a
test, a metrics exporter or a structlog processor reads fields instead of parsing
message text (the way stamina's ``RetryDetails`` works).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import attrs

__all__ = ["ClientEvent", "EventCallback", "PauseEvent", "RateEvent", "RetryEvent"]


@attrs.frozen(kw_only=True)
class RetryEvent:
    """A call will be sent again after *delay* seconds.

    Emitted once per retry, after the attempt that failed and before the wait.
    """

    method: str
    """The HTTP method of the call (``GET``, ``POST``)."""
    path: str
    """The path below ``base_url``, percent-encoded as sent (``/batch/rb_1``)."""
    attempt: int
    """The number of the attempt that failed, counting from 1."""
    delay: float
    """Seconds the call waits before its next attempt (``Retry-After`` or backoff)."""
    reason: str
    """Why, in words: ``503 Service Unavailable``, ``GET /batch/x timed out``."""
    status_code: int | None = None
    """The HTTP status that caused the retry, or ``None`` for a transport failure."""
    exception: str | None = None
    """The transport failure's type name (``ConnectError``), or ``None`` for a status."""


@attrs.frozen(kw_only=True)
class PauseEvent:
    """Every call of the client (and of its variants) holds back for *seconds*.

    Emitted when a 429's ``Retry-After`` starts a pause, and when the throttle pauses
    on its own: for an outage (a run of 502/503/504 answers or transport failures), or
    after its probe was refused. Either way no request leaves until the pause is over;
    then one probe goes first. Answers to requests sent before the pause began start
    none of their own (with ``throttle=False``: an event when a ``Retry-After`` starts or
    lengthens the pause).
    """

    method: str
    """The HTTP method of the call whose answer started the pause."""
    path: str
    """The path of that call."""
    seconds: float
    """Length of the pause, from when the answer arrived."""
    reason: str
    """Why, in words: ``429 with Retry-After 1``, ``503: the throttle pauses, then ...``."""
    status_code: int | None = 429
    """The status that started the pause, or ``None`` for a transport failure."""
    outage: bool = False
    """Whether the throttle chose the pause (an outage) rather than the server."""


@attrs.frozen(kw_only=True)
class RateEvent:
    """The throttle cut its sending rate after a refusal (429) or an outage.

    The rate then grows back by itself as requests succeed; read the current one from
    ``client.throttle.state.rate``.
    """

    method: str
    """The HTTP method of the call whose answer caused the cut."""
    path: str
    """The path of that call."""
    rate: float
    """The new sending rate, in requests per second."""
    previous_rate: float | None
    """The rate before the cut; ``None`` when no rate applied (the client sent freely)."""
    status_code: int | None
    """The status that caused the cut, or ``None`` for a transport failure."""


ClientEvent: TypeAlias = RetryEvent | PauseEvent | RateEvent
"""Any event the client reports through ``on_event``."""

EventCallback: TypeAlias = Callable[[ClientEvent], object]
"""The type of ``AsyncInkit(on_event=...)``: called with each event, return ignored."""

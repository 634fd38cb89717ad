"""What the client does besides sending, as data: retries and pauses.

Each event is a frozen record. The client hands it to the ``on_event`` callback, if one
was given, and logs it with the record under ``extra={"inkit_event": event}``, so a
test, a metrics exporter or a structlog processor reads fields instead of parsing
message text (the way stamina's ``RetryDetails`` works).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import attrs

__all__ = ["ClientEvent", "EventCallback", "PauseEvent", "RetryEvent"]


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

    Emitted when a 429 carries a ``Retry-After`` the client honours: no request leaves
    the client until the pause is over, whether or not the call that got it retries.
    """

    method: str
    """The HTTP method of the call that was answered with 429."""
    path: str
    """The path of that call."""
    seconds: float
    """Length of the pause, from when the answer arrived."""
    status_code: int = 429
    """The status that asked for the pause."""


ClientEvent: TypeAlias = RetryEvent | PauseEvent
"""Any event the client reports through ``on_event``."""

EventCallback: TypeAlias = Callable[[ClientEvent], object]
"""The type of ``AsyncInkit(on_event=...)``: called with each event, return ignored."""

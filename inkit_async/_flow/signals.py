"""The values flow control trades with the engine: permits, signals, changes, snapshots."""

from __future__ import annotations

import enum
from typing import Final

import attrs

__all__ = [
    "Change",
    "Permit",
    "Signal",
    "ThrottleState",
    "ThrottleTimeoutError",
    "signal_of",
]


class Signal(enum.Enum):
    """What one answer means for flow control (the engine classifies outcomes)."""

    OK = enum.auto()
    """The server handled the request (any status but 429 and 502/503/504)."""
    THROTTLED = enum.auto()
    """429: the server refused the request for the rate."""
    OVERLOADED = enum.auto()
    """502/503/504 or a transport failure: the server, or the way to it, is failing."""


#: Statuses that say the server, or a proxy in front of it, is failing.
_OVERLOAD_STATUSES: Final = frozenset({502, 503, 504})


def signal_of(status_code: int | None) -> Signal:
    """Classify an answer's status (``None``: no answer, a transport failure)."""
    if status_code is None or status_code in _OVERLOAD_STATUSES:
        return Signal.OVERLOADED
    if status_code == 429:
        return Signal.THROTTLED
    return Signal.OK


class ThrottleTimeoutError(Exception):
    """A caller waited ``max_wait`` seconds for a permit without getting one (private)."""


class Permit:
    """Leave to send one request; handed back to the throttle with what happened."""

    __slots__ = ("epoch", "probe", "seq")

    def __init__(self, epoch: int, seq: int = -1, *, probe: bool = False) -> None:
        """A permit of *epoch* for the *seq*-th request sent (``-1``: not counted)."""
        self.epoch = epoch
        """The throttle's epoch when it was given: answers to requests sent before the
        last cut or pause do not cut again."""
        self.seq = seq
        """Which request this is, counting every request the throttle let go."""
        self.probe = probe
        """Whether this request is the probe after a pause."""

    def __repr__(self) -> str:
        """Show the fields."""
        return f"Permit(epoch={self.epoch}, seq={self.seq}, probe={self.probe})"


@attrs.frozen(kw_only=True)
class ThrottleState:
    """A snapshot of a throttle, for logs and metrics (``client.throttle.state``)."""

    rate: float | None
    """Requests per second the throttle lets through now; ``None``: no limit applies."""
    rate_limit: float | None
    """The configured ``rate_limit``, if any."""
    paused_for: float
    """Seconds until the current pause ends (0 when there is none)."""
    probing: bool
    """Whether the throttle waits for a probe before letting the others go."""
    waiting: int
    """Calls queued in the throttle now."""
    throttled: int
    """429 answers seen."""
    overloaded: int
    """502/503/504 answers and transport failures seen."""
    pauses: int
    """Pauses so far (``Retry-After`` and outages)."""
    cuts: int
    """Times the sending rate was cut."""
    retry_tokens: float
    """Retries the budget allows now."""
    retries_refused: int
    """Retries the budget refused (their calls failed with their last error)."""


@attrs.frozen(kw_only=True)
class Change:
    """What a piece of feedback changed, for the engine to report as events."""

    pause: float = 0.0
    """A pause that began: its length in seconds."""
    outage: bool = False
    """Whether the throttle chose the pause (an outage, a refused probe)."""
    rate: float | None = None
    """The new sending rate after a cut."""
    previous_rate: float | None = None
    """The rate before the cut (``None``: none was set)."""

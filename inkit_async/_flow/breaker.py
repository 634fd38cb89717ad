"""Pauses, and the probe after each: a circuit breaker as an explicit state machine.

States: **closed** (requests go, paced by the rate if one is set), **paused** until a
time (nothing goes), **probing** (the pause is over; one request, the probe, goes and
the others wait for its answer). A pause comes from a 429's ``Retry-After`` or from an
outage (failures in a row, or a refused probe), whose length the breaker chooses: 0.25 s,
doubling to 4 s, less up to 10% jitter. A probe that succeeds closes the breaker; one
that fails pauses it again.
"""

from __future__ import annotations

import enum
import math
from typing import Final

__all__ = ["Breaker", "Gate"]

#: The outage pause: first length, and the longest it doubles to.
OUTAGE_PAUSE: Final = 0.25
OUTAGE_PAUSE_MAX: Final = 4.0


class Gate(enum.Enum):
    """What the breaker says to a request that would leave now."""

    GO = enum.auto()
    """Closed: go (paced by the rate, if any)."""
    PROBE = enum.auto()
    """The pause is over: go as the probe."""
    WAIT = enum.auto()
    """Paused, or the probe is out: wait."""


class Breaker:
    """The breaker's state; every method takes the time from its caller."""

    __slots__ = ("failures", "held_since", "outage_pauses", "paused_until", "probe_out", "probing")

    def __init__(self) -> None:
        """Start closed."""
        self.paused_until = 0.0
        """When the current pause ends (0: none)."""
        self.probing = False
        """Whether the pause is over and the probe's answer is awaited."""
        self.probe_out = False
        """Whether the probe has left."""
        self.held_since: float | None = None
        """When the breaker last left the closed state (``None``: it is closed)."""
        self.outage_pauses = 0
        """Outage pauses since the breaker last closed: each doubles the next."""
        self.failures = 0
        """Failures in a row (502/503/504, transport failures), across all callers."""

    @property
    def closed(self) -> bool:
        """Whether requests go freely: no pause, no probe."""
        return not (self.paused_until or self.probing)

    def admit(self, now: float) -> Gate:
        """Whether a request may leave at *now*, and as what."""
        if self.paused_until:
            if now < self.paused_until:
                return Gate.WAIT
            self.paused_until = 0.0
            self.probing = True
        if self.probing:
            if self.probe_out:
                return Gate.WAIT
            self.probe_out = True
            return Gate.PROBE
        return Gate.GO

    def due(self, now: float) -> float | None:
        """When waiting requests should look again, if the breaker holds them (else ``None``).

        ``math.inf`` while the probe is out: its answer lets them go.
        """
        if self.paused_until and now < self.paused_until:
            return self.paused_until
        if self.probing and self.probe_out:
            return math.inf
        return None

    def pause(self, now: float, seconds: float) -> None:
        """Hold every request back for *seconds* (a longer pause under way stays)."""
        self.paused_until = max(self.paused_until, now + seconds)
        if self.held_since is None:
            self.held_since = now
        self.probing = False
        self.probe_out = False

    def extend(self, now: float, seconds: float) -> None:
        """Make a pause under way last at least *seconds* from *now*; nothing if none is."""
        if self.paused_until:
            self.paused_until = max(self.paused_until, now + seconds)

    def outage_pause(self, now: float, jitter: float) -> float:
        """Pause for an outage: 0.25 s doubling to 4 s, less *jitter* (0 to 1) x 10%."""
        seconds = min(OUTAGE_PAUSE * 2.0**self.outage_pauses, OUTAGE_PAUSE_MAX)
        seconds *= 1.0 - 0.1 * jitter
        self.outage_pauses += 1
        self.pause(now, seconds)
        return seconds

    def probe_returned(self) -> None:
        """The probe was not sent after all (its caller was cancelled): another may go."""
        self.probe_out = False

    def close(self) -> None:
        """The probe succeeded: let everyone go."""
        self.probe_out = False
        self.probing = False
        self.held_since = None
        self.outage_pauses = 0
        self.failures = 0

    def fail(self) -> int:
        """Count a failure in a row; return how many there are now."""
        self.failures += 1
        return self.failures

    def succeed(self) -> None:
        """An answer the server handled ends a run of failures."""
        self.failures = 0

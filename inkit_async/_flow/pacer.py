"""Pacing at a rate: GCRA, the virtual-scheduling form of a token bucket of size one."""

from __future__ import annotations

from typing import Final

__all__ = ["TOLERANCE", "Pacer"]

#: How early (seconds) a paced request may leave: timers are not finer than this.
TOLERANCE: Final = 0.001


class Pacer:
    """Lets requests leave evenly spaced at a rate that may change between requests."""

    __slots__ = ("tat",)

    def __init__(self) -> None:
        """Let the first request go at once."""
        self.tat = 0.0
        """The theoretical arrival time: when the next request may leave."""

    def take(self, now: float, rate: float) -> bool:
        """Whether a request may leave at *now* at *rate*; if so, it is counted."""
        # The very moment `next_at` names, so that a timer set for it always finds the
        # slot free (tat - now > tolerance could round the other way, and spin).
        if now < self.tat - TOLERANCE:
            return False
        self.tat = max(self.tat, now) + 1.0 / rate
        return True

    @property
    def next_at(self) -> float:
        """When the next request may leave."""
        return self.tat - TOLERANCE

    def hold(self, now: float, rate: float) -> None:
        """The server's bucket is empty (it just refused): the next request waits its turn."""
        self.tat = now + 1.0 / rate

    def restart(self, now: float) -> None:
        """Let the next request go at once (a probe succeeded)."""
        self.tat = now

"""The retry budget: retries (other than after a 429) spend tokens that successes earn."""

from __future__ import annotations

__all__ = ["RetryBudget"]


class RetryBudget:
    """A token bucket of retries: each success earns *ratio*, up to *reserve*.

    Full at the start: a client that has seen no success yet may still retry
    *reserve* times. An outage therefore costs a bounded number of retries, however
    many callers fail at once.
    """

    __slots__ = ("ratio", "refused", "reserve", "tokens")

    def __init__(self, ratio: float, reserve: int) -> None:
        """Earn *ratio* per success, hold at most *reserve* (and start with it)."""
        self.ratio = ratio
        self.reserve = reserve
        self.tokens = float(reserve)
        """Retries the budget allows now."""
        self.refused = 0
        """Retries refused so far."""

    def earn(self) -> None:
        """A success: earn back a part of a retry."""
        self.tokens = min(self.reserve, self.tokens + self.ratio)

    def spend(self) -> bool:
        """Spend one retry; ``False`` (and counted) when less than one is left."""
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.refused += 1
        return False

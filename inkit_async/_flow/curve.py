"""The sending rate after a cut, as a function of time: CUBIC growth, or slow start.

A cut sets a rate below the rate the server refused. With an estimate of the server's
limit the rate grows back along a cubic curve, as TCP CUBIC and the AWS SDKs' adaptive
mode do: fast at first, flat near the refused rate, then probing above it. Without one
(a "blind" cut), it doubles every second, as TCP's slow start does, until the next
refusal brings an estimate. Once the curve is far above the refused rate, no limit is
near: the rate is released (``math.inf``), unless the user set a ``rate_limit``.
"""

from __future__ import annotations

import math
from typing import Final

import attrs

__all__ = ["MIN_RATE", "Curve", "cut"]

#: After a cut, send at this fraction of the rate the server is estimated to allow ...
BETA_ESTIMATED: Final = 0.9
#: ... or of the rate the client was sending at, when the answers allow no estimate.
BETA_BLIND: Final = 0.7
#: Seconds the cubic curve takes to climb back to the refused rate ...
CUBIC_K: Final = 3.0
#: ... plus this many times the pause a refusal cost (its ``Retry-After``), up to ...
PAUSE_K_FACTOR: Final = 10.0
#: ... this many seconds: a refusal that pauses every caller costs far more than one
#: request, so the curve stays near the refused rate longer and probes above it gently.
MAX_K: Final = 30.0
#: After a cut that cost a pause, send at this fraction of the estimated rate.
BETA_PAUSED: Final = 0.95
#: After a blind cut the rate doubles every this many seconds until the next refusal.
DOUBLING: Final = 1.0
#: Once the curve is this many times the refused rate, drop the rate: no limit is near.
RELEASE_FACTOR: Final = 32.0
#: Seconds after a cut beyond which the curves stay where they are: both have passed any
#: release or ``rate_limit`` long before (a doubling curve is 2**600 times its start), and
#: the doubling one would overflow a float after 1,024 doublings (a `rate_limit` keeps the
#: rate from being dropped, or a cut's time may come from another process through Redis).
HORIZON: Final = 600.0
#: The lowest sending rate (requests per second) flow control ever sets.
MIN_RATE: Final = 0.5


@attrs.frozen(kw_only=True)
class Curve:
    """A sending rate in requests per second, growing from a cut.

    A curve with no refused rate is flat: a known ``rate_limit`` before any refusal.
    """

    rate: float
    """The rate right after the cut."""
    refused: float = 0.0
    """The rate the server refused (0: a flat curve)."""
    blind: bool = False
    """Whether the cut had no estimate to go on (the curve doubles)."""
    cut_at: float = 0.0
    """When the curve starts, on the throttle's clock."""
    k: float = CUBIC_K
    """Seconds the cubic curve takes to climb back to the refused rate."""

    def at(self, now: float, rate_limit: float | None) -> float:
        """The rate at *now*: capped by *rate_limit*; ``math.inf`` once released."""
        rate = self.rate
        refused = self.refused
        if refused:
            elapsed = min(now - self.cut_at, HORIZON)
            if self.blind:
                # Nothing known of the limit: search for it fast, as TCP's slow start.
                rate *= 2.0 ** (elapsed / DOUBLING)
            else:
                # Near a known limit: K seconds after the cut the curve reaches the
                # refused rate, flat; then it climbs above it, slowly at first.
                t = elapsed - self.k
                scale = (1.0 - rate / refused) / self.k**3
                rate = refused * (1.0 + scale * t**3)
            if rate >= refused * RELEASE_FACTOR and rate_limit is None:
                return math.inf
        if rate_limit is not None:
            rate = min(rate, rate_limit)
        return max(rate, MIN_RATE)

    def restarted(self, now: float) -> Curve:
        """The same curve climbing again from its cut rate, from *now*."""
        return attrs.evolve(self, cut_at=now)


def cut(
    now: float,
    sending: float,
    estimate: float | None,
    rate_limit: float | None,
    *,
    pause: float = 0.0,
    previous: Curve | None = None,
) -> Curve:
    """The curve after a refusal at *now*.

    Args:
        now: When the cut happens.
        sending: The rate the client was sending at (its current rate, or what it sent
            lately when it had none).
        estimate: The server's rate fitted to the client's send times, if any.
        rate_limit: The user's known limit, if any: the curve never exceeds it.
        pause: The pause the refusal cost every caller (its ``Retry-After``), if any.
        previous: The curve the refusal cuts, if any.

    Three cases. An estimate at or below the sending rate says where the limit is: cut
    below it. One above it (or none) says only that the server refused while the client
    sent slower than it could allow: a burst from a quiet start, or requests bunched by
    a busy event loop. Then, if the last cut had estimated the limit, the curve climbs
    back to that limit (or to the new estimate, if lower) from below the sending rate;
    if nothing is known, the cut is blind and the rate doubles until the next refusal
    brings an estimate. (Taking the sending rate of a burst for the limit held a fan-out
    at three quarters of the limit for the 13 s a paused cut takes to climb back.)
    """
    beta = BETA_PAUSED if pause else BETA_ESTIMATED
    if estimate is not None and estimate <= sending:
        refused, rate, blind = estimate, beta * estimate, False
    elif previous is not None and previous.refused and not previous.blind:
        known = previous.refused if estimate is None else min(previous.refused, estimate)
        refused, rate, blind = max(sending, known), beta * sending, False
    else:
        refused, rate, blind = sending, BETA_BLIND * sending, True
    if rate_limit is not None:
        rate = min(rate, rate_limit)
    rate = max(rate, MIN_RATE)
    return Curve(
        rate=rate,
        refused=max(refused, rate),
        blind=blind,
        cut_at=now,
        k=min(CUBIC_K + PAUSE_K_FACTOR * pause, MAX_K),
    )

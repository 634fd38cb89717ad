"""Flow control: how fast the client sends, when it holds back, and how much it retries.

The engine asks the client's ``Throttle`` for a permit before every attempt and tells
it afterwards what the server said. The throttle keeps:

- **A sending rate**, absent until the server first refuses (a healthy client pays
  nothing but a clock read per request). A 429 to a request sent since the last cut
  cuts the rate below the rate the server is estimated to allow; successes grow it
  back along a cubic curve, as TCP CUBIC and the AWS SDKs' adaptive mode do: fast at
  first, flat near the refused rate, then probing above it. The estimate models the
  server as a token bucket and fits its rate to the client's own send times up to the
  refused request (``_flow/estimate.py``). When the answers allow no estimate (the
  first refusal after a quiet start), the rate is cut to 70% of what the client was
  sending and doubles every second until the next refusal, as TCP's slow start does.
  A known ``rate_limit`` caps the rate at all times.
- **Pauses**, with a half-open probe after each: a 429's ``Retry-After`` pauses every
  caller; so does a run of 502/503/504 answers or transport failures (an outage), for a
  time the throttle chooses (0.25 s, doubling to 4 s). When a pause ends, one request
  (the probe) goes; the others follow only once it has succeeded, paced by the rate.
- **A retry budget** for failures other than 429 (those the rate already answers):
  retries spend a token each, successes earn ``retry_ratio`` tokens, up to
  ``retry_reserve``. An outage therefore costs a few probes and a bounded number of
  retries, never ``1 + max_retries`` times the load.

``Throttle`` holds the options a user sets and the ``state`` snapshot; the machinery is
its ``Regulator`` (``_flow/regulator.py``), which the engine reaches through
``regulator_of`` and which composes the parts in ``_flow``. ``Unthrottled`` is
``throttle=False``; both provide ``FlowControl``, what the engine needs.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Final, Protocol

from ._flow.curve import MIN_RATE
from ._flow.regulator import Regulator
from ._flow.signals import (
    Change,
    Permit,
    Signal,
    ThrottleState,
    ThrottleTimeoutError,
    signal_of,
)
from ._flow.state import LocalState
from ._validate import check_int, check_number, check_optional_number, check_seconds

__all__ = [
    "Change",
    "FlowControl",
    "Permit",
    "Signal",
    "Throttle",
    "ThrottleState",
    "ThrottleTimeoutError",
    "Unthrottled",
    "regulator_of",
    "signal_of",
]

#: Each throttle's machinery, for as long as the throttle lives: the public class keeps
#: only what users set and read, so nothing of the machinery shows on it.
_REGULATORS: Final[weakref.WeakKeyDictionary[Throttle, Regulator]] = weakref.WeakKeyDictionary()


class Throttle:
    """The client's flow-control policy, on by default; see the "Rate limits" docs page.

    ``AsyncInkit()`` builds one with these defaults; pass your own to change them:
    ``AsyncInkit(throttle=Throttle(rate_limit=200))``. A client and its
    ``with_options`` variants share one throttle; so do clients you pass the same
    instance to (in one event loop), which then share its rate and pauses.

    Args:
        rate_limit: A limit you know, in requests per second: the client never sends
            faster, across all its callers, and adapts below it when refused.
        max_wait: Longest a call waits in the throttle, in seconds (default 60), over
            all its attempts together, whatever it waits for: a pause, the probe after
            one, or its turn at the sending rate. The call then fails with its last
            error, or ``APITimeoutError`` if it sent nothing. So a call lasts at most
            ``max_wait`` plus its attempts and their backoff delays, also against a
            server that refuses everything. A call that comes while the
            throttle has been paused (or waiting for its probe) for ``max_wait``
            already fails at once.
        retry_ratio: Retries (other than after a 429) the budget earns per success
            (default 0.2).
        retry_reserve: Most retries the budget holds, and what it starts with
            (default 200).
        outage_after: Failures in a row (502/503/504 or transport failures) after
            which the throttle pauses every caller and probes (default 5).

    Raises:
        TypeError: An option has the wrong type.
        ValueError: An option has an impossible value.
    """

    def __init__(
        self,
        *,
        rate_limit: float | None = None,
        max_wait: float = 60.0,  # literal defaults: the API reference shows them as written
        retry_ratio: float = 0.2,
        retry_reserve: int = 200,
        outage_after: int = 5,
    ) -> None:
        limit = check_optional_number("rate_limit", rate_limit, minimum=MIN_RATE)
        self.rate_limit = None if limit is None else float(limit)
        """The known limit in requests per second, or ``None``."""
        self.max_wait = float(check_seconds("max_wait", max_wait))
        """Longest a call waits for one permit, in seconds."""
        self.retry_ratio = float(check_number("retry_ratio", retry_ratio))
        """Retries the budget earns per success."""
        self.retry_reserve = check_int("retry_reserve", retry_reserve, minimum=1)
        """Most retries the budget holds."""
        self.outage_after = check_int("outage_after", outage_after, minimum=1)
        """Failures in a row that count as an outage."""
        _REGULATORS[self] = Regulator.of(self, LocalState())

    def __repr__(self) -> str:
        """Show the options and the current rate."""
        curve = regulator_of(self).curve
        rate = "none" if curve is None else f"{curve.rate:.1f}/s"
        return f"<Throttle rate={rate} rate_limit={self.rate_limit} max_wait={self.max_wait:g}>"

    @property
    def state(self) -> ThrottleState:
        """A snapshot of the current rate, pause and counters."""
        return regulator_of(self).snapshot()


def regulator_of(throttle: Throttle) -> Regulator:
    """The machinery behind *throttle*, which the engine (and a shared state) talk to."""
    return _REGULATORS[throttle]


class FlowControl(Protocol):
    """What the engine needs of flow control; a ``Regulator`` and ``Unthrottled`` provide it."""

    async def acquire(self) -> Permit:
        """Wait for leave to send one request."""
        ...

    def release(self, permit: Permit, signal: Signal, pause: float = 0.0) -> Change | None:
        """Take in what the server said to a request sent with *permit*."""
        ...

    def cancel(self, permit: Permit) -> None:
        """Hand back a permit that was not used."""
        ...

    def allow_retry(self) -> bool:
        """Spend one retry from the budget; ``False`` when none is left."""
        ...

    def is_current(self, permit: Permit) -> bool:
        """Whether no cut or pause came since *permit* was given."""
        ...

    def paused_for(self) -> float:
        """Seconds until the current pause ends (0: none)."""
        ...


class Unthrottled:
    """``AsyncInkit(throttle=False)``: no rate, no probes, no budget; pauses still apply.

    A 429's ``Retry-After`` still holds back every caller until it has passed (as
    before flow control existed); nothing else is limited.
    """

    __slots__ = ("_paused_until",)

    _PERMIT: Final = Permit(0)

    def __init__(self) -> None:
        """Start with no pause."""
        self._paused_until = 0.0

    async def acquire(self) -> Permit:
        """Return at once, or once the current pause has passed."""
        if self._paused_until:
            loop = asyncio.get_running_loop()
            while (remaining := self._paused_until - loop.time()) > 0:
                await asyncio.sleep(remaining)
            self._paused_until = 0.0
        return self._PERMIT

    def release(self, permit: Permit, signal: Signal, pause: float = 0.0) -> Change | None:
        """Start or extend a pause for a ``Retry-After``."""
        del permit, signal
        if not pause:
            return None
        until = asyncio.get_running_loop().time() + pause
        if until <= self._paused_until:
            return None
        self._paused_until = until
        return Change(pause=pause)

    def cancel(self, permit: Permit) -> None:
        """Nothing to hand back."""

    def paused_for(self) -> float:
        """Seconds until the current pause ends (0: none)."""
        if not self._paused_until:
            return 0.0
        return max(0.0, self._paused_until - asyncio.get_running_loop().time())

    def allow_retry(self) -> bool:
        """Every retry is allowed (``max_retries`` still bounds them)."""
        return True

    def is_current(self, permit: Permit) -> bool:
        """Always: nothing goes stale."""
        del permit
        return True

"""Where a throttle's decisions are shared: this process only, or a fleet through a store.

A ``Regulator`` (the throttle's machinery) makes every decision itself: when a request
may leave, what a refusal means, when to pause. Its ``FlowState`` is told what it
decided and asked the few things a shared store answers differently from one process:
how to pace at a rate (slots of a fleet-wide timeline, say), how to estimate the
server's rate (from the fleet's sends), what the fleet is sending. A store that learns
of another process's decision hands it to the regulator (``Regulator.adopt``,
``adopt_pause``, ``adopt_burst``). ``LocalState`` is the state of one process: every
hook answers from the regulator's own parts. ``inkit_async.redis`` holds the fleet's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .curve import Curve
    from .estimate import SendLog
    from .pacer import Pacer
    from .regulator import Regulator
    from .signals import Permit

__all__ = ["FlowState", "LocalState"]

#: What ``FlowState.take_paced`` returns for a send paced in this process alone.
LOCAL_SLOT = -1


class FlowState(Protocol):
    """The hooks a ``Regulator`` calls; see the module docstring."""

    def attach(self, regulator: Regulator) -> None:
        """Serve *regulator* (called once, when the throttle is made)."""
        ...

    def bind(self, api_token: str) -> None:
        """The client's token, when a client starts using the throttle."""
        ...

    async def admit(self, acquire: Callable[[], Awaitable[Permit]]) -> Permit:
        """Get a permit through *acquire*, and whatever else a request needs first."""
        ...

    def finished(self, permit: Permit) -> None:
        """The request of *permit* is over (answered, failed or never sent)."""
        ...

    def take_paced(self, now: float, rate: float, pacer: Pacer) -> int | None:
        """Whether a request paced at *rate* may leave at *now*: its slot, or ``None``."""
        ...

    def granted(self, seq: int, slot: int, now: float) -> None:
        """Request number *seq* left at *now* on *slot* (from ``take_paced``)."""
        ...

    def next_paced(self, pacer: Pacer) -> float:
        """When the next paced request may leave (``math.inf``: the state will wake it)."""
        ...

    def estimate(self, seq: int, log: SendLog, burst: float) -> float | None:
        """The server's rate from request *seq*'s refusal, or ``None``."""
        ...

    def sending_rate(self, at: float, log: SendLog, since: float | None = None) -> float:
        """What was being sent over the window up to *at*, in requests per second.

        With *since*: over the busiest such window ending from *since* to *at*.
        """
        ...

    def cut_made(self, curve: Curve, burst: float | None) -> None:
        """The regulator cut the rate to *curve*.

        *burst*: the server's bucket as the first refusal showed it (0: unknown), or
        ``None`` before any refusal (an outage's cut).
        """
        ...

    def paused(self, seconds: float) -> None:
        """The regulator paused every caller for *seconds*."""
        ...


class LocalState:
    """One process's state: every hook answers from the regulator's own parts."""

    __slots__ = ()

    def attach(self, regulator: Regulator) -> None:
        """Nothing to keep."""

    def bind(self, api_token: str) -> None:
        """Nothing of the token is needed."""

    async def admit(self, acquire: Callable[[], Awaitable[Permit]]) -> Permit:
        """Just the permit."""
        return await acquire()

    def finished(self, permit: Permit) -> None:
        """Nothing to give back."""

    def take_paced(self, now: float, rate: float, pacer: Pacer) -> int | None:
        """The regulator's pacer decides."""
        return LOCAL_SLOT if pacer.take(now, rate) else None

    def granted(self, seq: int, slot: int, now: float) -> None:
        """Nothing to remember: the send log has it."""

    def next_paced(self, pacer: Pacer) -> float:
        """The pacer's next time."""
        return pacer.next_at

    def estimate(self, seq: int, log: SendLog, burst: float) -> float | None:
        """From this process's own send times."""
        return log.estimate(seq, burst)

    def sending_rate(self, at: float, log: SendLog, since: float | None = None) -> float:
        """This process's own sending rate."""
        return log.sending_rate(at, since)

    def cut_made(self, curve: Curve, burst: float | None) -> None:
        """Nobody else to tell."""

    def paused(self, seconds: float) -> None:
        """Nobody else to tell."""

"""Flow control: how fast the client sends, when it holds back, and how much it retries.

The engine asks the client's ``Throttle`` for a permit before every attempt and tells
it afterwards what the server said. The throttle keeps:

- **A sending rate**, absent until the server first refuses (a healthy client pays
  nothing but a clock read per request). A 429 to a request sent since the last cut
  cuts the rate below the rate the server is estimated to allow; successes grow it
  back along a cubic curve, as TCP CUBIC and the AWS SDKs' adaptive mode do: fast at
  first, flat near the refused rate, then probing above it. The estimate models the
  server as a token bucket and fits its rate to the client's own send times up to the
  refused request (``Throttle._estimate``). When the answers allow no estimate (the
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

The throttle composes the parts in ``_flow`` (the curve, the estimate and its send log,
the pacer, the breaker, the retry budget), which hold the state and the math and take the
time from the throttle; what it adds is the order of callers, their waits and the timer.

Waiting is the normal answer to pressure: callers queue in the throttle in order, and
only requests actually sent count as attempts. Every wait ends: a caller that has not got
its permit after ``max_wait`` seconds in the queue gives up, whatever holds it (a pause, a
probe, the sending rate, or a subclass's pacing that has not answered), and one that comes
while the throttle has been paused or probing for ``max_wait`` already gives up at once.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import math
import random
from typing import TYPE_CHECKING, Final, Protocol

import attrs

from ._constants import (
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_OUTAGE_RUN,
    DEFAULT_RETRY_RATIO,
    DEFAULT_RETRY_RESERVE,
)
from ._flow import curve
from ._flow.breaker import Breaker, Gate
from ._flow.budget import RetryBudget
from ._flow.curve import MIN_RATE, Curve
from ._flow.estimate import BURST_SPAN, SendLog
from ._flow.pacer import TOLERANCE, Pacer
from ._validate import check_int, check_number, check_seconds

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Change",
    "FlowControl",
    "Permit",
    "Signal",
    "Throttle",
    "ThrottleState",
    "ThrottleTimeoutError",
    "Unthrottled",
    "signal_of",
]

logger: Final = logging.getLogger("inkit_async")

#: A gap (seconds) without sends after which the server's bucket is taken to be full.
_IDLE_GAP: Final = 1.0
#: How early (seconds) a paced request may leave (the pacer's tolerance).
_TOLERANCE: Final = TOLERANCE
#: The lowest sending rate (requests per second) the throttle ever sets.
_MIN_RATE: Final = MIN_RATE


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
        max_wait: float = DEFAULT_MAX_RETRY_AFTER,
        retry_ratio: float = DEFAULT_RETRY_RATIO,
        retry_reserve: int = DEFAULT_RETRY_RESERVE,
        outage_after: int = DEFAULT_OUTAGE_RUN,
    ) -> None:
        limit = check_number("rate_limit", rate_limit, minimum=_MIN_RATE, allow_none=True)
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
        self._clock: Callable[[], float] | None = None
        # The parts (see `_flow`): the sending rate after a cut (None: none applies),
        # the pacing at it, pauses and probes, the send times the estimate reads, and
        # the retry budget.
        self._curve: Curve | None = None if self.rate_limit is None else Curve(rate=self.rate_limit)
        self._pacer = Pacer()
        self._breaker = Breaker()
        self._log = SendLog()
        self._retries = RetryBudget(self.retry_ratio, self.retry_reserve)
        self._epoch = 0
        # When a waiter last gave up at max_wait with no success since (None: not so).
        self._starved_at: float | None = None
        # The server's bucket, as its first refusal showed it (0: unknown), and the
        # requests of that first burst (numbers from, up to) whose late answers still count.
        self._burst = 0.0
        self._accepted_before_refusal = 0
        self._refused_once = False
        self._burst_seqs = (0, 0)
        # Waiting callers in order (with when they came), and the one timer for them.
        self._waiters: collections.deque[tuple[asyncio.Future[Permit], float]] = collections.deque()
        self._timer: asyncio.Handle | None = None
        # When that timer is due, on the loop's clock. Kept here, not read back from the
        # handle: uvloop returns a plain Handle, which has no when(), for a time already
        # passed.
        self._timer_at = 0.0
        self._counts = collections.Counter[str]()
        self._open = self._curve is None

    def __repr__(self) -> str:
        """Show the options and the current rate."""
        rate = "none" if self._curve is None else f"{self._curve.rate:.1f}/s"
        return f"<Throttle rate={rate} rate_limit={self.rate_limit} max_wait={self.max_wait:g}>"

    def bind(self, api_token: str) -> None:
        """Called by ``AsyncInkit`` with its API token when it starts using the throttle.

        A ``Throttle`` keeps everything in this process and needs nothing of the token; a
        ``RedisThrottle`` names its Redis keys after a key derived from the token.
        """
        del api_token

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> ThrottleState:
        """A snapshot of the current rate, pause and counters."""
        now = self._clock() if self._clock else 0.0
        breaker = self._breaker
        return ThrottleState(
            rate=self._rate_at(now),
            rate_limit=self.rate_limit,
            paused_for=max(0.0, breaker.paused_until - now),
            probing=breaker.probing,
            waiting=sum(1 for future, _ in self._waiters if not future.done()),
            throttled=self._counts["throttled"],
            overloaded=self._counts["overloaded"],
            pauses=self._counts["pauses"],
            cuts=self._counts["cuts"],
            retry_tokens=self._retries.tokens,
            retries_refused=self._retries.refused,
        )

    def _now(self) -> float:
        if self._clock is None:
            self._clock = asyncio.get_running_loop().time
        return self._clock()

    def _update_open(self) -> None:
        self._open = self._curve is None and self._breaker.closed

    # -- permits -----------------------------------------------------------------------

    async def acquire(self) -> Permit:
        """Wait for leave to send one request now.

        Raises:
            ThrottleTimeoutError: No permit came within ``max_wait`` seconds, or the
                throttle had been paused (or waiting for its probe) for that long when
                the call came, or a caller gave up within the last ``max_wait`` seconds
                and no request has succeeded since.
        """
        now = self._now()
        if self._open:
            return self._grant(now)
        if not self._waiters:
            permit = self._take(now)
            if permit is not None:
                return permit
        held_since = self._breaker.held_since
        if held_since is not None and now - held_since >= self.max_wait:
            raise ThrottleTimeoutError
        starved_at = self._starved_at
        if starved_at is not None and now - starved_at < self.max_wait:
            # Callers are timing out here and nothing has got through since: this one
            # would queue behind them only to give up too. Failing it at once lets a
            # fan-out against a server that refuses everything end within about one
            # max_wait, not one max_wait per round of max_concurrency calls. Once a
            # max_wait has passed, callers queue again, and paced permits go out.
            raise ThrottleTimeoutError
        future: asyncio.Future[Permit] = asyncio.get_running_loop().create_future()
        self._waiters.append((future, now))
        self._schedule(now)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.cancel(future.result())  # given, then cancelled: hand it back
            raise

    def _grant(self, now: float, *, probe: bool = False) -> Permit:
        last = self._log.last
        if last is None or now - last > _IDLE_GAP:
            # After a quiet gap the server's bucket has refilled: a new stretch begins.
            self._start_span(now, bucket=self._burst)
        return Permit(self._epoch, self._log.record(now), probe=probe)

    def _take(self, now: float) -> Permit | None:
        """A permit for a request leaving now, or ``None`` when it must wait."""
        gate = self._breaker.admit(now)
        if gate is Gate.WAIT:
            return None
        if gate is Gate.PROBE:
            # The pause is over: the server's bucket refilled meanwhile, and the curve
            # climbs from its cut rate again from now, not from before the pause.
            self._start_span(now, bucket=self._burst)
            if self._curve is not None:
                self._curve = self._curve.restarted(now)
            rate = self._rate_at(now)
            if rate is not None:
                # The probe is a paced request like the others: the first to follow it
                # waits its turn (a server whose bucket holds one refuses it otherwise).
                self._pacer.hold(now, rate)
            return self._grant(now, probe=True)
        rate = self._rate_at(now)
        if rate is not None:
            return self._take_paced(now, rate)
        return self._grant(now)

    def _rate_at(self, now: float) -> float | None:
        """The sending rate at *now*, or ``None`` when none applies.

        The one place the rate is dropped once its curve passes the release point: every
        reader of the curve that would pace or lease by it asks here, so no path keeps
        pacing (or asking for slots) at an infinite rate that nothing ever releases.
        """
        if self._curve is None:
            return None
        rate = self._curve.at(now, self.rate_limit)
        if math.isinf(rate):
            self._curve = None
            self._update_open()
            return None
        return rate

    def _take_paced(self, now: float, rate: float) -> Permit | None:
        """A permit for a request paced at *rate* leaving now, or ``None`` when it must wait.

        The pacing itself (the pacer, on the event loop's clock); a subclass may pace
        otherwise, with ``_next_paced`` saying when to try again.
        """
        return self._grant(now) if self._pacer.take(now, rate) else None

    def _next_paced(self) -> float:
        """When the next paced request may leave (``math.inf``: the pacing will reschedule)."""
        return self._pacer.next_at

    def _schedule(self, now: float) -> None:
        """Arrange for the waiters to be let go when the next one may leave, or give up.

        The timer is never later than the moment the longest waiter's ``max_wait`` runs
        out, whatever holds the waiters: every wait ends, also when a subclass's pacing
        says it will reschedule (``math.inf``) and never does.
        """
        if self._timer is not None or not self._waiters:
            return
        when = self._due(now)
        if math.isfinite(when):
            self._set_timer(max(when, now))

    def _due(self, now: float) -> float:
        """When the waiters should next be looked at: never later than the expiry."""
        when = self._breaker.due(now)
        if when is None:
            when = self._next_paced() if self._rate_at(now) is not None else now
        return min(when, self._expiry())

    def _expiry(self) -> float:
        """When the longest waiter gives up (callers queue in order, so it goes first)."""
        head = next((since for future, since in self._waiters if not future.done()), None)
        return math.inf if head is None else head + self.max_wait

    def _dispatch(self) -> None:
        self._timer = None
        now = self._now()
        waiters = self._waiters
        while waiters:
            future, since = waiters[0]
            if future.done():
                waiters.popleft()
                continue
            try:
                permit = self._take(now)
            except Exception:
                # A bug here must not leave callers waiting for ever: each gives up as at
                # max_wait (its call fails with its last error), and the bug is logged.
                logger.exception("The throttle failed to hand out a permit; callers give up")
                for waiting, _ in waiters:
                    if not waiting.done():
                        waiting.set_exception(ThrottleTimeoutError())
                waiters.clear()
                break
            if permit is None:
                # Timers may fire a tick early: within the tolerance counts as the end.
                if now - since >= self.max_wait - _TOLERANCE:
                    waiters.popleft()
                    future.set_exception(ThrottleTimeoutError())
                    self._starved_at = now
                    continue
                break
            waiters.popleft()
            future.set_result(permit)
        self._schedule(now)

    def _reschedule(self) -> None:
        """The state changed: let the waiters go by the new rules.

        A timer already due no later than the new rules say stays: it looks at the
        waiters by the new rules when it fires. Only a later one is replaced, so the
        timer for the expiry always fires, however often the state changes (a
        background task that reschedules each time it ends cannot starve it).
        """
        if not self._waiters:
            return  # and no timer: only _schedule sets one, for waiters
        now = self._now()
        timer = self._timer
        if timer is None:
            self._schedule(now)
            return
        when = max(self._due(now), now)
        if when < self._timer_at:
            timer.cancel()
            self._set_timer(when)

    def _set_timer(self, when: float) -> None:
        self._timer = asyncio.get_running_loop().call_at(when, self._dispatch)
        self._timer_at = when

    # -- feedback ----------------------------------------------------------------------

    def cancel(self, permit: Permit) -> None:
        """Hand back a permit that was not used (its caller was cancelled)."""
        if permit.probe and permit.epoch == self._epoch and self._breaker.probe_out:
            self._breaker.probe_returned()
            self._reschedule()

    def release(self, permit: Permit, signal: Signal, pause: float = 0.0) -> Change | None:
        """Take in what the server said to a request sent with *permit*.

        *pause* is a ``Retry-After`` the client honours (0: none). Returns what changed,
        for the engine to report, or ``None``.
        """
        if signal is Signal.OK:
            self._breaker.succeed()
            self._starved_at = None
            if not self._refused_once:
                self._accepted_before_refusal += 1
            elif self._burst_seqs[0] <= permit.seq < self._burst_seqs[1]:
                self._burst += 1.0  # a late answer to the first burst: it was let through
            self._retries.earn()
            if permit.probe:
                self._close(permit)
            return None
        if signal is Signal.THROTTLED:
            return self._on_throttled(permit, pause)
        return self._on_overloaded(permit)

    def _on_throttled(self, permit: Permit, pause: float) -> Change | None:
        self._counts["throttled"] += 1
        now = self._now()
        if not self._refused_once:
            self._measure_burst(permit)
        if permit.epoch != self._epoch:
            # Sent before the last cut: that cut has answered it already.
            if pause:
                self._breaker.extend(now, pause)
            return None
        change = self._cut(now, permit.seq, pause)
        if pause:
            self._pause(now, pause)
            return attrs.evolve(change, pause=pause)
        if permit.probe:
            return attrs.evolve(change, pause=self._outage_pause(now), outage=True)
        return change

    def _measure_burst(self, permit: Permit) -> None:
        """The first refusal: what the server let through before it is its bucket, full.

        Only a refusal of a request sent soon after a quiet start says how big the bucket
        is: later, what was let through is mostly what the bucket refilled meanwhile. The
        request's send time decides, not when its answer came: a slow server or a busy
        event loop delays the answer, not the burst.
        """
        self._refused_once = True
        log = self._log
        stretch = log.stretch
        sent_at = log.time_of(permit.seq)
        if (
            permit.seq >= stretch.first
            and sent_at is not None
            and sent_at - stretch.start <= BURST_SPAN
        ):
            self._burst = float(self._accepted_before_refusal)
            # Answers to the burst's other requests may come after this one (other
            # connections, a busy loop): those let through count as they arrive. Those
            # sent after it do not: what the bucket refilled since let them through.
            self._burst_seqs = (stretch.first, log.sent_until(sent_at))

    def _on_overloaded(self, permit: Permit) -> Change | None:
        self._counts["overloaded"] += 1
        failures = self._breaker.fail()
        if permit.epoch != self._epoch:
            return None
        if not (permit.probe or failures >= self.outage_after):
            return None
        now = self._now()
        change = self._cut(now, permit.seq)
        return attrs.evolve(change, pause=self._outage_pause(now), outage=True)

    def allow_retry(self) -> bool:
        """Spend one retry from the budget (for failures other than 429); ``False``: none left."""
        return self._retries.spend()

    def is_current(self, permit: Permit) -> bool:
        """Whether no cut or pause came since *permit* was given."""
        return permit.epoch == self._epoch

    def _close(self, permit: Permit) -> None:
        """The probe succeeded: let everyone go, paced by the rate."""
        if permit.epoch != self._epoch:
            return
        self._breaker.close()
        self._update_open()
        self._reschedule()

    def _cut(self, now: float, seq: int, pause: float = 0.0) -> Change:
        """Cut the sending rate below what the server refused, and start a new epoch.

        *pause*: what the refusal costs every caller (a ``Retry-After``), if anything.
        """
        # Past its release point the curve means no rate: cut from what was being sent.
        previous = self._rate_at(now)
        if previous is not None:
            sending = previous
        else:
            # What the client was sending over its last sends: the answer may come long
            # after them (a slow server, a busy loop), when the burst it ends is over.
            last = self._log.last
            sending = self._sending_rate(now if last is None else last)
        self._curve = curve.cut(
            now, sending, self._estimate(seq), self.rate_limit, pause=pause, previous=self._curve
        )
        # The server's bucket is empty when it refuses: the next request waits its turn.
        self._pacer.hold(now, self._curve.rate)
        self._epoch += 1
        self._counts["cuts"] += 1
        self._start_span(now, bucket=0.0)
        self._update_open()
        self._reschedule()
        return Change(rate=self._curve.rate, previous_rate=previous)

    def _estimate(self, seq: int) -> float | None:
        """The server's rate, fitted to the sends up to the refused one, or ``None``."""
        return self._log.estimate(seq, self._burst)

    def _sending_rate(self, at: float) -> float:
        """Requests per second sent over the window that ends at *at*."""
        return self._log.sending_rate(at)

    def _pause(self, now: float, seconds: float) -> None:
        self._breaker.pause(now, seconds)
        self._counts["pauses"] += 1
        self._update_open()
        self._reschedule()

    def _outage_pause(self, now: float) -> float:
        seconds = self._breaker.outage_pause(now, random.random())  # noqa: S311 - jitter
        self._counts["pauses"] += 1
        self._update_open()
        self._reschedule()
        return seconds

    def _start_span(self, now: float, *, bucket: float) -> None:
        self._accepted_before_refusal = 0  # counted per stretch: a quiet gap refills
        self._log.start_stretch(now, bucket)


class FlowControl(Protocol):
    """What the engine needs of a throttle; ``Throttle`` and ``Unthrottled`` provide it."""

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

    def allow_retry(self) -> bool:
        """Every retry is allowed (``max_retries`` still bounds them)."""
        return True

    def is_current(self, permit: Permit) -> bool:
        """Always: nothing goes stale."""
        del permit
        return True

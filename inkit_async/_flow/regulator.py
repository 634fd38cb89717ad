"""The throttle's machinery: callers queue for permits, answers change the rate and pauses.

``Throttle`` (the public options) makes one ``Regulator``; the engine talks to the
regulator (``acquire``, ``release``, ``cancel``, ``allow_retry``, ``is_current``). It
composes the parts of this package (the curve, the send log and its estimate, the
pacer, the breaker, the retry budget), reads the clock once per decision and hands the
time to them; what it adds is the order of callers, their waits and the one timer. What
it shares, and how it paces and estimates, goes through its ``FlowState``
(``state.py``): this process's own, or a fleet's through Redis.

Waiting is the normal answer to pressure: callers queue in order, and only requests
actually sent count as attempts. Every wait ends: a caller that has not got its permit
after ``max_wait`` seconds in the queue gives up, whatever holds it (a pause, a probe, the
sending rate, or a state's pacing that has not answered), and one that comes while the
throttle has been paused or probing for ``max_wait`` already gives up at once.

One regulator serves every event loop that uses its throttle, in any thread, at the
same time: the rate, pauses and budget are one, behind one lock. What cannot be shared
between loops is a waiting caller (a future of its loop) and the timer that lets it go:
each loop has its own queue of callers and its own timer (``_Queue``), and a change of
the rules (``wake``) reaches another loop's queue through that loop's
``call_soon_threadsafe``. Times are the running loop's clock (every real loop's is
``time.monotonic``). Callers queue in order within their loop; a permit goes to
whichever loop's timer asks first. A ``FlowState`` that is not this process's own (a
fleet's through Redis) runs its own tasks on one loop, so such a throttle serves one
running loop at a time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import os
import random
import threading
import time
import weakref
from typing import TYPE_CHECKING, Final, Protocol

import attrs

from .._exceptions import InkitError
from . import curve
from .breaker import Breaker, Gate
from .budget import RetryBudget
from .curve import Curve
from .estimate import BURST_SPAN, MIN_SPAN, SendLog
from .pacer import TOLERANCE, Pacer
from .signals import Change, Permit, Signal, ThrottleState, ThrottleTimeoutError
from .state import LocalState

if TYPE_CHECKING:
    from collections.abc import Callable

    from .state import FlowState

__all__ = ["Regulator", "ThrottleOptions"]


class _Queue:
    """One event loop's callers waiting for a permit (in order), and its one timer."""

    __slots__ = ("loop", "timer", "timer_at", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiters: collections.deque[tuple[asyncio.Future[Permit], float]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        # When that timer is due, on the regulator's clock. Kept here, not read back
        # from the handle: uvloop's handles run on uvloop's own clock.
        self.timer_at = 0.0

    def live(self) -> int:
        """Callers still waiting (a cancelled one stays queued until a timer drops it)."""
        # A copy first: another thread may change the queue meanwhile.
        return sum(1 for future, _ in tuple(self.waiters) if not future.done())


#: Every regulator, for the fork hook below.
_REGULATORS: weakref.WeakSet[Regulator] = weakref.WeakSet()


def _after_fork() -> None:
    """In a forked child: new locks (the parent's may have been held), no parent's callers."""
    for regulator in tuple(_REGULATORS):
        regulator.forked()


os.register_at_fork(after_in_child=_after_fork)


class ThrottleOptions(Protocol):
    """The options a regulator is made with: a ``Throttle``'s."""

    rate_limit: float | None
    max_wait: float
    retry_ratio: float
    retry_reserve: int
    outage_after: int


logger: Final = logging.getLogger("inkit_async")

#: A gap (seconds) without sends after which the server's bucket is taken to be full.
_IDLE_GAP: Final = 1.0
#: Bursts whose accepted requests are counted until the first 429 (the latest ones): the
#: answers to one may come after the next has begun (a slow server, a busy loop).
_BURSTS_COUNTED: Final = 4


class Regulator:
    """One throttle's state and decisions; see the module docstring."""

    def __init__(
        self,
        *,
        rate_limit: float | None,
        max_wait: float,
        retry_ratio: float,
        retry_reserve: int,
        outage_after: int,
        state: FlowState,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Regulate with the throttle's options, sharing through *state*.

        *clock*: where the time comes from (default: the running loop's, see ``now``);
        tests give a simulated one and drive ``take`` and ``release`` without a loop.
        """
        self.rate_limit = rate_limit
        self.max_wait = max_wait
        self.outage_after = outage_after
        self._state = state
        self._clock = clock
        # Reentrant: a decision made under it calls back in (a cut wakes the waiters).
        self._lock = threading.RLock()
        # The parts (see `_flow`): the sending rate after a cut (None: none applies),
        # the pacing at it, pauses and probes, the send times the estimate reads, and
        # the retry budget.
        self._curve: Curve | None = None if self.rate_limit is None else Curve(rate=self.rate_limit)
        self._pacer = Pacer()
        self._breaker = Breaker()
        self._log = SendLog()
        self._retries = RetryBudget(retry_ratio, retry_reserve)
        self._epoch = 0
        self._cut_at = -math.inf  # when the rate was last cut
        # When a waiter last gave up at max_wait with no success since (None: not so).
        self._starved_at: float | None = None
        # The server's bucket, as its first refusal showed it (0: unknown), what the
        # server let through of the current burst before any refusal, and the requests
        # of that first burst (numbers from, up to) whose late answers still count.
        self._burst = 0.0
        self._accepted: dict[int, int] = {}  # by the number of each burst's first request
        self._refused_once = False
        self._burst_seqs = (0, 0)
        # Each event loop's waiting callers and timer; the loop a state that is not this
        # process's own serves (see `_check_loop`).
        self._queues: dict[asyncio.AbstractEventLoop, _Queue] = {}
        self._state_loop: asyncio.AbstractEventLoop | None = None
        self._counts = collections.Counter[str]()
        self._open = self._curve is None
        self._local = type(state) is LocalState  # admits every request at once
        state.attach(self)
        _REGULATORS.add(self)

    @classmethod
    def of(
        cls, options: ThrottleOptions, state: FlowState, clock: Callable[[], float] | None = None
    ) -> Regulator:
        """A regulator with a throttle's *options*, sharing through *state*, on *clock*."""
        return cls(
            rate_limit=options.rate_limit,
            max_wait=options.max_wait,
            retry_ratio=options.retry_ratio,
            retry_reserve=options.retry_reserve,
            outage_after=options.outage_after,
            state=state,
            clock=clock,
        )

    def use(self, state: FlowState) -> None:
        """Share through *state* from now on (before the first request)."""
        self._state = state
        self._local = type(state) is LocalState
        state.attach(self)

    # -- state -------------------------------------------------------------------------

    def snapshot(self) -> ThrottleState:
        """A snapshot of the current rate, pause and counters."""
        with self._lock:
            now = self.now()
            breaker = self._breaker
            return ThrottleState(
                rate=self.rate_at(now),
                rate_limit=self.rate_limit,
                paused_for=max(0.0, breaker.paused_until - now),
                probing=breaker.probing,
                waiting=sum(queue.live() for queue in self._queues.values()),
                throttled=self._counts["throttled"],
                overloaded=self._counts["overloaded"],
                pauses=self._counts["pauses"],
                cuts=self._counts["cuts"],
                retry_tokens=self._retries.tokens,
                retries_refused=self._retries.refused,
            )

    def now(self) -> float:
        """The throttle's clock: the running loop's, unless one was given.

        Every real event loop's clock is ``time.monotonic`` (uvloop's, to the
        millisecond), so loops in several threads agree; a test's virtual-time loop
        drives the throttle on its own time. Outside any loop (``throttle.state`` read
        from a thread without one): ``time.monotonic``.
        """
        clock = self._clock
        if clock is not None:
            return clock()
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    def paused_for(self) -> float:
        """Seconds until the current pause ends (0: none), for a caller's deadline."""
        with self._lock:
            return max(0.0, self._breaker.paused_until - self.now())

    def _update_open(self) -> None:
        self._open = self._curve is None and self._breaker.closed

    def forked(self) -> None:
        """This is a forked child's copy: the parent's loops never run here."""
        self._lock = threading.RLock()
        self._queues = {}
        self._state_loop = None

    # -- permits -----------------------------------------------------------------------

    async def acquire(self) -> Permit:
        """Wait for leave to send one request now, and for what the state asks first.

        Raises:
            ThrottleTimeoutError: See ``_acquire``.
            InkitError: The throttle's state serves another running event loop.
        """
        if self._local:
            if self._open:
                # The healthy path: no rate, no pause, nothing of a store's to wait for;
                # a permit without another coroutine (and `now` inlined: it is hot).
                clock = self._clock
                now = clock() if clock is not None else asyncio.get_running_loop().time()
                with self._lock:
                    return self._grant(now)
            return await self._acquire()
        self._check_loop(asyncio.get_running_loop())
        return await self._state.admit(self._acquire)

    def _check_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let *loop* use a state that is not this process's own, if no other loop runs it.

        A fleet's state (``inkit_async.redis``) keeps a task and its connections on the
        loop it joined from. A loop that has ended (``asyncio.run`` returned: a script's
        next run, pytest's loop per test) hands over.

        Raises:
            InkitError: Another event loop, running in another thread, uses the state.
        """
        with self._lock:
            previous = self._state_loop
            if previous is loop:
                return
            if previous is not None and previous.is_running() and not previous.is_closed():
                raise InkitError(
                    "This throttle shares its state through a store (RedisThrottle), which "
                    "serves one running event loop at a time, and another thread's loop uses "
                    "it. Use one client per thread, or BlockingInkit, whose one loop every "
                    "thread shares."
                )
            self._state_loop = loop

    def _queue(self, loop: asyncio.AbstractEventLoop) -> _Queue:
        """*loop*'s queue, made on first use (with the lock held)."""
        queue = self._queues.get(loop)
        if queue is None:
            # Loops that are closed, or have nobody waiting, need no queue kept: a
            # script's earlier asyncio.run, pytest's loop per test.
            for other in tuple(self._queues.values()):
                if other.loop.is_closed() or not (other.waiters or other.timer):
                    del self._queues[other.loop]
            queue = self._queues[loop] = _Queue(loop)
        return queue

    async def _acquire(self) -> Permit:
        """Wait for leave to send one request now.

        Raises:
            ThrottleTimeoutError: No permit came within ``max_wait`` seconds, or the
                throttle had been paused (or waiting for its probe) for that long when
                the call came, or a caller gave up within the last ``max_wait`` seconds
                and no request has succeeded since.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            now = self.now()
            if self._open:
                return self._grant(now)
            queue = self._queue(loop)
            if not queue.waiters:
                permit = self.take(now)
                if permit is not None:
                    return permit
            held_since = self._breaker.held_since
            if held_since is not None and now - held_since >= self.max_wait:
                raise ThrottleTimeoutError
            starved_at = self._starved_at
            if starved_at is not None and now - starved_at < self.max_wait:
                # Callers are timing out here and nothing has got through since: this
                # one would queue behind them only to give up too. Failing it at once
                # lets a fan-out against a server that refuses everything end within
                # about one max_wait, not one max_wait per round of max_concurrency
                # calls. Once a max_wait has passed, callers queue again, and paced
                # permits go out.
                raise ThrottleTimeoutError
            future: asyncio.Future[Permit] = loop.create_future()
            queue.waiters.append((future, now))
            self._schedule(queue, now)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                with self._lock:
                    self._hand_back(future.result())  # given, then cancelled: hand it back
            raise

    def _grant(self, now: float, *, probe: bool = False) -> Permit:
        last = self._log.last
        if last is None or now - last > _IDLE_GAP:
            # After a quiet gap the server's bucket has refilled: a new stretch begins.
            self._start_span(now, bucket=self._burst)
        epoch = self._epoch
        if not probe and now - self._cut_at < MIN_SPAN:
            # Too soon after a cut for the server to see it: the bucket this request
            # meets is the one the requests before the cut emptied, and a refusal would
            # say nothing the cut did not (nor allow an estimate). It counts as sent
            # before the cut. The first paced request after a cut is the refused call's
            # own retry: cut after cut, it was refused three times and failed.
            epoch -= 1
        return Permit(epoch, self._log.record(now), probe=probe)

    def take(self, now: float) -> Permit | None:
        """A permit for a request leaving now, or ``None`` when it must wait."""
        with self._lock:
            gate = self._breaker.admit(now)
            if gate is Gate.WAIT:
                return None
            if gate is Gate.PROBE:
                # The pause is over: the server's bucket refilled meanwhile, and the curve
                # climbs from its cut rate again from now, not from before the pause.
                self._start_span(now, bucket=self._burst)
                if self._curve is not None:
                    self._curve = self._curve.restarted(now)
                rate = self.rate_at(now)
                if rate is not None:
                    # The probe is a paced request like the others: the first to follow it
                    # waits its turn (a server whose bucket holds one refuses it otherwise).
                    self._pacer.hold(now, rate)
                return self._grant(now, probe=True)
            rate = self.rate_at(now)
            if rate is not None:
                return self._take_paced(now, rate)
            return self._grant(now)

    def rate_at(self, now: float) -> float | None:
        """The sending rate at *now*, or ``None`` when none applies.

        The one place the rate is dropped once its curve passes the release point: every
        reader of the curve that would pace or lease by it asks here, so no path keeps
        pacing (or asking for slots) at an infinite rate that nothing ever releases.
        """
        with self._lock:
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

        The state paces: with the regulator's pacer, or on a fleet's slots.
        """
        slot = self._state.take_paced(now, rate, self._pacer)
        if slot is None:
            return None
        permit = self._grant(now)
        self._state.granted(permit.seq, slot, now)
        return permit

    def next_paced(self) -> float:
        """When the next paced request may leave (``math.inf``: the state will wake it)."""
        return self._state.next_paced(self._pacer)

    def _schedule(self, queue: _Queue, now: float) -> None:
        """Arrange for *queue*'s waiters to be let go when the next may leave, or give up.

        Called in *queue*'s loop, with the lock held. The timer is never later than the
        moment the longest waiter's ``max_wait`` runs out, whatever holds the waiters:
        every wait ends, also when a state's pacing says it will reschedule
        (``math.inf``) and never does.
        """
        if queue.timer is not None or not queue.waiters:
            return
        when = self._due(queue, now)
        if math.isfinite(when):
            self._set_timer(queue, max(when, now), now)

    def due(self, now: float) -> float:
        """When waiting callers may next get a permit, by the rules (``math.inf``: unknown)."""
        when = self._breaker.due(now)
        if when is None:
            when = self.next_paced() if self.rate_at(now) is not None else now
        return when

    def _due(self, queue: _Queue, now: float) -> float:
        """When *queue*'s waiters should next be looked at: never later than the expiry."""
        when = self.due(now)
        # Callers queue in order, so the longest waiter gives up first.
        head = next((since for future, since in queue.waiters if not future.done()), None)
        return when if head is None else min(when, head + self.max_wait)

    def _dispatch(self, queue: _Queue) -> None:
        """*queue*'s timer: let its waiters go by the rules, in order (in its loop)."""
        with self._lock:
            queue.timer = None
            now = self.now()
            waiters = queue.waiters
            while waiters:
                future, since = waiters[0]
                if future.done():
                    waiters.popleft()
                    continue
                try:
                    permit = self.take(now)
                except Exception:
                    # A bug here must not leave callers waiting for ever: each gives up as
                    # at max_wait (its call fails with its last error), and it is logged.
                    logger.exception("The throttle failed to hand out a permit; callers give up")
                    for waiting, _ in waiters:
                        if not waiting.done():
                            waiting.set_exception(ThrottleTimeoutError())
                    waiters.clear()
                    break
                if permit is None:
                    # Timers may fire a tick early: within the tolerance counts as the end.
                    if now - since >= self.max_wait - TOLERANCE:
                        waiters.popleft()
                        future.set_exception(ThrottleTimeoutError())
                        self._starved_at = now
                        continue
                    break
                waiters.popleft()
                future.set_result(permit)
            self._schedule(queue, now)

    def wake(self) -> None:
        """The state changed: let every loop's waiters go by the new rules.

        A queue in another thread's loop is looked at in that loop, at its next turn. A
        timer already due no later than the new rules say stays: it looks at the
        waiters by the new rules when it fires. Only a later one is replaced, so the
        timer for the expiry always fires, however often the state changes (a
        background task that reschedules each time it ends cannot starve it).
        """
        with self._lock:
            if not self._queues:
                return
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:  # a test driving the regulator without a loop
                running = None
            for queue in tuple(self._queues.values()):
                if not queue.waiters:
                    continue  # and no timer to move: only _schedule sets one, for waiters
                if queue.loop is running:
                    self._wake(queue)
                else:
                    with contextlib.suppress(RuntimeError):  # closed: nobody waits there
                        queue.loop.call_soon_threadsafe(self._wake_locked, queue)

    def _wake_locked(self, queue: _Queue) -> None:
        with self._lock:
            self._wake(queue)

    def _wake(self, queue: _Queue) -> None:
        """Look at *queue* by the new rules (in its loop, with the lock held)."""
        now = self.now()
        timer = queue.timer
        if timer is None:
            self._schedule(queue, now)
            return
        when = max(self._due(queue, now), now)
        if when < queue.timer_at:
            timer.cancel()
            self._set_timer(queue, when, now)

    def _set_timer(self, queue: _Queue, when: float, now: float) -> None:
        # A delay, not a time on the loop's clock: the regulator's clock is its own.
        queue.timer = queue.loop.call_later(when - now, self._dispatch, queue)
        queue.timer_at = when

    # -- feedback ----------------------------------------------------------------------

    def cancel(self, permit: Permit) -> None:
        """Hand back a permit that was not used (its caller was cancelled)."""
        with self._lock:
            self._state.finished(permit)
            self._hand_back(permit)

    def _hand_back(self, permit: Permit) -> None:
        if permit.probe and permit.epoch == self._epoch and self._breaker.probe_out:
            self._breaker.probe_returned()
            self.wake()

    def release(self, permit: Permit, signal: Signal, pause: float = 0.0) -> Change | None:
        """Take in what the server said to a request sent with *permit*.

        *pause* is a ``Retry-After`` the client honours (0: none). Returns what changed,
        for the engine to report, or ``None``.
        """
        with self._lock:
            if not self._local:  # this process's own state has nothing to give back
                self._state.finished(permit)
            if signal is Signal.OK:
                self._breaker.succeed()
                self._starved_at = None
                if not self._refused_once:
                    self._count_accepted(permit)
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
        now = self.now()
        # A refusal that measures the bucket says nothing of the rate: what the server let
        # through of a burst is the bucket, and the few milliseconds the burst took are
        # far too short to tell a refill rate from (with a warm-up 0.3 s before, the fit
        # from it read 75/s of 200/s, and the client sent at 95% of that for good).
        measured = not self._refused_once and self._measure_burst(permit)
        if permit.epoch != self._epoch:
            # Sent before the last cut: that cut has answered it already.
            if pause:
                self._breaker.extend(now, pause)
            return None
        change = self._cut(now, permit.seq, pause, estimated=not measured)
        if pause:
            self._pause(now, pause)
            return attrs.evolve(change, pause=pause)
        if permit.probe:
            return attrs.evolve(change, pause=self._outage_pause(now), outage=True)
        return change

    def _count_accepted(self, permit: Permit) -> None:
        """Count a request the server let through before any 429, for its burst."""
        first = self._log.burst_of(permit.seq)
        if first is None:
            return
        accepted = self._accepted
        accepted[first] = accepted.get(first, 0) + 1
        if len(accepted) > _BURSTS_COUNTED:
            del accepted[min(accepted)]

    def _measure_burst(self, permit: Permit) -> bool:
        """The first refusal: what the server let through before it is its bucket, full.

        Only a refusal of a request sent soon after a quiet start says how big the bucket
        is: later, what was let through is mostly what the bucket refilled meanwhile. A
        quiet start is the first send after a gap of ``BURST_SPAN`` (the burst the refused
        request belongs to), not the stretch's: a lone request (a warm-up) may go a few
        tenths of a second before the fan-out. The request's send time decides, not when
        its answer came: a slow server or a busy event loop delays the answer, not the
        burst. Returns whether the bucket was measured.
        """
        self._refused_once = True
        log = self._log
        first = log.burst_of(permit.seq) or permit.seq  # forgotten: no burst to measure
        start, sent_at = log.time_of(first), log.time_of(permit.seq)
        if first == permit.seq or start is None or sent_at is None or sent_at - start > BURST_SPAN:
            # Too late in its burst to tell the bucket; or the first of it, refused, so
            # not from a quiet start (sends paced a gap apart, or other processes').
            return False
        self._burst = float(self._accepted.get(first, 0))
        # Answers to the burst's other requests may come after this one (other
        # connections, a busy loop): those let through count as they arrive. Those sent
        # after it do not: what the bucket refilled since let them through.
        self._burst_seqs = (first, log.sent_until(sent_at))
        return True

    def _on_overloaded(self, permit: Permit) -> Change | None:
        self._counts["overloaded"] += 1
        failures = self._breaker.fail()
        if permit.epoch != self._epoch:
            return None
        if not (permit.probe or failures >= self.outage_after):
            return None
        now = self.now()
        change = self._cut(now, permit.seq)
        return attrs.evolve(change, pause=self._outage_pause(now), outage=True)

    def allow_retry(self) -> bool:
        """Spend one retry from the budget (for failures other than 429); ``False``: none left."""
        with self._lock:
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
        self.wake()

    def _cut(self, now: float, seq: int, pause: float = 0.0, *, estimated: bool = True) -> Change:
        """Cut the sending rate below what the server refused, and start a new epoch.

        *pause*: what the refusal costs every caller (a ``Retry-After``), if anything.
        *estimated*: whether the refusal may tell the server's rate.
        """
        # Past its release point the curve means no rate: cut from what was being sent.
        previous = self.rate_at(now)
        if previous is not None:
            sending = previous
        else:
            # What the client was sending at its fastest from the refused request on:
            # the answer may come long after it (a slow server, a busy loop), when the
            # burst it ends is over and only a trickle still leaves.
            last = self._log.last
            sending = self._sending_rate(now if last is None else last, self._log.time_of(seq))
        estimate = self._estimate(seq) if estimated else None
        self._curve = curve.cut(
            now, sending, estimate, self.rate_limit, pause=pause, previous=self._curve
        )
        # The server's bucket is empty when it refuses: the next request waits its turn.
        self._pacer.hold(now, self._curve.rate)
        self._epoch += 1
        self._cut_at = now
        self._counts["cuts"] += 1
        self._start_span(now, bucket=0.0)
        self._update_open()
        self.wake()
        self._state.cut_made(self._curve, self._burst if self._refused_once else None)
        return Change(rate=self._curve.rate, previous_rate=previous)

    def _estimate(self, seq: int) -> float | None:
        """The server's rate, fitted to the sends up to the refused one, or ``None``."""
        return self._state.estimate(seq, self._log, self._burst)

    def _sending_rate(self, at: float, since: float | None) -> float:
        """Requests per second sent over the busiest window ending from *since* to *at*."""
        return self._state.sending_rate(at, self._log, since)

    def _pause(self, now: float, seconds: float) -> None:
        """Pause every caller for *seconds*, and tell the state."""
        self._breaker.pause(now, seconds)
        self._paused(seconds)

    def _outage_pause(self, now: float) -> float:
        seconds = self._breaker.outage_pause(now, random.random())  # noqa: S311 - jitter
        self._paused(seconds)
        return seconds

    def _paused(self, seconds: float, *, tell: bool = True) -> None:
        self._counts["pauses"] += 1
        self._update_open()
        self.wake()
        if tell:
            self._state.paused(seconds)

    # -- what a shared state hands in ---------------------------------------------------

    @property
    def curve(self) -> Curve | None:
        """The sending rate's curve (``None``: no rate applies)."""
        return self._curve

    @property
    def sent(self) -> int:
        """Requests let go, ever."""
        return self._log.sent

    @property
    def last_send(self) -> float | None:
        """When the last request left (``None``: none yet)."""
        return self._log.last

    @property
    def waiting(self) -> int:
        """Callers queued for a permit (some may have given up already)."""
        with self._lock:
            return sum(len(queue.waiters) for queue in self._queues.values())

    def nudge(self) -> None:
        """Look at the waiters if nothing is due to wake them (a safety net)."""
        with self._lock:
            if any(queue.waiters and queue.timer is None for queue in self._queues.values()):
                self.wake()

    def adopt(self, curve: Curve) -> None:
        """Send at *curve*, decided elsewhere (another process).

        Answers to requests sent at the old rate cut nothing.
        """
        with self._lock:
            self._curve = curve
            self._pacer.restart(self.now())
            self._epoch += 1
            self._update_open()
            self.wake()

    def adopt_pause(self, seconds: float) -> None:
        """Pause for *seconds*, decided elsewhere, unless a pause as long is on already."""
        with self._lock:
            now = self.now()
            if seconds <= 0 or now + seconds <= self._breaker.paused_until + TOLERANCE:
                return
            self._breaker.pause(now, seconds)
            self._paused(seconds, tell=False)

    def adopt_burst(self, burst: float) -> None:
        """The server's bucket, as another process measured it."""
        with self._lock:
            self._burst = burst

    def _start_span(self, now: float, *, bucket: float) -> None:
        self._log.start_stretch(now, bucket)  # and a burst: its count starts afresh

    def bind(self, api_token: str) -> None:
        """Called by the engine with its client's token when it starts using the throttle."""
        self._state.bind(api_token)

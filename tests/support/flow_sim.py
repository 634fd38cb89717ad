"""A discrete-event simulation of a client's callers, its throttle and a rate-limited server.

Time is a number the simulation moves: the throttle reads it through its injected
clock, so a run of 20,000 lookups against a token bucket takes a fraction of a second
of CPU, gives the same figures every time, and never reads the wall clock. It plays the
engine's part as ``Engine._send`` does: a caller takes a permit, the request reaches the
server after half the latency and its answer comes back after the other half, the answer
goes back to the throttle, and the production retry policy (``decide``) says whether and
when a 429 is retried.
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING

import attrs
import httpx

from inkit_async import Throttle
from inkit_async._config import ClientOptions
from inkit_async._flow.regulator import Regulator
from inkit_async._flow.state import LocalState
from inkit_async._policy import Answer, Attempt, Fail, decide
from inkit_async._throttle import Signal

if TYPE_CHECKING:
    from collections.abc import Callable

    from inkit_async._throttle import Permit


#: The call number of the lookup a run's *warm_up* sends first.
WARM_UP = -1


class Clock:
    """A clock the simulation moves by hand."""

    def __init__(self) -> None:
        """Start at 0."""
        self.now = 0.0

    def __call__(self) -> float:
        """The current simulated time."""
        return self.now


def regulator(clock: Clock, **options: float) -> Regulator:
    """The machinery of ``Throttle(**options)``, on *clock*: no event loop needed."""
    return Regulator.of(Throttle(**options), LocalState(), clock)  # type: ignore[arg-type]


class Bucket:
    """A server's rate limit: *size* requests at once, refilled at *rate* per second."""

    def __init__(self, rate: float, size: int) -> None:
        """Start full."""
        self.rate, self.size = rate, size
        self.level, self.at = float(size), 0.0

    def admit(self, now: float) -> bool:
        """Whether a request arriving at *now* is let through (it spends one token)."""
        self.level = min(self.size, self.level + (now - self.at) * self.rate)
        self.at = now
        if self.level >= 1.0:
            self.level -= 1.0
            return True
        return False


@attrs.define
class Result:
    """What a simulated run did."""

    wall: float = 0.0
    requests: int = 0
    refused: int = 0
    failed: int = 0
    #: When the server first refused a request (not when the client read the answer).
    first_refusal: float | None = None
    #: Requests the server let through per whole second since the start.
    admitted_per_second: list[int] = attrs.Factory(list)


def run(  # noqa: PLR0915 - one event loop, read top to bottom
    throttle: Regulator,
    clock: Clock,
    server: Bucket,
    *,
    lookups: int,
    concurrency: int = 100,
    latency: float = 0.002,
    retry_after: float | None = None,
    max_retries: int = 2,
    limit: float = 3600.0,
    start_gap: float = 0.0,
    busy: float = 0.0,
    warm_up: float = 0.0,
) -> Result:
    """Run *lookups* through *concurrency* callers; return what happened.

    *retry_after*: what every 429 carries (``None``: no ``Retry-After``). *start_gap*:
    the callers start one every this many seconds, as ``get_many`` starts one worker per
    turn of the event loop (0: all at once, as a gather does). *busy*: the client's event
    loop is busy for this many seconds once the first callers have sent, as one is while
    a gather of 20,000 lookups makes its tasks: every answer and timer due meanwhile is
    handled at its end, in order (the server answers on time). *warm_up*: one lookup
    goes alone first, and the callers start this many seconds after it (0: none), as a
    program's first request often does before its fan-out.
    """
    result = Result()
    order = itertools.count()
    # (when, order, action, whether the server does it: the client's busy loop holds up
    # only the client's own events)
    events: list[tuple[float, int, Callable[[], None], bool]] = []
    waiting: list[int] = []  # callers waiting for a permit, in order (their call ids)
    spent: dict[int, int] = {}  # retries that count against max_retries, per call
    options = ClientOptions(api_token="sim", base_url="http://127.0.0.1", max_retries=max_retries)
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    request = httpx.Request("GET", "http://127.0.0.1/batch/rb_1")
    refusal = Answer(httpx.Response(429, headers=headers, request=request), b"{}")
    pending = iter(range(lookups))
    done = 0
    wake_at = [float("inf")]

    def at(when: float, action: Callable[[], None], *, server: bool = False) -> None:
        heapq.heappush(events, (when, next(order), action, server))

    def start_next() -> None:
        call = next(pending, None)
        if call is not None:
            spent[call] = 0
            ask(call)

    def ask(call: int) -> None:
        waiting.append(call)
        dispatch()

    def dispatch() -> None:
        now = clock.now
        while waiting:
            permit = throttle.take(now)
            if permit is None:
                break
            send(waiting.pop(0), permit)
        if waiting:
            when = throttle.due(now)
            if when < wake_at[0] and when != float("inf"):
                wake_at[0] = when
                at(max(when, now), wake)

    def wake() -> None:
        if clock.now >= wake_at[0]:
            wake_at[0] = float("inf")
        dispatch()

    def send(call: int, permit: Permit) -> None:
        result.requests += 1
        arrives = clock.now + latency / 2

        def reach() -> None:
            admitted = server.admit(clock.now)
            if not admitted and result.first_refusal is None:
                result.first_refusal = clock.now
            if admitted:
                second = int(clock.now)
                seconds = result.admitted_per_second
                seconds.extend([0] * (second + 1 - len(seconds)))
                seconds[second] += 1
            at(clock.now + latency / 2, lambda: answer(call, permit, admitted=admitted))

        at(arrives, reach, server=True)

    def answer(call: int, permit: Permit, *, admitted: bool) -> None:
        if admitted:
            throttle.release(permit, Signal.OK)
            finish(call)
            return
        result.refused += 1
        # As Engine._send and _settle do: the production retry decision on a 429.
        answered = not throttle.is_current(permit)
        attempt = Attempt(
            method="GET",
            path="/batch/rb_1",
            retries=spent[call],
            may_repeat=True,
            refusal_answered=answered,
        )
        decision = decide(refusal, attempt, options)
        throttle.release(permit, Signal.THROTTLED, decision.pause)
        if isinstance(decision, Fail):
            result.failed += 1
            finish(call)
            return
        spent[call] += not answered
        at(clock.now + decision.delay, lambda: ask(call))
        dispatch()

    def finish(call: int) -> None:
        nonlocal done
        if call == WARM_UP:
            return  # not one of the lookups: it starts no caller
        done += 1
        result.wall = clock.now
        start_next()
        dispatch()

    if warm_up:
        spent[WARM_UP] = 0
        ask(WARM_UP)
    for index in range(concurrency):
        if start_gap or warm_up:
            at(warm_up + index * start_gap, start_next)
        else:
            start_next()
    while events and done < lookups:
        when, _, action, by_server = heapq.heappop(events)
        if when > limit:
            raise AssertionError(f"the run did not end within {limit} simulated seconds")
        if warm_up < when < warm_up + busy and not by_server:
            at(warm_up + busy, action)  # the server answers on time; the client reads late
            continue
        clock.now = max(clock.now, when)
        action()
    return result

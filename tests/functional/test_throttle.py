"""Flow control over real sockets: rate limits, probes after pauses, outages, the budget."""

from __future__ import annotations

import asyncio
import collections
import selectors
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from inkit_async import (
    APITimeoutError,
    AsyncInkit,
    InternalServerError,
    RateEvent,
    RateLimitError,
    Throttle,
)
from inkit_async._flow.state import LocalState
from inkit_async._throttle import Permit, Signal, ThrottleTimeoutError, regulator_of
from inkit_async.testing import FakeInkit
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.events import Events
from tests.support.loopback import Respond, echo, html_page

if TYPE_CHECKING:
    from inkit_async._flow.pacer import Pacer
    from inkit_async._flow.regulator import Regulator

#: A rate limit the tests can reach in a second or two and still measure.
RATE = 100.0
BURST = 10


def rate_limited_fake(lookups: int, *, retry_after: float | None = None) -> FakeInkit:
    """A fake with *lookups* batches (rb_0 ...) that allows RATE requests/s per token."""
    fake = FakeInkit(docs_per_poll=0)
    for number in range(lookups):
        fake.add_batch(batch_id=f"rb_{number}")
    fake.limit_rate(RATE, burst=BURST, retry_after=retry_after)
    return fake


@pytest.mark.parametrize("retry_after", [None, 0.5])
async def test_get_many_against_a_rate_limit_loses_nothing(uvicorn_server, retry_after):
    """300 lookups against 100 requests/s: none fails, and at most 15% more are sent.

    (20 slots, as in the gather test below: what is sent before the first refusal is a
    fixed cost that would dwarf a run this short at the default width.)
    """
    fake = rate_limited_fake(300, retry_after=retry_after)
    url = await uvicorn_server(fake.app)
    ids = [f"rb_{number}" for number in range(300)]
    async with AsyncInkit(fake.token, base_url=url, max_concurrency=20) as client:
        results = await client.batch.get_many(ids, return_exceptions=True)
        state = client.throttle.state
    assert [getattr(result, "id", result) for result in results] == ids
    assert len(fake.requests) <= 1.15 * len(ids)
    assert fake.refused >= 1  # the limit was reached, and the throttle found it
    assert state.cuts >= 1
    assert state.rate is not None
    assert state.rate <= 1.5 * RATE


async def test_gather_against_a_rate_limit_loses_nothing(uvicorn_server):
    """A gather of 300 gets on 20 slots: none fails; permits go only to requests that leave.

    (20 slots: the first refusal comes after the first window of requests is already
    out, a fixed cost that would dwarf a run this short at the default width.)
    """
    fake = rate_limited_fake(300)
    url = await uvicorn_server(fake.app)
    ids = [f"rb_{number}" for number in range(300)]
    async with AsyncInkit(fake.token, base_url=url, max_concurrency=20) as client:
        batches = await asyncio.gather(*(client.batch.get(batch_id) for batch_id in ids))
    assert [batch.id for batch in batches] == ids
    assert len(fake.requests) <= 1.15 * len(ids)


async def test_a_pause_ends_with_one_probe(server):
    """After a 429's Retry-After, one request goes first; the rest wait for its answer."""
    probe_answered = asyncio.Event()
    in_flight_while_probing: list[int] = []

    async def handler(request):
        if request.last_segment == "rb_first":
            return Respond(429, {"error": "slow down"}, {"Retry-After": "0.2"})
        if not probe_answered.is_set():
            # The first request after the pause: hold it, and see who else comes.
            await asyncio.sleep(0.1)
            in_flight_while_probing.append(server.in_flight)
            probe_answered.set()
        return echo(request)

    server.handler = handler
    events = Events()
    async with AsyncInkit(TOKEN, base_url=server.url, on_event=events) as client:
        with pytest.raises(RateLimitError):
            await client.with_options(max_retries=0).batch.get("rb_first")
        ids = [f"rb_{number}" for number in range(10)]
        batches = await asyncio.gather(*(client.batch.get(batch_id) for batch_id in ids))
    assert [batch.id for batch in batches] == ids
    assert in_flight_while_probing == [1]
    [pause] = events.pauses
    assert (pause.seconds, pause.status_code, pause.outage) == (0.2, 429, False)
    paused_from = server.requests[0].received_at
    assert all(request.received_at >= paused_from + 0.2 for request in server.requests[1:])


async def test_a_known_rate_limit_is_never_exceeded(server):
    """Throttle(rate_limit=50): no second of arrivals at the server holds more than 51."""
    async with AsyncInkit(TOKEN, base_url=server.url, throttle=Throttle(rate_limit=50)) as client:
        await asyncio.gather(*(client.batch.get(f"rb_{number}") for number in range(120)))
        assert client.throttle.state.rate == 50
    arrivals = [request.received_at for request in server.requests]
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1) for start in arrivals)
    assert len(arrivals) == 120
    assert busiest <= 51


async def test_an_outage_costs_probes_not_retries(server):
    """1,000 lookups through a 1 s run of 502s: none fails, at most 10% more requests."""
    loop = asyncio.get_running_loop()
    window: list[float] = []

    def handler(request):
        if len(server.requests) == 300:
            window.append(loop.time())
        if window and loop.time() < window[0] + 1.0:
            return html_page(502)
        return echo(request)

    server.handler = handler
    events = Events()
    async with AsyncInkit(TOKEN, base_url=server.url, on_event=events) as client:
        ids = [f"rb_{number}" for number in range(1000)]
        results = await client.batch.get_many(ids, return_exceptions=True)
    assert [getattr(result, "id", result) for result in results] == ids
    assert len(server.requests) <= 1.1 * len(ids)
    outages = [pause for pause in events.pauses if pause.outage]
    assert outages
    assert all(pause.status_code == 502 for pause in outages)
    assert any(isinstance(event, RateEvent) for event in events)


async def test_concurrent_calls_wait_out_an_outage(server):
    """1,000 concurrent gets during a 1 s run of 503s all succeed; few requests are wasted."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + 1.0
    server.handler = lambda request: html_page(503) if loop.time() < ends else echo(request)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        batches = await asyncio.gather(
            *(client.batch.get(f"rb_{number}") for number in range(1000))
        )
    assert len(batches) == 1000
    assert len(server.requests) <= 1.15 * 1000


async def test_the_retry_budget_caps_retries(server):
    """With a budget of 5 retries and no earnings, a failing server sees N + 5 requests."""
    server.handler = lambda request: html_page(500)
    throttle = Throttle(retry_reserve=5, retry_ratio=0)
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, throttle=throttle) as client:
        results = await asyncio.gather(
            *(client.batch.get(f"rb_{number}") for number in range(20)), return_exceptions=True
        )
        state = client.throttle.state
    assert all(isinstance(result, InternalServerError) for result in results)
    assert len(server.requests) == 20 + 5
    # Every call was refused a retry once, but a call that got two of the five tokens,
    # which spent its max_retries and failed without asking for a third.
    attempts = collections.Counter(request.last_segment for request in server.requests)
    assert state.retries_refused == 20 - sum(count == 3 for count in attempts.values())
    assert state.retry_tokens < 1


async def test_a_429_to_a_request_sent_before_the_cut_does_not_count(server):
    """A 429 the throttle's cut had answered already is retried past max_retries.

    Two requests leave, both get a 429: the first cuts the rate and, with max_retries=0,
    fails; the second left before that cut, which answered it, so it is retried anyway.
    """
    asked: collections.Counter[str] = collections.Counter()

    async def handler(request):
        asked[request.last_segment] += 1
        if asked[request.last_segment] > 1:
            return echo(request)
        await server.wait_for_requests(2)  # both left at the old rate
        return Respond(429, {"error": "slow down"})

    server.handler = handler
    async with AsyncInkit(TOKEN, base_url=server.url, max_retries=0) as client:
        results = await asyncio.wait_for(
            asyncio.gather(
                *(client.batch.get(i) for i in ("rb_a", "rb_b")), return_exceptions=True
            ),
            10,
        )
    refused = [result for result in results if isinstance(result, RateLimitError)]
    found = [result.id for result in results if not isinstance(result, BaseException)]
    assert len(refused) == 1
    assert len(found) == 1
    assert asked[found[0]] == 2


async def test_callers_that_sent_nothing_give_up_after_max_wait(server):
    """During a long pause, callers that never sent fail after max_wait, unsent."""
    server.script(Respond(429, {"error": "slow down"}, {"Retry-After": "5"}))
    async with AsyncInkit(TOKEN, base_url=server.url, throttle=Throttle(max_wait=0.2)) as client:
        with pytest.raises(RateLimitError):
            await client.with_options(max_retries=0).batch.get("rb_refused")
        waiting = await asyncio.gather(
            *(client.batch.get(f"rb_{number}") for number in range(3)), return_exceptions=True
        )
    assert all(isinstance(result, APITimeoutError) for result in waiting)
    assert "nothing was sent" in str(waiting[0])
    assert len(server.requests) == 1


async def test_a_caller_that_sent_gives_up_with_its_last_error(server):
    """In an outage that outlasts max_wait, a waiting retry fails with the 503 it last got."""
    server.handler = lambda request: html_page(503)
    throttle = Throttle(max_wait=0.3, outage_after=1)
    async with AsyncInkit(
        TOKEN, base_url=server.url, backoff=NO_WAIT, max_retries=5, throttle=throttle
    ) as client:
        with pytest.raises(InternalServerError, match="503"):
            await client.batch.get("rb_1")
    # The first attempt, then one probe after the first pause; the second pause (about
    # 0.5 s) outlasts max_wait.
    assert len(server.requests) == 2


async def test_a_cancelled_probe_lets_another_go(server):
    """Cancelling the probe's caller frees the probe: the next caller is let through."""
    release = asyncio.Event()

    async def handler(request):
        if request.last_segment == "rb_first":
            return Respond(429, {"error": "slow down"}, {"Retry-After": "0.1"})
        if request.last_segment == "rb_probe":
            await release.wait()
        return echo(request)

    server.handler = handler
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(RateLimitError):
            await client.with_options(max_retries=0).batch.get("rb_first")
        await asyncio.sleep(0.15)
        probe = asyncio.create_task(client.batch.get("rb_probe"))
        await server.wait_for_requests(2)
        follower = asyncio.create_task(client.batch.get("rb_follower"))
        await asyncio.sleep(0.05)
        assert not follower.done()  # it waits for the probe
        probe.cancel()
        batch = await asyncio.wait_for(follower, 2)
        release.set()
    assert batch.id == "rb_follower"


async def test_variants_share_the_throttle_and_it_can_be_switched_off(server):
    """with_options variants use their parent's throttle; throttle=False has none."""
    throttle = Throttle(rate_limit=1000)
    async with AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client:
        assert client.throttle is throttle
        assert client.with_options(max_retries=0).throttle is throttle
    async with AsyncInkit(TOKEN, base_url=server.url, throttle=False) as client:
        assert client.throttle is None
        assert (await client.batch.get("rb_1")).id == "rb_1"


async def test_with_a_throttle_a_429_is_paced_not_backed_off(server):
    """A 429 without Retry-After cuts the rate; the retry waits for the throttle, not a backoff."""
    server.script(Respond(429, {"error": "slow down"}))
    events = Events()
    async with AsyncInkit(TOKEN, base_url=server.url, on_event=events) as client:
        await client.batch.get("rb_1")
        rate = client.throttle.state.rate
    [cut] = [event for event in events if isinstance(event, RateEvent)]
    assert (cut.previous_rate, cut.status_code) == (None, 429)
    assert rate is not None
    assert rate >= cut.rate  # it grows back by itself
    assert events.delays == [0.0]
    assert events.pauses == []
    first, second = (request.received_at for request in server.requests)
    assert second - first >= 0.9 / cut.rate  # the retry left at the cut rate's pace


async def test_a_healthy_client_sets_no_rate(server):
    """Without a refusal the throttle stays out of the way: no rate, no cuts, no waits."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        await client.batch.get_many([f"rb_{number}" for number in range(300)])
        state = client.throttle.state
    assert (state.rate, state.cuts, state.pauses, state.waiting) == (None, 0, 0, 0)
    assert len(server.requests) == 300


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"rate_limit": 0}, ValueError),
        ({"rate_limit": "200"}, TypeError),
        ({"max_wait": -1}, ValueError),
        ({"retry_ratio": float("nan")}, ValueError),
        ({"retry_reserve": 0}, ValueError),
        ({"retry_reserve": 2.5}, TypeError),
        ({"outage_after": True}, TypeError),
    ],
)
def test_bad_throttle_options_are_refused(options, error):
    """Throttle checks its options when it is built."""
    with pytest.raises(error):
        Throttle(**options)


def test_a_throttle_option_of_another_type_is_refused():
    """AsyncInkit(throttle=...) takes a Throttle, None or False."""
    with pytest.raises(TypeError, match="throttle"):
        AsyncInkit(TOKEN, throttle="fast")  # type: ignore[arg-type]


#: Seconds the hang tests allow before they fail: far beyond any bound they check.
GIVE_UP_AFTER = 60.0


async def test_a_server_that_refuses_everything_cannot_hang_callers(server):
    """Every request 429 without Retry-After: 1,000 concurrent gets all end, none hangs.

    The rate falls to its floor (0.5/s) and callers queue for paced slots; a call's waits
    for a permit add up to max_wait at most, so each call ends within max_wait plus its
    attempts, with the 429 it got or APITimeoutError if it sent nothing. Once callers give
    up, those who come next (the other rounds of 100, the default width) fail at once while
    nothing gets through: the whole fan-out ends within about one max_wait, not one per
    round (ten here).
    """
    server.handler = lambda request: Respond(429, {"error": "slow down"})
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with (
        asyncio.timeout(GIVE_UP_AFTER),
        AsyncInkit(TOKEN, base_url=server.url, throttle=Throttle(max_wait=2)) as client,
    ):
        results = await asyncio.gather(
            *(client.batch.get(f"rb_{number}") for number in range(1000)),
            return_exceptions=True,
        )
    elapsed = loop.time() - started
    assert all(isinstance(result, RateLimitError | APITimeoutError) for result in results)
    timeouts = [result for result in results if isinstance(result, APITimeoutError)]
    assert timeouts
    assert all("nothing was sent" in str(result) for result in timeouts)
    # One max_wait, the few attempts that went out (milliseconds on loopback) and a
    # thousand calls' bookkeeping, with room for a loaded machine: ten rounds of max_wait
    # (20 s) would break it.
    assert elapsed < 2 + 8


async def test_a_calls_waits_add_up_to_max_wait_over_all_its_attempts(server):
    """Each paced wait is shorter than max_wait, but a call stops once its waits reach it.

    The throttle sends one request a second and max_wait is 1.5; every answer is a 500.
    The first retry waits 1 s for its slot, leaving 0.5 s of the call's max_wait, and the
    next slot is a second away: the call fails with the second 500 instead of waiting
    through five retries (six requests, five seconds).
    """
    server.handler = lambda request: Respond(500, {"error": "boom"})
    async with (
        asyncio.timeout(GIVE_UP_AFTER),
        AsyncInkit(
            TOKEN,
            base_url=server.url,
            max_retries=5,
            backoff=NO_WAIT,
            throttle=Throttle(rate_limit=1, max_wait=1.5),
        ) as client,
    ):
        with pytest.raises(InternalServerError):
            await client.batch.get("rb_1")
    assert len(server.requests) == 2


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to its next timer instead of sleeping.

    The throttle reads the running loop's clock and sets its timers on it, so under this
    loop the test decides what time it is: plain numbers, and a wait of minutes takes
    microseconds. Nothing here waits for I/O. A loop that keeps waking at one moment
    without time passing (a timer that is due but finds nothing to do, again and again)
    would spin for ever here: it raises ``RuntimeError`` instead.
    """

    SPIN: ClassVar[int] = 10_000

    def __init__(self) -> None:
        """Start the clock at 0."""
        self.now = 0.0
        selector = selectors.DefaultSelector()
        select = selector.select
        still = 0

        def jump(timeout: float | None = None) -> Any:
            nonlocal still
            if timeout:
                self.now += timeout  # the next timer is due: skip to it
                still = 0
            else:
                still += 1
                if still > self.SPIN:
                    raise RuntimeError(f"the event loop spins at {self.now} s")
            return select(0)

        selector.select = jump  # type: ignore[method-assign]
        super().__init__(selector)

    def time(self) -> float:
        """The virtual clock."""
        return self.now


def machinery(state: LocalState | None = None, **options: Any) -> Regulator:
    """The machinery of ``Throttle(**options)``, sharing through *state* (default: local)."""
    regulator = regulator_of(Throttle(**options))
    if state is not None:
        regulator.use(state)
    return regulator


async def outcomes(throttle: Regulator, callers: int) -> list[tuple[float, str]]:
    """Let *callers* ask *throttle* for a permit at once; when and how each wait ended."""
    loop = asyncio.get_running_loop()

    async def caller() -> tuple[float, str]:
        try:
            await throttle.acquire()
        except ThrottleTimeoutError:
            return loop.time(), "gave up"
        return loop.time(), "permit"

    # A virtual hour: a wait that never ends fails the test instead of hanging it.
    async with asyncio.timeout(3600):
        return await asyncio.gather(*(caller() for _ in range(callers)))


def test_a_paced_wait_ends_at_max_wait():
    """At 0.5 requests/s and max_wait=3: permits at 0 s and 2 s; the others give up at 3 s."""

    async def run() -> list[tuple[float, str]]:
        return await outcomes(machinery(rate_limit=0.5, max_wait=3), 5)

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        results = runner.run(run())
    assert [outcome for _, outcome in results] == ["permit", "permit"] + ["gave up"] * 3
    # (A paced permit may leave a millisecond early: timers are not finer.)
    assert [when for when, _ in results] == pytest.approx([0, 2, 3, 3, 3], abs=0.0011)


def test_a_wait_ends_when_the_pacing_never_answers():
    """A pacing that keeps every caller waiting and never reschedules still ends each wait.

    (As RedisThrottle's pacing does while its slots from Redis are on their way.) A caller
    who comes 1 s after they gave up, with nothing sent since, gives up at once; one who
    comes once max_wait has passed since then waits again, and gives up at max_wait.
    """

    class Stuck(LocalState):
        def take_paced(self, now: float, rate: float, pacer: Pacer) -> int | None:
            del now, rate, pacer
            return None

        def next_paced(self, pacer: Pacer) -> float:
            del pacer
            return float("inf")

    async def run() -> list[tuple[float, str]]:
        throttle = machinery(Stuck(), rate_limit=10, max_wait=5)
        first = await outcomes(throttle, 3)
        await asyncio.sleep(1)
        second = await outcomes(throttle, 1)
        await asyncio.sleep(4)
        return first + second + await outcomes(throttle, 1)

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        results = runner.run(run())
    assert results == [(5.0, "gave up")] * 3 + [(6.0, "gave up"), (15.0, "gave up")]


def test_after_a_caller_gave_up_a_success_lets_callers_wait_again():
    """Callers fail at once only while nothing has got through since one gave up."""

    async def run() -> list[tuple[float, str]]:
        throttle = machinery(rate_limit=0.5, max_wait=3)
        first = await outcomes(throttle, 3)  # permits at 0 and 2 s, one gives up at 3 s
        failing_fast = await outcomes(throttle, 2)  # at 3 s, after a give-up: at once
        await asyncio.sleep(1)
        permit = await throttle.acquire()  # the next paced slot, at 4 s
        throttle.release(permit, Signal.OK)
        # They queue again: one gets the slot at 6 s, the next would be at 8 s, past 4 + 3.
        return first + failing_fast + await outcomes(throttle, 2)

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        results = runner.run(run())
    assert [outcome for _, outcome in results] == (
        ["permit", "permit", "gave up"] + ["gave up"] * 2 + ["permit", "gave up"]
    )
    assert [when for when, _ in results] == pytest.approx([0, 2, 3, 3, 3, 6, 7], abs=0.0011)


async def test_a_wait_ends_however_often_the_state_changes():
    """A change of state at every turn of the loop does not put off the max_wait timer.

    The pacing here never answers and asks for a reschedule each time it is asked (as
    RedisThrottle's lease task did when the rate was past its release point); the caller
    still gives up at max_wait. (Before, each reschedule replaced the timer that was due,
    before it could run: the wait never ended.)
    """

    class Restless(LocalState):
        regulator: Regulator

        def attach(self, regulator: Regulator) -> None:
            self.regulator = regulator

        def take_paced(self, now: float, rate: float, pacer: Pacer) -> int | None:
            del now, rate, pacer
            return None

        def next_paced(self, pacer: Pacer) -> float:
            del pacer
            asyncio.get_running_loop().call_soon(self.regulator.wake)
            return float("inf")

    throttle = machinery(Restless(), rate_limit=10, max_wait=0.2)
    async with asyncio.timeout(5):  # a wait that never ends fails the test
        with pytest.raises(ThrottleTimeoutError):
            await throttle.acquire()
    assert not throttle.snapshot().waiting


def test_callers_queued_behind_a_probe_leave_as_soon_as_it_succeeds():
    """The probe's success lets the callers waiting behind it go at once, not at max_wait."""

    async def run() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        throttle = machinery(max_wait=10)
        throttle.release(await throttle.acquire(), Signal.THROTTLED, pause=1)
        probe = await throttle.acquire()  # when the pause ends
        probed_at = loop.time()
        waiting = asyncio.ensure_future(outcomes(throttle, 2))
        await asyncio.sleep(0.5)
        throttle.release(probe, Signal.OK)
        first, _ = await waiting
        return probed_at, first[0]

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        probed_at, first = runner.run(run())
    assert probed_at == pytest.approx(1.0, abs=0.0011)
    assert first == pytest.approx(1.5, abs=0.0011)


def test_a_caller_during_a_long_pause_gives_up_at_once():
    """Paused for longer than max_wait already: a new caller gives up without waiting."""

    async def run() -> list[tuple[float, str]]:
        throttle = machinery(max_wait=2)
        permit = await throttle.acquire()
        throttle.release(permit, Signal.THROTTLED, pause=30)
        first = await outcomes(throttle, 2)
        await asyncio.sleep(1)
        return first + await outcomes(throttle, 1)

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        results = runner.run(run())
    assert results == [(2.0, "gave up")] * 2 + [(3.0, "gave up")]


def test_paced_permits_leave_on_time_without_spinning():
    """At 0.5 requests/s with time to spare: one permit every 2 s, each timer finds its slot."""

    async def run() -> list[tuple[float, str]]:
        return await outcomes(machinery(rate_limit=0.5, max_wait=100), 6)

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        results = runner.run(run())
    assert [outcome for _, outcome in results] == ["permit"] * 6
    assert [when for when, _ in results] == pytest.approx([0, 2, 4, 6, 8, 10], abs=0.0011)


def test_a_blind_cut_long_ago_never_overflows_the_curve():
    """A blind cut's doubling curve, 18 minutes on under a rate_limit, stays at the limit.

    A rate_limit keeps the rate from being dropped, so the curve runs on; 2.0 ** 1025
    overflows a float, which made every acquire raise OverflowError and left the callers
    queued behind it waiting for ever.
    """

    async def run() -> list[tuple[float, str]]:
        throttle = machinery(rate_limit=10, max_wait=60)
        permit = await throttle.acquire()
        assert throttle.release(permit, Signal.THROTTLED) is not None  # the blind cut
        await asyncio.sleep(1100)
        return await outcomes(throttle, 20)

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        results = runner.run(run())
    assert [outcome for _, outcome in results] == ["permit"] * 20
    # At the rate_limit, 10 a second: the last of 20 leaves 1.9 s after the first.
    assert results[-1][0] - results[0][0] == pytest.approx(1.9, abs=0.01)


def test_a_fault_in_the_throttle_ends_every_wait():
    """Should handing out a permit ever raise, the waiting callers give up (and it is logged)."""

    class Broken(LocalState):
        def take_paced(self, now: float, rate: float, pacer: Pacer) -> int | None:
            if now > 0:
                raise ArithmeticError("a bug")
            return super().take_paced(now, rate, pacer)

    async def run() -> list[tuple[float, str]]:
        return await outcomes(machinery(Broken(), rate_limit=1, max_wait=60), 4)

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        results = runner.run(run())
    assert [outcome for _, outcome in results] == ["permit"] + ["gave up"] * 3
    assert [when for when, _ in results] == pytest.approx([0, 1, 1, 1], abs=0.0011)


def test_a_timer_due_at_once_can_be_rescheduled_on_uvloop():
    """On uvloop a timer due at once is a plain Handle, without when(): it can be rescheduled.

    A probe's success lets the callers go by such a timer; a 429 to another request sent
    since, before the loop turns, reschedules it. (Before, that raised AttributeError out
    of release(), as seen in a RedisThrottle's lease task.)
    """
    import uvloop

    async def run() -> tuple[bool, str]:
        throttle = machinery(max_wait=1)
        first = await throttle.acquire()
        throttle.release(first, Signal.THROTTLED, pause=0.01)
        probe = await throttle.acquire()  # once the pause is over: the probe
        queued = asyncio.ensure_future(throttle.acquire())
        await asyncio.sleep(0)
        throttle.release(probe, Signal.OK)  # the callers go, by a timer due now
        # A 429 for a request that left after the probe (as another client's would).
        later = Permit(probe.epoch, probe.seq + 1)
        throttle.release(later, Signal.THROTTLED, pause=0.01)
        try:
            await queued
        except ThrottleTimeoutError:
            return probe.probe, "gave up"
        return probe.probe, "permit"

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        was_probe, outcome = runner.run(run())
    assert was_probe
    assert outcome in {"permit", "gave up"}  # either way its wait ended

"""Flow control over real sockets: rate limits, probes after pauses, outages, the budget."""

from __future__ import annotations

import asyncio
import collections

import pytest

from inkit_async import (
    APITimeoutError,
    AsyncInkit,
    InternalServerError,
    RateEvent,
    RateLimitError,
    Throttle,
)
from inkit_async.testing import FakeInkit

from .conftest import NO_WAIT, TOKEN, Events
from .loopback import Respond, echo, html_page

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

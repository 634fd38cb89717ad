"""RedisThrottle in one process, against a real redis-server: what the fleet shares.

Two throttles on one Redis stand for two processes: each has its own state, and only
Redis joins them. The multi-process runs are in test_redis_fleet.py.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio

from inkit_async import APITimeoutError, AsyncInkit, RateEvent, RateLimitError, Throttle
from inkit_async.redis import FleetState, RedisThrottle

from .conftest import NO_WAIT, TOKEN, Events
from .loopback import Respond, closed_port, delayed, echo, held_until, wait_until
from .redis_server import RedisServer, redis_server_fixture  # noqa: F401 - the fixture

SLOW_DOWN = {"error": "slow down"}


def refuse_first(server, retry_after: str | None = None):
    """Answer rb_first with one 429 (with *retry_after*), everything else with echo."""
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    refused: list[bool] = []

    def handler(request):
        if request.last_segment == "rb_first" and not refused:
            refused.append(True)
            return Respond(429, SLOW_DOWN, headers)
        return echo(request)

    server.handler = handler


async def joined(*throttles: RedisThrottle) -> None:
    """Wait until every throttle has reached Redis."""
    await wait_until(lambda: all(t.fleet.connected for t in throttles), 5, "joined Redis")


async def test_a_pause_reaches_every_process(server, redis_server):
    """A Retry-After one throttle got pauses the other within milliseconds."""
    refuse_first(server, retry_after="0.5")
    async with (
        RedisThrottle.from_url(redis_server.url) as first,
        RedisThrottle.from_url(redis_server.url) as second,
        AsyncInkit(TOKEN, base_url=server.url, throttle=first, backoff=NO_WAIT) as one,
        AsyncInkit(TOKEN, base_url=server.url, throttle=second) as other,
    ):
        await asyncio.gather(one.batch.get("rb_warm"), other.batch.get("rb_warm"))
        await joined(first, second)
        refused_at = asyncio.get_running_loop().time()
        with pytest.raises(Exception, match="429"):
            await one.with_options(max_retries=0).batch.get("rb_first")
        await wait_until(lambda: second.state.paused_for > 0, 1, "the pause to arrive")
        arrived = asyncio.get_running_loop().time() - refused_at
        assert second.state.paused_for > 0.3
        batch = await other.batch.get("rb_after")
    assert batch.id == "rb_after"
    assert arrived < 0.5
    after = next(r for r in server.requests if r.last_segment == "rb_after")
    first_refused = next(r for r in server.requests if r.last_segment == "rb_first")
    # Less one tick of the coarsest loop clock: uvloop's counts whole milliseconds.
    assert after.received_at >= first_refused.received_at + 0.5 - 0.001


async def test_a_cut_is_the_fleets_rate(server, redis_server):
    """A 429 that cuts one throttle's rate sets the same rate in the other."""
    refuse_first(server)
    events = Events()
    async with (
        RedisThrottle.from_url(redis_server.url) as first,
        RedisThrottle.from_url(redis_server.url) as second,
        AsyncInkit(TOKEN, base_url=server.url, throttle=first, on_event=events) as one,
        AsyncInkit(TOKEN, base_url=server.url, throttle=second) as other,
    ):
        await asyncio.gather(one.batch.get("rb_warm"), other.batch.get("rb_warm"))
        await joined(first, second)
        await one.batch.get("rb_first")
        [cut] = [event for event in events if isinstance(event, RateEvent)]
        await wait_until(lambda: second.state.rate is not None, 1, "the cut to arrive")
        assert second.state.rate == pytest.approx(first.state.rate, rel=0.2)
        assert first.state.cuts == 1
        assert second.state.cuts == 0  # adopted, not cut again
        batches = await other.batch.get_many([f"rb_{n}" for n in range(5)])
    assert cut.status_code == 429
    assert [batch.id for batch in batches] == [f"rb_{n}" for n in range(5)]


async def test_a_rate_limit_holds_for_the_fleet(server, redis_server):
    """Two throttles with rate_limit=50: no second at the server holds more than 53 requests.

    (51 is the local throttle's bound; a slot that a busy event loop sends late, up to
    0.1 s, may add one or two to a window.)
    """
    async with (
        RedisThrottle.from_url(redis_server.url, rate_limit=50) as first,
        RedisThrottle.from_url(redis_server.url, rate_limit=50) as second,
        AsyncInkit(TOKEN, base_url=server.url, throttle=first) as one,
        AsyncInkit(TOKEN, base_url=server.url, throttle=second) as other,
    ):
        await asyncio.gather(
            one.batch.get_many([f"rb_a{n}" for n in range(60)]),
            other.batch.get_many([f"rb_b{n}" for n in range(60)]),
        )
        assert first.fleet.connected
        assert second.fleet.connected
    arrivals = sorted(request.received_at for request in server.requests)
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1) for start in arrivals)
    assert len(arrivals) == 120
    assert busiest <= 53
    # Both shared the one rate: the fleet took at least 119/50 s, not half of it.
    assert arrivals[-1] - arrivals[0] >= 119 / 50 - 0.1


async def test_an_in_flight_budget_holds_for_the_fleet(server, redis_server):
    """max_in_flight=5 on two throttles: the server never has more than 5 requests at once."""
    server.handler = delayed(0.03)
    async with (
        RedisThrottle.from_url(redis_server.url, max_in_flight=5) as first,
        RedisThrottle.from_url(redis_server.url, max_in_flight=5) as second,
        AsyncInkit(TOKEN, base_url=server.url, throttle=first) as one,
        AsyncInkit(TOKEN, base_url=server.url, throttle=second) as other,
    ):
        results = await asyncio.gather(
            one.batch.get_many([f"rb_a{n}" for n in range(40)]),
            other.batch.get_many([f"rb_b{n}" for n in range(40)]),
        )
        await wait_until(lambda: first.fleet.leases == 0, 2, "idle leases given back")
    assert [len(batches) for batches in results] == [40, 40]
    assert server.peak_in_flight <= 5
    assert server.peak_in_flight >= 3  # the budget was used, not just one at a time


async def test_leases_of_a_cancelled_call_come_back(server, redis_server):
    """Cancelled calls give their leases back: the budget serves at full width after."""
    release = asyncio.Event()
    server.handler = held_until(release)
    async with (
        RedisThrottle.from_url(redis_server.url, max_in_flight=3) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        stuck = [asyncio.create_task(client.batch.get(f"rb_{n}")) for n in range(6)]
        await server.wait_for_in_flight(3)
        await asyncio.sleep(0.05)
        assert server.in_flight == 3  # the other three wait for a lease
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        release.set()
        server.handler = echo
        batches = await client.batch.get_many([f"rb_next{n}" for n in range(9)])
        assert throttle.fleet.leases <= 3
    assert len(batches) == 9


async def test_without_redis_every_lookup_still_succeeds(server, caplog):
    """No Redis at all: the throttle works on its own state and logs one WARNING."""
    url = f"redis://127.0.0.1:{closed_port()}/0"
    caplog.set_level(logging.INFO, logger="inkit_async")
    async with (
        RedisThrottle.from_url(url, rate_limit=500, max_in_flight=5) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        batches = await client.batch.get_many([f"rb_{n}" for n in range(50)])
        await asyncio.sleep(0.3)  # a rejoin attempt or two, which fail quietly
        fleet = throttle.fleet
    assert len(batches) == 50
    assert (fleet.connected, fleet.outages) == (False, 1)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Redis is unreachable" in warnings[0].getMessage()


async def test_a_frozen_redis_costs_at_most_the_timeout(server, redis_server, caplog):
    """A Redis that stops answering: calls go on after the 0.25 s timeout, locally paced."""
    caplog.set_level(logging.WARNING, logger="inkit_async")
    async with (
        RedisThrottle.from_url(redis_server.url, rate_limit=200) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        await client.batch.get_many([f"rb_{n}" for n in range(10)])
        assert throttle.fleet.connected
        redis_server.freeze()
        try:
            batches = await asyncio.wait_for(
                client.batch.get_many([f"rb_f{n}" for n in range(100)]), 5
            )
            assert not throttle.fleet.connected
        finally:
            redis_server.thaw()
        await wait_until(lambda: throttle.fleet.connected, 5, "the rejoin")
        again = await client.batch.get_many([f"rb_t{n}" for n in range(10)])
    assert len(batches) == 100
    assert len(again) == 10
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_redis_restarted_empty_is_seeded_with_the_rate(server, redis_server, caplog):
    """Redis dies and comes back empty: the throttle rejoins and gives it its rate."""
    refuse_first(server)
    caplog.set_level(logging.INFO, logger="inkit_async")
    async with (
        RedisThrottle.from_url(redis_server.url) as first,
        RedisThrottle.from_url(redis_server.url) as second,
        AsyncInkit(TOKEN, base_url=server.url, throttle=first) as one,
        AsyncInkit(TOKEN, base_url=server.url, throttle=second) as other,
    ):
        await asyncio.gather(one.batch.get("rb_warm"), other.batch.get("rb_warm"))
        await one.batch.get("rb_first")  # a cut: the fleet has a rate
        await wait_until(lambda: second.state.rate is not None, 1, "the cut to arrive")
        redis_server.kill()
        batches = await one.batch.get_many([f"rb_{n}" for n in range(20)])
        assert not first.fleet.connected
        redis_server.start()
        await wait_until(lambda: first.fleet.connected and second.fleet.connected, 5, "rejoin")
        await asyncio.gather(one.batch.get("rb_x"), other.batch.get("rb_y"))
        assert first.state.rate is not None
        assert second.state.rate is not None
        fleets = (first.fleet, second.fleet)
    assert len(batches) == 20
    assert [fleet.outages for fleet in fleets] == [1, 1]
    messages = [r.getMessage() for r in caplog.records if r.name == "inkit_async"]
    assert sum("Redis is unreachable" in m for m in messages) == 2  # one per throttle
    assert sum("reached Redis again" in m for m in messages) == 2


async def test_keys_hold_the_tokens_hash_and_all_expire(server, redis_server):
    """Bound to a token, the keys carry its hash, never the token, and every key expires."""
    refuse_first(server, retry_after="0.2")
    throttle = RedisThrottle.from_url(redis_server.url, namespace="staging", max_in_flight=4)
    throttle.bind(TOKEN)
    throttle.bind(TOKEN)  # the same token again: nothing changes
    async with (
        throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle, backoff=NO_WAIT) as client,
    ):
        await client.batch.get_many([f"rb_{n}" for n in range(10)])
        await client.batch.get("rb_first")  # a cut and a pause: every key is written
        prefix = throttle.fleet.key_prefix
        assert TOKEN not in repr(throttle)
        assert prefix in repr(throttle)
        inspector = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            keys = sorted(key.decode() for key in await inspector.keys("*"))
            ttls = [await inspector.pttl(key) for key in keys]
        finally:
            await inspector.aclose()
    assert prefix.startswith("inkit:{staging:")
    assert TOKEN not in prefix
    assert keys
    assert all(key.startswith(prefix) for key in keys)
    assert all(TOKEN not in key for key in keys)
    # -1 is a key that never expires; -2 one that expired between KEYS and PTTL (a short
    # pause's key, on a loaded machine): it did expire.
    assert all(ttl > 0 or ttl == -2 for ttl in ttls), ttls
    with pytest.raises(ValueError, match="another API token"):
        throttle.bind("tok_other")


async def test_different_tokens_have_different_fleets(redis_server):
    """Throttles bound to two tokens, or two namespaces, name different keys."""
    names = []
    for namespace, token in [(None, "tok_a"), (None, "tok_b"), ("other", "tok_a")]:
        throttle = RedisThrottle.from_url(redis_server.url, namespace=namespace)
        throttle.bind(token)
        names.append(throttle.fleet.key_prefix)
        await throttle.aclose()
    assert len(set(names)) == 3


async def test_a_throttle_in_use_refuses_another_token(server, redis_server):
    """Keys cannot change under a running fleet: a throttle in use takes no other token."""
    async with (
        RedisThrottle.from_url(redis_server.url) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        await client.batch.get("rb_1")
        with pytest.raises(ValueError, match="token"):
            throttle.bind("tok_late")


async def test_the_client_binds_its_token(server, redis_server):
    """AsyncInkit binds the throttle to its token: the keys carry that token's hash."""
    bound = RedisThrottle.from_url(redis_server.url)
    bound.bind(TOKEN)
    expected = bound.fleet.key_prefix
    await bound.aclose()
    async with (
        RedisThrottle.from_url(redis_server.url) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        await client.batch.get("rb_1")
        assert throttle.fleet.key_prefix == expected


async def test_a_redis_client_of_yours_is_left_open(server, redis_server):
    """RedisThrottle(client) uses your redis.asyncio.Redis and does not close it."""
    mine = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        async with (
            RedisThrottle(mine, rate_limit=100) as throttle,
            AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
        ):
            batches = await client.batch.get_many([f"rb_{n}" for n in range(5)])
            assert isinstance(throttle, Throttle)
            assert client.throttle is throttle
            assert isinstance(throttle.fleet, FleetState)
        assert await mine.ping()
    finally:
        await mine.aclose()
    assert len(batches) == 5


async def test_closing_twice_and_using_after_close_are_harmless(server, redis_server):
    """After aclose the throttle goes on alone; closing again does nothing."""
    throttle = RedisThrottle.from_url(redis_server.url, rate_limit=100, max_in_flight=2)
    async with AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client:
        await client.batch.get("rb_1")
        await throttle.aclose()
        await throttle.aclose()
        batches = await client.batch.get_many([f"rb_{n}" for n in range(5)])
    assert len(batches) == 5
    assert not throttle.fleet.connected


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"namespace": ""}, ValueError),
        ({"namespace": "a{b}"}, ValueError),
        ({"namespace": 3}, TypeError),
        ({"max_in_flight": 0}, ValueError),
        ({"max_in_flight": 2.5}, TypeError),
        ({"lease_ttl": 0.1}, ValueError),
        ({"timeout": "1"}, TypeError),
        ({"rate_limit": 0}, ValueError),
    ],
)
def test_bad_options_are_refused(options, error):
    """RedisThrottle checks its options when it is built, before touching Redis."""
    with pytest.raises(error):
        RedisThrottle.from_url("redis://127.0.0.1:1/0", **options)


def test_a_client_that_is_not_redis_is_refused():
    """RedisThrottle takes a redis.asyncio.Redis."""
    with pytest.raises(TypeError, match=r"redis\.asyncio\.Redis"):
        RedisThrottle("redis://127.0.0.1:1/0")  # type: ignore[arg-type]


def test_redis_server_helper_restarts_on_its_port():
    """The fixture's server can be killed and started again on the same port."""
    with RedisServer() as server:
        port = server.port
        server.kill()
        server.start()
        assert server.port == port
        assert server.url.endswith(f":{port}/0")


async def test_a_fleet_refused_everything_cannot_hang_callers(server, redis_server):
    """Every request 429 without Retry-After: 100 concurrent gets through Redis all end.

    The fleet's rate falls to its floor, and the callers queue for slots leased from
    Redis; each wait ends within max_wait, as with a local Throttle.
    """
    server.handler = lambda request: Respond(429, SLOW_DOWN)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with (
        asyncio.timeout(60),
        RedisThrottle.from_url(redis_server.url, max_wait=2) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        results = await asyncio.gather(
            *(client.batch.get(f"rb_{n}") for n in range(100)), return_exceptions=True
        )
    assert all(isinstance(result, RateLimitError | APITimeoutError) for result in results)
    assert loop.time() - started < 3 * (2 + 1)  # three waits and attempts at most

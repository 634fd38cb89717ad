"""RedisThrottle in one process, against a real redis-server: what the fleet shares.

Two throttles on one Redis stand for two processes: each has its own state, and only
Redis joins them. The multi-process runs are in test_redis_fleet.py.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import inspect
import logging
import math
from typing import Self

import pytest
import redis.asyncio

from inkit_async import (
    APITimeoutError,
    AsyncInkit,
    Batch,
    RateEvent,
    RateLimitError,
    Throttle,
)
from inkit_async._redis_scripts import (
    Cut,
    FleetRate,
    Garbage,
    Keys,
    Lease,
    Members,
    Pause,
    Reader,
    Span,
    Sync,
)
from inkit_async._throttle import regulator_of
from inkit_async.redis import (
    FleetState,
    RedisThrottle,
    RedisThrottleArguments,
    ThrottleArguments,
)
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.events import Events
from tests.support.loopback import Respond, closed_port, delayed, echo, held_until, wait_until
from tests.support.redis_server import RedisServer

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
    regulator_of(throttle).bind(TOKEN)
    regulator_of(throttle).bind(TOKEN)  # the same token again: nothing changes
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
    # PTTL says -1 of a key that never expires. A short pause's key can be read with 0 ms
    # left, or be gone by the time it is read (-2) on a loaded machine: it did expire.
    assert -1 not in ttls, ttls
    with pytest.raises(ValueError, match="another API token"):
        regulator_of(throttle).bind("tok_other")


async def test_different_tokens_have_different_fleets(redis_server):
    """Throttles bound to two tokens, or two namespaces, name different keys."""
    names = []
    for namespace, token in [(None, "tok_a"), (None, "tok_b"), ("other", "tok_a")]:
        throttle = RedisThrottle.from_url(redis_server.url, namespace=namespace)
        regulator_of(throttle).bind(token)
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
            regulator_of(throttle).bind("tok_late")


async def test_the_client_binds_its_token(server, redis_server):
    """AsyncInkit binds the throttle to its token: the keys carry that token's hash."""
    expected = Keys(None, TOKEN).prefix
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


def _written(typed_dict: type) -> list[tuple[str, str]]:
    """A TypedDict's keys and their annotations as written (``from __future__`` strings)."""
    return [(name, ref.__forward_arg__) for name, ref in typed_dict.__annotations__.items()]


def test_the_options_typing_needs_twice_are_held_to_throttles():
    """ThrottleArguments is Throttle's keywords; RedisThrottleArguments adds RedisThrottle's.

    Names, order and annotations as written. ``RedisThrottle`` takes Throttle's options
    as ``**throttle: Unpack[ThrottleArguments]`` and ``from_url`` all of them as
    ``**options: Unpack[RedisThrottleArguments]``, so the defaults are the classes' own.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY
    variadic = inspect.Parameter.VAR_KEYWORD
    throttle = [(p.name, p.annotation) for p in inspect.signature(Throttle).parameters.values()]
    assert {p.kind for p in inspect.signature(Throttle).parameters.values()} == {keyword}
    assert _written(ThrottleArguments) == throttle
    *redis_own, rest = inspect.signature(RedisThrottle).parameters.values()
    assert (rest.name, rest.kind, rest.annotation) == (
        "throttle",
        variadic,
        "Unpack[ThrottleArguments]",
    )
    own = [(p.name, p.annotation) for p in redis_own if p.kind is keyword]
    assert [name for name, _ in own] == ["namespace", "max_in_flight", "lease_ttl", "timeout"]
    assert _written(RedisThrottleArguments) == throttle + own
    assert ThrottleArguments.__required_keys__ == RedisThrottleArguments.__required_keys__ == set()
    url, options = inspect.signature(RedisThrottle.from_url).parameters.values()
    assert (url.name, options.name, options.kind) == ("url", "options", variadic)
    assert options.annotation == "Unpack[RedisThrottleArguments]"
    # The reference documents each of Throttle's options, with its type, under the class.
    for name, annotation in throttle:
        # cleandoc: Python 3.13 strips the docstring's indentation itself, 3.11 keeps it.
        assert f"\n    {name} ({annotation}): " in inspect.cleandoc(RedisThrottle.__doc__ or "")


async def test_from_url_has_the_classes_defaults():
    """With no options, from_url's throttle has Throttle's defaults and RedisThrottle's."""
    throttle = RedisThrottle.from_url("redis://127.0.0.1:1/0")
    try:
        plain = Throttle()
        assert [getattr(throttle, name) for name, _ in _written(ThrottleArguments)] == [
            getattr(plain, name) for name, _ in _written(ThrottleArguments)
        ]
        assert (throttle.namespace, throttle.max_in_flight) == (None, None)
        assert (throttle.lease_ttl, throttle.timeout) == (10.0, 0.25)
    finally:
        await throttle.aclose()


@pytest.mark.redis
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


# -- nothing read from Redis is trusted ------------------------------------------------------

#: Seconds a test of poisoned Redis data allows its lookups: a hang fails it, not the suite.
POISON_BOUND = 15.0


class Spy:
    """A plain redis-py client on the test's Redis: what a hostile neighbour can do."""

    def __init__(self, url: str, throttle: RedisThrottle) -> None:
        """Talk to the Redis at *url*, to the keys of *throttle*'s token."""
        self.redis = redis.asyncio.Redis.from_url(url, decode_responses=True)
        self.prefix = throttle.fleet.key_prefix

    def key(self, name: str) -> str:
        """The full name of one of the token's keys (``state``, ``pause``, ...)."""
        return f"{self.prefix}:{name}"

    async def now_ms(self) -> float:
        """Redis's clock, in milliseconds (the clock the scripts keep times in)."""
        seconds, micros = await self.redis.time()
        return seconds * 1000 + micros / 1000

    async def publish(self, *messages: str) -> None:
        """Publish *messages* on the token's channel, in order."""
        for message in messages:
            await self.redis.publish(self.key("events"), message)

    async def heartbeat_since(self, moment_ms: float) -> None:
        """Wait until the throttle's heartbeat has run after *moment_ms* (Redis's clock)."""
        for _ in range(500):
            scores = await self.redis.zrange(self.key("members"), 0, -1, withscores=True)
            if any(score > moment_ms for _, score in scores):
                return
            await asyncio.sleep(0.01)
        raise AssertionError("no heartbeat within 5 s")

    async def state_hash(self) -> dict[str, str]:
        """The fleet's state hash as Redis holds it."""
        return await self.redis.hgetall(self.key("state"))

    async def aclose(self) -> None:
        """Close the connection."""
        await self.redis.aclose()


def assert_clean(state: dict[str, str]) -> None:
    """Every value in a state hash is a finite number (the throttle wrote back no garbage)."""
    assert state
    for name, value in state.items():
        assert math.isfinite(float(value)), (name, value)


async def lookups(client: AsyncInkit, tag: str, count: int = 20) -> list[str]:
    """*count* gets, a few at a time, that must all succeed."""
    batches = await client.batch.get_many([f"rb_{tag}{n}" for n in range(count)])
    return [batch.id for batch in batches]


@pytest.fixture
async def loop_errors() -> list[dict[str, object]]:
    """What reaches the event loop's exception handler (a task exception never retrieved)."""
    errors: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: errors.append(context))
    return errors


async def test_a_pause_from_redis_is_capped_like_a_retry_after(server, redis_server, caplog):
    """Pauses of inf, 1e15 s, NaN or words, on the channel or in the pause key, pause nothing.

    They are ignored and logged once (not once per message), and a flood of them changes
    nothing; after FLUSHALL the throttle goes on as before. (Before, a pause of inf paused
    the process for ever, also after Redis was flushed.)
    """
    caplog.set_level(logging.WARNING, logger="inkit_async")
    async with (
        asyncio.timeout(POISON_BOUND),
        RedisThrottle.from_url(redis_server.url) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        await client.batch.get("rb_warm")
        await joined(throttle)
        spy = Spy(redis_server.url, throttle)
        try:
            poison = [f"p intruder {ms} 0" for ms in ("inf", "1e15", "nan", "abc", "-5", "")]
            await spy.publish(*poison, *(["p intruder inf 1"] * 200))
            await wait_until(lambda: throttle.fleet.ignored >= 206, 5, "the messages")
            moment = await spy.now_ms()
            await spy.redis.set(spy.key("pause"), "1", px=10**15)  # no process writes that
            await spy.heartbeat_since(moment)
            assert throttle.state.paused_for == 0
            assert await lookups(client, "a") == [f"rb_a{n}" for n in range(20)]
            await spy.redis.flushall()
            assert await lookups(client, "b") == [f"rb_b{n}" for n in range(20)]
        finally:
            await spy.aclose()
        fleet = throttle.fleet
    assert fleet.connected
    assert fleet.ignored >= 206
    ignored = [r for r in caplog.records if "ignored a value read from Redis" in r.getMessage()]
    assert len(ignored) == 1


async def test_a_nan_rate_from_redis_is_never_adopted_nor_written_back(
    server, redis_server, loop_errors
):
    """NaN, infinite or word rates in cut messages and in the state hash are not adopted.

    Lookups go on at the known rate, no background task fails (no "Task exception was
    never retrieved"), and after FLUSHALL the state the throttle writes holds only finite
    numbers. (Before, every get hung, a task failed and was respawned in a tight loop, and
    the process wrote NaN back into the flushed Redis.)
    """
    refused: list[bool] = []

    def handler(request):
        if request.last_segment == "rb_refused" and not refused:
            refused.append(True)
            return Respond(429, SLOW_DOWN)
        return echo(request)

    server.handler = handler
    async with (
        asyncio.timeout(POISON_BOUND),
        RedisThrottle.from_url(redis_server.url, rate_limit=200) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle, backoff=NO_WAIT) as client,
    ):
        await client.batch.get("rb_warm")
        await joined(throttle)
        spy = Spy(redis_server.url, throttle)
        try:
            await spy.publish(
                "c intruder 8 abc 2 1",
                "c intruder 9 inf inf 0",
                "c intruder 10 1e-300 1 0",
                "c intruder 11 5 5 2",
                "c intruder 1e+15 5 5 0",
                "c intruder 12 5",
                "m intruder 1e12",
                "c intruder 7 nan nan 0",
            )
            await wait_until(lambda: throttle.fleet.ignored >= 8, 5, "the messages")
            assert await lookups(client, "a") == [f"rb_a{n}" for n in range(20)]
            for poison in (
                {"epoch": "12", "rate": "nan", "refused": "nan", "blind": "0"},
                {"epoch": "13", "rate": "abc", "refused": "inf", "blind": "2", "cut_at": "inf"},
                {
                    "epoch": "14",
                    "burst": "nan",
                    "seq": "-3",
                    "span_seq": "1.5",
                    "span_at": "abc",
                    "span_bucket": "-inf",
                },
            ):
                moment = await spy.now_ms()
                await spy.redis.hset(spy.key("state"), mapping=poison)
                await spy.heartbeat_since(moment)
                assert len(await lookups(client, f"h{poison['epoch']}")) == 20
            rate = throttle.state.rate
            assert rate is not None
            assert math.isfinite(rate)
            await spy.redis.flushall()
            assert await lookups(client, "b") == [f"rb_b{n}" for n in range(20)]
            await client.batch.get("rb_refused")  # a cut: the throttle writes its rate
            await wait_until(lambda: throttle.state.cuts == 1, 5, "the cut")
            await spy.heartbeat_since(await spy.now_ms())
            state = await spy.state_hash()
        finally:
            await spy.aclose()
    gc.collect()  # a task that failed unseen is reported when it is collected
    assert_clean(state)
    assert int(state["epoch"]) == 1
    assert loop_errors == []


async def test_a_far_future_send_time_in_redis_holds_nothing_back(server, redis_server):
    """A next send time (``tat``) years ahead, or infinite, holds the fleet back no longer.

    It delays the fleet's slots by at most one interval at the lowest rate (2 s), and
    after FLUSHALL nothing of it is left.

    (Before, every get hung, also after Redis was flushed: the slots leased were years away.)
    """
    async with (
        asyncio.timeout(POISON_BOUND),
        RedisThrottle.from_url(redis_server.url, rate_limit=200) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        await client.batch.get("rb_warm")
        await joined(throttle)
        spy = Spy(redis_server.url, throttle)
        try:
            for tat in (repr(await spy.now_ms() + 1e12), "inf"):
                await spy.redis.hset(spy.key("state"), "tat", tat)
                assert len(await lookups(client, f"t{tat[:3]}")) == 20
            assert float((await spy.state_hash())["tat"]) < await spy.now_ms() + 10_000
            await spy.redis.hset(spy.key("state"), "tat", repr(await spy.now_ms() + 1e12))
            await spy.redis.flushall()
            assert await lookups(client, "b") == [f"rb_b{n}" for n in range(20)]
        finally:
            await spy.aclose()


class TaskCount:
    """Counts the tasks the running loop creates (its task factory), while installed."""

    def __init__(self) -> None:
        """Count nothing yet."""
        self.created = 0

    def __enter__(self) -> Self:
        """Install the counting factory on the running loop."""
        loop = asyncio.get_running_loop()
        self._before = loop.get_task_factory()

        def factory(loop, coro, **kwargs):
            self.created += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Put the loop's own factory back."""
        asyncio.get_running_loop().set_task_factory(self._before)


async def test_a_rate_past_its_release_point_is_dropped_not_spun_on(server, redis_server):
    """A fleet state whose curve is past its release point releases the rate at once.

    Callers queued at 2/s; then the state hash says a blind cut happened 10 s ago (its
    doubling curve is far past 32 times the refused rate). The rate is dropped, every
    queued get goes (well within max_wait), and the throttle creates a handful of tasks.
    (Before, the lease task returned without dropping the rate and respawned itself
    ~70,000 times a second, and each respawn replaced the max_wait timer before it could
    fire: the gets hung, one core at 100%.)
    """
    max_wait = 5.0
    async with (
        asyncio.timeout(max_wait + 10),
        RedisThrottle.from_url(redis_server.url, max_wait=max_wait) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        await joined(throttle)
        spy = Spy(redis_server.url, throttle)
        gets: list[asyncio.Task[Batch]] = []
        try:
            moment = await spy.now_ms()
            await spy.redis.hset(
                spy.key("state"),
                mapping={"epoch": 1, "rate": 2, "refused": 2, "blind": 0, "cut_at": moment},
            )
            await spy.heartbeat_since(await spy.now_ms())  # one that read the state
            # The fleet's rate, flat at the refused rate, once the throttle has read it.
            await wait_until(lambda: throttle.state.rate == 2, 5, "the fleet's rate read")
            gets = [asyncio.create_task(client.batch.get(f"rb_{n}")) for n in range(20)]
            await wait_until(lambda: len(server.requests) >= 1, 5, "the first get")
            with TaskCount() as tasks:
                moment = await spy.now_ms()
                await spy.redis.hset(
                    spy.key("state"),
                    mapping={
                        "epoch": 2,
                        "rate": 2,
                        "refused": 2,
                        "blind": 1,
                        "cut_at": moment - 1e4,
                    },
                )
                _, pending = await asyncio.wait(gets, timeout=max_wait + 2)
        finally:
            for get in gets:
                get.cancel()
            await spy.aclose()
    assert tasks.created < 200  # the heartbeats' and the requests' own, not a spin
    assert not pending
    assert [get.result().id for get in gets] == [f"rb_{n}" for n in range(20)]
    assert throttle.state.rate is None


async def test_a_share_of_a_low_rate_is_paced_at_the_lowest_rate_without_redis(
    server, redis_server
):
    """Redis lost with a fleet of 1,000 at 0.5/s: this process paces at 0.5/s, not 0.0005/s.

    The share of the fleet's rate it paces at on its own is never below the lowest rate
    the throttle sets. (Before, the next send was 2,000 s ahead: every get but the first
    gave up at max_wait, and so did every later one while Redis stayed lost.)
    """
    async with (
        asyncio.timeout(POISON_BOUND),
        RedisThrottle.from_url(redis_server.url, max_wait=5) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        await joined(throttle)
        spy = Spy(redis_server.url, throttle)
        try:
            now = await spy.now_ms()
            await spy.redis.hset(
                spy.key("state"),
                mapping={"epoch": 1, "rate": 0.5, "refused": 0.5, "blind": 0, "cut_at": now},
            )
            await spy.redis.zadd(spy.key("members"), {f"other:{n}": now for n in range(999)})
            await wait_until(lambda: throttle.fleet.processes >= 1000, 5, "the members")
            assert throttle.state.rate == 0.5
        finally:
            await spy.aclose()
        redis_server.kill()
        await wait_until(lambda: not throttle.fleet.connected, 5, "the link to go local")
        batches = await asyncio.gather(client.batch.get("rb_a"), client.batch.get("rb_b"))
        assert throttle.fleet.processes >= 1000  # the share it last saw, still
    assert [batch.id for batch in batches] == ["rb_a", "rb_b"]


async def test_leases_no_process_holds_do_not_fill_the_budget(server, redis_server):
    """In-flight leases scored years ahead (written by anyone) are dropped, not waited on."""
    async with (
        asyncio.timeout(POISON_BOUND),
        RedisThrottle.from_url(redis_server.url, max_in_flight=2) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        await client.batch.get("rb_warm")
        await joined(throttle)
        await wait_until(lambda: throttle.fleet.leases == 0, 5, "idle leases given back")
        spy = Spy(redis_server.url, throttle)
        try:
            far = await spy.now_ms() + 1e12
            await spy.redis.zadd(spy.key("leases"), {"x:1": far, "x:2": far, "x:3": "inf"})
            assert await lookups(client, "a") == [f"rb_a{n}" for n in range(20)]
        finally:
            await spy.aclose()
    assert server.peak_in_flight <= 2


async def test_a_failed_background_task_is_logged_once_and_not_respawned(
    server, redis_server, caplog, loop_errors
):
    """A background task that fails (a bug) is logged once, and nothing respawns it at once.

    The record has the traceback; the link goes local and rejoins with backoff; nothing
    reaches the loop's exception handler ("Task exception was never retrieved").
    """
    caplog.set_level(logging.INFO, logger="inkit_async")

    async def broken() -> None:
        raise RuntimeError("a bug in a background task")

    async with (
        RedisThrottle.from_url(redis_server.url) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        await client.batch.get("rb_warm")
        await joined(throttle)
        link = throttle._fleet.link  # noqa: SLF001 - how the throttle runs its background work
        link.spawn(broken())
        await wait_until(lambda: not throttle.fleet.connected, 5, "the link to go local")
        link.spawn(broken())
        await joined(throttle)  # it rejoins by itself
        batches = await client.batch.get_many([f"rb_{n}" for n in range(5)])
    gc.collect()
    failures = [r for r in caplog.records if "background task" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert "a bug in a background task" in caplog.text
    assert len(batches) == 5
    assert loop_errors == []


async def test_a_wait_for_an_in_flight_lease_ends_at_max_wait(server, redis_server):
    """max_in_flight=1 and the one lease held: the next call gives up after max_wait, unsent."""
    release = asyncio.Event()
    server.handler = held_until(release)
    async with (
        asyncio.timeout(POISON_BOUND),
        RedisThrottle.from_url(redis_server.url, max_in_flight=1, max_wait=0.5) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        held = asyncio.create_task(client.batch.get("rb_held"))
        await server.wait_for_in_flight(1)
        with pytest.raises(APITimeoutError, match="nothing was sent"):
            await client.batch.get("rb_waiting")
        release.set()
        assert (await held).id == "rb_held"
        server.handler = echo
        assert (await client.batch.get("rb_after")).id == "rb_after"
    assert [request.last_segment for request in server.requests] == ["rb_held", "rb_after"]


async def test_a_reply_redis_cannot_mean_counts_as_a_failed_call(server, redis_server, caplog):
    """A heartbeat set flooded past any fleet's size: the throttle goes on alone, rejoins later.

    The script's reply (a count of 100,001 processes) is garbage: the throttle uses none
    of it, goes on with its own state (its share of the rate is not divided by the
    flood), logs it once, and rejoins with backoff once the flood is gone.
    """
    caplog.set_level(logging.INFO, logger="inkit_async")
    async with (
        asyncio.timeout(POISON_BOUND),
        # (A timeout of 2 s: Redis takes a while over a set of 100,001, and this test is
        # about what it answers, not about how fast.)
        RedisThrottle.from_url(redis_server.url, rate_limit=500, timeout=2) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        await client.batch.get("rb_warm")
        await joined(throttle)
        spy = Spy(redis_server.url, throttle)
        try:
            now = await spy.now_ms()
            flood = {f"intruder:{n}": now for n in range(100_001)}
            await spy.redis.zadd(spy.key("members"), flood)
            await wait_until(lambda: not throttle.fleet.connected, 5, "the link to go local")
            assert throttle.fleet.processes < 100
            assert await lookups(client, "a") == [f"rb_a{n}" for n in range(20)]
            await spy.redis.delete(spy.key("members"))
            await joined(throttle)
        finally:
            await spy.aclose()
        fleet = throttle.fleet
    assert fleet.ignored >= 1
    assert fleet.outages == 0  # Redis answered: garbage is not an outage
    ignored = [r for r in caplog.records if "ignored a value read from Redis" in r.getMessage()]
    assert len(ignored) == 1
    assert "members" in ignored[0].getMessage()
    assert not [r for r in caplog.records if "unreachable" in r.getMessage()]


# -- the one boundary, with plain values ------------------------------------------------------

READER = Reader(max_pause=60)
#: A ``state(...)`` reply as the scripts write it: epoch, rate, refused, blind, cut age ms,
#: burst, and the stretch's first send, age ms and bucket.
STATE = ["3", "12.5", "20", "1", "1500", "4", "7", "250", "2"]
STATE_READ = FleetRate(
    epoch=3,
    burst=4.0,
    rate=12.5,
    refused=20.0,
    blind=True,
    cut_age=1.5,
    span=Span(seq=7, age=0.25, bucket=2.0),
)


def test_the_reader_takes_what_the_scripts_write():
    """Replies and messages of the shapes the scripts write are read as they were meant."""
    assert READER.sync([2, 1500, *STATE]) == Sync(members=2, pause=1.5, state=STATE_READ)
    assert READER.sync([1, -2, *(value.encode() for value in STATE)]).state == STATE_READ
    assert READER.sync([1, 0, "0", "", "", "", "", "0", "", "", ""]).state == FleetRate(
        epoch=0, burst=0.0
    )
    assert READER.lease([4, b"3", b"12.5", b"5", 101, b"", b"", b""], 4) == Lease(
        count=4, delay=0.0125, interval=0.005, first=101, span=None
    )
    assert READER.lease([0, *STATE], 4) == STATE_READ
    assert READER.cut([1, 4]) == 4
    assert READER.cut([0, *STATE]) == STATE_READ
    assert READER.taken(3, 5) == 3
    assert READER.message(b"c ab12 4 12.5 20 1") == Cut(
        origin="ab12", epoch=4, rate=12.5, refused=20.0, blind=True
    )
    assert READER.message("p ab12 1500.0 0") == Pause(origin="ab12", seconds=1.5)
    assert READER.message(b"m ab12 3") == Members(origin="ab12", count=3)


def _state(**changes: str) -> list[object]:
    fields = ["epoch", "rate", "refused", "blind", "cut_age", "burst", "seq", "age", "bucket"]
    return [changes.get(name, value) for name, value in zip(fields, STATE, strict=True)]


@pytest.mark.parametrize(
    ("read", "reply"),
    [
        *(
            (READER.sync, [1, 0, *_state(**{field: value})])
            for field, value in [
                ("epoch", "nan"),
                ("epoch", "1.5"),
                ("epoch", "-1"),
                ("epoch", "1e15"),
                ("rate", "nan"),
                ("rate", "inf"),
                ("rate", "abc"),
                ("rate", "0.1"),
                ("rate", "1e300"),
                ("rate", ""),
                ("refused", "-inf"),
                ("blind", "2"),
                ("cut_age", "inf"),
                ("cut_age", "-1e9"),
                ("burst", "-1"),
                ("seq", "x"),
                ("age", "nan"),
                ("bucket", "1e300"),
                ("rate", "1" * 100),
                ("rate", b"\xff\xfe"),
                ("rate", 1.5j),
            ]
        ),
        (READER.sync, [10**6, 0, *STATE]),
        (READER.sync, [1, 10**12, *STATE]),
        (READER.sync, [1, 0, *STATE[:8]]),
        (READER.sync, "OK"),
        (READER.sync, None),
        (READER.lease, [5, "3", "12.5", "5", 101, "", "", ""]),
        (READER.lease, [1, "3", "1e15", "5", 101, "", "", ""]),
        (READER.lease, [1, "3", "-1", "5", 101, "", "", ""]),
        (READER.lease, [1, "3", "12.5", "0", 101, "", "", ""]),
        (READER.lease, [1, "3", "12.5", "inf", 101, "", "", ""]),
        (READER.lease, [1, "3", "12.5", "5", 0, "", "", ""]),
        (READER.lease, [1, "3", "12.5", "5", 101]),
        (READER.lease, [-1, *STATE]),
        (READER.cut, [1, 0]),
        (READER.cut, [2, 4]),
        (READER.cut, [0, "nan", *STATE[1:]]),
        (READER.taken, 9),
        (READER.taken, "nan"),
        (READER.taken, [1]),
    ],
)
def test_the_reader_refuses_garbage(read, reply):
    """Anything not finite, out of range, or of another shape is garbage."""
    if read == READER.lease:
        read = functools.partial(READER.lease, want=4)
    elif read == READER.taken:
        read = functools.partial(READER.taken, want=5)
    with pytest.raises(Garbage):
        read(reply)


@pytest.mark.parametrize(
    "message",
    [
        "p x inf 0",
        "p x 1e15 0",
        "p x 60001 0",
        "p x nan 0",
        "p x abc 0",
        "p x 0 0",
        "p x -5 0",
        "p x 5",
        "c x 7 nan nan 0",
        "c x 7 5 inf 0",
        "c x 0 5 5 0",
        "c x 7 5 5 yes",
        "c x 7 5",
        "m x 0",
        "m x 1e12",
        "q x 1",
        "",
        b"\xff\xfe",
        "p x 1 0 " + "x" * 300,
        None,
        12345,
    ],
)
def test_the_reader_refuses_garbage_messages(message):
    """Messages on the channel (anyone on that Redis can publish) are checked as replies are."""
    with pytest.raises(Garbage):
        READER.message(message)


def test_the_key_names_are_a_slow_hash_of_the_token():
    """The keys carry scrypt of the token (salted with the namespace), as documented.

    Any process, of any language, computes the same names from the token and the
    namespace alone; a fast hash of the token does not give them.
    """
    for namespace in (None, "staging"):
        throttle = RedisThrottle.from_url("redis://127.0.0.1:1/0", namespace=namespace)
        regulator_of(throttle).bind(TOKEN)
        regulator_of(throttle).bind(TOKEN)  # the same token again: nothing changes
        salt = b"inkit-async:fleet:v2:" + (namespace or "").encode()
        key = hashlib.scrypt(TOKEN.encode(), salt=salt, n=2**14, r=8, p=1, dklen=12).hex()
        tag = key if namespace is None else f"{namespace}:{key}"
        assert throttle.fleet.key_prefix == f"inkit:{{{tag}}}"
        fast = hashlib.sha256(b"inkit-async:fleet:" + TOKEN.encode()).hexdigest()[:24]
        assert fast not in throttle.fleet.key_prefix
        with pytest.raises(ValueError, match="another API token"):
            regulator_of(throttle).bind(TOKEN + "x")


async def test_a_cut_long_ago_read_from_redis_breaks_nothing(server, redis_server):
    """A blind cut dated months back (in range, written by anyone) leaves every get working.

    (Before, its doubling curve overflowed a float: every get raised OverflowError, also
    after Redis was flushed, since the process had adopted the cut.)
    """
    async with (
        asyncio.timeout(POISON_BOUND),
        RedisThrottle.from_url(redis_server.url, rate_limit=200, max_wait=3) as throttle,
        AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client,
    ):
        await client.batch.get("rb_warm")
        await joined(throttle)
        spy = Spy(redis_server.url, throttle)
        try:
            long_ago = repr(await spy.now_ms() - 1e10)
            await spy.redis.hset(
                spy.key("state"),
                mapping={"epoch": 7, "rate": 5, "refused": 10, "blind": 1, "cut_at": long_ago},
            )
            assert await lookups(client, "c") == [f"rb_c{n}" for n in range(20)]
            await spy.redis.flushall()
            assert await lookups(client, "d") == [f"rb_d{n}" for n in range(20)]
        finally:
            await spy.aclose()

"""The shared rate-limit cooldown over real sockets: one 429 pauses every caller.

Times are the server's event-loop clock at the moment it read each request, which is
the clock the client's cooldown runs on (one loop serves both). uvloop's clock counts
whole milliseconds, so two of its readings 50 ms apart can subtract to 0.04999...: every
comparison allows one tick (``TICK``).
"""

from __future__ import annotations

import asyncio

import pytest

from inkit_async import AsyncInkit, Backoff, RateLimitError
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.loopback import Request, Respond, echo

PAUSE = 0.3
TICK = 0.001  # the coarsest loop clock's resolution (uvloop's)


async def test_one_429_pauses_every_caller_of_the_client(server, events):
    """No request from any task or variant reaches the server while the pause lasts."""
    release = asyncio.Event()
    limited: list[Request] = []

    async def handler(request: Request) -> Respond:
        if request.last_segment == "rb_limited":
            limited.append(request)
            if len(limited) == 1:
                return Respond(429, {"error": "slow down"}, {"Retry-After": str(PAUSE)})
        elif request.last_segment.endswith("_first"):
            await release.wait()  # held in flight until the cooldown is set
        return echo(request)

    server.handler = handler
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, on_event=events) as client:
        variant = client.with_options(timeout=5)

        async def worker(name: str) -> list[str]:
            # One request held in flight across the 429, then two more after it.
            ids = [f"{name}_first", f"{name}_second", f"{name}_third"]
            return [(await client.batch.get(batch_id)).id for batch_id in ids]

        workers = [asyncio.create_task(worker(f"w{n}")) for n in range(3)]
        await server.wait_for_in_flight(3)
        rejected = asyncio.create_task(client.batch.get("rb_limited"))
        await events.wait_for_retries(1)  # the pause is set before the retry is reported
        # The cooldown is set: let the held requests finish and send new ones from
        # fresh tasks and from a variant. All of them must wait out the pause.
        release.set()
        newcomers = [client.batch.get(f"new_{n}") for n in range(5)]
        results = await asyncio.gather(
            rejected, variant.batch.get("from_variant"), *newcomers, *workers
        )

    assert results[0].id == "rb_limited"
    assert len(limited) == 2
    start = limited[0].received_at
    during = [r.target for r in server.requests if start < r.received_at < start + PAUSE - TICK]
    after = [r for r in server.requests if r.received_at >= start + PAUSE - TICK]
    print(f"\ncooldown {PAUSE} s: {len(during)} requests during it, {len(after)} after it")
    assert during == []
    # Traffic resumes: the retry, the variant, the 5 newcomers, 2 more per worker.
    assert len(after) == 1 + 1 + 5 + 3 * 2
    assert limited[1] in after


async def test_cooldown_started_by_a_variant_pauses_the_parent(server, events):
    """A 429 seen through with_options pauses calls made on the original client."""
    server.script(Respond(429, {"error": "slow down"}, {"Retry-After": str(PAUSE)}))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, on_event=events) as client:
        variant = client.with_options(max_retries=1)
        rejected = asyncio.create_task(variant.batch.get("rb_variant"))
        await events.wait_for_retries(1)
        batch = await client.batch.get("rb_parent")
        assert (await rejected).id == "rb_variant"
    assert batch.id == "rb_parent"
    first, *later = server.requests
    assert len(later) == 2
    assert all(r.received_at >= first.received_at + PAUSE - TICK for r in later)


async def test_retry_after_over_the_cap_raises_at_once(server):
    """Retry-After above max_retry_after: RateLimitError with .retry_after, one request."""
    server.handler = lambda request: Respond(429, {"error": "quota"}, {"Retry-After": "120"})
    async with AsyncInkit(TOKEN, base_url=server.url, max_retry_after=1, backoff=NO_WAIT) as client:
        with pytest.raises(RateLimitError) as info:
            await client.batch.get("rb_1")
        assert info.value.retry_after == 120
        assert info.value.status_code == 429
        assert len(server.requests) == 1
        # The refused wait is not imposed on the client: the next call goes out at once.
        server.handler = echo
        assert (await client.batch.get("rb_2")).id == "rb_2"


async def test_429_without_retry_after_backs_off_exponentially(server, events):
    """With flow control off, a 429 without Retry-After waits the backoff delays."""
    too_many = Respond(429, {"error": "slow down"})
    server.script(too_many, too_many)
    backoff = Backoff(initial=0.05, maximum=1, jitter=0)
    async with AsyncInkit(
        TOKEN, base_url=server.url, backoff=backoff, on_event=events, throttle=False
    ) as client:
        batch = await client.batch.get("rb_1")
    assert batch.id == "rb_1"
    assert [(e.delay, e.status_code) for e in events.retries] == [(0.05, 429), (0.1, 429)]
    assert events.pauses == []
    times = [r.received_at for r in server.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.05 - TICK
    assert times[2] - times[1] >= 0.1 - TICK


async def test_429_on_the_last_attempt_still_pauses_the_client(server, events):
    """A 429 with Retry-After pauses the whole client even when its own call gives up."""
    server.script(Respond(429, {"error": "slow down"}, {"Retry-After": str(PAUSE)}))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, on_event=events) as client:
        with pytest.raises(RateLimitError):
            await client.with_options(max_retries=0).batch.get("rb_gives_up")
        await client.batch.get("rb_next")
    assert events.retries == []
    assert [(e.path, e.seconds) for e in events.pauses] == [("/batch/rb_gives_up", PAUSE)]
    first, second = server.requests
    assert second.received_at >= first.received_at + PAUSE - TICK

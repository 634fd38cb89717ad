"""The shared rate-limit cooldown over real sockets: one 429 pauses every caller.

Times are the server's event-loop clock at the moment it read each request, which is
the clock the client's cooldown runs on (one loop serves both).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from inkit_async import AsyncInkit, Backoff, RateLimitError

from .conftest import NO_WAIT, TOKEN
from .loopback import BATCH_JSON, LoopbackServer, Request, Respond

PAUSE = 0.3


def echo(request: Request) -> Respond:
    """A batch whose id is the requested one."""
    return Respond(body={**BATCH_JSON, "id": request.last_segment})


async def saw_retry(caplog: pytest.LogCaptureFixture) -> None:
    """Return once the client has logged a retry (it sets the cooldown just before)."""
    while not any(r.getMessage().startswith("Retrying") for r in caplog.records):
        await asyncio.sleep(0.001)


async def test_one_429_pauses_every_caller_of_the_client(server, caplog):
    """No request from any task or variant reaches the server while the pause lasts."""
    caplog.set_level(logging.INFO, logger="inkit_async")
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
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        variant = client.with_options(timeout=5)

        async def worker(name: str) -> list[str]:
            # One request held in flight across the 429, then two more after it.
            ids = [f"{name}_first", f"{name}_second", f"{name}_third"]
            return [(await client.batch.get(batch_id)).id for batch_id in ids]

        workers = [asyncio.create_task(worker(f"w{n}")) for n in range(3)]
        await server.wait_for_in_flight(3)
        rejected = asyncio.create_task(client.batch.get("rb_limited"))
        await saw_retry(caplog)
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
    during = [r.target for r in server.requests if start < r.received_at < start + PAUSE]
    after = [r for r in server.requests if r.received_at >= start + PAUSE]
    print(f"\ncooldown {PAUSE} s: {len(during)} requests during it, {len(after)} after it")
    assert during == []
    # Traffic resumes: the retry, the variant, the 5 newcomers, 2 more per worker.
    assert len(after) == 1 + 1 + 5 + 3 * 2
    assert limited[1] in after


async def test_cooldown_started_by_a_variant_pauses_the_parent(server, caplog):
    """A 429 seen through with_options pauses calls made on the original client."""
    caplog.set_level(logging.INFO, logger="inkit_async")
    server.script(Respond(429, {"error": "slow down"}, {"Retry-After": str(PAUSE)}))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        variant = client.with_options(max_retries=1)
        rejected = asyncio.create_task(variant.batch.get("rb_variant"))
        await saw_retry(caplog)
        batch = await client.batch.get("rb_parent")
        assert (await rejected).id == "rb_variant"
    assert batch.id == "rb_parent"
    first, *later = server.requests
    assert len(later) == 2
    assert all(r.received_at >= first.received_at + PAUSE for r in later)


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


async def test_429_without_retry_after_backs_off_exponentially(server, caplog):
    """Without Retry-After, 429 is retried after the backoff delays, then succeeds."""
    caplog.set_level(logging.INFO, logger="inkit_async")
    too_many = Respond(429, {"error": "slow down"})
    server.script(too_many, too_many)
    backoff = Backoff(initial=0.05, maximum=1, jitter=0)
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=backoff) as client:
        batch = await client.batch.get("rb_1")
    assert batch.id == "rb_1"
    times = [r.received_at for r in server.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.05
    assert times[2] - times[1] >= 0.1
    waits = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "in 0.05 s (retry 1 of 2): 429 Too Many Requests" in waits[0]
    assert "in 0.10 s (retry 2 of 2): 429 Too Many Requests" in waits[1]


async def test_429_on_the_last_attempt_still_pauses_the_client():
    """A 429 with Retry-After pauses the whole client even when its own call gives up."""
    pause = 0.3
    async with LoopbackServer() as server:
        server.script(Respond(429, {"error": "slow down"}, {"Retry-After": str(pause)}))
        async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
            with pytest.raises(RateLimitError):
                await client.with_options(max_retries=0).batch.get("rb_gives_up")
            await client.batch.get("rb_next")
        first, second = server.requests
        assert second.received_at >= first.received_at + pause

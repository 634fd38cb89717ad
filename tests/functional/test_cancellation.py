"""Cancellation over real sockets: a cancelled call gives back its slot and its socket.

Each test cancels calls at one stage (waiting for a slot, connecting, waiting for the
response, reading the body, backing off, waiting out a cooldown) and then proves the
client is whole: ``serves_at_full_width`` (``loopback.py``) puts one request per slot in
flight at the server at the same time through a variant with a strict pool timeout
that never retries, so a leaked slot stalls it and a leaked pooled connection fails it.
"""

from __future__ import annotations

import asyncio

import pytest

from inkit_async import AsyncInkit, Backoff
from tests.support.constants import DEFAULT_WIDTH, NO_WAIT, TOKEN
from tests.support.loopback import (
    Blackhole,
    Hang,
    HangMidBody,
    LoopbackServer,
    Respond,
    cancel_all,
    held_until,
    serves_at_full_width,
)


async def test_cancel_while_waiting_for_a_slot(server):
    """Callers cancelled in the SDK's queue send nothing and leave the slots free."""
    release = asyncio.Event()
    server.handler = held_until(release)
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=2) as client:
        holders = [asyncio.create_task(client.batch.get(f"rb_{n}")) for n in range(2)]
        await server.wait_for_in_flight(2)
        waiters = [asyncio.create_task(client.batch.get(f"late_{n}")) for n in range(10)]
        await asyncio.sleep(0.01)
        await cancel_all(waiters)
        release.set()
        assert [(await task).id for task in holders] == ["rb_0", "rb_1"]
        assert len(server.requests) == 2
        await serves_at_full_width(client, server, 2)


@pytest.mark.loopback
async def test_cancel_while_connecting():
    """Calls cancelled mid-connect (the SYN unanswered) free their slots and sockets."""
    with Blackhole() as hole:
        async with AsyncInkit(TOKEN, base_url=hole.url, max_concurrency=2) as client:
            connecting = [asyncio.create_task(client.batch.get(f"rb_{n}")) for n in range(2)]
            await asyncio.sleep(0.2)
            assert not any(task.done() for task in connecting)
            await cancel_all(connecting)
            # Now let the port answer: the same client must work at full width.
            async with LoopbackServer(sock=hole.listener()) as server:
                await serves_at_full_width(client, server, 2)


@pytest.mark.parametrize("action", [Hang(), HangMidBody()], ids=["no-answer", "mid-body"])
async def test_cancel_while_waiting_for_or_reading_the_response(server, action):
    """Calls cancelled before or halfway through the answer close their sockets, free slots."""
    server.handler = lambda request: action
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=3) as client:
        calls = [asyncio.create_task(client.batch.get(f"rb_{n}")) for n in range(3)]
        await server.wait_for_in_flight(3)
        await asyncio.sleep(0.05)  # let the partial bodies arrive
        await cancel_all(calls)
        await server.wait_for_open_connections(0)
        await serves_at_full_width(client, server, 3)


@pytest.mark.parametrize(
    "failure",
    [Respond(503, "busy"), Respond(503, "busy", {"Retry-After": "30"})],
    ids=["backoff", "retry-after"],
)
async def test_cancel_while_backing_off(server, events, failure):
    """A call cancelled in its sleep before a retry holds no slot and ends at once."""
    server.script(failure)
    slow = Backoff(initial=30, maximum=30, jitter=0)
    async with AsyncInkit(
        TOKEN, base_url=server.url, max_concurrency=1, backoff=slow, on_event=events
    ) as client:
        call = asyncio.create_task(client.batch.get("rb_1"))
        await events.wait_for_retries(1)
        assert events.delays == [30]
        await cancel_all([call])
        assert len(server.requests) == 1
        await serves_at_full_width(client, server, 1)


async def test_cancel_while_waiting_out_a_cooldown(server, events):
    """Calls cancelled while the client is paused by a 429 give their slots back."""
    server.script(Respond(429, {"error": "slow down"}, {"Retry-After": "0.5"}))
    async with AsyncInkit(
        TOKEN, base_url=server.url, max_concurrency=3, backoff=NO_WAIT, on_event=events
    ) as c:
        rejected = asyncio.create_task(c.batch.get("rb_limited"))
        await events.wait_for_retries(1)
        paused = [asyncio.create_task(c.batch.get(f"rb_{n}")) for n in range(5)]
        await asyncio.sleep(0.05)
        await cancel_all(paused)
        assert (await rejected).id == "rb_limited"
        assert len(server.requests) == 2
        await serves_at_full_width(c, server, 3)


async def test_cancelling_a_whole_gather(server):
    """Cancelling a gather ends every call in it, at whatever stage, and frees all slots."""
    server.handler = lambda request: Hang()
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=4) as client:
        gathered = asyncio.gather(*(client.batch.get(f"rb_{n}") for n in range(50)))
        await server.wait_for_in_flight(4)
        gathered.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gathered
        await server.wait_for_open_connections(0)
        assert len(server.requests) == 4
        await serves_at_full_width(client, server, 4)


async def test_cancelling_get_many(server):
    """Cancelling get_many cancels its workers' lookups and frees every slot."""
    server.handler = lambda request: Hang()
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=4) as client:
        call = asyncio.create_task(client.batch.get_many([f"rb_{n}" for n in range(100)]))
        await server.wait_for_in_flight(4)
        await cancel_all([call])
        await server.wait_for_open_connections(0)
        await serves_at_full_width(client, server, 4)


async def test_cancelling_get_many_while_it_starts_its_workers(server):
    """get_many starts a worker per loop iteration; cancelled meanwhile, it leaks none."""
    server.handler = lambda request: Hang()
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        call = asyncio.create_task(client.batch.get_many([f"rb_{n}" for n in range(1000)]))
        for _ in range(3):
            await asyncio.sleep(0)
        started = len(asyncio.all_tasks())
        await cancel_all([call])
        await server.wait_for_open_connections(0)
        # Only the workers started so far existed; none outlives the call.
        assert started < DEFAULT_WIDTH
        assert len(asyncio.all_tasks()) == 1
        await serves_at_full_width(client, server, DEFAULT_WIDTH)


async def test_cancelling_1000_lookups_in_flight_leaves_the_client_whole(server):
    """After 1,000 cancelled lookups the client serves 100 at once again; sockets <= 100."""
    server.handler = lambda request: Hang()
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        gathered = asyncio.gather(*(client.batch.get(f"rb_{n}") for n in range(1000)))
        await server.wait_for_in_flight(DEFAULT_WIDTH)
        gathered.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gathered
        await server.wait_for_open_connections(0)
        open_after_cancel = server.open_connections
        await serves_at_full_width(client, server, DEFAULT_WIDTH)
        for _ in range(3):
            await serves_at_full_width(client, server, DEFAULT_WIDTH)
        print(
            f"\ncancel 1000: peak in flight {server.peak_in_flight}, open after cancel "
            f"{open_after_cancel}, open after 4 x {DEFAULT_WIDTH} more {server.open_connections}, "
            f"opened in all {server.connections_opened}"
        )
    assert server.peak_in_flight == DEFAULT_WIDTH
    assert server.peak_open_connections <= DEFAULT_WIDTH
    # 100 sockets for the cancelled calls, then 100 reused by the 400 calls after.
    assert server.connections_opened == 2 * DEFAULT_WIDTH

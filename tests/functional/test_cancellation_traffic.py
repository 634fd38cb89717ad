"""Cancellation at every await point of a call leaves no slot or connection behind.

The sweeps cancel after 0, 1, 2, ... event-loop turns, before and after a response
exists, and then check the client serves a full-width burst with a strict pool timeout:
a leaked slot or pooled connection would show up as a PoolTimeout. (With httpcore's
pool, a cancel at two of these points leaked a connection for good; the default
aiohttp transport does not.)
"""

from __future__ import annotations

import asyncio

from inkit_async import AsyncInkit
from tests.support.constants import DEFAULT_WIDTH, TOKEN
from tests.support.loopback import Hang, cancel_all, echo_after_a_yield, serves_at_full_width


async def test_cancel_at_every_point_before_a_response(server):
    """Cancelled after 0, 1, 2 ... loop turns (slot, connect, send, wait): nothing leaks."""
    server.handler = lambda request: Hang()
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=1) as client:
        for turns in range(40):
            call = asyncio.create_task(client.batch.get(f"rb_{turns}"))
            for _ in range(turns):
                await asyncio.sleep(0)
            await cancel_all([call])
        # A leaked connection would make this raise APITimeoutError (PoolTimeout).
        await serves_at_full_width(client, server, 1)
        # The later cancellations hit calls the server had already read.
        assert 0 < len(server.requests) - 1 < 40


async def test_cancel_at_every_point_of_an_answered_call(server):
    """Cancelled after 0, 1, 2 ... loop turns of a call the server answers: nothing leaks."""
    server.handler = echo_after_a_yield
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=1) as client:
        for turns in range(40):
            call = asyncio.create_task(client.batch.get(f"rb_{turns}"))
            for _ in range(turns):
                await asyncio.sleep(0)
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
        await serves_at_full_width(client, server, 1)


async def test_gathers_cancelled_under_traffic_leave_the_client_whole(server):
    """8 gathers of 300 lookups, each cancelled while answers flow: still 100 wide."""
    server.handler = echo_after_a_yield
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        for round_number in range(8):
            gathered = asyncio.gather(
                *(client.batch.get(f"rb_{round_number}_{n}") for n in range(300))
            )
            await asyncio.sleep(0.3)
            gathered.cancel()
            await asyncio.gather(gathered, return_exceptions=True)
        # Leaked connections would stay open at the server and starve this burst.
        await serves_at_full_width(client, server, DEFAULT_WIDTH)

"""The 10,000-way fan-out with default options, over real sockets.

The server yields to the event loop once per request, so that requests overlap at the
server and its in-flight count measures the client's real concurrency.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from inkit_async import AsyncInkit

from .conftest import TOKEN
from .loopback import BATCH_JSON, LoopbackServer, Request, Respond

FAN_OUT = 10_000
DEFAULT_LIMIT = 64


async def echo_after_a_yield(request: Request) -> Respond:
    """Answer with the requested id, after letting other requests in."""
    await asyncio.sleep(0)
    return Respond(body={**BATCH_JSON, "id": request.last_segment})


@pytest.fixture
async def server():
    """A loopback server that echoes ids and lets requests overlap."""
    async with LoopbackServer(echo_after_a_yield) as server:
        yield server


async def test_gather_of_10000_gets_stays_within_the_default_limit(server):
    """10,000 gathered gets: no error, <= 64 in flight and open, <= 64 connections made."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        assert client.max_concurrency == DEFAULT_LIMIT
        ids = [f"rb_{n}" for n in range(FAN_OUT)]
        started = time.monotonic()
        results = await asyncio.gather(
            *(client.batch.get(batch_id) for batch_id in ids), return_exceptions=True
        )
        elapsed = time.monotonic() - started
    assert [getattr(r, "id", r) for r in results] == ids
    assert len(server.requests) == FAN_OUT
    print(
        f"\ngather {FAN_OUT}: peak in flight {server.peak_in_flight}, "
        f"peak open {server.peak_open_connections}, opened {server.connections_opened}"
    )
    assert 1 < server.peak_in_flight <= DEFAULT_LIMIT
    assert server.peak_open_connections <= DEFAULT_LIMIT
    assert server.connections_opened <= DEFAULT_LIMIT
    # "a few seconds" on loopback; 15 s is generous (and under the keep-alive expiry).
    assert elapsed < 15


async def test_get_many_of_10000_ids_stays_within_the_default_limit(server):
    """get_many over 10,000 ids: all in order, <= 64 in flight and open, connections reused."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        ids = [f"rb_{n}" for n in range(FAN_OUT)]
        started = time.monotonic()
        batches = await client.batch.get_many(ids)
        elapsed = time.monotonic() - started
    assert [b.id for b in batches] == ids
    assert len(server.requests) == FAN_OUT
    print(
        f"\nget_many {FAN_OUT}: peak in flight {server.peak_in_flight}, "
        f"peak open {server.peak_open_connections}, opened {server.connections_opened}"
    )
    assert 1 < server.peak_in_flight <= DEFAULT_LIMIT
    assert server.peak_open_connections <= DEFAULT_LIMIT
    assert server.connections_opened <= DEFAULT_LIMIT
    # "a few seconds" on loopback; 15 s is generous (and under the keep-alive expiry).
    assert elapsed < 15

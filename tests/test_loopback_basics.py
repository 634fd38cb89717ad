"""The client against a real HTTP server on 127.0.0.1: reuse, timeouts, dropped connections."""

from __future__ import annotations

import time

import pytest

from inkit_async import APIConnectionError, APITimeoutError, AsyncInkit

from .conftest import NO_WAIT, TOKEN
from .loopback import DropMidBody, Hang, Respond


async def test_sequential_requests_reuse_one_connection(server):
    """Twenty lookups one after another travel over a single keep-alive connection."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        for number in range(20):
            batch = await client.batch.get(f"rb_{number}")
            assert batch.id == f"rb_{number}"
    assert len(server.requests) == 20
    assert server.connections_opened == 1


async def test_hostile_id_arrives_as_one_segment_on_the_wire(server):
    """What the server reads is one encoded segment under /v1/batch/."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        batch = await client.batch.get("../template/x?y=1#z")
    assert server.requests[0].target == "/v1/batch/..%2Ftemplate%2Fx%3Fy%3D1%23z"
    assert batch.id == "../template/x?y=1#z"


async def test_read_timeout_raises_api_timeout_error(server):
    """A server that never answers ends in APITimeoutError after 1 + max_retries tries."""
    server.handler = lambda request: Hang()
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=0.2, backoff=NO_WAIT) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match="timed out"):
            await client.batch.get("rb_1")
        elapsed = time.monotonic() - started
    assert len(server.requests) == 3
    # Bounded by timeout x attempts (+ scheduling slack), never open-ended.
    assert elapsed < 0.2 * 3 + 2


async def test_slow_answer_within_timeout_succeeds(server):
    """An answer that comes before the deadline is returned normally."""
    server.script(Respond(delay=0.05))
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=2) as client:
        batch = await client.batch.get("rb_1")
    assert batch.total == 1


async def test_connection_dropped_mid_response_is_retried(server):
    """A response cut off mid-body is retried; the next full answer is returned."""
    server.script(DropMidBody())
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        batch = await client.batch.get("rb_ok")
    assert batch.id == "rb_ok"
    assert len(server.requests) == 2
    assert server.connections_opened == 2


async def test_connection_dropped_every_time_raises_connection_error(server):
    """When every response is cut off, APIConnectionError is raised after the retries."""
    server.handler = lambda request: DropMidBody()
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    assert not isinstance(info.value, APITimeoutError)
    assert len(server.requests) == 3

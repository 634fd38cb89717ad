"""Fan-out over real sockets: the client-wide concurrency limit and the pool behind it.

The echo server yields to the event loop once per request, so that requests overlap
at the server and its in-flight count measures the client's real concurrency.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from inkit_async import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncInkit,
    InkitError,
    InternalServerError,
    NotFoundError,
)

from .conftest import DEFAULT_WIDTH, NO_WAIT, TOKEN
from .loopback import (
    BATCH_JSON,
    Action,
    Drop,
    Hang,
    LoopbackServer,
    Request,
    Respond,
    html_page,
)
from .test_cancellation import serves_at_full_width

FAN_OUT = 10_000


async def echo_after_a_yield(request: Request) -> Respond:
    """Answer with the requested id, after letting other requests in."""
    await asyncio.sleep(0)
    return Respond(body={**BATCH_JSON, "id": request.last_segment})


@pytest.fixture
async def server():
    """A loopback server that echoes ids and lets requests overlap."""
    async with LoopbackServer(echo_after_a_yield) as server:
        yield server


def within_limit(server: LoopbackServer, limit: int) -> None:
    """Assert the server saw real concurrency, never above *limit*, over reused sockets."""
    assert 1 < server.peak_in_flight <= limit
    assert server.peak_open_connections <= limit
    assert server.connections_opened <= limit


async def test_gather_of_many_gets_stays_within_the_default_limit(server):
    """500 gathered gets: no error, <= 100 in flight and open, <= 100 connections made."""
    ids = [f"rb_{n}" for n in range(500)]
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        assert client.max_concurrency == DEFAULT_WIDTH
        results = await asyncio.gather(
            *(client.batch.get(batch_id) for batch_id in ids), return_exceptions=True
        )
    assert [getattr(result, "id", result) for result in results] == ids
    assert len(server.requests) == len(ids)
    within_limit(server, DEFAULT_WIDTH)


async def test_get_many_stays_within_the_default_limit(server):
    """get_many over 500 ids: all in order, <= 100 in flight and open, connections reused."""
    ids = [f"rb_{n}" for n in range(500)]
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        batches = await client.batch.get_many(ids)
    assert [batch.id for batch in batches] == ids
    assert len(server.requests) == len(ids)
    within_limit(server, DEFAULT_WIDTH)


async def test_gather_of_10000_gets_on_a_small_limit(server):
    """10,000 gathered gets queue inside the SDK for 4 slots: no error, 4 connections."""
    ids = [f"rb_{n}" for n in range(10_000)]
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=4) as client:
        batches = await asyncio.gather(*(client.batch.get(batch_id) for batch_id in ids))
    assert [batch.id for batch in batches] == ids
    assert server.peak_in_flight == 4
    assert server.peak_open_connections == server.connections_opened == 4


async def test_waiting_for_a_slot_never_counts_against_the_pool_timeout(server):
    """With 5 slots and a 50 ms pool timeout, 40 slow calls all succeed, 5 at a time."""

    async def slow(request: Request) -> Respond:
        await asyncio.sleep(0.1)
        return Respond(body={**BATCH_JSON, "id": request.last_segment})

    server.handler = slow
    ids = [f"rb_{n}" for n in range(40)]
    # An httpx.Timeout applies per phase with no end-to-end deadline: only the SDK's own
    # queue stands between 35 waiting callers and a PoolTimeout after 50 ms.
    timeout = httpx.Timeout(5, pool=0.05)
    async with AsyncInkit(
        TOKEN, base_url=server.url, max_concurrency=5, timeout=timeout, max_retries=0
    ) as client:
        batches = await asyncio.gather(*(client.batch.get(batch_id) for batch_id in ids))
    assert [batch.id for batch in batches] == ids
    assert server.peak_in_flight == 5
    assert server.peak_open_connections == server.connections_opened == 5


async def test_variants_share_the_parents_slots_and_connections(server):
    """Calls through two variants and the parent never exceed the parent's 3 slots."""

    async def slow(request: Request) -> Respond:
        await asyncio.sleep(0.05)
        return Respond(body={**BATCH_JSON, "id": request.last_segment})

    server.handler = slow
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=3) as client:
        quick = client.with_options(timeout=5)
        patient = client.with_options(max_retries=5)
        calls = [
            owner.batch.get(f"rb_{n}") for n in range(10) for owner in (client, quick, patient)
        ]
        batches = await asyncio.gather(*calls)
    assert len(batches) == 30
    assert server.peak_in_flight == 3
    assert server.peak_open_connections == server.connections_opened == 3


async def test_closing_the_parent_fails_variant_calls_under_way(server):
    """aclose() on the parent ends a variant's call in flight with InkitError, sockets shut."""
    release = asyncio.Event()

    async def held(request: Request) -> Respond:
        await release.wait()
        return Respond(body={**BATCH_JSON, "id": request.last_segment})

    server.handler = held
    client = AsyncInkit(TOKEN, base_url=server.url, max_concurrency=1)
    variant = client.with_options(timeout=5)
    in_flight = asyncio.create_task(variant.batch.get("rb_in_flight"))
    waiting = asyncio.create_task(variant.batch.get("rb_waiting_for_a_slot"))
    await server.wait_for_in_flight(1)
    await client.aclose()
    release.set()
    for task in (in_flight, waiting):
        with pytest.raises(InkitError, match="closed"):
            await task
    with pytest.raises(InkitError, match="closed"):
        await variant.batch.get("rb_after")
    await server.wait_for_open_connections(0)
    assert len(server.requests) == 1


async def test_closing_a_variant_leaves_the_shared_pool_open(server):
    """A variant closed mid-flight lets its call finish; the parent keeps its connection."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        variant = client.with_options(max_retries=0)
        server.script(Respond(delay=0.05))
        call = asyncio.create_task(variant.batch.get("rb_1"))
        await server.wait_for_in_flight(1)
        await variant.aclose()
        assert (await call).total == 1
        assert not client.is_closed
        for number in range(3):
            assert (await client.batch.get(f"rb_{number}")).id == f"rb_{number}"
        assert server.open_connections == server.connections_opened == 1


async def test_get_many_first_failure_cancels_the_lookups_under_way(server):
    """A 404 among hung lookups: NotFoundError at once, the others cancelled, slots free."""

    async def handler(request: Request) -> Action:
        if request.last_segment == "missing":
            await asyncio.sleep(0.05)
            return Respond(404, {"error": "no such batch"})
        return Hang()

    server.handler = handler
    ids = ["rb_0", "rb_1", "missing", "rb_2", *(f"rb_{n}" for n in range(3, 100))]
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=4) as client:
        with pytest.raises(NotFoundError):
            await client.batch.get_many(ids)
        assert len(server.requests) == 4  # no lookup started after the failure
        await server.wait_for_open_connections(1)  # only the 404's keep-alive socket
        await serves_at_full_width(client, server, 4)


async def test_get_many_returns_each_fault_typed_in_its_place(server):
    """return_exceptions=True: one typed InkitError per failed id, in input order."""
    faults: dict[str, Action] = {
        "missing": Respond(404, {"error": "no such batch"}),
        "gateway": html_page(502),
        "dropped": Drop(),
        "silent": Hang(),
        "garbled": Respond(body=b"{not json"),
    }
    server.handler = lambda request: faults.get(
        request.last_segment, Respond(body={**BATCH_JSON, "id": request.last_segment})
    )
    ids = ["rb_1", "missing", "gateway", "dropped", "silent", "garbled", "rb_2"]
    async with AsyncInkit(
        TOKEN, base_url=server.url, timeout=0.2, max_retries=1, backoff=NO_WAIT
    ) as client:
        results = await client.batch.get_many(ids, return_exceptions=True)
    kinds = [type(result) for result in results]
    assert kinds[1:6] == [
        NotFoundError,
        InternalServerError,
        APIConnectionError,
        APITimeoutError,
        APIResponseValidationError,
    ]
    assert [results[0].id, results[6].id] == ["rb_1", "rb_2"]
    await server.wait_for_open_connections(0)


async def test_gather_of_10000_gets_stays_within_the_default_limit(server):
    """10,000 gathered gets: no error, <= 100 in flight and open, <= 100 connections made."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        assert client.max_concurrency == DEFAULT_WIDTH
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
        f"peak open {server.peak_open_connections}, opened {server.connections_opened}, "
        f"{elapsed:.1f} s"
    )
    assert 1 < server.peak_in_flight <= DEFAULT_WIDTH
    assert server.peak_open_connections <= DEFAULT_WIDTH
    assert server.connections_opened <= DEFAULT_WIDTH


async def test_get_many_of_10000_ids_stays_within_the_default_limit(server):
    """get_many over 10,000 ids: all in order, <= 100 in flight and open, connections reused."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        ids = [f"rb_{n}" for n in range(FAN_OUT)]
        started = time.monotonic()
        batches = await client.batch.get_many(ids)
        elapsed = time.monotonic() - started
    assert [b.id for b in batches] == ids
    assert len(server.requests) == FAN_OUT
    print(
        f"\nget_many {FAN_OUT}: peak in flight {server.peak_in_flight}, "
        f"peak open {server.peak_open_connections}, opened {server.connections_opened}, "
        f"{elapsed:.1f} s"
    )
    assert 1 < server.peak_in_flight <= DEFAULT_WIDTH
    assert server.peak_open_connections <= DEFAULT_WIDTH
    assert server.connections_opened <= DEFAULT_WIDTH

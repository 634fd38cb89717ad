"""Fan-out over real sockets: the client-wide concurrency limit and the pool behind it.

The echo server yields to the event loop once per request, so that requests overlap
at the server and its in-flight count measures the client's real concurrency.
"""

from __future__ import annotations

import asyncio

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
from tests.support.constants import DEFAULT_WIDTH, NO_WAIT, TOKEN
from tests.support.loopback import (
    BATCH_JSON,
    Action,
    Drop,
    Hang,
    LoopbackServer,
    Request,
    Respond,
    delayed,
    echo,
    echo_after_a_yield,
    held_until,
    html_page,
    serves_at_full_width,
)
from tests.support.markers import starts

FAN_OUT = 10_000


@pytest.fixture
@starts("loopback")
async def server():
    """A loopback server that echoes ids and lets requests overlap."""
    async with LoopbackServer(echo_after_a_yield) as server:
        yield server


async def gather_gets(client: AsyncInkit, ids: list[str]) -> list[object]:
    """One task per id, gathered; failures in place."""
    return await asyncio.gather(
        *(client.batch.get(batch_id) for batch_id in ids), return_exceptions=True
    )


async def get_many(client: AsyncInkit, ids: list[str]) -> list[object]:
    """get_many over the ids; failures in place."""
    return list(await client.batch.get_many(ids, return_exceptions=True))


@pytest.mark.parametrize("fetch", [gather_gets, get_many], ids=["gather", "get_many"])
async def test_10000_lookups_stay_within_the_default_limit(server, fetch):
    """10,000 lookups: no error, in order, <= 100 in flight and open, <= 100 connections made."""
    ids = [f"rb_{n}" for n in range(FAN_OUT)]
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        assert client.max_concurrency == DEFAULT_WIDTH
        results = await fetch(client, ids)
    assert [getattr(result, "id", result) for result in results] == ids
    assert len(server.requests) == FAN_OUT
    print(
        f"\n{fetch.__name__} {FAN_OUT}: peak in flight {server.peak_in_flight}, "
        f"peak open {server.peak_open_connections}, opened {server.connections_opened}"
    )
    assert 1 < server.peak_in_flight <= DEFAULT_WIDTH
    assert server.peak_open_connections <= DEFAULT_WIDTH
    assert server.connections_opened <= DEFAULT_WIDTH


def exactly_as_wide_as(server: LoopbackServer, width: int) -> None:
    """Assert the server saw *width* requests at once at most and at peak, on *width* sockets."""
    assert server.peak_in_flight == width
    assert server.peak_open_connections == server.connections_opened == width


async def test_gather_of_10000_gets_on_a_small_limit(server):
    """10,000 gathered gets queue inside the SDK for 4 slots: no error, 4 connections."""
    all_four_in = asyncio.Event()

    async def handler(request: Request) -> Respond:
        # Hold the first answers until all 4 slots are in use at once, then answer freely:
        # on a fast loop (uvloop) a slot is often between two requests at any moment.
        if server.in_flight >= 4:
            all_four_in.set()
        async with asyncio.timeout(5):
            await all_four_in.wait()
        return echo(request)

    server.handler = handler
    ids = [f"rb_{n}" for n in range(FAN_OUT)]
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=4) as client:
        results = await gather_gets(client, ids)
    assert [getattr(result, "id", result) for result in results] == ids
    exactly_as_wide_as(server, 4)


async def test_waiting_for_a_slot_never_counts_against_the_pool_timeout(server):
    """With 5 slots and a 50 ms pool timeout, 40 slow calls all succeed, 5 at a time."""
    server.handler = delayed(0.1)
    ids = [f"rb_{n}" for n in range(40)]
    # An httpx.Timeout applies per phase with no end-to-end deadline: only the SDK's own
    # queue stands between 35 waiting callers and a PoolTimeout after 50 ms.
    timeout = httpx.Timeout(5, pool=0.05)
    async with AsyncInkit(
        TOKEN, base_url=server.url, max_concurrency=5, timeout=timeout, max_retries=0
    ) as client:
        results = await gather_gets(client, ids)
    assert [getattr(result, "id", result) for result in results] == ids
    exactly_as_wide_as(server, 5)


async def test_variants_share_the_parents_slots_and_connections(server):
    """Calls through two variants and the parent never exceed the parent's 3 slots."""
    server.handler = delayed(0.05)
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=3) as client:
        owners = (client, client.with_options(timeout=5), client.with_options(max_retries=5))
        calls = {f"rb_{k}_{n}": owner for n in range(10) for k, owner in enumerate(owners)}
        results = await asyncio.gather(*(owner.batch.get(i) for i, owner in calls.items()))
    assert [batch.id for batch in results] == list(calls)
    exactly_as_wide_as(server, 3)


async def test_closing_the_parent_fails_variant_calls_under_way(server):
    """aclose() on the parent ends a variant's call in flight with InkitError, sockets shut."""
    release = asyncio.Event()
    server.handler = held_until(release)
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
        server.script(Respond(body={**BATCH_JSON, "id": "rb_1"}, delay=0.05))
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
    server.handler = lambda request: faults.get(request.last_segment) or echo(request)
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

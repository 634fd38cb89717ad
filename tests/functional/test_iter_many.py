"""batch.iter_many over real sockets: results as they finish, failures in place."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from inkit_async import AsyncInkit, Batch, NotFoundError
from inkit_async.testing import FakeInkit
from tests.support.constants import TOKEN
from tests.support.loopback import Respond, echo


async def test_results_come_in_completion_order_with_failures_in_place(server):
    """The quickest lookup comes first; a 404 is yielded as its error, the rest still come."""
    delays = {"rb_slow": 0.3, "rb_medium": 0.15, "rb_fast": 0.0}

    async def handler(request):
        if request.last_segment == "rb_missing":
            await asyncio.sleep(0.05)
            return Respond(404, {"error": "no such batch"})
        await asyncio.sleep(delays[request.last_segment])
        return echo(request)

    server.handler = handler
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        seen = [
            (batch_id, type(result))
            async for batch_id, result in client.batch.iter_many(
                ["rb_slow", "rb_medium", "rb_missing", "rb_fast"]
            )
        ]
    assert seen == [
        ("rb_fast", Batch),
        ("rb_missing", NotFoundError),
        ("rb_medium", Batch),
        ("rb_slow", Batch),
    ]


async def test_identical_ids_are_fetched_and_yielded_once(server):
    """Duplicates cost one request and one result."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        results = {
            batch_id: result.id
            async for batch_id, result in client.batch.iter_many(["rb_1", "rb_2", "rb_1"])
            if isinstance(result, Batch)
        }
    assert results == {"rb_1": "rb_1", "rb_2": "rb_2"}
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("ids", "error"),
    [("rb_1", TypeError), (["rb_1", 7], TypeError), (["rb_1", " "], ValueError), (3, TypeError)],
)
async def test_bad_ids_are_refused_before_anything_is_sent(server, ids, error):
    """Every id is checked when iter_many is called, before the first request."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(error):
            client.batch.iter_many(ids)
    assert server.requests == []


async def test_leaving_early_stops_the_lookups_under_way(server):
    """Breaking out of an aclosing() loop cancels the rest and starts no more."""
    release = asyncio.Event()

    async def handler(request):
        if request.last_segment != "rb_0":
            await release.wait()
        return echo(request)

    server.handler = handler
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=5) as client:
        ids = [f"rb_{number}" for number in range(50)]
        async with contextlib.aclosing(client.batch.iter_many(ids)) as results:
            async for batch_id, _ in results:
                assert batch_id == "rb_0"
                break
        started = len(server.requests)
        release.set()
        assert (await client.batch.get("rb_after")).id == "rb_after"
        await asyncio.sleep(0.05)
    # Five workers, one of which may have taken its next id before the loop broke.
    assert started <= 6
    assert len(server.requests) == started + 1


async def test_it_goes_through_the_fake_too():
    """iter_many works against FakeInkit in process, unknown ids as NotFoundError."""
    fake = FakeInkit()
    known = fake.add_batch()
    async with fake.client() as client:
        results = dict([item async for item in client.batch.iter_many([known, "rb_unknown"])])
    assert isinstance(results[known], Batch)
    assert isinstance(results["rb_unknown"], NotFoundError)

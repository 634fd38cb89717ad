"""Fan-out shared fairly between the callers of one client (FakeInkit with latency).

Counts requests, never wall-clock time: how many the fake received, and in which order.
Callers arrive one after another, each once the fake has received a few more requests,
as the handlers of a dashboard many people open do: the later ones find the earlier
ones' lookups queued or under way, none finished (the latency outlasts the arrivals).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from inkit_async import AsyncInkit, Batch, BatchCache
from inkit_async.testing import FakeInkit

#: Longest any test here may take before it counts as hung.
HANG_GUARD = 30


async def received(fake: FakeInkit, count: int) -> None:
    """Until the fake has received *count* requests."""
    while len(fake.requests) < count:
        await asyncio.sleep(0.0005)


async def busy_loop() -> None:
    """Another task that takes 2 ms of every loop iteration."""
    while True:
        time.sleep(0.002)  # noqa: ASYNC251 - holding the loop is the point
        await asyncio.sleep(0)


async def get_many(client: AsyncInkit, ids: list[str]) -> list[str]:
    """get_many's ids, in order."""
    return [batch.id for batch in await client.batch.get_many(ids)]


async def iter_many(client: AsyncInkit, ids: list[str]) -> list[str]:
    """iter_many's ids, in input order (it yields them as they finish)."""
    seen = {batch_id: result async for batch_id, result in client.batch.iter_many(ids)}
    assert all(isinstance(result, Batch) for result in seen.values())
    return [batch_id for batch_id in ids if batch_id in seen]


@pytest.mark.parametrize("fetch", [get_many, iter_many], ids=["get_many", "iter_many"])
async def test_16_callers_of_the_same_500_ids_send_each_id_once(fetch):
    """16 callers of the same 500 ids, one loop iteration apart: at most 525 requests."""
    fake = FakeInkit(latency=0.2)
    ids = [fake.add_batch() for _ in range(500)]
    async with fake.client() as client, asyncio.timeout(HANG_GUARD):
        callers = []
        for _ in range(16):
            callers.append(asyncio.create_task(fetch(client, ids)))
            await asyncio.sleep(0)
        results = await asyncio.gather(*callers)
    assert all(result == ids for result in results)
    print(f"\n{fetch.__name__}: 16 callers x 500 ids, {len(fake.requests)} requests")
    assert len(fake.requests) <= 525


async def test_a_late_caller_sends_again_only_what_had_finished_before_it_came():
    """A second get_many of the same ids, mid-way, sends again only what had finished.

    It joins every lookup queued or under way, as gather's calls would.
    """
    fake = FakeInkit(latency=0.05)
    ids = [fake.add_batch() for _ in range(100)]
    async with fake.client(max_concurrency=10) as client, asyncio.timeout(HANG_GUARD):
        earlier = asyncio.create_task(get_many(client, ids))
        await received(fake, 20)  # the first ten have finished, the next ones are under way
        finished_at_most = len(fake.requests)
        assert await get_many(client, ids) == ids
        assert await earlier == ids
    assert len(fake.requests) <= len(ids) + finished_at_most


async def test_callers_are_served_in_the_order_they_came():
    """A second caller's ids wait behind the first caller's, not in turn with them."""
    fake = FakeInkit(latency=0.01)
    # 40 ids: within what one get_many hands in at once (10 x max_concurrency).
    first = [fake.add_batch() for _ in range(40)]
    second = [fake.add_batch() for _ in range(20)]
    async with fake.client(max_concurrency=5) as client, asyncio.timeout(HANG_GUARD):
        earlier = asyncio.create_task(get_many(client, first))
        await received(fake, 3)
        later = asyncio.create_task(get_many(client, second))
        assert await earlier == first
        assert await later == second
    order = [request.path.rsplit("/", 1)[-1] for request in fake.requests]
    assert sorted(order[:40]) == sorted(first)
    assert order[40:] == second


async def test_a_caller_joins_ids_another_has_queued_but_not_started():
    """Two slots, 40 ids queued by one caller: a second caller of the last ids sends nothing."""
    fake = FakeInkit(latency=0.01)
    ids = [fake.add_batch() for _ in range(40)]
    async with fake.client(max_concurrency=2) as client, asyncio.timeout(HANG_GUARD):
        earlier = asyncio.create_task(get_many(client, ids))
        await received(fake, 1)
        assert await get_many(client, ids[-10:]) == ids[-10:]
        assert await earlier == ids
    assert len(fake.requests) == 40


async def test_iter_many_yields_while_it_starts_and_stops_early():
    """iter_many on a busy loop: results come while it starts; a break sends little more.

    2,000 ids, 10 ms latency: the first result comes before all 100 lookups have started,
    and a break after 50 results has sent at most 200 requests in all.
    """
    fake = FakeInkit(latency=0.01)
    ids = [fake.add_batch() for _ in range(2000)]
    async with fake.client() as client, asyncio.timeout(HANG_GUARD):
        busy = asyncio.create_task(busy_loop())
        taken = 0
        sent_at_first = None
        async with contextlib.aclosing(client.batch.iter_many(ids)) as results:
            async for _, result in results:
                assert isinstance(result, Batch)
                if sent_at_first is None:
                    sent_at_first = len(fake.requests)
                taken += 1
                if taken == 50:
                    break
        await asyncio.sleep(0.05)  # anything still to be sent would be by now
        busy.cancel()
    print(f"\niter_many: {sent_at_first} sent at the first result, {len(fake.requests)} in all")
    assert sent_at_first is not None
    assert sent_at_first < client.max_concurrency
    assert len(fake.requests) <= 200


async def test_a_caller_that_leaves_does_not_stop_lookups_another_waits_for():
    """Callers who leave stop nothing another caller still waits for.

    Of three callers of the same ids, one is cancelled and one breaks early: the third
    gets every batch, and no id is sent twice.
    """
    fake = FakeInkit(latency=0.02)
    ids = [fake.add_batch() for _ in range(60)]
    async with fake.client(max_concurrency=10) as client, asyncio.timeout(HANG_GUARD):
        staying = asyncio.create_task(get_many(client, ids))
        leaving = asyncio.create_task(get_many(client, ids))
        await received(fake, 10)
        async for _ in client.batch.iter_many(ids):
            break  # iter_many's lookups are all joined ones: the others still wait for them
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        assert await staying == ids
        assert len(asyncio.all_tasks()) == 1  # no lookup outlives its callers
    assert len(fake.requests) == 60


async def test_lookups_nobody_waits_for_any_more_are_never_sent():
    """The only caller cancelled: its queued lookups are dropped, its running ones stopped."""
    fake = FakeInkit(latency=0.05)
    ids = [fake.add_batch() for _ in range(100)]
    async with fake.client(max_concurrency=5) as client, asyncio.timeout(HANG_GUARD):
        call = asyncio.create_task(get_many(client, ids))
        await received(fake, 5)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert len(asyncio.all_tasks()) == 1
        sent = len(fake.requests)
        assert [batch.id for batch in await client.batch.get_many(ids[:3])] == ids[:3]
    assert sent == 5
    assert len(fake.requests) == 8


async def test_fan_outs_answer_from_the_cache_without_a_request():
    """A finished batch in the client's cache: get_many and iter_many send nothing for it."""
    fake = FakeInkit()
    done = fake.add_batch()
    fake.complete(done)
    other = fake.add_batch()
    async with fake.client(cache=BatchCache(ttl=60)) as client:
        await client.batch.get(done)
        assert [batch.id for batch in await client.batch.get_many([done, other])] == [done, other]
        assert {batch_id async for batch_id, _ in client.batch.iter_many([done])} == {done}
    assert [request.path.rsplit("/", 1)[-1] for request in fake.requests] == [done, other]

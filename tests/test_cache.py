"""The cache of finished batches over a real socket: what it stores, serves and drops."""

from __future__ import annotations

import asyncio

import pytest

from inkit_async import AsyncInkit, BatchCache, CacheStats
from inkit_async.testing import FakeInkit


@pytest.fixture
async def served(uvicorn_server):
    """A fake with a finished and an unfinished batch, served by uvicorn."""
    fake = FakeInkit(docs_per_poll=0)
    finished = fake.add_batch(batch_id="rb_done")
    fake.complete(finished)
    fake.add_batch(batch_id="rb_running", destinations={"inkit_storage": 3})
    return fake, await uvicorn_server(fake.app)


async def test_a_finished_batch_is_served_from_the_cache(served):
    """The second get of a finished batch sends nothing; the counters say so."""
    fake, url = served
    cache = BatchCache()
    async with AsyncInkit(fake.token, base_url=url, cache=cache) as client:
        first = await client.batch.get("rb_done")
        second = await client.with_options(max_retries=0).batch.get("rb_done")
        assert client.cache is cache
    assert second is first
    assert len(fake.requests) == 1
    assert cache.stats == CacheStats(hits=1, misses=1, evictions=0, expirations=0, size=1)


async def test_an_unfinished_batch_is_always_fetched(served):
    """A batch in progress is never stored: every get asks the API."""
    fake, url = served
    cache = BatchCache()
    async with AsyncInkit(fake.token, base_url=url, cache=cache) as client:
        for _ in range(3):
            assert not (await client.batch.get("rb_running")).is_finished
    assert len(fake.requests) == 3
    assert len(cache) == 0


async def test_wait_polls_until_finished_then_the_cache_answers(served):
    """Wait polls the unfinished batch for real; a later wait of it is answered at once."""
    fake, url = served
    async with AsyncInkit(fake.token, base_url=url, cache=BatchCache()) as client:
        task = asyncio.create_task(client.batch.wait("rb_running", poll_interval=0.02))
        while len(fake.requests) < 2:
            await asyncio.sleep(0.01)
        fake.complete("rb_running")
        done = await task
        polls = len(fake.requests)
        again = await client.batch.wait("rb_running", poll_interval=0.02)
    assert done.is_finished
    assert again is done
    assert len(fake.requests) == polls


async def test_use_cache_false_asks_the_api_and_refreshes(served):
    """get(use_cache=False) always sends, and stores what it got."""
    fake, url = served
    cache = BatchCache()
    async with AsyncInkit(fake.token, base_url=url, cache=cache) as client:
        first = await client.batch.get("rb_done")
        fresh = await client.batch.get("rb_done", use_cache=False)
        cached = await client.batch.get("rb_done")
    assert fresh is not first
    assert cached is fresh
    assert len(fake.requests) == 2


async def test_entries_expire_after_the_ttl(served):
    """An entry older than ttl is dropped and fetched again."""
    fake, url = served
    cache = BatchCache(ttl=0.05)
    async with AsyncInkit(fake.token, base_url=url, cache=cache) as client:
        await client.batch.get("rb_done")
        await asyncio.sleep(0.06)
        await client.batch.get("rb_done")
    assert len(fake.requests) == 2
    assert (cache.stats.expirations, cache.stats.hits) == (1, 0)


async def test_the_least_recently_used_entry_goes_first(served):
    """With max_size=2, a third finished batch evicts the one used longest ago."""
    fake, url = served
    for batch_id in ("rb_a", "rb_b"):
        fake.complete(fake.add_batch(batch_id=batch_id))
    cache = BatchCache(max_size=2)
    async with AsyncInkit(fake.token, base_url=url, cache=cache) as client:
        await client.batch.get("rb_done")
        await client.batch.get("rb_a")
        await client.batch.get("rb_done")  # rb_a is now the least recently used
        await client.batch.get("rb_b")
        sent = len(fake.requests)
        await client.batch.get("rb_done")
        await client.batch.get("rb_b")
        assert len(fake.requests) == sent
        await client.batch.get("rb_a")
    assert len(fake.requests) == sent + 1
    assert cache.stats.evictions == 2
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"ttl": 0}, ValueError),
        ({"ttl": float("inf")}, ValueError),
        ({"ttl": "5"}, TypeError),
        ({"max_size": 0}, ValueError),
        ({"max_size": 1.5}, TypeError),
    ],
)
def test_bad_cache_options_are_refused(options, error):
    """BatchCache checks its options when it is built."""
    with pytest.raises(error):
        BatchCache(**options)


def test_a_cache_option_of_another_type_is_refused():
    """AsyncInkit(cache=...) takes a BatchCache or None."""
    with pytest.raises(TypeError, match="cache"):
        AsyncInkit("tok", cache={})  # type: ignore[arg-type]

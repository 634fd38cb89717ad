"""The cache of finished batches over a real socket: what it stores, serves and drops."""

from __future__ import annotations

import asyncio

import pytest

from inkit_async import AsyncInkit, AuthenticationError, BatchCache, CacheStats
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


async def test_a_shared_cache_never_answers_a_client_of_another_root(uvicorn_server):
    """Issue 21 row 1: production and staging clients share one cache; the same id.

    Each gets its own root's batch, fetched from that root, then from its own entry.
    """
    production, staging = FakeInkit(docs_per_poll=0), FakeInkit(docs_per_poll=0)
    for fake, name in ((production, "production"), (staging, "staging")):
        fake.complete(fake.add_batch(batch_id="rb_same", name=name))
    production_url = await uvicorn_server(production.app)
    staging_url = await uvicorn_server(staging.app)
    cache = BatchCache()
    async with (
        AsyncInkit(production.token, base_url=production_url, cache=cache) as live,
        AsyncInkit(staging.token, base_url=staging_url + "/", cache=cache) as test,
    ):
        assert (await live.batch.get("rb_same")).name == "production"
        assert (await test.batch.get("rb_same")).name == "staging"
        assert (await live.batch.get("rb_same")).name == "production"
        assert (await test.with_options(max_retries=0).batch.get("rb_same")).name == "staging"
    assert (len(production.requests), len(staging.requests)) == (1, 1)
    assert cache.stats == CacheStats(hits=2, misses=2, evictions=0, expirations=0, size=2)


async def test_a_shared_cache_never_answers_a_client_with_another_token(served):
    """Issue 21 row 2: clients of tokens A and B share a cache; only A may see the batch.

    B's lookups reach the API and get its 401 every time, A's entry notwithstanding;
    A is still answered from its entry. The cache holds no token.
    """
    fake, url = served
    cache = BatchCache()
    other_token = "tok_other_account_9f8e7d"
    async with (
        AsyncInkit(fake.token, base_url=url, cache=cache) as allowed,
        AsyncInkit(other_token, base_url=url, cache=cache, max_retries=0) as refused,
    ):
        batch = await allowed.batch.get("rb_done")
        with pytest.raises(AuthenticationError):
            await refused.batch.get("rb_done")
        with pytest.raises(AuthenticationError):
            await refused.batch.wait("rb_done", timeout=5)
        results = await refused.batch.get_many(["rb_done"], return_exceptions=True)
        assert isinstance(results[0], AuthenticationError)
        assert await allowed.batch.get("rb_done") is batch
    assert [request.authorized for request in fake.requests] == [True, False, False, False]
    keys = repr(list(cache._entries))  # noqa: SLF001 - what the cache holds, in full
    assert fake.token not in keys
    assert other_token not in keys


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


async def test_a_shared_cache_never_answers_a_client_of_another_transport():
    """Two fakes, one root and token: each client sharing the cache gets its own fake's batch.

    A caller's transport decides the answers as much as the root does.
    """
    shared = BatchCache()
    first, second = FakeInkit(), FakeInkit()
    for fake, name in ((first, "from the first"), (second, "from the second")):
        fake.add_batch(name=name, batch_id="rb_same")
        fake.complete("rb_same")
    async with first.client(cache=shared) as one, second.client(cache=shared) as other:
        assert (await one.batch.get("rb_same")).name == "from the first"
        assert (await other.batch.get("rb_same")).name == "from the second"
        assert (await one.batch.get("rb_same")).name == "from the first"  # its own entry
    assert len(second.requests) == 1
    assert len(first.requests) == 1


async def test_a_shared_cache_never_answers_calls_that_send_other_default_headers(served):
    """A gateway may answer by a header (a tenant): other headers, other entries.

    A variant with other ``default_headers``, and another client of the same token with
    others, ask the API; a variant with the same headers in another case and order is
    answered from the cache, as the client itself is.
    """
    fake, url = served
    cache = BatchCache()
    headers = {"X-Tenant": "t1", "X-Team": "a"}
    async with AsyncInkit(fake.token, base_url=url, cache=cache, default_headers=headers) as client:
        await client.batch.get("rb_done")
        same = client.with_options(default_headers={"x-team": "a", "x-tenant": "t1"})
        await same.batch.get("rb_done")
        assert len(fake.requests) == 1  # equal headers: the client's own entry
        other = client.with_options(default_headers={"X-Tenant": "t2"})
        await other.batch.get("rb_done")
        await other.batch.get("rb_done")
        assert len(fake.requests) == 2  # its own entry, fetched once
        await client.batch.get("rb_done")
        assert len(fake.requests) == 2  # the client's entry is still its own
    async with AsyncInkit(fake.token, base_url=url, cache=cache) as plain:
        await plain.batch.get("rb_done")
    assert len(fake.requests) == 3  # no headers: not the headered clients' entries

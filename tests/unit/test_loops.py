"""Senders that belong to no loop (FakeInkit's, an httpx MockTransport) serve every loop."""

from __future__ import annotations

import asyncio

import httpx

from inkit_async import AsyncInkit
from inkit_async.testing import FakeInkit
from tests.support.constants import TOKEN
from tests.support.loopback import BATCH_JSON


def test_a_fake_client_serves_successive_loops_and_shares_lookups_in_each():
    """FakeInkit's in-process client in three loops; identical lookups still share one."""
    fake = FakeInkit(seed=1)
    batch_id = fake.add_batch()
    client = fake.client()

    async def twice() -> list[str]:
        batches = await asyncio.gather(client.batch.get(batch_id), client.batch.get(batch_id))
        return [b.id for b in batches]

    for _ in range(3):
        assert asyncio.run(twice()) == [batch_id, batch_id]
    assert len([r for r in fake.requests if r.path.endswith(batch_id)]) == 3  # one per loop
    asyncio.run(client.aclose())
    assert client.is_closed


def test_a_mock_transport_serves_every_loop():
    """A MockTransport holds no connection: the client over it works in any loop."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**BATCH_JSON, "id": request.url.path.rsplit("/")[-1]})

    client = AsyncInkit(TOKEN, transport=httpx.MockTransport(answer))
    assert asyncio.run(client.batch.get("rb_1")).id == "rb_1"
    assert asyncio.run(client.batch.get("rb_2")).id == "rb_2"
    asyncio.run(client.aclose())

"""Testing with the SDK's pytest fixtures: run with `pytest docs/examples/testing_with_plugin.py`.

Installing inkit-async installs the fixtures: no conftest.py, no set-up.
"""

import asyncio

import pytest

from inkit_async import APITimeoutError, AsyncInkit
from inkit_async.testing import FakeInkit, FakeServer, Hang, Reset, Respond


# The code under test: a function that takes the client, and a program that builds its
# own client from INKIT_API_TOKEN and INKIT_BASE_URL.
async def documents_sent(client: AsyncInkit, batch_id: str) -> int:
    batch = await client.batch.wait(batch_id, poll_interval=0.01, timeout=5)
    return batch.progress.completed


async def main(batch_id: str) -> int:
    async with AsyncInkit() as client:
        return await documents_sent(client, batch_id)


async def test_in_process(inkit_client: AsyncInkit, inkit_fake: FakeInkit) -> None:
    batch_id = inkit_fake.add_batch(destinations={"inkit_storage": 3})
    assert await documents_sent(inkit_client, batch_id) == 3


async def test_the_program_over_a_socket(inkit_server: FakeServer) -> None:
    batch_id = inkit_server.fake.add_batch(destinations={"inkit_storage": 2})
    assert await main(batch_id) == 2  # its own AsyncInkit() reaches the fake


def test_a_plain_test_reaches_the_server_too(inkit_server: FakeServer) -> None:
    batch_id = inkit_server.fake.add_batch()
    assert asyncio.run(main(batch_id)) == 1


async def test_a_flaky_network(inkit_client: AsyncInkit, inkit_fake: FakeInkit) -> None:
    batch_id = inkit_fake.add_batch()
    # This batch's next lookups: a 503 with Retry-After, a reset connection, then as usual.
    inkit_fake.script(batch_id, [Respond(503, retry_after=0), Reset(), 200])
    inkit_fake.set_latency(0.01)  # and every answer takes 10 ms
    assert await documents_sent(inkit_client, batch_id) == 1
    first = inkit_fake.requests[0]
    assert first.headers["x-inkit-api-token"] == "[redacted]"  # the token is never kept
    assert first.authorized


async def test_an_api_that_never_answers(inkit_fake: FakeInkit) -> None:
    batch_id = inkit_fake.add_batch()
    inkit_fake.script(batch_id, [Hang()])
    async with inkit_fake.client(timeout=0.1, max_retries=0) as client:
        with pytest.raises(APITimeoutError):
            await client.batch.get(batch_id)

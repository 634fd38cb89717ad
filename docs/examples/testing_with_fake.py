"""Testing your code with FakeInkit: run with `pytest docs/examples/testing_with_fake.py`."""

import pytest

from inkit_async import AsyncInkit, Backoff, NotFoundError
from inkit_async.testing import FakeInkit


# The code under test: an application function that takes the client.
async def invoice_report(client: AsyncInkit, batch_id: str) -> str:
    try:
        batch = await client.batch.wait(batch_id, poll_interval=0.01, timeout=5)
    except NotFoundError:
        return "unknown batch"
    return f"{batch.progress.completed} sent, {batch.progress.failed} failed"


@pytest.fixture
def fake() -> FakeInkit:
    return FakeInkit()


async def test_report_counts_sent_and_failed(fake: FakeInkit) -> None:
    batch_id = fake.add_batch(name="invoices", destinations={"inkit_storage": 3})
    fake.fail(batch_id, 1)  # one document fails; the others complete as they are polled
    async with fake.client() as client:
        assert await invoice_report(client, batch_id) == "2 sent, 1 failed"


async def test_report_survives_a_flaky_api(fake: FakeInkit) -> None:
    batch_id = fake.add_batch()
    fake.fail_next(2, 503)  # the client's retries absorb these
    async with fake.client(backoff=Backoff(initial=0, maximum=0)) as client:
        assert await invoice_report(client, batch_id) == "1 sent, 0 failed"
    assert [request.method for request in fake.requests[:3]] == ["GET", "GET", "GET"]


async def test_unknown_batch(fake: FakeInkit) -> None:
    async with fake.client() as client:
        assert await invoice_report(client, "rb_nope") == "unknown batch"

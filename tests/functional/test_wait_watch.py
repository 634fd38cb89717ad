"""batch.wait and batch.watch against a loopback server whose batch advances per poll."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from inkit_async import (
    AsyncInkit,
    BatchStatus,
    InkitError,
    NotFoundError,
    WaitTimeoutError,
)
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.loopback import BATCH_JSON, LoopbackServer, Respond
from tests.support.markers import starts


class AdvancingBatch:
    """A handler: each poll completes `step` more of `count` documents."""

    def __init__(self, count: int = 4, step: int = 1, fail_at: int | None = None) -> None:
        self.count = count
        self.step = step
        self.fail_at = fail_at
        self.polls = 0

    def __call__(self, request) -> Respond:
        """Answer with the batch as it stands after this many polls."""
        done = min(self.count, self.polls * self.step)
        self.polls += 1
        failed = 1 if self.fail_at is not None and done >= self.fail_at else 0
        in_progress = self.count - done
        status = "In Progress" if in_progress else ("Failed" if failed else "Completed")
        return Respond(
            body={
                **BATCH_JSON,
                "id": request.last_segment,
                "status": status,
                "total": self.count,
                "destinations": {
                    "inkit_storage": {
                        "count": self.count,
                        "completed": done - failed,
                        "failed": failed,
                        "in_progress": in_progress,
                    }
                },
            }
        )


@pytest.fixture
@starts("loopback")
async def server():
    """A loopback server serving one advancing batch."""
    async with LoopbackServer(handler=AdvancingBatch()) as server:
        yield server


async def test_wait_returns_the_finished_batch(server):
    """Waiting polls until the counters settle and returns that snapshot."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        batch = await client.batch.wait("rb_1", poll_interval=0.01)
    assert batch.is_finished
    assert batch.status is BatchStatus.COMPLETED
    assert batch.progress.completed == 4
    assert len(server.requests) == 5  # 0, 1, 2, 3, 4 documents done


async def test_watch_yields_each_change_and_ends_finished(server):
    """Watching yields the first snapshot and each changed one, and stops after finishing."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        seen = [b.progress.completed async for b in client.batch.watch("rb_1", poll_interval=0.01)]
    assert seen == [0, 1, 2, 3, 4]


@pytest.mark.loopback
async def test_watch_skips_unchanged_snapshots():
    """Polls that see no change yield nothing."""
    handler = AdvancingBatch(count=2, step=1)
    answers = iter([0, 0, 0, 1, 1, 2])

    def slow(request):
        handler.polls = next(answers)
        return handler(request)

    async with (
        LoopbackServer(handler=slow) as server,
        AsyncInkit(TOKEN, base_url=server.url) as client,
    ):
        seen = [b.progress.completed async for b in client.batch.watch("rb_1", poll_interval=0.01)]
        assert len(server.requests) == 6
    assert seen == [0, 1, 2]


async def test_polls_are_no_faster_than_the_interval(server):
    """Consecutive polls start at least poll_interval apart."""
    stamps: list[float] = []
    handler = server.handler

    def stamped(request):
        stamps.append(asyncio.get_running_loop().time())
        return handler(request)

    server.handler = stamped
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        await client.batch.wait("rb_1", poll_interval=0.05)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(gaps) == 4
    assert min(gaps) >= 0.045  # loop clock granularity


async def test_already_finished_batch_is_one_poll(server):
    """A batch that is finished at the first poll is returned after one request."""
    server.handler = lambda request: Respond(body={**BATCH_JSON, "id": "rb_1"})
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        snapshots = [b async for b in client.batch.watch("rb_1", poll_interval=10)]
    assert len(snapshots) == 1
    assert len(server.requests) == 1


@pytest.mark.loopback
async def test_wait_timeout_raises_with_the_last_snapshot():
    """When the timeout passes first, WaitTimeoutError (a TimeoutError) carries the last batch."""
    async with (
        LoopbackServer(handler=AdvancingBatch(count=1000)) as server,
        AsyncInkit(TOKEN, base_url=server.url) as client,
    ):
        with pytest.raises(WaitTimeoutError) as info:
            await client.batch.wait("rb_1", poll_interval=0.02, timeout=0.15)
    error = info.value
    assert isinstance(error, TimeoutError)
    assert isinstance(error, InkitError)
    assert error.batch is not None
    assert not error.batch.is_finished
    assert "rb_1" in str(error)


@pytest.mark.loopback
async def test_wait_timeout_before_any_answer_has_no_batch():
    """A server that answers too slowly leaves WaitTimeoutError.batch as None."""
    async with (
        LoopbackServer(handler=lambda r: Respond(delay=5)) as server,
        AsyncInkit(TOKEN, base_url=server.url) as client,
    ):
        with pytest.raises(WaitTimeoutError) as info:
            await client.batch.wait("rb_1", timeout=0.1)
    assert info.value.batch is None


async def test_cancelling_wait_stops_polling_at_once(server):
    """A cancelled wait ends promptly and no poll reaches the server afterwards."""
    server.handler = AdvancingBatch(count=10_000)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        task = asyncio.create_task(client.batch.wait("rb_1", poll_interval=0.02))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)
        polls = len(server.requests)
        await asyncio.sleep(0.1)
    assert polls >= 2
    assert len(server.requests) == polls


async def test_permanent_errors_propagate_at_once(server):
    """A 404 while waiting is raised after one request."""
    server.handler = lambda request: Respond(404, body={"error": "no such batch"})
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        with pytest.raises(NotFoundError):
            await client.batch.wait("rb_missing", poll_interval=0.01)
    assert len(server.requests) == 1


async def test_transient_errors_while_polling_are_retried(server):
    """A 503 during polling is retried by the client's policy and waiting goes on."""
    advancing = AdvancingBatch(count=2)
    server.handler = advancing
    server.script(Respond(503, body="busy"), Respond(503, body="busy"))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        batch = await client.batch.wait("rb_1", poll_interval=0.01)
    assert batch.is_finished
    assert len(server.requests) == 2 + 3


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"poll_interval": 0}, ValueError),
        ({"poll_interval": -1}, ValueError),
        ({"poll_interval": float("inf")}, ValueError),
        ({"poll_interval": "2"}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"timeout": "5"}, TypeError),
    ],
)
async def test_bad_wait_arguments_raise_before_any_request(server, options, error):
    """Invalid poll_interval or timeout fail before anything is sent, in wait and watch."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(error):
            await client.batch.wait("rb_1", **options)
        if "poll_interval" in options:
            with pytest.raises(error):
                client.batch.watch("rb_1", **options)
        with pytest.raises(ValueError, match="batch_id"):
            client.batch.watch("..")
    assert server.requests == []

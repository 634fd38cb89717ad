"""FakeInkit's scripted faults over a real socket: FakeServer (uvicorn in a thread), fake.app.

Each step means the same over a socket as in process (tests/unit/test_fake_faults.py): the
fake decides, and the socket carrier closes, resets or holds the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from inkit_async import APIConnectionError, APITimeoutError, AsyncInkit
from inkit_async.testing import Drop, FakeInkit, FakeServer, Hang, Reset, Respond
from tests.support.markers import starts

NO_RETRY = {"max_retries": 0, "throttle": False}


@pytest.fixture
@starts("uvicorn")
def served(fake) -> Iterator[FakeServer]:
    """The test's fake, served by a FakeServer of its own."""
    with FakeServer(fake) as server:
        yield server


async def failure_of(client: AsyncInkit, batch_id: str) -> tuple[type, type]:
    """The error a lookup of *batch_id* raises, and the type of its cause."""
    async with asyncio.timeout(20):
        with pytest.raises(Exception) as info:
            await client.batch.get(batch_id)
    return type(info.value), type(info.value.__cause__)


@pytest.mark.parametrize(
    "steps",
    [[Drop(), Drop()], [Reset(), Reset()], [Hang()], [Respond(503, retry_after=1)]],
    ids=["drop", "reset", "hang", "503"],
)
async def test_a_step_fails_a_call_over_a_socket_as_it_does_in_process(fake, served, steps):
    """The same script, the same error and cause, in process and over a socket.

    Two drops (or resets) over a socket: aiohttp sends a GET again once by itself when
    the connection closes under it, so the first goes unseen by the SDK.
    """
    socket_id, local_id = fake.add_batch(), fake.add_batch()
    fake.script(socket_id, steps)
    fake.script(local_id, steps[:1])
    async with AsyncInkit(fake.token, base_url=served.url, timeout=0.3, **NO_RETRY) as client:
        over_a_socket = await failure_of(client, socket_id)
    async with fake.client(timeout=0.3, **NO_RETRY) as client:
        in_process = await failure_of(client, local_id)
    assert over_a_socket == in_process
    assert over_a_socket[0] in {APIConnectionError, APITimeoutError} or steps[0].status == 503


@pytest.mark.http_library
async def test_one_drop_fails_an_attempt_of_an_httpx_client(fake, served, http_library):
    """A caller's httpx client does not send again: one drop is one failed attempt."""
    batch_id = fake.add_batch()
    fake.script(batch_id, [Drop()])
    async with (
        http_library.AsyncClient() as http,
        AsyncInkit(fake.token, base_url=served.url, http_client=http, **NO_RETRY) as client,
    ):
        with pytest.raises(APIConnectionError):
            await client.batch.get(batch_id)
        assert (await client.batch.get(batch_id)).id == batch_id
    assert len(fake.requests) == 2


async def test_latency_over_a_socket_meets_the_read_timeout(fake, served):
    """A latency longer than the read timeout times the attempt out, as in process."""
    batch_id = fake.add_batch()
    fake.set_latency(lambda request: 30.0)
    timeout = httpx.Timeout(0.3)
    async with AsyncInkit(fake.token, base_url=served.url, timeout=timeout, **NO_RETRY) as client:
        assert await failure_of(client, batch_id) == (APITimeoutError, httpx.ReadTimeout)


async def test_headers_are_recorded_over_a_socket_with_the_token_redacted(fake, served):
    """Over a socket too, fake.requests keeps the headers, the token only as [redacted]."""
    batch_id = fake.add_batch()
    async with AsyncInkit(fake.token, base_url=served.url) as client:
        await client.batch.get(batch_id)
    (request,) = fake.requests
    assert request.headers["x-inkit-api-token"] == "[redacted]"
    assert request.headers["host"] == served.url.split("/")[2]
    assert request.authorized


def test_the_server_answers_a_plain_test_and_swaps_fakes(fake, served):
    """It runs its own loop: asyncio.run in a plain test reaches it; a new fake answers next."""
    first = fake.add_batch()

    async def lookup(batch_id: str) -> str:
        async with AsyncInkit(served.token, base_url=served.url, **NO_RETRY) as client:
            return (await client.batch.get(batch_id)).id

    assert asyncio.run(lookup(first)) == first
    other = FakeInkit(token="another-token")
    second = other.add_batch()
    served.fake = other
    assert asyncio.run(lookup(second)) == second
    assert len(other.requests) == 1


@pytest.mark.uvicorn
def test_stopping_ends_a_hanging_answer(fake):
    """stop() closes the connections it holds: a hanging answer does not keep it running.

    The closed connection ends the client's wait (aiohttp may send the GET once more, to
    a server still closing, which answers it), long before the client's own 60 s.
    """
    batch_id = fake.add_batch()
    fake.script(batch_id, [Hang()])
    server = FakeServer(fake, stop_within=10)
    server.start()

    async def wait_on_the_hang() -> None:
        async with AsyncInkit(fake.token, base_url=server.url, timeout=60, **NO_RETRY) as client:
            task = asyncio.create_task(client.batch.get(batch_id))
            while not fake.requests:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(server.stop)  # raises if uvicorn did not stop in 10 s
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(asyncio.wait_for(wait_on_the_hang(), 30))


@pytest.mark.uvicorn
def test_a_server_that_does_not_start_in_time_fails_clearly(fake, monkeypatch):
    """A start-up that hangs is cancelled after start_within, with a message that says so."""

    async def never(self, sockets=None):
        await asyncio.Event().wait()

    monkeypatch.setattr(uvicorn.Server, "startup", never)
    server = FakeServer(fake, start_within=0.2)
    with pytest.raises(RuntimeError, match=r"did not start within 0\.2 s"):
        server.start()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url


@pytest.mark.uvicorn
def test_a_server_that_fails_to_start_says_why(fake, monkeypatch):
    """A start-up that raises ends start() with the error, not a wait for the timeout."""

    async def broken(self, sockets=None):
        raise OSError("no room")

    monkeypatch.setattr(uvicorn.Server, "startup", broken)
    server = FakeServer(fake)
    with pytest.raises(RuntimeError, match="no room"):
        server.start()


@pytest.mark.uvicorn
def test_a_server_starts_once(fake):
    """start() twice is refused; stop() twice is fine."""
    with FakeServer(fake) as server:
        with pytest.raises(RuntimeError, match="runs already"):
            server.start()
        server.stop()
        with contextlib.suppress(RuntimeError):
            server.stop()


@pytest.mark.uvicorn
def test_a_server_that_does_not_stop_in_time_fails_clearly(fake, monkeypatch):
    """A shutdown that hangs is cancelled after stop_within, and stop() says so."""

    async def never(self, sockets=None):
        await asyncio.Event().wait()

    monkeypatch.setattr(uvicorn.Server, "shutdown", never)
    server = FakeServer(fake, stop_within=0.3)
    server.start()
    with pytest.raises(RuntimeError, match=r"did not stop within 0\.3 s"):
        server.stop()


@pytest.mark.uvicorn
def test_a_server_that_fails_while_stopping_says_why(fake, monkeypatch):
    """An error in uvicorn's shutdown is raised by stop(), not lost in its thread."""

    async def broken(self, sockets=None):
        raise OSError("disk gone")

    monkeypatch.setattr(uvicorn.Server, "shutdown", broken)
    server = FakeServer(fake)
    server.start()
    with pytest.raises(RuntimeError, match="disk gone"):
        server.stop()

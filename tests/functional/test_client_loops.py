"""AsyncInkit over a real socket: the loops a client lives across, a caller's own client."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from inkit_async import AsyncInkit, InkitError
from tests.support.constants import TOKEN
from tests.support.loopback import BATCH_JSON, LoopbackServer, Respond

pytestmark = pytest.mark.loopback  # each test starts its own LoopbackServer


async def test_user_supplied_http_client_is_used_and_left_open(server, http_library):
    """A passed-in AsyncClient carries the requests, its headers too, and stays open after."""
    async with http_library.AsyncClient(headers={"X-Trace": "abc"}) as http:
        async with AsyncInkit(TOKEN, base_url=server.url, http_client=http) as client:
            assert (await client.batch.get("rb_1")).id == "rb_1"
        assert not http.is_closed
        assert server.requests[0].headers["x-trace"] == "abc"
    assert http.is_closed


def test_client_used_after_its_first_loop_closed_raises_inkit_error():
    """First loop closed, second loop: a clear InkitError, not "Event loop is closed"."""
    client: list[AsyncInkit] = []

    async def first() -> None:
        async with LoopbackServer() as server:
            # Closing after the answer leaves no pooled socket behind in the dead loop.
            server.script(Respond(body={**BATCH_JSON, "id": "rb_1"}, close=True))
            client.append(AsyncInkit(TOKEN, base_url=server.url))
            assert (await client[0].batch.get("rb_1")).total == 1

    async def second() -> None:
        async with LoopbackServer() as server:
            with pytest.raises(InkitError, match="another event loop") as info:
                await client[0].batch.get("rb_2")
            assert "asyncio.run" in str(info.value)
            assert server.requests == []

    asyncio.run(first())
    asyncio.run(second())
    asyncio.run(client[0].aclose())  # the first loop has ended: a quiet close


def test_client_created_outside_any_loop_works_in_the_loop_that_uses_it():
    """A client built before any loop runs (at import time) binds to the loop that uses it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    client = AsyncInkit(TOKEN, base_url=url)  # no running loop here

    async def use() -> str:
        async with LoopbackServer(sock=listener), client:
            return (await client.batch.get("rb_1")).id

    assert asyncio.run(use()) == "rb_1"


def test_aclose_after_the_first_loop_ended_closes_quietly():
    """aclose() from a new loop once the client's loop has ended drops what is left, quietly."""
    clients: list[AsyncInkit] = []

    async def first() -> None:
        async with LoopbackServer() as server:
            clients.append(AsyncInkit(TOKEN, base_url=server.url))
            await clients[0].batch.get("rb_1")  # leaves one pooled keep-alive socket

    asyncio.run(first())
    asyncio.run(clients[0].aclose())
    assert clients[0].is_closed
    with pytest.raises(InkitError, match="closed"):
        asyncio.run(clients[0].batch.get("rb_2"))


def test_aclose_from_a_foreign_loop_while_the_client_runs_raises_inkit_error():
    """aclose() from another thread's loop while the client's loop still runs is refused."""
    ready = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []
    holder: list[AsyncInkit] = []

    async def owner() -> None:
        async with LoopbackServer() as server, AsyncInkit(TOKEN, base_url=server.url) as client:
            holder.append(client)
            await client.batch.get("rb_1")
            ready.set()
            while not release.is_set():
                await asyncio.sleep(0.01)

    thread = threading.Thread(target=asyncio.run, args=(owner(),))
    thread.start()
    assert ready.wait(10)
    try:
        asyncio.run(holder[0].aclose())
    except BaseException as exc:
        errors.append(exc)
    finally:
        release.set()
        thread.join(10)
    assert len(errors) == 1
    assert isinstance(errors[0], InkitError)
    assert "another event loop" in str(errors[0])
    assert holder[0].is_closed  # the owner closed it on its own way out

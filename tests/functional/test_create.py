"""batch.create: the body sent, argument checks and the retry rules of a non-idempotent call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import AsyncIterator
from typing import Self

import httpx
import pytest

from inkit_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncInkit,
    CreatedBatch,
    InternalServerError,
    RenderSpec,
)
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.loopback import Drop, DropMidBody, Hang, LoopbackServer, Respond, closed_port
from tests.support.markers import starts

CREATED = {"id": "rb_NewBatch000000000000001"}


async def test_create_sends_the_documented_body(api, client):
    """template_id, name and renders go out as the API's JSON; only set keys are sent."""
    route = api.post("/batch").respond(201, json=CREATED)
    created = await client.batch.create(
        template_id="tmpl_abc",
        name="March invoices",
        renders=[
            RenderSpec(merge_parameters={"first_name": "Ada"}),
            RenderSpec(
                merge_parameters={"first_name": "Grace"},
                name="grace.pdf",
                description="Invoice for Grace",
                destinations={"inkit_storage": {"name": "grace"}},
            ),
            {"merge_parameters": {}, "name": "from a dict"},
        ],
    )
    assert created == CreatedBatch(id=CREATED["id"])
    request = route.calls.last.request
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "template_id": "tmpl_abc",
        "name": "March invoices",
        "renders": [
            {"merge_parameters": {"first_name": "Ada"}},
            {
                "merge_parameters": {"first_name": "Grace"},
                "name": "grace.pdf",
                "description": "Invoice for Grace",
                "destinations": {"inkit_storage": {"name": "grace"}},
            },
            {"merge_parameters": {}, "name": "from a dict"},
        ],
    }


@pytest.mark.parametrize("status", [200, 201, 202])
async def test_any_2xx_is_success(api, client, status):
    """200, 201 and 202 all return the created batch."""
    api.post("/batch").respond(status, json=CREATED)
    created = await client.batch.create(template_id="t", renders=[{"merge_parameters": {}}])
    assert created.id == CREATED["id"]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"template_id": "", "renders": [{"merge_parameters": {}}]}, ValueError),
        ({"template_id": "  ", "renders": [{"merge_parameters": {}}]}, ValueError),
        ({"template_id": None, "renders": [{"merge_parameters": {}}]}, TypeError),
        ({"template_id": "t", "renders": []}, ValueError),
        ({"template_id": "t", "renders": [{"name": "x"}]}, ValueError),
        ({"template_id": "t", "renders": [{"merge_parameters": None}]}, ValueError),
        ({"template_id": "t", "renders": [{"merge_parameters": [1]}]}, TypeError),
        ({"template_id": "t", "renders": {"merge_parameters": {}}}, TypeError),
        ({"template_id": "t", "renders": ["render"]}, TypeError),
        ({"template_id": "t", "renders": [{"merge_parameters": {}}], "name": 5}, TypeError),
    ],
)
async def test_bad_arguments_raise_before_any_request(api, client, options, error):
    """A missing template, empty renders or a render without merge_parameters sends nothing."""
    route = api.post("/batch").respond(201, json=CREATED)
    with pytest.raises(error):
        await client.batch.create(**options)
    assert not route.called


async def test_template_id_is_required_by_signature(client):
    """Calling create without template_id is a TypeError from Python itself."""
    with pytest.raises(TypeError):
        await client.batch.create(renders=[{"merge_parameters": {}}])  # type: ignore[call-arg]


# -- retry rules over a real socket ------------------------------------------------------


@pytest.fixture
@starts("loopback")
async def server():
    """A loopback server; creates answer 201 unless scripted otherwise."""
    async with LoopbackServer(handler=lambda request: Respond(201, body=CREATED)) as server:
        yield server


async def create(client: AsyncInkit) -> CreatedBatch:
    """One create with a minimal valid body."""
    return await client.batch.create(template_id="tmpl_1", renders=[{"merge_parameters": {}}])


@pytest.mark.parametrize("fault", [Drop(), DropMidBody(status=201)])
async def test_dropped_connection_after_sending_is_never_retried(server, events, fault):
    """A create whose connection dropped after the body was sent reaches the server once."""
    server.script(fault)
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, on_event=events) as client:
        with pytest.raises(APIConnectionError):
            await create(client)
    assert events.retries == []
    assert len(server.requests) == 1
    assert json.loads(server.requests[0].body)["template_id"] == "tmpl_1"


async def test_timeout_after_sending_is_never_retried(server):
    """A create that timed out waiting for the answer is not sent again."""
    server.script(Hang())
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=0.2, backoff=NO_WAIT) as client:
        with pytest.raises(APITimeoutError):
            await create(client)
    assert len(server.requests) == 1


async def test_server_error_is_never_retried(server):
    """A 503 to a create is raised after one request: the batch may have been made."""
    server.script(Respond(503, body="busy"))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        with pytest.raises(InternalServerError):
            await create(client)
    assert len(server.requests) == 1


async def test_rate_limited_create_is_retried(server, events):
    """A 429 means the create was refused, so it is sent again."""
    server.script(Respond(429, body={"error": "slow down"}, headers={"Retry-After": "0"}))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, on_event=events) as client:
        created = await create(client)
    assert created.id == CREATED["id"]
    assert [(e.method, e.status_code) for e in events.retries] == [("POST", 429)]
    assert len(server.requests) == 2


async def test_refused_connection_is_retried(events):
    """A create that could not connect never reached a server, so it is retried."""
    url = f"http://127.0.0.1:{closed_port()}/v1"
    async with AsyncInkit(TOKEN, base_url=url, backoff=NO_WAIT, on_event=events) as client:
        with pytest.raises(APIConnectionError) as info:
            await create(client)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert [(e.method, e.path, e.attempt, e.exception) for e in events.retries] == [
        ("POST", "/batch", 1, "ConnectError"),
        ("POST", "/batch", 2, "ConnectError"),
    ]


# -- connections the server closes under a create (issue 21 row 13, issue 22) -------------


class IdleClosingServer:
    """A raw HTTP/1.1 server on 127.0.0.1 that closes idle connections when it is told to.

    It answers every complete request 201 with a new id and counts what it read: the
    requests its app saw. ``close_idle(port)`` closes the connection from the client's
    *port* at once, in the caller's own step: with nothing unread, a FIN (what a server's
    keep-alive timer does), or with ``abort`` a reset. ``reset_on_arrival`` makes the
    next request that arrives on a new connection close it unread (a reset: the
    client cannot tell that from a server that read the request and then went away).
    ``hold`` keeps answers back until that many requests are waiting, so a burst opens
    one connection per request.
    """

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.connections_opened = 0
        self.closed_idle = 0
        self.reset_on_arrival = False
        self.hold = 0
        self._listener = socket.socket()
        self._buffers: dict[socket.socket, bytearray] = {}
        self._served: set[socket.socket] = set()
        self._held: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """The API root to pass as ``base_url``."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"

    async def __aenter__(self) -> Self:
        """Listen on an ephemeral port, served by the running loop's reader callbacks."""
        self._loop = asyncio.get_running_loop()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0)  # non-blocking
        self._loop.add_reader(self._listener, self._accept)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the listener and every connection."""
        for sock in [*self._buffers, self._listener]:
            self._close(sock)

    def _accept(self) -> None:
        assert self._loop is not None
        with contextlib.suppress(BlockingIOError):
            sock, _ = self._listener.accept()
            sock.settimeout(0)  # non-blocking
            self.connections_opened += 1
            self._buffers[sock] = bytearray()
            self._loop.add_reader(sock, self._read, sock)

    def _close(self, sock: socket.socket) -> None:
        assert self._loop is not None
        self._loop.remove_reader(sock)
        self._buffers.pop(sock, None)
        self._served.discard(sock)
        sock.close()

    def _read(self, sock: socket.socket) -> None:
        if self.reset_on_arrival and sock not in self._served:
            self.reset_on_arrival = False
            self._close(sock)  # the request unread: the kernel answers with a reset
            return
        try:
            data = sock.recv(65536)
        except ConnectionError:
            data = b""
        if not data:
            self._close(sock)
            return
        buffer = self._buffers[sock]
        buffer += data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(buffer[:end]).lower()
            length = (
                int(head.split(b"content-length:")[1].split(b"\r\n")[0])
                if (b"content-length:" in head)
                else 0
            )
            if len(buffer) < end + 4 + length:
                return
            self.requests.append(bytes(buffer[: end + 4 + length]))
            del buffer[: end + 4 + length]
            self._held.append(sock)
        if len(self._held) >= self.hold:
            for waiting in self._held:
                body = json.dumps({"id": f"rb_new_{len(self.requests)}"}).encode()
                waiting.send(
                    b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(body), body)
                )
                self._served.add(waiting)
            self._held.clear()

    def close_idle(self, port: int, *, abort: bool = False) -> None:
        """Close the idle connection from the client's *port* now, with a FIN (or a reset)."""
        for sock in list(self._buffers):
            if sock.getpeername()[1] == port and not self._buffers[sock]:
                if abort:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.closed_idle += 1
                self._close(sock)


@pytest.fixture
@starts("loopback")
async def closing_server() -> AsyncIterator[IdleClosingServer]:
    """An ``IdleClosingServer`` for one test."""
    async with IdleClosingServer() as server:
        yield server


async def test_each_create_goes_on_a_connection_of_its_own(closing_server, events):
    """A create never reuses a kept-alive connection, so it never meets one the server closes.

    A server closes idle connections on its own clock (uvicorn after 5 s); one that does so
    just as a request goes out cannot be told, afterwards, from one that read the request.
    So a create, which must not reach the server twice, gets a fresh connection, closed
    after it: ten creates, ten connections, each request seen once, none retried.
    """
    server = closing_server
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, on_event=events) as client:
        for _ in range(10):
            await create(client)
        async with asyncio.timeout(10):
            created = await asyncio.gather(*(create(client) for _ in range(10)))
    assert len({batch.id for batch in created}) == 10
    assert server.connections_opened == 20
    assert len(server.requests) == 20
    assert events.retries == []


async def test_a_create_the_server_read_before_dropping_the_connection_may_exist(server, events):
    """Read, then the kept-alive connection dropped unanswered: not sent again; 'may exist'."""
    server.script(Respond(201, body=CREATED), Drop())
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, on_event=events) as client:
        await create(client)
        with pytest.raises(APIConnectionError) as info:
            await create(client)
    error = info.value
    assert error.may_have_reached_server is True
    assert str(error) == (
        "POST /batch failed: Server disconnected. The request may have reached the server, "
        "so the batch may exist; it was not sent again"
    )
    assert isinstance(error.__cause__, httpx.RemoteProtocolError)
    assert events.retries == []
    assert len(server.requests) == 2  # the second create arrived once, and only once
    assert server.connections_opened == 2  # a connection each


async def test_a_create_reset_on_arrival_is_not_sent_again(closing_server, events):
    """A reset as the request arrives, no FIN before it: it may have been read, so it stays failed.

    The server here closes without reading, but a server that read the request and then
    reset the connection (a proxy whose backend died) looks the same from the client: the
    create may exist, and is not sent again.
    """
    server = closing_server
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, on_event=events) as client:
        await create(client)
        server.reset_on_arrival = True
        with pytest.raises(APIConnectionError) as info:
            await create(client)
    assert info.value.may_have_reached_server is True
    assert "the batch may exist" in str(info.value)
    assert events.retries == []
    assert server.connections_opened == 2  # never sent again on another connection


# -- the write phase: a server that stops reading (issue 22) ------------------------------


class NeverReads:
    """A listener on 127.0.0.1 that accepts connections and never reads from them."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._accepted: list[socket.socket] = []

    @property
    def url(self) -> str:
        """The API root to pass as ``base_url``."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"

    async def __aenter__(self) -> Self:
        """Listen; accept on the running loop, read nothing."""
        self._listener.bind(("127.0.0.1", 0))
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self._listener.listen(8)
        self._listener.setblocking(False)  # noqa: FBT003 - the socket API
        asyncio.get_running_loop().add_reader(self._listener, self._accept)
        return self

    def _accept(self) -> None:
        with contextlib.suppress(BlockingIOError):
            sock, _ = self._listener.accept()
            self._accepted.append(sock)

    async def __aexit__(self, *exc_info: object) -> None:
        """Close everything."""
        asyncio.get_running_loop().remove_reader(self._listener)
        for sock in [*self._accepted, self._listener]:
            sock.close()


async def test_a_create_whose_body_the_server_never_reads_times_out_in_the_write_phase(events):
    """httpx.Timeout(1): a 16 MiB body the server never reads fails within write + read.

    aiohttp has no write timeout and starts its read timer only after the body is
    written, so without the sender's own bound this call would wait forever.
    """
    renders = [{"merge_parameters": {"text": "x" * 4096}} for _ in range(4096)]
    async with (
        NeverReads() as server,
        AsyncInkit(
            TOKEN, base_url=server.url, timeout=httpx.Timeout(1.0), on_event=events
        ) as client,
    ):
        async with asyncio.timeout(20):  # a regression fails here instead of hanging
            with pytest.raises(APITimeoutError) as info:
                await client.batch.create(template_id="tmpl_1", renders=renders)
    assert isinstance(info.value.__cause__, httpx.WriteTimeout)
    assert info.value.may_have_reached_server is True
    assert events.retries == []  # a create that may have arrived is never sent again

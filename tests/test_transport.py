"""The default aiohttp transport: connections, the wire, and each aiohttp failure's httpx class.

Every branch of ``_map_errors`` is checked: through the public API over real sockets
where a real condition produces the aiohttp exception, and directly (raised inside
``_map_errors()``) for the ones no socket produces reliably.
"""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
import pytest

from inkit_async import APIConnectionError, APITimeoutError, AsyncInkit, Backoff, NotFoundError
from inkit_async._transport import _map_errors, _tcp_counters, _Watch

from .conftest import NO_WAIT, TOKEN
from .loopback import BATCH_JSON, Blackhole, Drop, DropMidBody, Hang, Raw, Respond, closed_port

# -- connections and the wire -----------------------------------------------------------


async def test_sequential_requests_reuse_one_connection(server):
    """Twenty lookups one after another travel over a single keep-alive connection."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        for number in range(20):
            batch = await client.batch.get(f"rb_{number}")
            assert batch.id == f"rb_{number}"
    assert len(server.requests) == 20
    assert server.connections_opened == 1


async def test_hostile_id_arrives_as_one_segment_on_the_wire(server):
    """What the server reads is one encoded segment under /v1/batch/ (aiohttp re-quotes nothing)."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        batch = await client.batch.get("../template/x?y=1#z")
    assert server.requests[0].target == "/v1/batch/..%2Ftemplate%2Fx%3Fy%3D1%23z"
    assert batch.id == "../template/x?y=1#z"


async def test_identity_headers_reach_the_server(server):
    """Over the wire: the token, Accept and the SDK's User-Agent, nothing of aiohttp's."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        await client.batch.get("rb_1")
    headers = server.requests[0].headers
    assert headers["x-inkit-api-token"] == TOKEN
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].startswith("inkit-async/")
    assert "aiohttp" not in headers["user-agent"]


async def test_user_http_client_goes_through_httpx_send(server):
    """A caller's own client is used with its event hooks, over a real socket."""
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async with (
        httpx.AsyncClient(event_hooks={"request": [hook]}) as http,
        AsyncInkit(TOKEN, base_url=server.url, http_client=http) as client,
    ):
        await client.batch.get("rb_1")
    assert seen == ["/v1/batch/rb_1"]


# -- aiohttp failures, produced for real ------------------------------------------------


@pytest.mark.parametrize(
    ("action", "timeout", "error", "httpx_cause", "aiohttp_cause"),
    [
        (Drop(), 5, APIConnectionError, httpx.RemoteProtocolError, aiohttp.ServerDisconnectedError),
        (
            DropMidBody(),
            5,
            APIConnectionError,
            httpx.RemoteProtocolError,
            aiohttp.ClientPayloadError,
        ),
        (
            Raw(b"SMTP ready\r\n\r\n"),
            5,
            APIConnectionError,
            httpx.RemoteProtocolError,
            aiohttp.ClientResponseError,
        ),
        (
            Hang(),
            httpx.Timeout(5, read=0.1),
            APITimeoutError,
            httpx.ReadTimeout,
            aiohttp.SocketTimeoutError,
        ),
    ],
    ids=["closed-before-the-answer", "closed-mid-body", "malformed-status-line", "read-timeout"],
)
async def test_each_server_fault_maps_to_its_httpx_class_and_is_retried(
    server, events, action, timeout, error, httpx_cause, aiohttp_cause
):
    """Each attempt faulted: 3 fresh connections, then the SDK error over httpx's and aiohttp's."""
    server.handler = lambda request: action
    async with AsyncInkit(
        TOKEN, base_url=server.url, timeout=timeout, backoff=NO_WAIT, on_event=events
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    assert type(info.value) is error
    cause = info.value.__cause__
    assert type(cause) is httpx_cause
    assert type(cause.__cause__) is aiohttp_cause
    assert [event.exception for event in events.retries] == [httpx_cause.__name__] * 2
    assert len(server.requests) == server.connections_opened == 3
    await server.wait_for_open_connections(0)


async def test_refused_connection_is_a_connect_error(events):
    """A closed port: ConnectError from ClientConnectorError, retried, the token masked."""
    url = f"http://127.0.0.1:{closed_port()}/v1"
    async with AsyncInkit(TOKEN, base_url=url, backoff=NO_WAIT, on_event=events) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    assert type(info.value) is APIConnectionError
    assert type(info.value.__cause__) is httpx.ConnectError
    assert type(info.value.__cause__.__cause__) is aiohttp.ClientConnectorError
    assert str(info.value).startswith("GET /batch/rb_1 failed: Cannot connect to host 127.0.0.1:")
    assert info.value.request is not None
    assert info.value.request.headers["X-Inkit-API-Token"] == "[redacted]"
    assert [(e.attempt, e.exception) for e in events.retries] == [
        (1, "ConnectError"),
        (2, "ConnectError"),
    ]


async def test_connect_timeout_is_a_connect_timeout_so_a_create_is_retried(events):
    """A SYN nobody answers: ConnectTimeout from ConnectionTimeoutError, so a create is re-sent."""
    timeout = httpx.Timeout(5, connect=0.05)  # the connect phase times out, not the deadline
    backoff = Backoff(initial=0.01, maximum=0.01, jitter=0)
    with Blackhole() as hole:
        async with AsyncInkit(
            TOKEN, base_url=hole.url, timeout=timeout, backoff=backoff, on_event=events
        ) as client:
            with pytest.raises(APITimeoutError) as info:
                await client.batch.create(template_id="t", renders=[{"merge_parameters": {}}])
    assert str(info.value) == (
        "POST /batch timed out (ConnectTimeout). The request never reached the server, "
        "so no batch was created"
    )
    assert info.value.may_have_reached_server is False
    assert type(info.value.__cause__) is httpx.ConnectTimeout
    assert type(info.value.__cause__.__cause__) is aiohttp.ConnectionTimeoutError
    assert [(e.method, e.attempt, e.exception) for e in events.retries] == [
        ("POST", 1, "ConnectTimeout"),
        ("POST", 2, "ConnectTimeout"),
    ]


# -- aiohttp failures no socket produces reliably, mapped directly ----------------------


MAPPED_DIRECTLY = [
    (aiohttp.ServerTimeoutError("Timeout on reading"), httpx.ReadTimeout, "Timeout on reading"),
    (aiohttp.ServerTimeoutError(), httpx.ReadTimeout, "timed out"),
    (aiohttp.InvalidURL("gopher://x"), httpx.UnsupportedProtocol, "gopher://x"),
    (aiohttp.ClientConnectionError("connection lost"), httpx.ReadError, "connection lost"),
    (aiohttp.ClientConnectionError(), httpx.ReadError, "ClientConnectionError"),
    (ConnectionResetError(104, "reset by peer"), httpx.ReadError, "[Errno 104] reset by peer"),
    (ConnectionResetError(), httpx.ReadError, "ConnectionResetError"),
    (aiohttp.ClientError("odd"), httpx.TransportError, "odd"),
    (aiohttp.ClientError(), httpx.TransportError, "ClientError"),
    # Branches seen for real above, with the message they give when aiohttp's is empty.
    (aiohttp.ConnectionTimeoutError(), httpx.ConnectTimeout, "connect timed out"),
    (aiohttp.SocketTimeoutError(), httpx.ReadTimeout, "read timed out"),
    (aiohttp.ClientPayloadError(), httpx.RemoteProtocolError, "incomplete response body"),
]


@pytest.mark.parametrize(
    ("raised", "mapped", "message"),
    MAPPED_DIRECTLY,
    ids=[f"{type(raised).__name__}-{message}" for raised, _, message in MAPPED_DIRECTLY],
)
def test_aiohttp_failure_maps_to_the_httpx_class_keeping_the_cause(raised, mapped, message):
    """Raised inside _map_errors, each aiohttp failure becomes its httpx class, cause kept."""
    with pytest.raises(httpx.TransportError) as info, _map_errors():
        raise raised
    assert type(info.value) is mapped
    assert info.value.__cause__ is raised
    assert str(info.value) == message


def test_exceptions_that_are_not_transport_failures_pass_through():
    """A bug elsewhere (a plain ValueError) is not disguised as a transport failure."""
    bug = ValueError("not a network problem")
    with pytest.raises(ValueError, match="not a network problem") as info, _map_errors():
        raise bug
    assert info.value is bug


# -- the lean path ------------------------------------------------------------------------


@pytest.fixture
def httpx_objects(monkeypatch):
    """Counts of the httpx.Request and httpx.Response objects made while a test runs."""
    made = {"Request": 0, "Response": 0}
    for name in made:
        cls = getattr(httpx, name)
        original = cls.__init__

        def counting(self, *args, __original=original, __name=name, **kwargs):
            made[__name] += 1
            __original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", counting)
    return made


async def test_a_lookup_through_the_default_transport_makes_no_httpx_objects(server, httpx_objects):
    """The SDK's own transport is driven directly: 50 gets, no httpx Request or Response."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        batches = await client.batch.get_many([f"rb_{number}" for number in range(50)])
    assert len(batches) == 50
    assert httpx_objects == {"Request": 0, "Response": 0}


async def test_an_answer_the_sdk_cannot_use_still_carries_httpx_objects(server, httpx_objects):
    """A 404 on the lean path raises with a masked httpx request and response, as before."""
    server.script(Respond(404, {"error": "no such batch"}, {"x-request-id": "req_7"}))
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(NotFoundError) as info:
            await client.batch.get("rb_gone")
    error = info.value
    assert (error.status_code, error.request_id, error.body) == (
        404,
        "req_7",
        {"error": "no such batch"},
    )
    assert error.response.request.headers["X-Inkit-API-Token"] == "[redacted]"
    assert str(error.response.request.url) == f"{server.url}/batch/rb_gone"
    assert httpx_objects["Response"] >= 1


async def test_respx_and_a_callers_client_keep_the_general_path(api, httpx_objects):
    """Respx still intercepts (it replaces the transport): the general path, as before."""
    route = api.get("/batch/rb_1").respond(json={**BATCH_JSON, "id": "rb_1"})
    async with AsyncInkit(TOKEN) as client:
        assert (await client.batch.get("rb_1")).id == "rb_1"
    assert route.call_count == 1
    assert httpx_objects["Request"] >= 1


# -- whether a failed create reached the server: TCP's counters --------------------------


async def test_tcp_counters_count_what_the_peer_acknowledged():
    """The bytes a peer's FIN acknowledges are counted; a closed or absent socket gives None."""

    async def read_ten_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        await reader.readexactly(10)
        writer.close()

    server = await asyncio.start_server(read_ten_then_close, "127.0.0.1", 0)
    async with server:
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        before = _tcp_counters(writer.transport)
        assert before is not None
        writer.write(b"0123456789")
        assert await reader.read() == b""  # the server's FIN, which acknowledges all ten
        acked, segments = _tcp_counters(writer.transport) or (0, 0)
        assert acked == before[0] + 10
        assert segments > before[1]
        writer.close()
        await writer.wait_closed()
    assert _tcp_counters(writer.transport) is None
    assert _tcp_counters(None) is None


#: A create's connection: 308 bytes acknowledged (a SYN and one request), 3 data segments.
BEFORE = (308, 3)
DISCONNECTED = aiohttp.ServerDisconnectedError()


def watch(at_fin=None, at_loss=None, *, before=BEFORE) -> _Watch:
    """A watch with these counters, read before sending, at the FIN and at the loss."""
    watched = _Watch(reused=True, before=before)
    watched.at_fin, watched.at_loss = at_fin, at_loss
    return watched


@pytest.mark.parametrize(
    ("watched", "exc", "undelivered"),
    [
        # The FIN acknowledged nothing of the request: closed before it arrived.
        (watch((308, 4), (308, 4)), DISCONNECTED, True),
        (watch((308, 4)), DISCONNECTED, True),  # the loss came too late to read
        # Any byte of it acknowledged, at the FIN or after: it may have been read.
        (watch((400, 4), (400, 4)), DISCONNECTED, False),
        (watch((308, 4), (400, 4)), DISCONNECTED, False),
        # No FIN: only a request of which nothing left this machine.
        (watch(None, (308, 3)), aiohttp.ClientOSError(32, "Broken pipe"), True),
        (watch(None, (308, 4)), aiohttp.ClientOSError(104, "reset"), False),
        # Nothing known: not proof.
        (watch(), DISCONNECTED, False),
        (watch((308, 4), before=None), DISCONNECTED, False),
        # A timeout is never proof, whatever the counters say.
        (watch((308, 3), (308, 3)), aiohttp.SocketTimeoutError(), False),
    ],
    ids=[
        "fin-acked-nothing",
        "fin-only",
        "fin-acked-the-request",
        "acked-after-the-fin",
        "reset-nothing-sent",
        "reset-after-sending",
        "no-counters",
        "not-watched",
        "timeout",
    ],
)
def test_a_create_is_undelivered_only_on_tcps_proof(watched, exc, undelivered):
    """The rule, on plain numbers: unacknowledged, and a FIN or nothing sent."""
    assert watched.undelivered(exc) is undelivered

"""The default aiohttp transport: connections, the wire, and each aiohttp failure's httpx class.

Every branch of ``_map_errors`` is checked: through the public API over real sockets
where a real condition produces the aiohttp exception, and directly (raised inside
``_map_errors()``) for the ones no socket produces reliably.
"""

from __future__ import annotations

import aiohttp
import httpx
import pytest
import yarl

from inkit_async import APIConnectionError, APITimeoutError, AsyncInkit, Backoff, NotFoundError
from inkit_async._senders._aiohttp import _failure
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.loopback import (
    BATCH_JSON,
    Blackhole,
    Drop,
    DropMidBody,
    Hang,
    Raw,
    Respond,
    closed_port,
)

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


async def test_user_http_client_goes_through_httpx_send(server, http_library):
    """A caller's own client is used with its event hooks, over a real socket."""
    seen: list[str] = []

    async def hook(request) -> None:
        seen.append(request.url.path)

    async with (
        http_library.AsyncClient(event_hooks={"request": [hook]}) as http,
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
    """Each attempt faulted: 3 attempts, then the SDK error over httpx's and aiohttp's.

    A connection dropped before any answer is the one fault aiohttp answers by sending a
    GET again itself, once (RFC 9112 allows it for idempotent requests): the server sees
    two requests per attempt then, each on a fresh connection.
    """
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
    per_attempt = 2 if isinstance(action, Drop) else 1
    assert len(server.requests) == server.connections_opened == 3 * per_attempt
    await server.wait_for_open_connections(0)


async def test_refused_connection_is_a_connect_error(events):
    """A closed port: ConnectError, its OSError chained, retried, the token masked."""
    url = f"http://127.0.0.1:{closed_port()}/v1"
    async with AsyncInkit(TOKEN, base_url=url, backoff=NO_WAIT, on_event=events) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    assert type(info.value) is APIConnectionError
    assert type(info.value.__cause__) is httpx.ConnectError
    assert type(info.value.__cause__.__cause__) is ConnectionRefusedError
    assert str(info.value).startswith("GET /batch/rb_1 failed: cannot connect to 127.0.0.1:")
    assert info.value.request is not None
    assert info.value.request.headers["X-Inkit-API-Token"] == "[redacted]"
    assert [(e.attempt, e.exception) for e in events.retries] == [
        (1, "ConnectError"),
        (2, "ConnectError"),
    ]


@pytest.mark.loopback
async def test_connect_timeout_is_a_connect_timeout_so_a_create_is_retried(events, http_library):
    """A SYN nobody answers: ConnectTimeout from ConnectionTimeoutError, so a create is re-sent."""
    # The connect phase times out, not the deadline (an httpx2 Timeout says so the same way).
    timeout = http_library.Timeout(5, connect=0.05)
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
    (aiohttp.ServerTimeoutError("Timeout on reading"), "ReadTimeout", "Timeout on reading"),
    (aiohttp.ServerTimeoutError(), "ReadTimeout", "read timed out"),
    (aiohttp.InvalidURL("gopher://x"), "UnsupportedProtocol", "gopher://x"),
    (aiohttp.ClientConnectionError("connection lost"), "ReadError", "connection lost"),
    (aiohttp.ClientConnectionError(), "ReadError", "ClientConnectionError"),
    (ConnectionResetError(104, "reset by peer"), "ReadError", "[Errno 104] reset by peer"),
    (ConnectionResetError(), "ReadError", "ConnectionResetError"),
    (aiohttp.ClientError("odd"), "TransportError", "odd"),
    (aiohttp.ClientError(), "TransportError", "ClientError"),
    # Branches seen for real above, with the message they give when aiohttp's is empty.
    (aiohttp.ConnectionTimeoutError(), "ConnectTimeout", "connect timed out"),
    (aiohttp.SocketTimeoutError(), "ReadTimeout", "read timed out"),
    (aiohttp.ClientPayloadError(), "RemoteProtocolError", "incomplete response body"),
]


@pytest.mark.parametrize(
    ("raised", "kind", "message"),
    MAPPED_DIRECTLY,
    ids=[f"{type(raised).__name__}-{message}" for raised, _, message in MAPPED_DIRECTLY],
)
def test_aiohttp_failure_maps_to_its_kind_keeping_the_cause(raised, kind, message):
    """Each aiohttp failure becomes a TransportFailure of its kind, the error as its cause."""
    failure, cause = _failure(raised)
    assert (failure.kind, failure.message) == (kind, message)
    assert failure.maybe_sent is (kind != "ConnectTimeout")
    assert cause is raised


def test_a_connection_error_chains_its_os_error_not_its_connection_key():
    """A connector error keeps the proxy's URL and password in its key: its OSError is chained."""
    key = aiohttp.client_reqrep.ConnectionKey(
        host="api.example",
        port=443,
        is_ssl=True,
        ssl=True,
        proxy=yarl.URL("http://u:secret-pw@proxy:3128"),
        proxy_auth=None,
        proxy_headers_hash=None,
    )
    os_error = ConnectionRefusedError(111, "Connect call failed")
    failure, cause = _failure(aiohttp.ClientProxyConnectionError(key, os_error))
    assert cause is os_error
    assert failure.kind == "ConnectError"
    assert failure.maybe_sent is False
    assert "secret-pw" not in failure.message


# -- the one path: no httpx objects unless an error carries them -------------------------


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


async def test_a_lookup_through_the_default_sender_makes_no_httpx_objects(server, httpx_objects):
    """The default sender drives aiohttp directly: 50 gets, no httpx Request or Response."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        batches = await client.batch.get_many([f"rb_{number}" for number in range(50)])
    assert len(batches) == 50
    assert httpx_objects == {"Request": 0, "Response": 0}


async def test_a_list_and_a_create_make_no_httpx_objects_either(server, httpx_objects):
    """Every method goes through the default sender, not only lookups."""
    server.script(
        Respond(
            200,
            {
                "items": [BATCH_JSON],
                "metadata": {"pagination": {"current_page": 1, "page_count": 1, "total_count": 1}},
            },
        ),
        Respond(201, {"id": "rb_new"}),
    )
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        listed = [batch async for batch in client.batch.list()]
        created = await client.batch.create(
            template_id="tmpl_1", renders=[{"merge_parameters": {}}]
        )
    assert (len(listed), created.id) == (1, "rb_new")
    assert httpx_objects == {"Request": 0, "Response": 0}


async def test_an_answer_the_sdk_cannot_use_still_carries_httpx_objects(server, httpx_objects):
    """A 404 raises with a masked httpx request and response, built where the error is."""
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


async def test_respx_intercepts_every_request_of_a_default_client(api, httpx_objects):
    """Inside respx.mock the default sender hands requests to an httpx client respx patches."""
    route = api.get("/batch/rb_1").respond(json={**BATCH_JSON, "id": "rb_1"})
    async with AsyncInkit(TOKEN) as client:
        assert (await client.batch.get("rb_1")).id == "rb_1"
    assert route.call_count == 1
    assert httpx_objects["Request"] >= 1

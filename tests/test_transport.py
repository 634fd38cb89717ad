"""The default aiohttp-backed transport over real sockets: each failure maps to its class."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from inkit_async import APIConnectionError, APITimeoutError, AsyncInkit

from .conftest import NO_WAIT, TOKEN
from .loopback import BATCH_JSON, Drop, Hang, Raw, Respond


async def test_connection_closed_before_the_answer_is_retried(server):
    """A connection closed without an answer is retried and the next answer returned."""
    server.script(Drop())
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        batch = await client.batch.get("rb_ok")
    assert batch.id == "rb_ok"
    assert len(server.requests) == 2


async def test_malformed_status_line_is_a_connection_error(server):
    """Garbage instead of an HTTP response is a protocol failure, reported as such."""
    server.handler = lambda request: Raw(b"SMTP ready\r\n\r\n")
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)


async def test_read_timeout_of_an_httpx_timeout_is_an_api_timeout(server):
    """With an httpx.Timeout, the read phase's limit applies and raises APITimeoutError."""
    server.handler = lambda request: Hang()
    timeout = httpx.Timeout(5.0, read=0.1)
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=timeout, max_retries=0) as client:
        with pytest.raises(APITimeoutError) as info:
            await client.batch.get("rb_1")
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


async def test_gzip_body_is_decoded(server):
    """A gzip-encoded answer is decoded before it is parsed."""
    payload = gzip.compress(json.dumps({**BATCH_JSON, "id": "rb_zip"}).encode())
    server.script(Respond(body=payload, headers={"content-encoding": "gzip"}))
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        batch = await client.batch.get("rb_zip")
    assert batch.id == "rb_zip"
    assert "gzip" in server.requests[0].headers["accept-encoding"]


async def test_keep_alive_closed_by_server_between_requests_is_transparent(server):
    """When the server closes an idle connection, the next lookup still succeeds."""
    async with AsyncInkit(TOKEN, base_url=server.url, max_retries=0) as client:
        await client.batch.get("rb_1")
        await server.close_idle_connections()
        batch = await client.batch.get("rb_2")
    assert batch.id == "rb_2"
    assert server.connections_opened == 2


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

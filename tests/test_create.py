"""batch.create: the body sent, argument checks and the retry rules of a non-idempotent call."""

from __future__ import annotations

import json

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

from .conftest import NO_WAIT, TOKEN
from .loopback import Drop, DropMidBody, Hang, LoopbackServer, Respond, closed_port

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

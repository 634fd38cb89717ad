"""respx as users write it: inside ``respx.mock``, a default client never reaches the network."""

from __future__ import annotations

import pytest
import respx

from inkit_async import AsyncInkit
from inkit_async._senders._respx import respx_is_mocking
from tests.support.constants import TOKEN
from tests.support.loopback import BATCH_JSON

BASE = "https://api.inkit.com/v1"


def test_the_respx_guard_sees_a_started_router():
    """The guard reads respx's started routers: off, on in each of its mockers, off again.

    respx keeps them in ``Mocker.registry[name].routers``, not a public API: should it
    move them, this fails.
    """
    assert respx_is_mocking() is False
    with respx.mock:
        assert respx_is_mocking() is True
    with respx.mock(using="httpx"):
        assert respx_is_mocking() is True
    assert respx_is_mocking() is False


@pytest.mark.parametrize("using", [None, "httpx"], ids=["default", "httpx"])
async def test_the_usual_respx_mock_intercepts_a_default_client(using):
    """Plain ``respx.mock`` (httpcore's mocker) and ``using="httpx"`` both answer the SDK."""
    mock = respx.mock(base_url=BASE) if using is None else respx.mock(base_url=BASE, using=using)
    with mock as router:
        route = router.get("/batch/rb_1").respond(json={**BATCH_JSON, "id": "rb_1"})
        async with AsyncInkit(TOKEN, base_url=BASE) as client:
            batch = await client.batch.get("rb_1")
            created = router.post("/batch").respond(201, json={"id": "rb_new"})
            made = await client.batch.create(template_id="t", renders=[{"merge_parameters": {}}])
    assert (batch.id, made.id) == ("rb_1", "rb_new")
    assert route.call_count == created.call_count == 1
    assert route.calls.last.request.headers["X-Inkit-API-Token"] == TOKEN


async def test_an_unmatched_request_under_respx_fails_and_is_never_sent():
    """A request no route matches fails the test's call; it never goes to the network."""
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/batch/rb_other").respond(json=BATCH_JSON)
        async with AsyncInkit(TOKEN, base_url=BASE, max_retries=0) as client:
            with pytest.raises(AssertionError, match="not mocked"):
                await client.batch.get("rb_1")


async def test_a_client_made_before_respx_mock_is_intercepted_inside_it():
    """The check is made per request: a client from a fixture, used inside the mock."""
    async with AsyncInkit(TOKEN, base_url=BASE) as client:
        with respx.mock(base_url=BASE) as router:
            router.get("/batch/rb_1").respond(json={**BATCH_JSON, "id": "rb_1"})
            assert (await client.batch.get("rb_1")).id == "rb_1"

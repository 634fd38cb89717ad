"""FakeInkit over a real socket: its ASGI app, served by uvicorn, answers as in process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import httpx
import pytest

from inkit_async import (
    AsyncInkit,
    InternalServerError,
)
from inkit_async.testing import FakeInkit
from tests.support.fake_api import HOSTILE_BODIES, assert_refused, names_by_sort, seed_odd_names


@pytest.mark.parametrize("aclosing", [False, True], ids=["break", "aclosing"])
async def test_an_early_break_sends_as_many_requests_in_process_as_over_a_socket(
    uvicorn_server, aclosing
):
    """fake.client() runs the production path: the same requests as a served fake.

    Breaking out of ``iter_many`` after 10 of 500 ids: at most ``max_concurrency`` lookups
    are handed in ahead of what the loop took, so a plain ``break`` (the iterator left open
    until collected) has sent 10 + 100, in process and over a socket alike. One inside
    ``aclosing`` stops at once: the lookups still queued are dropped unsent, so it sends at
    most as many, and how many had started by then depends on the carrier's speed.
    """
    counts = []
    for served in (False, True):
        fake = FakeInkit()
        ids = [fake.add_batch() for _ in range(500)]
        if served:
            url = await uvicorn_server(fake.app)
            async with AsyncInkit(fake.token, base_url=url) as client:
                await consume_ten(client, ids, aclosing=aclosing)
        else:
            async with fake.client() as client:
                await consume_ten(client, ids, aclosing=aclosing)
        counts.append(len(fake.requests))
    if aclosing:
        assert all(10 <= count <= 110 for count in counts)
    else:
        assert counts == [110, 110]


async def test_asgi_app_serves_the_fake_over_a_real_socket(fake, uvicorn_server):
    """Uvicorn serves fake.app on 127.0.0.1 and the SDK's default transport talks to it."""
    batch_id = fake.add_batch(destinations={"inkit_storage": 2})
    url = await uvicorn_server(fake.app)
    async with AsyncInkit(fake.token, base_url=url) as client:
        batch = await client.batch.wait(batch_id, poll_interval=0.01)
        created = await client.batch.create(template_id="t", renders=[{"merge_parameters": {}}])
    assert batch.is_finished
    assert batch.id == batch_id
    assert created.id in fake.batch_ids()
    assert fake.requests[-1].json == {"template_id": "t", "renders": [{"merge_parameters": {}}]}
    assert all(request.authorized for request in fake.requests)


async def test_sort_by_name_orders_empty_and_null_names_over_a_socket(fake, uvicorn_server):
    """Row 11 over uvicorn on 127.0.0.1: the same order, and no 500 from the server."""
    seed_odd_names(fake)
    url = await uvicorn_server(fake.app)
    async with AsyncInkit(fake.token, base_url=url, max_retries=0) as client:
        seen = await names_by_sort(client)
    assert seen == {"name": ["", "alpha", "zeta", None], "-name": [None, "zeta", "alpha", ""]}


async def test_hostile_create_bodies_get_an_api_answer_over_a_socket(fake, uvicorn_server):
    """The same bodies over uvicorn on 127.0.0.1: the same answers, no RecursionError."""
    url = await uvicorn_server(fake.app)
    headers = {"X-Inkit-API-Token": fake.token}
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:
        for _, body, status, fragment in HOSTILE_BODIES:
            assert_refused(await http.post("/batch", content=body), status, fragment)
        # Sent in pieces (chunked), a good body arrives whole.
        good = json.dumps({"template_id": "t", "renders": [{"merge_parameters": {}}] * 500})

        async def pieces():
            for start in range(0, len(good), 100):
                yield good[start : start + 100].encode()

        created = await http.post("/batch", content=pieces())
    assert created.status_code == 201
    assert fake.batch_ids() == [created.json()["id"]]


async def test_a_fault_in_the_fake_is_a_500_in_process_and_over_a_socket(
    fake, uvicorn_server, caplog
):
    """State a test broke makes the fake answer 500 with a message, logged; never an exception."""
    batch_id = fake.add_batch()
    fake._batches[batch_id].destinations = None  # noqa: SLF001 - broken on purpose
    url = await uvicorn_server(fake.app)
    with caplog.at_level(logging.ERROR, logger="inkit_async.testing"):
        async with fake.client(max_retries=0) as client:
            with pytest.raises(InternalServerError, match="FakeInkit failed: AttributeError"):
                await client.batch.get(batch_id)
        async with AsyncInkit(fake.token, base_url=url, max_retries=0) as client:
            with pytest.raises(InternalServerError, match="FakeInkit failed: AttributeError"):
                await client.batch.get(batch_id)
    failures = [r for r in caplog.records if r.name == "inkit_async.testing"]
    assert len(failures) == 2
    assert all(r.exc_info and r.exc_info[0] is AttributeError for r in failures)


async def consume_ten(client: AsyncInkit, ids: list[str], *, aclosing: bool) -> None:
    """Take ten results of ``iter_many(ids)`` and break out, as a user's loop would."""
    seen = 0
    stream = client.batch.iter_many(ids)
    async with contextlib.aclosing(stream) if aclosing else contextlib.nullcontext(stream):
        async for _ in stream:
            seen += 1
            if seen == 10:
                break
    await asyncio.sleep(0.2)  # the generator, if left open, is closed by now

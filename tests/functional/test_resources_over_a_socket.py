"""Renders, documents, templates, folders and flows against FakeInkit served by uvicorn.

Every method of the new resources over a real socket, with the default sender, and
through BlockingInkit; the answers equal what the fake holds.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import pytest

from inkit_async import AsyncInkit, BlockingInkit, NotFoundError, Render
from inkit_async.testing import FakeInkit
from tests.support.loopback import uvicorn_serving
from tests.support.markers import starts
from tests.support.threaded import ServerThread

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


async def test_every_async_method_over_a_socket(uvicorn_server, tmp_path: Path):
    """create, get, list, delete; template create from a path; folder list; flow invoke."""
    fake = FakeInkit(seed=5, render_delay=3600)
    folder_id = fake.add_folder(name="Invoices")
    url = await uvicorn_server(fake.app)
    source = tmp_path / "invoice.html"
    source.write_bytes(b"<html>{{Name}}</html>")
    async with AsyncInkit(fake.token, base_url=url) as client:
        template = await client.template.create(
            name="Invoice", source="html", file=source, width=8.5, height=11, unit="in"
        )
        assert (await client.template.get(template.id)).name == "Invoice"
        assert [t.id async for t in client.template.list()] == [template.id]
        created = await client.render.create(
            template_id=template.id,
            merge_parameters={"Name": "John"},
            destinations={"inkit_storage": {"name": "Invoice 1", "folder_id": folder_id}},
        )
        render = await client.render.get(created.id)
        assert isinstance(render, Render)
        assert (render.status, render.template_id) == ("In Progress", template.id)
        fake.complete_render(created.id)
        assert (await client.render.get(created.id)).is_completed
        assert [r.id async for r in client.render.list(data_id=created.id)] == [created.id]
        document = await client.document.get(created.document_id or "")
        assert (document.name, document.folder_id) == ("Invoice 1", folder_id)
        assert [d.id async for d in client.document.list()] == [document.id]
        assert [f.id async for f in client.folder.list()] == [folder_id]
        invoked = await client.flow.invoke(flow_id="flow_1", merge_parameters={"a": 1})
        assert [i.id async for i in client.flow.list_invocations()] == [invoked.id]
        await client.document.delete(document.id)
        await client.render.delete(created.id)
        with pytest.raises(NotFoundError):
            await client.render.get(created.id)
    assert all(request.authorized for request in fake.requests)
    assert [r.method for r in fake.requests if r.path.startswith("/v1/render/")][-2:] == [
        "DELETE",
        "GET",
    ]


async def test_a_render_becomes_ready_after_the_fakes_delay(uvicorn_server):
    """render_delay: In Progress at first, Completed once it has passed (polled, bounded)."""
    fake = FakeInkit(render_delay=0.2)
    url = await uvicorn_server(fake.app)
    async with AsyncInkit(fake.token, base_url=url) as client:
        created = await client.render.create(template_id="t", merge_parameters={})
        statuses = [(await client.render.get(created.id)).status]
        async with asyncio.timeout(10):  # a regression fails here instead of hanging
            while statuses[-1] != "Completed":
                await asyncio.sleep(0.05)
                statuses.append((await client.render.get(created.id)).status)
    assert statuses[0] == "In Progress"
    assert statuses[-1] == "Completed"


@pytest.fixture
@starts("uvicorn")
def fake_served() -> Iterator[tuple[FakeInkit, str]]:
    """A FakeInkit served by uvicorn on a loop of its own thread: the fake and its URL."""
    fake = FakeInkit(seed=9)
    with ServerThread(uvicorn_serving(fake.app)) as thread:
        yield fake, thread.value


def test_every_blocking_method_over_a_socket(fake_served):
    """BlockingInkit's resources: the async methods, blocking, listings as plain iterators."""
    fake, url = fake_served
    fake.add_folder(name="F")
    render_ids = [fake.add_render(name=f"r{n}") for n in range(3)]
    with BlockingInkit(fake.token, base_url=url) as client:
        assert client.render.get(render_ids[0]).id == render_ids[0]
        assert [r.id for r in client.render.list(page_size=2, sort="created_at")] == render_ids
        assert [len(p.items) for p in client.render.list(page_size=2).pages()] == [2, 1]
        created = client.render.create(template_id="t", merge_parameters={})
        client.render.delete(created.id)
        document_id = fake.document_ids(render_ids[0])[0]
        assert client.document.get(document_id).render_id == render_ids[0]
        assert len(list(client.document.list())) == 4
        client.document.delete(document_id)
        template = client.template.create(name="T", source="pdf", file=b"%PDF-1.4")
        assert client.template.get(template.id).source == "pdf"
        assert [t.id for t in client.template.list(source="pdf")] == [template.id]
        assert [f.name for f in client.folder.list()] == ["F"]
        invoked = client.flow.invoke(flow_id="flow_1", merge_parameters={}, name="x")
        assert [i.name for i in client.flow.list_invocations()] == ["x"]
        assert invoked.document_id is not None
    assert not [t for t in threading.enumerate() if t.name.startswith("inkit-blocking")]

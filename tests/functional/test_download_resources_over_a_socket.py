"""Render PDFs and document files downloaded from FakeInkit served by uvicorn.

The public methods (``client.render.download`` / ``stream`` / ``download_many``, the
same on ``client.document``) over a real socket with the default sender and through
``BlockingInkit``: the file lands whole or not at all, a render in progress is waited
for, ``page=`` reaches the server, and a second ``download_many`` fetches only what is
missing. The wait for a file not ready yet is made quick by replacing ``FILE_READY``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import pytest

from inkit_async import (
    AsyncInkit,
    BlockingInkit,
    DeadlineExceededError,
    NotFoundError,
    UnprocessableEntityError,
)
from inkit_async._streaming import ReadyWait
from inkit_async.resources import _downloading
from inkit_async.testing import FAKE_PDF, FakeInkit
from tests.support.loopback import uvicorn_serving
from tests.support.markers import starts
from tests.support.threaded import ServerThread

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def quick_ready(monkeypatch: pytest.MonkeyPatch) -> ReadyWait:
    """A file not ready yet is asked again every 20 ms, for up to 5 s."""
    ready = ReadyWait(interval=0.02, limit=5.0)
    monkeypatch.setattr(_downloading, "FILE_READY", ready)
    return ready


def left_in(directory: Path) -> list[str]:
    """Every name in *directory*, temporary files included."""
    return sorted(path.name for path in directory.iterdir())


async def test_a_render_in_progress_is_waited_for_then_lands_whole(uvicorn_server, tmp_path):
    """404 while rendering (render_delay), then the PDF at its path; nothing else left."""
    fake = FakeInkit(seed=11, render_delay=0.3)
    url = await uvicorn_server(fake.app)
    async with AsyncInkit(fake.token, base_url=url) as client, asyncio.timeout(30):
        created = await client.render.create(template_id="t", merge_parameters={})
        path = await client.render.download(created.id, tmp_path / "invoice.pdf")
        assert created.document_id is not None
        await client.document.download(created.document_id, tmp_path / "stored.pdf")
    assert path.read_bytes() == (tmp_path / "stored.pdf").read_bytes() == FAKE_PDF
    asks = [r for r in fake.requests if r.path.endswith("/pdf")]
    assert len(asks) >= 2  # at least one 404 before the PDF
    assert all(request.authorized for request in fake.requests)
    assert left_in(tmp_path) == ["invoice.pdf", "stored.pdf"]


async def test_the_wait_ends_at_the_deadline_and_leaves_nothing(uvicorn_server, tmp_path):
    """A render that stays in progress: DeadlineExceededError at deadline=, no file."""
    fake = FakeInkit(seed=11, render_delay=3600)
    render_id = fake.add_render()
    url = await uvicorn_server(fake.app)
    (tmp_path / "old.pdf").write_bytes(b"earlier")
    async with AsyncInkit(fake.token, base_url=url) as client, asyncio.timeout(30):
        with pytest.raises(DeadlineExceededError) as info:
            await client.render.download(render_id, tmp_path / "old.pdf", deadline=0.3)
    assert isinstance(info.value.__cause__, NotFoundError)
    assert (tmp_path / "old.pdf").read_bytes() == b"earlier"  # an earlier file stays as it was
    assert left_in(tmp_path) == ["old.pdf"]


async def test_a_page_reaches_the_server(uvicorn_server, tmp_path):
    """page=1: the query the fake sees, and the page; page=2 of one page: 422 at once."""
    fake = FakeInkit(seed=11)
    render_id = fake.add_render()
    url = await uvicorn_server(fake.app)
    async with AsyncInkit(fake.token, base_url=url) as client:
        await client.render.download(render_id, tmp_path / "p1.pdf", page=1)
        with pytest.raises(UnprocessableEntityError):
            await client.render.download(render_id, tmp_path / "p2.pdf", page=2)
    assert [r.params for r in fake.requests] == [{"page": "1"}, {"page": "2"}]
    assert (tmp_path / "p1.pdf").read_bytes() == FAKE_PDF
    assert left_in(tmp_path) == ["p1.pdf"]


async def test_a_stream_hands_the_file_over(uvicorn_server):
    """render.stream and document.stream: every byte, the declared length and type."""
    fake = FakeInkit(seed=11)
    render_id = fake.add_render()
    document_id = fake.document_ids(render_id)[0]
    url = await uvicorn_server(fake.app)
    async with AsyncInkit(fake.token, base_url=url) as client:
        async with client.render.stream(render_id) as stream:
            chunks = [chunk async for chunk in stream]
            assert (stream.content_length, stream.content_type) == (
                len(FAKE_PDF),
                "application/pdf",
            )
        async with client.document.stream(document_id) as stream:
            stored = b"".join([chunk async for chunk in stream])
    assert b"".join(chunks) == stored == FAKE_PDF


async def test_download_many_resumes_fetching_only_what_is_missing(uvicorn_server, tmp_path):
    """First run: two ids; second: the three, of which only the new one is fetched."""
    fake = FakeInkit(seed=11)
    ids = [fake.add_render() for _ in range(3)]
    documents = [fake.document_ids(render_id)[0] for render_id in ids]
    url = await uvicorn_server(fake.app)
    async with AsyncInkit(fake.token, base_url=url, max_concurrency=2) as client:
        first = await client.render.download_many(ids[:2], tmp_path / "renders")
        second = await client.render.download_many(ids, tmp_path / "renders")
        outcomes = await client.document.download_many(
            [*documents, "doc_missing"], tmp_path / "docs", return_exceptions=True, deadline=1
        )
    assert second[:2] == first
    assert [path.read_bytes() for path in second] == [FAKE_PDF] * 3
    assert len([r for r in fake.requests if r.path.startswith("/v1/render/")]) == 3
    assert [path.name for path in outcomes[:3]] == [f"{d}.pdf" for d in documents]  # type: ignore[union-attr]
    assert isinstance(outcomes[3], DeadlineExceededError | NotFoundError)
    assert left_in(tmp_path / "docs") == sorted(f"{d}.pdf" for d in documents)


@pytest.fixture
@starts("uvicorn")
def fake_served() -> Iterator[tuple[FakeInkit, str]]:
    """A FakeInkit served by uvicorn on a loop of its own thread: the fake and its URL."""
    fake = FakeInkit(seed=13)
    with ServerThread(uvicorn_serving(fake.app)) as thread:
        yield fake, thread.value


def test_the_blocking_client_downloads_over_a_socket(fake_served, tmp_path):
    """download, stream (with + for) and download_many, blocking."""
    fake, url = fake_served
    render_id = fake.add_render()
    document_id = fake.document_ids(render_id)[0]
    with BlockingInkit(fake.token, base_url=url) as client:
        assert client.render.download(render_id, tmp_path / "r.pdf").read_bytes() == FAKE_PDF
        with client.document.stream(document_id) as stream:
            assert b"".join(stream) == FAKE_PDF
        paths = client.render.download_many([render_id], tmp_path / "many")
        assert paths[0].read_bytes() == FAKE_PDF
        outcomes = client.document.download_many(
            ["doc_none"], tmp_path / "none", return_exceptions=True, deadline=0.2
        )
        assert isinstance(outcomes[0], DeadlineExceededError | NotFoundError)
    assert not [t for t in threading.enumerate() if t.name.startswith("inkit-blocking")]

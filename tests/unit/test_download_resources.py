"""``client.render`` and ``client.document`` download their files: on the wire, and from the fake.

respx sees each request (method, path, query, headers); FakeInkit in process serves the
PDF (404 while the render is in progress, then ``FAKE_PDF``); every argument is checked
before anything is sent. The wait for a file not ready yet is made quick here by
replacing ``FILE_READY`` (the resources read it when a client is made).
"""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path

import httpx
import pytest

from inkit_async import (
    AsyncInkit,
    BlockingInkit,
    DocumentResource,
    DownloadStream,
    NotFoundError,
    RenderResource,
    RetryEvent,
    UnprocessableEntityError,
)
from inkit_async._blocking import BlockingDocumentResource, BlockingRenderResource
from inkit_async._senders import InProcessTransport
from inkit_async._streaming import ReadyWait
from inkit_async.resources import _downloading
from inkit_async.testing import FAKE_PDF, FakeInkit
from tests.support.constants import BASE_URL, NO_WAIT, TOKEN

BODY = b"%PDF-1.4 " + bytes(range(256)) * 300  # several pieces


@pytest.fixture
def quick_ready(monkeypatch: pytest.MonkeyPatch) -> ReadyWait:
    """A file not ready yet is asked again every 10 ms, for up to 2 s."""
    ready = ReadyWait(interval=0.01, limit=2.0)
    monkeypatch.setattr(_downloading, "FILE_READY", ready)
    return ready


def left_in(directory: Path) -> list[str]:
    """Every name in *directory*, temporary files included."""
    return sorted(path.name for path in directory.iterdir())


def assert_a_download(request: httpx.Request) -> None:
    """A GET with the token, asking for the file as it is."""
    assert request.method == "GET"
    assert request.headers["X-Inkit-API-Token"] == TOKEN
    assert request.headers["Accept"] == "*/*"
    assert request.headers["Accept-Encoding"] == "identity"
    assert request.content == b""


# -- on the wire (respx) ---------------------------------------------------------------


async def test_render_download_gets_the_pdf_path_with_the_page(api, client, tmp_path):
    """GET /render/{id}/pdf, ?page=N only when asked; the id one encoded segment."""
    page = api.get("/render/rend_1/pdf", params={"page": "2"}).respond(200, content=b"p2")
    whole = api.get("/render/rend_1/pdf").respond(200, content=BODY)  # after: it matches any
    odd = api.get("/render/a%2Fb%3Fc/pdf").respond(200, content=b"odd")
    result = await client.render.download("rend_1", tmp_path / "a.pdf")
    assert result == tmp_path / "a.pdf"
    assert result.read_bytes() == BODY
    await client.render.download("rend_1", str(tmp_path / "p.pdf"), page=2)
    assert (tmp_path / "p.pdf").read_bytes() == b"p2"
    await client.render.download("a/b?c", tmp_path / "odd.pdf")
    assert [route.call_count for route in (whole, page, odd)] == [1, 1, 1]
    assert whole.calls.last.request.url.query == b""
    assert page.calls.last.request.url.query == b"page=2"
    for route in (whole, page, odd):
        assert_a_download(route.calls.last.request)
    assert left_in(tmp_path) == ["a.pdf", "odd.pdf", "p.pdf"]


async def test_render_stream_hands_the_pdf_over(api, client):
    """stream(): nothing sent until entered; then the bytes, and what the server declared."""
    route = api.get("/render/rend_1/pdf").respond(
        200, content=BODY, headers={"Content-Type": "application/pdf"}
    )
    stream = client.render.stream("rend_1", page=1)
    assert isinstance(stream, DownloadStream)
    assert route.call_count == 0
    async with stream:
        chunks = [chunk async for chunk in stream]
        # An in-memory answer (a mock's) is decoded already: its length is not declared.
        assert stream.content_type == "application/pdf"
    assert b"".join(chunks) == BODY
    assert route.calls.last.request.url.query == b"page=1"
    assert_a_download(route.calls.last.request)


async def test_document_download_and_stream_get_the_download_path(api, client, tmp_path):
    """GET /download/{id}: no page; the same file from download and stream."""
    route = api.get("/download/doc_1").respond(200, content=BODY)
    await client.document.download("doc_1", tmp_path / "d.pdf")
    async with client.document.stream("doc_1") as stream:
        streamed = b"".join([chunk async for chunk in stream])
    assert (tmp_path / "d.pdf").read_bytes() == streamed == BODY
    assert route.call_count == 2
    for call in route.calls:
        assert_a_download(call.request)
        assert call.request.url.query == b""


@pytest.mark.parametrize(
    ("resource", "path"), [("render", "/render/{}/pdf"), ("document", "/download/{}")]
)
async def test_download_many_fetches_each_id_once_into_the_directory(
    api, client, tmp_path, resource, path
):
    """Each id its file (<id>.pdf), in input order; identical ids fetched once; made dir."""
    for rid in ("x1", "x2"):
        api.get(path.format(rid)).respond(200, content=rid.encode())
    folder = tmp_path / "new" / "dir"
    results = await getattr(client, resource).download_many(["x1", "x2", "x1"], folder)
    assert results == [folder / "x1.pdf", folder / "x2.pdf", folder / "x1.pdf"]
    assert [p.read_bytes() for p in results] == [b"x1", b"x2", b"x1"]
    assert api.calls.call_count == 2
    for call in api.calls:
        assert_a_download(call.request)


async def test_download_many_resumes_and_gives_each_id_its_outcome(api, client, tmp_path):
    """A complete file is not fetched again; return_exceptions gives an id its error."""
    (tmp_path / "done.pdf").write_bytes(b"before")
    api.get("/render/todo/pdf").respond(200, content=b"new")
    api.get("/render/bad/pdf").respond(403, json={"error": "no"})
    results = await client.render.download_many(
        ["done", "todo", "bad"], tmp_path, return_exceptions=True
    )
    assert results[:2] == [tmp_path / "done.pdf", tmp_path / "todo.pdf"]
    assert (tmp_path / "done.pdf").read_bytes() == b"before"
    assert type(results[2]).__name__ == "PermissionDeniedError"
    assert [call.request.url.path for call in api.calls] == [
        "/v1/render/todo/pdf",
        "/v1/render/bad/pdf",
    ]
    assert left_in(tmp_path) == ["done.pdf", "todo.pdf"]


async def test_a_404_is_waited_for_and_reported_as_a_retry(api, tmp_path, quick_ready):
    """Rendering: 404, 404, then the PDF; each ask a RetryEvent (status 404), not a retry spent."""
    seen: list[object] = []
    route = api.get("/download/doc_1").mock(
        side_effect=[httpx.Response(404), httpx.Response(404), httpx.Response(200, content=BODY)]
    )
    async with AsyncInkit(TOKEN, backoff=NO_WAIT, max_retries=0, on_event=seen.append) as client:
        await client.document.download("doc_1", tmp_path / "d.pdf")
    assert route.call_count == 3
    retries = [event for event in seen if isinstance(event, RetryEvent)]
    assert [event.status_code for event in retries] == [404, 404]
    assert (tmp_path / "d.pdf").read_bytes() == BODY


# -- arguments: checked before anything is sent -----------------------------------------


@pytest.mark.parametrize("page", [0, -1, True, 1.0, "1"])
async def test_a_bad_page_is_refused(api, client, tmp_path, page):
    """page: an int >= 1 (not a bool, not a float or str) or None."""
    with pytest.raises((TypeError, ValueError), match="page"):
        await client.render.download("rend_1", tmp_path / "a.pdf", page=page)
    with pytest.raises((TypeError, ValueError), match="page"):
        client.render.stream("rend_1", page=page)
    assert api.calls.call_count == 0


@pytest.mark.parametrize("resource", ["render", "document"])
async def test_bad_paths_and_ids_are_refused_before_anything_is_sent(
    api, client, tmp_path, resource
):
    """Path and directory: str or os.PathLike, not empty, not a directory; ids checked."""
    downloads = getattr(client, resource)
    for path, error in [
        (b"a.pdf", TypeError),
        (None, TypeError),
        ("", ValueError),
        (tmp_path, IsADirectoryError),
    ]:
        with pytest.raises(error):
            await downloads.download("x", path)
    with pytest.raises(ValueError, match="id"):
        await downloads.download("..", tmp_path / "a.pdf")
    with pytest.raises(TypeError):
        await downloads.download_many("x", tmp_path)
    with pytest.raises(TypeError, match="directory"):
        await downloads.download_many(["x"], b"dir")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(FileExistsError):
        await downloads.download_many(["x"], tmp_path / "file")
    with pytest.raises(ValueError):
        await downloads.download_many(["x", "y" * 300], tmp_path / "new")
    with pytest.raises(ValueError, match="max_size"):
        downloads.stream("x", max_size=0)
    with pytest.raises(ValueError, match="deadline"):
        await downloads.download("x", tmp_path / "a.pdf", deadline=0)
    assert api.calls.call_count == 0
    assert left_in(tmp_path) == ["file"]


async def test_a_path_like_of_bytes_is_refused():
    """An os.PathLike whose __fspath__ gives bytes is not a path the SDK takes."""

    class BytesPath:
        def __fspath__(self) -> bytes:
            return b"a.pdf"

    async with AsyncInkit(TOKEN) as client:
        with pytest.raises(TypeError, match=r"path must be a str or os\.PathLike, got BytesPath"):
            await client.render.download("r", BytesPath())  # type: ignore[arg-type]


# -- FakeInkit in process --------------------------------------------------------------


def test_the_fakes_pdf_is_one_valid_page():
    """%PDF-1.4, one page, an exact cross-reference table, %%EOF; a few hundred bytes."""
    assert FAKE_PDF.startswith(b"%PDF-1.4\n")
    assert FAKE_PDF.endswith(b"%%EOF\n")
    assert 200 < len(FAKE_PDF) < 1000
    assert b"/Count 1" in FAKE_PDF
    table = int(re.search(rb"startxref\n(\d+)\n", FAKE_PDF).group(1))  # type: ignore[union-attr]
    assert FAKE_PDF[table:].startswith(b"xref\n0 6\n")
    offsets = [int(entry) for entry in re.findall(rb"(\d{10}) 00000 n ", FAKE_PDF)]
    assert len(offsets) == 5
    for number, offset in enumerate(offsets, start=1):
        assert FAKE_PDF[offset:].startswith(b"%d 0 obj\n" % number)


async def test_the_fake_serves_a_render_once_it_is_ready(tmp_path, quick_ready):
    """404 while In Progress (render_delay), then FAKE_PDF; its document's file too."""
    fake = FakeInkit(seed=3, render_delay=0.1)
    async with fake.client() as client:
        created = await client.render.create(template_id="t", merge_parameters={})
        path = await client.render.download(created.id, tmp_path / "r.pdf")
        assert path.read_bytes() == FAKE_PDF
        assert created.document_id is not None
        await client.document.download(created.document_id, tmp_path / "d.pdf")
        async with client.render.stream(created.id, page=1) as stream:
            assert b"".join([chunk async for chunk in stream]) == FAKE_PDF
            assert stream.content_type == "application/pdf"
    asks = [r for r in fake.requests if r.path == f"/v1/render/{created.id}/pdf"]
    assert len(asks) >= 3  # at least one 404 first: the render took 0.1 s
    assert (tmp_path / "d.pdf").read_bytes() == FAKE_PDF


async def test_the_fake_refuses_a_page_past_the_last_at_once(tmp_path):
    """page=2 of a one-page PDF: 422 (not a 404 that would be waited for); nothing left."""
    fake = FakeInkit(seed=3)
    render_id = fake.add_render()
    async with fake.client() as client:
        with pytest.raises(UnprocessableEntityError, match="past the last page"):
            await client.render.download(render_id, tmp_path / "r.pdf", page=2)
    assert len(fake.requests) == 1
    assert left_in(tmp_path) == []


@pytest.mark.parametrize("query", ["page=0", "page=x", "page=", "page=%D9%A3"])
async def test_the_fake_answers_a_bad_page_with_400(query):
    """A page that is not a whole number from 1: 400, as a listing's bad page."""
    fake = FakeInkit(seed=3)
    render_id = fake.add_render()
    status, _, _ = await fake.handle(
        "GET", f"/v1/render/{render_id}/pdf", query, {"x-inkit-api-token": fake.token}, b""
    )
    assert status == 400


async def test_the_fake_says_404_for_unknown_files_and_405_for_other_methods():
    """An unknown render or document: 404; a POST to a file: 405; a deleted render's doc: there."""
    fake = FakeInkit(seed=3)
    render_id = fake.add_render()
    document_id = fake.document_ids(render_id)[0]
    token = {"x-inkit-api-token": fake.token}

    async def status(method: str, path: str) -> tuple[int, str]:
        code, headers, _ = await fake.handle(method, path, "", token, b"{}")
        return code, dict(headers)["content-type"]

    assert await status("GET", "/v1/render/rend_none/pdf") == (404, "application/json")
    assert await status("GET", "/v1/download/doc_none") == (404, "application/json")
    assert await status("POST", f"/v1/render/{render_id}/pdf") == (405, "application/json")
    assert await status("DELETE", f"/v1/download/{document_id}") == (405, "application/json")
    assert await status("GET", f"/v1/download/{document_id}") == (200, "application/pdf")
    fake._resources.renders.pop(render_id)  # noqa: SLF001 - a render deleted, its document kept
    assert await status("GET", f"/v1/download/{document_id}") == (200, "application/pdf")


async def test_an_unknown_id_fails_once_the_wait_is_over(tmp_path, monkeypatch):
    """A document that never comes: NotFoundError when the wait's limit has passed."""
    monkeypatch.setattr(_downloading, "FILE_READY", ReadyWait(interval=0.01, limit=0.05))
    fake = FakeInkit(seed=3)
    async with fake.client() as client:
        with pytest.raises(NotFoundError):
            await client.document.download("doc_none", tmp_path / "d.pdf")
    assert 2 <= len(fake.requests) <= 10
    assert left_in(tmp_path) == []


async def test_download_many_from_the_fake_resumes(tmp_path):
    """The second run fetches only what is missing."""
    fake = FakeInkit(seed=3)
    ids = [fake.add_render() for _ in range(3)]
    async with fake.client() as client:
        first = await client.render.download_many(ids[:2], tmp_path)
        second = await client.render.download_many(ids, tmp_path)
    assert second[:2] == first
    assert [p.read_bytes() for p in second] == [FAKE_PDF] * 3
    assert len(fake.requests) == 3


# -- the blocking client -----------------------------------------------------------------


class PDFs(InProcessTransport):
    """Serves every path with BODY, in process."""

    async def answer(self, method, target, headers, body):  # noqa: ARG002
        """The PDF."""
        return 200, [("content-type", "application/pdf"), ("content-length", str(len(BODY)))], BODY


def test_the_blocking_client_downloads_streams_and_fans_out(tmp_path):
    """download, stream (a with block, a plain for loop) and download_many, blocking."""
    with BlockingInkit(TOKEN, base_url=BASE_URL, transport=PDFs()) as client:
        assert client.render.download("r", tmp_path / "r.pdf", page=1) == tmp_path / "r.pdf"
        assert client.document.download("d", tmp_path / "d.pdf").read_bytes() == BODY
        with client.render.stream("r") as stream:
            assert "open" in repr(stream)
            assert stream.content_type == "application/pdf"
            assert b"".join(stream) == BODY
            assert stream.received == stream.content_length == len(BODY)
        with client.document.stream("d") as stream:
            first = next(iter(stream))  # leaving early closes the answer
        assert BODY.startswith(first)
        paths = client.document.download_many(["a", "b"], tmp_path / "many")
        assert [p.name for p in paths] == ["a.pdf", "b.pdf"]
        with pytest.raises(ValueError, match="page"):
            client.render.stream("r", page=0)


def test_the_blocking_overloads_are_the_async_ones():
    """download_many's overloads, spelled twice for typing, agree in parameters and results."""
    for blocking, asynchronous in [
        (BlockingRenderResource, RenderResource),
        (BlockingDocumentResource, DocumentResource),
    ]:
        mine = typing.get_overloads(blocking.download_many)
        theirs = typing.get_overloads(asynchronous.download_many)
        assert len(mine) == len(theirs) == 2
        for one, other in zip(mine, theirs, strict=True):
            assert inspect.signature(one) == inspect.signature(other)


def test_the_blocking_resources_have_every_async_method():
    """Each public method of the async resource has its blocking one, download ones included."""
    for blocking, asynchronous in [
        (BlockingRenderResource, RenderResource),
        (BlockingDocumentResource, DocumentResource),
    ]:
        public = {name for name in dir(asynchronous) if not name.startswith("_")}
        assert public <= set(dir(blocking))
        assert {"download", "stream", "download_many"} <= public

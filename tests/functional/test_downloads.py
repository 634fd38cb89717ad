"""Downloads over real sockets: atomic files, streams, retries before the first byte, bounds.

Every test runs with the SDK's own sender (aiohttp) and with a caller's httpx (or
httpx2) client (``sending``). The machinery is bound here to a render-like path, as
a resource binds it (``Downloads``); the resources themselves are tested elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from opentelemetry.test.globals_test import reset_metrics_globals, reset_trace_globals

from inkit_async import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncInkit,
    DeadlineExceededError,
    NotFoundError,
)
from inkit_async._download import Downloads
from inkit_async._streaming import ReadyWait
from tests.functional.test_tracing import Telemetry, attempt_spans, install
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.loopback import (
    Binary,
    Request,
    Respond,
    binary_body,
    wait_until,
)

MIB = 1024 * 1024
#: Asks again at once, for up to a second: the 404 tests run in milliseconds.
QUICK_READY = ReadyWait(interval=0.01, limit=1.0)


@pytest.fixture(params=["default", "callers-client"])
async def sending(request, http_library) -> AsyncIterator[dict[str, object]]:
    """AsyncInkit's options for each way of sending: its own sender, or a caller's client."""
    if request.param == "default":
        yield {}
        return
    async with http_library.AsyncClient() as http:
        yield {"http_client": http}


@pytest.fixture
async def client(server, sending) -> AsyncIterator[AsyncInkit]:
    """A client of the loopback server that retries without waiting."""
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, **sending) as client:
        yield client


def renders(client: AsyncInkit, ready: ReadyWait | None = QUICK_READY) -> Downloads:
    """The downloads of a render's PDF, as ``client.render`` binds them."""
    engine = client._engine  # noqa: SLF001 - the machinery is bound as a resource binds it
    return Downloads(
        engine, name="render", path=lambda segment: f"/render/{segment}/pdf", ready=ready
    )


def left_in(directory: Path) -> list[str]:
    """Every name in *directory*, temporary files included."""
    return sorted(path.name for path in directory.iterdir())


# -- to a path -------------------------------------------------------------------------


async def test_a_download_lands_whole_at_its_path_and_nothing_else_is_left(
    server, client, tmp_path
):
    """3 MiB and a bit, in 64 KiB pieces: the file holds every byte; no temporary file."""
    server.handler = lambda request: Binary(3 * MIB + 7)
    target = tmp_path / "out.pdf"
    assert await renders(client).to_path("rend_1", target) == target
    assert target.read_bytes() == binary_body(3 * MIB + 7)
    assert left_in(tmp_path) == ["out.pdf"]
    [request] = server.requests
    assert request.path == "/v1/render/rend_1/pdf"
    assert request.headers["accept-encoding"] == "identity"


async def test_a_chunked_body_without_a_length_downloads_whole(server, client, tmp_path):
    """No Content-Length: the body ends with the chunked encoding's last chunk."""
    server.handler = lambda request: Binary(MIB + 3, declare_length=False)
    await renders(client).to_path("rend_1", tmp_path / "out.pdf")
    assert (tmp_path / "out.pdf").read_bytes() == binary_body(MIB + 3)


async def test_the_page_goes_in_the_query(server, client, tmp_path):
    """``params`` (a render's ``page=``) reach the server as the query string."""
    server.handler = lambda request: Binary(10)
    await renders(client).to_path("rend_1", tmp_path / "p.pdf", params={"page": 2})
    assert server.requests[0].target == "/v1/render/rend_1/pdf?page=2"


async def test_a_connection_cut_mid_body_leaves_nothing_and_is_not_sent_again(
    server, client, tmp_path
):
    """After the first byte a failure is the call's: no second request, no file, no temp."""
    server.handler = lambda request: Binary(MIB, stop_after=300_000)
    target = tmp_path / "out.pdf"
    with pytest.raises(APIConnectionError) as info:
        await renders(client).to_path("rend_1", target)
    assert not isinstance(info.value, APITimeoutError)
    assert info.value.may_have_reached_server
    assert len(server.requests) == 1
    assert left_in(tmp_path) == []


async def test_a_failure_leaves_an_earlier_file_at_the_path_as_it_was(server, client, tmp_path):
    """The rename happens only on success: an earlier download stays whole."""
    target = tmp_path / "out.pdf"
    target.write_bytes(b"the earlier one")
    server.handler = lambda request: Binary(MIB, stop_after=100_000)
    with pytest.raises(APIConnectionError):
        await renders(client).to_path("rend_1", target)
    assert target.read_bytes() == b"the earlier one"
    assert left_in(tmp_path) == ["out.pdf"]


async def test_a_cut_before_the_first_byte_is_retried(server, client, tmp_path):
    """Head sent, connection closed before any body: the attempt failed, so it is retried."""
    server.script(Binary(MIB, stop_after=0), Respond(503, {"error": "busy"}))
    server.handler = lambda request: Binary(MIB)
    await renders(client).to_path("rend_1", tmp_path / "out.pdf")
    assert (tmp_path / "out.pdf").read_bytes() == binary_body(MIB)
    assert len(server.requests) == 3


async def test_an_error_status_is_the_usual_typed_error(server, client, tmp_path):
    """A 404 without a ready wait (a document) is final at once, with its JSON body."""
    server.handler = lambda request: Respond(404, {"error": "no such document"})
    with pytest.raises(NotFoundError) as info:
        await renders(client, ready=None).to_path("doc_1", tmp_path / "out.pdf")
    assert info.value.body == {"error": "no such document"}
    assert len(server.requests) == 1
    assert left_in(tmp_path) == []


# -- the size bound --------------------------------------------------------------------


async def test_a_declared_length_over_max_size_is_refused_before_the_body(server, client, tmp_path):
    """Content-Length over max_size: refused at the head, not retried, nothing left."""
    server.handler = lambda request: Binary(2 * MIB)
    with pytest.raises(APIResponseValidationError, match="Content-Length"):
        await renders(client).to_path("rend_1", tmp_path / "out.pdf", max_size=MIB)
    assert len(server.requests) == 1
    assert left_in(tmp_path) == []


async def test_an_undeclared_body_over_max_size_stops_there(server, client, tmp_path):
    """Chunked, no length: counted as it arrives, stopped past max_size; nothing left."""
    action = Binary(64 * MIB, declare_length=False)
    server.handler = lambda request: action
    with pytest.raises(APIResponseValidationError, match="more than max_size"):
        await renders(client).to_path("rend_1", tmp_path / "out.pdf", max_size=MIB)
    assert action.sent < 8 * MIB  # stopped near the bound, not at the body's end
    assert left_in(tmp_path) == []


async def test_a_body_exactly_at_max_size_is_taken(server, client, tmp_path):
    """The bound is inclusive."""
    server.handler = lambda request: Binary(MIB, declare_length=False)
    await renders(client).to_path("rend_1", tmp_path / "out.pdf", max_size=MIB)
    assert (tmp_path / "out.pdf").stat().st_size == MIB


async def test_a_body_shorter_than_its_length_fails(server, client, tmp_path):
    """A body that ends (connection closed) before its Content-Length is no file."""
    server.handler = lambda request: Binary(100_000, stop_after=99_999)
    with pytest.raises(APIConnectionError):
        await renders(client).to_path("rend_1", tmp_path / "out.pdf")
    assert left_in(tmp_path) == []


# -- cancellation, timeouts, deadlines -------------------------------------------------


async def test_a_download_cancelled_half_way_leaves_nothing(server, client, tmp_path):
    """Half the body written, the task cancelled: no file, no temporary file, slot back."""
    action = Binary(8 * MIB, hang_after=4 * MIB)
    server.handler = lambda request: action
    task = asyncio.create_task(renders(client).to_path("rend_1", tmp_path / "out.pdf"))
    await wait_until(lambda: action.sent >= 4 * MIB, 10, "half the body sent")
    await asyncio.sleep(0.05)  # the client reads what was sent
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert left_in(tmp_path) == []
    server.handler = lambda request: Binary(10)
    async with asyncio.timeout(10):  # the slot and connection are free again
        await renders(client).to_path("rend_2", tmp_path / "again.pdf")
    assert left_in(tmp_path) == ["again.pdf"]


async def test_a_body_that_stops_fails_after_the_timeout(server, sending, tmp_path):
    """No byte for ``timeout`` seconds mid-body: APITimeoutError, nothing left, no retry."""
    server.handler = lambda request: Binary(MIB, hang_after=200_000)
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=0.3, **sending) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            await renders(client).to_path("rend_1", tmp_path / "out.pdf")
    assert time.monotonic() - started < 5
    assert len(server.requests) == 1
    assert left_in(tmp_path) == []


async def test_a_slow_steady_body_outlasts_the_timeout(server, sending, tmp_path):
    """``timeout`` bounds each wait for a piece, not the whole body."""

    async def slow(request: Request) -> Binary:
        return Binary(5 * 20_000, piece=20_000)

    server.handler = slow
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=2, **sending) as client:
        await renders(client).to_path("rend_1", tmp_path / "out.pdf")
    assert (tmp_path / "out.pdf").stat().st_size == 100_000


async def test_the_deadline_bounds_the_body_too(server, sending, tmp_path):
    """A body that stalls past the call's deadline: DeadlineExceededError, nothing left."""
    server.handler = lambda request: Binary(MIB, hang_after=100_000)
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=30, **sending) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError) as info:
            await renders(client).to_path("rend_1", tmp_path / "out.pdf", deadline=0.5)
    assert time.monotonic() - started < 5
    assert info.value.wait == "attempt"
    assert left_in(tmp_path) == []


# -- not ready yet (404) ---------------------------------------------------------------


async def test_a_404_while_rendering_is_asked_again_until_the_pdf_is_there(
    server, client, tmp_path, events
):
    """Two 404s, then the PDF: one download, three requests."""
    server.script(Respond(404, {"error": "not found"}), Respond(404, {"error": "not found"}))
    server.handler = lambda request: Binary(1000)
    async with AsyncInkit(
        TOKEN, base_url=server.url, backoff=NO_WAIT, on_event=events, max_retries=0
    ) as quiet:
        await renders(quiet).to_path("rend_1", tmp_path / "out.pdf")
    assert (tmp_path / "out.pdf").read_bytes() == binary_body(1000)
    assert len(server.requests) == 3
    assert [event.status_code for event in events.retries] == [404, 404]


async def test_the_wait_for_a_render_ends_at_its_limit(server, client, tmp_path):
    """404 for ever: NotFoundError once the ready wait's limit has passed."""
    server.handler = lambda request: Respond(404, {"error": "not found"})
    ready = ReadyWait(interval=0.05, limit=0.3)
    started = time.monotonic()
    with pytest.raises(NotFoundError):
        await renders(client, ready).to_path("rend_1", tmp_path / "out.pdf")
    assert 0.25 <= time.monotonic() - started < 5
    assert 4 <= len(server.requests) <= 8
    assert left_in(tmp_path) == []


async def test_the_wait_for_a_render_ends_at_the_deadline(server, client, tmp_path):
    """404 for ever, a deadline sooner than the wait: DeadlineExceededError from the 404."""
    server.handler = lambda request: Respond(404, {"error": "not found"})
    ready = ReadyWait(interval=0.2, limit=30)
    started = time.monotonic()
    async with asyncio.timeout(10):
        with pytest.raises(DeadlineExceededError) as info:
            await renders(client, ready).to_path("rend_1", tmp_path / "out.pdf", deadline=0.5)
    assert time.monotonic() - started < 5
    assert isinstance(info.value.__cause__, NotFoundError)
    assert left_in(tmp_path) == []


# -- the streaming form ----------------------------------------------------------------


async def test_a_stream_hands_every_byte_over_in_bounded_chunks(server, client):
    """``async with ... as stream: async for chunk in stream`` gets the body, in order."""
    server.handler = lambda request: Binary(2 * MIB + 1)
    received = bytearray()
    async with renders(client).stream("rend_1") as stream:
        assert stream.content_length == 2 * MIB + 1
        assert stream.content_type == "application/pdf"
        async for chunk in stream:
            assert len(chunk) <= 256 * 1024
            received += chunk
    assert bytes(received) == binary_body(2 * MIB + 1)
    assert stream.received == 2 * MIB + 1


async def test_breaking_out_of_a_stream_closes_its_answer(server, client):
    """A break after one chunk of 64 MiB: the connection goes, the slot comes back."""
    action = Binary(64 * MIB)
    server.handler = lambda request: action
    async with renders(client).stream("rend_1") as stream:
        async for _ in stream:
            break
    await server.wait_for_open_connections(0)
    assert action.sent < 64 * MIB
    server.handler = lambda request: Binary(10)
    single = client.with_options(timeout=5)
    async with asyncio.timeout(10):
        async with renders(single).stream("rend_2") as again:
            assert b"".join([chunk async for chunk in again]) == binary_body(10)


async def test_a_stream_cancelled_half_way_closes_its_answer(server, client):
    """The task iterating a stream is cancelled: the answer is closed with it."""
    action = Binary(8 * MIB, hang_after=MIB)
    server.handler = lambda request: action

    async def consume() -> None:
        async with renders(client).stream("rend_1") as stream:
            async for _ in stream:
                pass

    task = asyncio.create_task(consume())
    await wait_until(lambda: action.sent >= MIB, 10, "a MiB sent")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await server.wait_for_open_connections(0)


# -- download_many ---------------------------------------------------------------------


def id_of(request: Request) -> str:
    """The render id a request for ``/v1/render/{id}/pdf`` names, decoded."""
    return unquote(request.path.split("/")[-2])


def by_id(request: Request) -> Respond | Binary:
    """A PDF whose size depends on the id; ``missing_*`` ids are 404."""
    if id_of(request).startswith("missing"):
        return Respond(404, {"error": "not found"})
    return Binary(1000 + len(id_of(request)))


async def test_download_many_gives_each_id_its_outcome(server, client, tmp_path):
    """return_exceptions=True: files for the ids there, NotFoundError for the others."""
    server.handler = by_id
    ids = ["rend_a", "missing_b", "rend_c", "rend_a"]
    results = await renders(client, ready=None).many(ids, tmp_path, return_exceptions=True)
    assert results[0] == results[3] == tmp_path / "rend_a.pdf"
    assert isinstance(results[1], NotFoundError)
    assert results[2] == tmp_path / "rend_c.pdf"
    assert left_in(tmp_path) == ["rend_a.pdf", "rend_c.pdf"]
    assert (tmp_path / "rend_c.pdf").read_bytes() == binary_body(1006)
    assert len(server.requests) == 3  # the repeated id once


async def test_download_many_raises_the_first_failure_without_return_exceptions(
    server, client, tmp_path
):
    """Without return_exceptions the first error is raised; no partial file remains."""
    server.handler = by_id
    with pytest.raises(NotFoundError):
        await renders(client, ready=None).many(["missing_1"], tmp_path)
    assert left_in(tmp_path) == []


async def test_download_many_resumes_fetching_only_what_is_missing(server, client, tmp_path):
    """A second run fetches only the files not there; a stale .part is not taken as one."""
    server.handler = by_id
    first = [f"rend_{n}" for n in range(5)]
    await renders(client).many(first, tmp_path)
    (tmp_path / ".rend_5.pdf.stale.part").write_bytes(b"half")  # a killed run's leftover
    requests = len(server.requests)
    everything = [f"rend_{n}" for n in range(8)]
    results = await renders(client).many(everything, tmp_path / ".")
    assert results == [tmp_path / "." / f"rend_{n}.pdf" for n in range(8)]
    assert sorted(id_of(r) for r in server.requests[requests:]) == [
        "rend_5",
        "rend_6",
        "rend_7",
    ]


async def test_download_many_runs_at_the_clients_width(server, sending, tmp_path):
    """40 downloads on a client of width 4: never more than 4 bodies in flight."""
    release = asyncio.Event()

    async def handler(request: Request) -> Binary:
        if server.in_flight >= 4:
            release.set()
        await release.wait()
        return Binary(20_000)

    server.handler = handler
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=4, **sending) as client:
        ids = [f"rend_{n}" for n in range(40)]
        results = await renders(client).many(ids, tmp_path / "new" / "dir")
    assert len(results) == 40
    assert server.peak_in_flight == 4


async def test_download_many_with_a_deadline_bounds_them_all(server, client, tmp_path):
    """A deadline shorter than the downloads: each one not done ends with its error."""
    server.handler = lambda request: Binary(MIB, hang_after=1000)
    async with asyncio.timeout(10):
        results = await renders(client).many(
            ["rend_1", "rend_2"], tmp_path, return_exceptions=True, deadline=0.3
        )
    assert all(isinstance(result, DeadlineExceededError) for result in results)
    assert left_in(tmp_path) == []


async def test_ids_that_try_to_leave_the_directory_stay_inside_it(server, client, tmp_path):
    """Hostile ids become encoded names inside the directory; nothing is written elsewhere."""
    server.handler = lambda request: Binary(10)
    inside = tmp_path / "inside"
    ids = ["../escape", "a/b", "..\\x", ".hidden", "/etc/passwd"]
    results = await renders(client).many(ids, inside)
    assert all(isinstance(path, Path) and path.parent == inside for path in results)
    assert left_in(tmp_path) == ["inside"]
    assert left_in(inside) == sorted(
        ["%2E.%2Fescape.pdf", "a%2Fb.pdf", "%2E.%5Cx.pdf", "%2Ehidden.pdf", "%2Fetc%2Fpasswd.pdf"]
    )
    assert sorted(id_of(request) for request in server.requests) == sorted(ids)


async def test_a_download_error_never_shows_the_token(server, client, tmp_path):
    """An error's text and request mask the token, as every call's do."""
    server.handler = lambda request: Binary(MIB, stop_after=1000)
    with pytest.raises(APIConnectionError) as info:
        await renders(client).to_path("rend_1", tmp_path / "out.pdf")
    assert TOKEN not in repr(info.value)
    assert info.value.request is not None
    assert TOKEN not in str(info.value.request.headers)


# -- observability and the caller's own bounds -------------------------------------------


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    """In-memory OpenTelemetry providers for one test (as test_tracing.py sets them)."""
    reset_trace_globals()
    reset_metrics_globals()
    try:
        yield install()
    finally:
        reset_trace_globals()
        reset_metrics_globals()


async def test_a_download_is_traced_like_any_call(server, otel, tmp_path):
    """A call span, a CLIENT span per attempt under it, and each attempt's traceparent sent."""
    server.script(Respond(503, {"error": "busy"}))
    server.handler = lambda request: Binary(1000)
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        await renders(client).to_path("rend_1", tmp_path / "out.pdf")
    [call] = otel.named("inkit render.download")
    attempts = attempt_spans(otel)
    assert [span.attributes["http.response.status_code"] for span in attempts] == [503, 200]
    assert all(
        span.parent is not None and span.parent.span_id == call.context.span_id for span in attempts
    )
    sent = [request.headers["traceparent"] for request in server.requests]
    assert len(set(sent)) == 2


async def test_a_callers_own_timeout_around_a_stream_is_the_callers(server, client):
    """The caller's asyncio.timeout ends the iteration with TimeoutError, the answer closed."""
    server.handler = lambda request: Binary(MIB, hang_after=1000)
    stream = renders(client).stream("rend_1")

    async def read_all() -> None:
        async with asyncio.timeout(0.3), stream:
            async for _ in stream:
                pass

    with pytest.raises(TimeoutError):
        await read_all()
    await stream.aclose()  # closed already: nothing happens
    await server.wait_for_open_connections(0)

"""Faults over real sockets: each ends in a typed outcome and leaves nothing open.

Which aiohttp failure becomes which error is in test_transport.py; here: timeouts,
dropped and closed connections the client rides over, and answers it cannot use.
Retries here never wait (``NO_WAIT``) unless the wait is the point.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import AsyncIterator

import pytest

from inkit_async import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncInkit,
    Backoff,
    InternalServerError,
)
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.loopback import (
    BATCH_JSON,
    Drop,
    DropMidBody,
    Hang,
    LoopbackServer,
    Oversized,
    Respond,
    html_page,
)

LIMIT = 10 * 1024 * 1024  # the documented body limit: 10 MiB


@pytest.fixture(params=["default", "callers-client"])
async def sending(request, http_library) -> AsyncIterator[dict[str, object]]:
    """AsyncInkit's options for each way of sending: its own sender, or a caller's client.

    The caller's client (httpx's or httpx2's: ``http_library``) is closed after the test;
    its pool, not the SDK, decides when its idle connections close.
    """
    if request.param == "default":
        yield {}
        return
    async with http_library.AsyncClient() as http:
        yield {"http_client": http}


# -- transport faults -----------------------------------------------------------------


@pytest.mark.parametrize("fault", [Drop(), DropMidBody()], ids=["before", "mid-response"])
async def test_one_dropped_connection_is_retried_transparently(server, sending, fault):
    """One answer cut off, the next complete: the call succeeds on a new connection."""
    server.script(fault)
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, **sending) as client:
        assert (await client.batch.get("rb_1")).id == "rb_1"
    assert len(server.requests) == 2
    assert server.connections_opened == 2
    if not sending:
        await server.wait_for_open_connections(0)


async def test_server_that_never_answers_times_out_within_the_documented_bound(
    server, events, sending
):
    """Hang: APITimeoutError after 3 attempts, within timeout x attempts + backoff (+ slack)."""
    server.handler = lambda request: Hang()
    backoff = Backoff(initial=0.05, maximum=0.05, jitter=0)
    async with AsyncInkit(
        TOKEN, base_url=server.url, timeout=0.2, backoff=backoff, on_event=events, **sending
    ) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as info:
            await client.batch.get("rb_1")
        elapsed = time.monotonic() - started
    # The end-to-end deadline, not a per-phase httpx timeout, ended each attempt.
    assert str(info.value) == "GET /batch/rb_1 timed out"
    timed_out = ("GET /batch/rb_1 timed out", 0.05)
    assert [(e.reason, e.delay) for e in events.retries] == [timed_out, timed_out]
    # Three attempts (the events say so); on a loaded machine the 0.2 s deadline can end
    # one before the server has read its request, so the server counts at most three.
    assert 1 <= len(server.requests) <= 3
    assert 0.2 * 3 <= elapsed < 0.2 * 3 + 0.05 * 2 + 2  # generous upper bound
    await server.wait_for_open_connections(0)


async def test_slow_answer_within_timeout_succeeds(server):
    """An answer that comes before the deadline is returned normally, on the first attempt."""
    server.script(Respond(body={**BATCH_JSON, "id": "rb_1"}, delay=0.05))
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=2) as client:
        batch = await client.batch.get("rb_1")
    assert batch.total == 1
    assert len(server.requests) == 1


async def test_keep_alive_connection_closed_between_requests_is_replaced(server):
    """The server closing idle sockets costs nothing: no error, not even a retry."""
    async with AsyncInkit(TOKEN, base_url=server.url, max_retries=0) as client:
        assert (await client.batch.get("rb_1")).id == "rb_1"
        await server.close_idle_connections()
        assert server.open_connections == 0
        assert (await client.batch.get("rb_2")).id == "rb_2"
        server.script(Respond(body={**BATCH_JSON, "id": "rb_3"}, close=True))
        assert (await client.batch.get("rb_3")).total == 1
        assert (await client.batch.get("rb_4")).id == "rb_4"
    assert server.connections_opened == 3
    await server.wait_for_open_connections(0)


async def test_unannounced_close_after_each_answer_never_surfaces(server):
    """A server that hangs up after every answer without saying so: every call succeeds."""
    server.handler = lambda request: Respond(
        body={**BATCH_JSON, "id": request.last_segment}, silent_close=True
    )
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        for number in range(10):
            assert (await client.batch.get(f"rb_{number}")).id == f"rb_{number}"
    assert server.connections_opened >= 10
    await server.wait_for_open_connections(0)


# -- bad answers --------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503])
async def test_html_error_page_raises_internal_server_error_with_the_text(server, status):
    """A proxy's HTML 502/503 page: retried, then InternalServerError with the page as .body."""
    page = html_page(status)
    server.handler = lambda request: page
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        with pytest.raises(InternalServerError) as info:
            await client.batch.get("rb_1")
    assert info.value.status_code == status
    assert info.value.body == page.body
    assert "<html>" not in str(info.value)  # the page is in .body, not in the message
    assert len(server.requests) == 3
    await server.wait_for_open_connections(0)


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "rb_1", "status": "Comp',  # truncated JSON, framed correctly
        b"<html><body>OK</body></html>",  # a 200 that is not JSON at all
        b"",  # an empty 200
    ],
    ids=["truncated", "html", "empty"],
)
async def test_unreadable_200_raises_validation_error_without_a_retry(server, body):
    """A 200 whose body is not JSON: APIResponseValidationError, .body kept, one request."""
    server.script(Respond(body=body, headers={"Content-Type": "application/json"}))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        with pytest.raises(APIResponseValidationError, match="not JSON") as info:
            await client.batch.get("rb_1")
        assert info.value.body == body.decode()
        assert len(server.requests) == 1
        assert (await client.batch.get("rb_2")).id == "rb_2"  # and the client goes on


async def test_200_of_the_wrong_shape_raises_validation_error_without_a_retry(server):
    """Valid JSON that is not a batch: APIResponseValidationError, one request."""
    server.script(Respond(body={"id": 5}))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        with pytest.raises(APIResponseValidationError, match="unexpected body"):
            await client.batch.get("rb_1")
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "action",
    [Oversized(LIMIT + 1024 * 1024), Oversized(LIMIT + 1, declare_length=True)],
    ids=["chunked", "content-length"],
)
async def test_body_over_10_mib_is_refused_and_the_client_goes_on(server, sending, action):
    """A body over the limit: APIResponseValidationError naming it, one request, no reuse."""
    server.script(action)
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, **sending) as client:
        started = time.monotonic()
        with pytest.raises(APIResponseValidationError, match="over the limit of 10,485,760"):
            await client.batch.get("rb_huge")
        assert time.monotonic() - started < 10  # generous: the refusal does not linger
        assert len(server.requests) == 1
        assert (await client.batch.get("rb_next")).id == "rb_next"
    assert server.connections_opened == 2  # the oversized answer's socket was dropped
    if not sending:
        await server.wait_for_open_connections(0)


async def test_body_of_exactly_10_mib_is_read(server):
    """The limit is inclusive: a batch padded to exactly 10 MiB is returned."""
    record = json.dumps({**BATCH_JSON, "id": "rb_big"}).encode()
    server.script(Respond(body=record + b" " * (LIMIT - len(record))))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        assert (await client.batch.get("rb_big")).id == "rb_big"


async def test_compressed_body_is_limited_by_its_decoded_size(server, sending):
    """gzip: a small batch is decoded; a body inflating past 10 MiB is refused."""
    record = json.dumps({**BATCH_JSON, "id": "rb_zipped"}).encode()
    gzip_headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    server.script(
        Respond(body=gzip.compress(record), headers=gzip_headers),
        Respond(body=gzip.compress(b" " * (LIMIT + 1)), headers=gzip_headers),
    )
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, **sending) as client:
        assert (await client.batch.get("rb_zipped")).id == "rb_zipped"
        with pytest.raises(APIResponseValidationError, match="over the limit"):
            await client.batch.get("rb_bomb")
        assert len(server.requests) == 2
        assert (await client.batch.get("rb_next")).id == "rb_next"
    assert "gzip" in server.requests[0].headers["accept-encoding"]


@pytest.mark.loopback
async def test_gzip_bomb_is_refused_without_inflating_past_the_limit():
    """A 200 KB gzip body of 200 MiB is refused with peak memory under twice the limit."""
    import tracemalloc

    bomb = gzip.compress(b" " * (200 * 1024 * 1024), 9)
    async with LoopbackServer() as server:
        server.script(Respond(body=bomb, headers={"Content-Encoding": "gzip"}))
        async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
            tracemalloc.start()
            try:
                with pytest.raises(APIResponseValidationError, match="over the limit"):
                    await client.batch.get("rb_bomb")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert peak < 2 * LIMIT


async def test_unsupported_content_encoding_is_a_clear_error(server):
    """A body in an encoding the client did not ask for (br) is refused, not misread."""
    server.script(Respond(body=b"\x0b\x02\x80{}\x03", headers={"Content-Encoding": "br"}))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        with pytest.raises(APIConnectionError, match="unsupported Content-Encoding 'br'"):
            await client.batch.get("rb_br")
    assert len(server.requests) == 1


async def test_corrupt_gzip_body_is_a_clear_error(server, sending):
    """A gzip body that does not inflate is refused after one request."""
    server.script(Respond(body=b"\x1f\x8b\x08\x00garbage", headers={"Content-Encoding": "gzip"}))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, **sending) as client:
        with pytest.raises(APIConnectionError, match="bad compressed body"):
            await client.batch.get("rb_bad")

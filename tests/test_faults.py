"""Faults over real sockets: each ends in a typed outcome and leaves nothing open.

Also the event-loop guard and the logging contract, which are seen best against a
real server. Retries here never wait (``NO_WAIT``) unless the wait is the point.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import socket
import time

import httpx
import pytest

from inkit_async import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncInkit,
    Backoff,
    InkitError,
    InternalServerError,
    RateLimitError,
)

from .conftest import NO_WAIT, TOKEN, attempts
from .loopback import (
    BATCH_JSON,
    Blackhole,
    Drop,
    DropMidBody,
    Hang,
    LoopbackServer,
    Oversized,
    Respond,
    closed_port,
    html_page,
)

LIMIT = 10 * 1024 * 1024  # the documented body limit: 10 MiB


# -- transport faults -----------------------------------------------------------------


async def test_connection_refused_raises_connection_error_after_the_retries(caplog):
    """A closed port: three attempts (logged), then APIConnectionError with the cause."""
    caplog.set_level(logging.DEBUG, logger="inkit_async")
    url = f"http://127.0.0.1:{closed_port()}/v1"
    async with AsyncInkit(TOKEN, base_url=url, backoff=NO_WAIT) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    assert not isinstance(info.value, APITimeoutError)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert str(info.value).startswith("GET /batch/rb_1 failed:")
    assert info.value.request is not None
    assert info.value.request.headers["X-Inkit-API-Token"] != TOKEN
    assert [m.split(" (")[0] for m in attempts(caplog)] == ["GET /batch/rb_1 -> ConnectError"] * 3
    assert [m.split(", ")[0].split("(")[1] for m in attempts(caplog)] == [
        "attempt 1",
        "attempt 2",
        "attempt 3",
    ]


@pytest.mark.parametrize("fault", [Drop(), DropMidBody()], ids=["before", "mid-response"])
async def test_dropped_connection_is_retried_then_raises(server, fault):
    """Every answer cut off: 3 attempts, then APIConnectionError; no socket left open."""
    server.handler = lambda request: fault
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    assert not isinstance(info.value, APITimeoutError)
    assert len(server.requests) == 3
    assert server.connections_opened == 3
    await server.wait_for_open_connections(0)


@pytest.mark.parametrize("fault", [Drop(), DropMidBody()], ids=["before", "mid-response"])
async def test_one_dropped_connection_is_retried_transparently(server, fault):
    """One answer cut off, the next complete: the call succeeds on a new connection."""
    server.script(fault)
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        assert (await client.batch.get("rb_1")).id == "rb_1"
    assert len(server.requests) == 2
    await server.wait_for_open_connections(0)


async def test_server_that_never_answers_times_out_within_the_documented_bound(server):
    """Hang: APITimeoutError after 3 attempts, within timeout x attempts + backoff (+ slack)."""
    server.handler = lambda request: Hang()
    backoff = Backoff(initial=0.05, maximum=0.05, jitter=0)
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=0.2, backoff=backoff) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match="timed out"):
            await client.batch.get("rb_1")
        elapsed = time.monotonic() - started
    assert len(server.requests) == 3
    assert 0.2 * 3 <= elapsed < 0.2 * 3 + 0.05 * 2 + 2  # generous upper bound
    await server.wait_for_open_connections(0)


async def test_per_phase_read_timeout_also_raises_api_timeout_error(server):
    """With an httpx.Timeout, a silent server ends in APITimeoutError naming ReadTimeout."""
    server.handler = lambda request: Hang()
    timeout = httpx.Timeout(5, read=0.1)
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=timeout, backoff=NO_WAIT) as c:
        with pytest.raises(APITimeoutError, match="ReadTimeout"):
            await c.batch.get("rb_1")
    assert len(server.requests) == 3
    await server.wait_for_open_connections(0)


async def test_connect_that_never_completes_times_out():
    """A SYN nobody answers: APITimeoutError after the connect timeout of each attempt."""
    with Blackhole() as hole:
        async with AsyncInkit(TOKEN, base_url=hole.url, timeout=0.1, backoff=NO_WAIT) as client:
            started = time.monotonic()
            with pytest.raises(APITimeoutError):
                await client.batch.get("rb_1")
            assert time.monotonic() - started < 0.1 * 3 + 2


async def test_keep_alive_connection_closed_between_requests_is_replaced(server):
    """The server closing idle sockets costs nothing: no error, not even a retry."""
    async with AsyncInkit(TOKEN, base_url=server.url, max_retries=0) as client:
        assert (await client.batch.get("rb_1")).id == "rb_1"
        await server.close_idle_connections()
        assert server.open_connections == 0
        assert (await client.batch.get("rb_2")).id == "rb_2"
        server.script(Respond(close=True))
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
async def test_body_over_10_mib_is_refused_and_the_client_goes_on(server, action):
    """A body over the limit: APIResponseValidationError naming it, one request, no reuse."""
    server.script(action)
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        started = time.monotonic()
        with pytest.raises(APIResponseValidationError, match="over the limit of 10,485,760"):
            await client.batch.get("rb_huge")
        assert time.monotonic() - started < 10  # generous: the refusal does not linger
        assert len(server.requests) == 1
        assert (await client.batch.get("rb_next")).id == "rb_next"
    assert server.connections_opened == 2  # the oversized answer's socket was dropped
    await server.wait_for_open_connections(0)


async def test_body_of_exactly_10_mib_is_read(server):
    """The limit is inclusive: a batch padded to exactly 10 MiB is returned."""
    record = json.dumps({**BATCH_JSON, "id": "rb_big"}).encode()
    server.script(Respond(body=record + b" " * (LIMIT - len(record))))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        assert (await client.batch.get("rb_big")).id == "rb_big"


async def test_compressed_body_is_limited_by_its_decoded_size(server):
    """gzip: a small batch is decoded; a body inflating past 10 MiB is refused."""
    record = json.dumps({**BATCH_JSON, "id": "rb_zipped"}).encode()
    gzip_headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    server.script(
        Respond(body=gzip.compress(record), headers=gzip_headers),
        Respond(body=gzip.compress(b" " * (LIMIT + 1)), headers=gzip_headers),
    )
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        assert (await client.batch.get("rb_zipped")).id == "rb_zipped"
        with pytest.raises(APIResponseValidationError, match="over the limit"):
            await client.batch.get("rb_bomb")
        assert len(server.requests) == 2
        assert (await client.batch.get("rb_next")).id == "rb_next"


# -- event loops ----------------------------------------------------------------------


def test_client_used_after_its_first_loop_closed_raises_inkit_error():
    """First loop closed, second loop: a clear InkitError, not "Event loop is closed"."""
    client: list[AsyncInkit] = []

    async def first() -> None:
        async with LoopbackServer() as server:
            # Closing after the answer leaves no pooled socket behind in the dead loop.
            server.script(Respond(close=True))
            client.append(AsyncInkit(TOKEN, base_url=server.url))
            assert (await client[0].batch.get("rb_1")).total == 1

    async def second() -> None:
        async with LoopbackServer() as server:
            with pytest.raises(InkitError, match="another event loop") as info:
                await client[0].batch.get("rb_2")
            assert "asyncio.run" in str(info.value)
            assert server.requests == []

    asyncio.run(first())
    asyncio.run(second())
    asyncio.run(client[0].aclose())  # the first loop has ended: a quiet close


def test_client_created_outside_any_loop_works_in_the_loop_that_uses_it():
    """A client built before any loop runs (at import time) binds to the loop that uses it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    client = AsyncInkit(TOKEN, base_url=url)  # no running loop here

    async def use() -> str:
        async with LoopbackServer(sock=listener), client:
            return (await client.batch.get("rb_1")).id

    assert asyncio.run(use()) == "rb_1"


# -- logging --------------------------------------------------------------------------

ATTEMPT = re.compile(r"^GET /batch/rb_1 -> (\w+) \(attempt (\d), \d+\.\d ms\)$")


async def test_each_attempt_is_logged_at_debug_and_each_retry_at_info(server, caplog):
    """503, dropped, 200: three DEBUG attempt records and two INFO retry records."""
    caplog.set_level(logging.DEBUG)
    server.script(Respond(503, "busy"), Drop())
    backoff = Backoff(initial=0.01, maximum=0.01, jitter=0)
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=backoff) as client:
        await client.batch.get("rb_1")
    ours = [r for r in caplog.records if r.name == "inkit_async"]
    debug = [ATTEMPT.match(r.getMessage()) for r in ours if r.levelno == logging.DEBUG]
    assert [(m[1], m[2]) for m in debug if m] == [
        ("503", "1"),
        ("RemoteProtocolError", "2"),
        ("200", "3"),
    ]
    info = [r.getMessage() for r in ours if r.levelno == logging.INFO]
    assert info == [
        "Retrying GET /batch/rb_1 in 0.01 s (retry 1 of 2): 503 Service Unavailable",
        info[1],
    ]
    assert info[1].startswith("Retrying GET /batch/rb_1 in 0.01 s (retry 2 of 2): ")
    assert "disconnected" in info[1]
    # No record from any logger, httpx and httpcore included, shows the token.
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert TOKEN not in caplog.text


async def test_nothing_is_logged_at_warning_or_above(server, caplog):
    """Failures of every kind log below WARNING: silent unless the app opts in."""
    caplog.set_level(logging.DEBUG)
    server.script(
        Respond(429, {"error": "quota"}, {"Retry-After": "999"}),
        Respond(404, {"error": "no such batch"}),
        Respond(body=b"not json"),
        Hang(),
        Hang(),
    )
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=0.1, max_retries=1) as client:
        for error in (RateLimitError, InkitError, APIResponseValidationError, APITimeoutError):
            with pytest.raises(error):
                await client.batch.get("rb_1")
    ours = [r for r in caplog.records if r.name.startswith("inkit_async")]
    assert len(ours) >= 5
    assert all(r.levelno < logging.WARNING for r in ours)


def test_aclose_after_the_first_loop_ended_closes_quietly():
    """aclose() from a new loop once the client's loop has ended drops what is left, quietly."""
    clients: list[AsyncInkit] = []

    async def first() -> None:
        async with LoopbackServer() as server:
            clients.append(AsyncInkit(TOKEN, base_url=server.url))
            await clients[0].batch.get("rb_1")  # leaves one pooled keep-alive socket

    asyncio.run(first())
    asyncio.run(clients[0].aclose())
    assert clients[0].is_closed
    with pytest.raises(InkitError, match="closed"):
        asyncio.run(clients[0].batch.get("rb_2"))


def test_aclose_from_a_foreign_loop_while_the_client_runs_raises_inkit_error():
    """aclose() from another thread's loop while the client's loop still runs is refused."""
    import threading

    ready = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []
    holder: list[AsyncInkit] = []

    async def owner() -> None:
        async with LoopbackServer() as server, AsyncInkit(TOKEN, base_url=server.url) as client:
            holder.append(client)
            await client.batch.get("rb_1")
            ready.set()
            while not release.is_set():
                await asyncio.sleep(0.01)

    thread = threading.Thread(target=asyncio.run, args=(owner(),))
    thread.start()
    assert ready.wait(10)
    try:
        asyncio.run(holder[0].aclose())
    except BaseException as exc:
        errors.append(exc)
    finally:
        release.set()
        thread.join(10)
    assert len(errors) == 1
    assert isinstance(errors[0], InkitError)
    assert "another event loop" in str(errors[0])
    assert holder[0].is_closed  # the owner closed it on its own way out


async def test_elapsed_ms_of_an_attempt_excludes_waiting_for_a_slot(caplog):
    """A call queued 300 ms behind a slow one logs its own short time on the wire."""
    caplog.set_level(logging.DEBUG, logger="inkit_async")
    async with LoopbackServer() as server:
        server.script(Respond(delay=0.3))
        async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=1) as client:
            await asyncio.gather(client.batch.get("slow"), client.batch.get("instant"))
    [message] = [r.getMessage() for r in caplog.records if "/batch/instant" in r.getMessage()]
    match = re.search(r", ([\d.]+) ms\)$", message)
    assert match is not None
    assert float(match[1]) < 200, message


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


async def test_corrupt_gzip_body_is_a_clear_error(server):
    """A gzip body that does not inflate is refused after one request."""
    server.script(Respond(body=b"\x1f\x8b\x08\x00garbage", headers={"Content-Encoding": "gzip"}))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        with pytest.raises(APIConnectionError, match="bad compressed body"):
            await client.batch.get("rb_bad")

"""Retries and pauses as data: the on_event callback and the records on the log lines.

Each retry and each pause is a frozen record handed to ``on_event`` and attached to its
INFO log record as ``inkit_event``; each attempt's DEBUG record carries
``inkit_attempt``, ``inkit_outcome`` and ``inkit_elapsed_ms``. Tests read those fields;
one test reads the human-readable lines themselves.
"""

from __future__ import annotations

import asyncio
import logging
import re

import httpx
import pytest

from inkit_async import (
    APIResponseValidationError,
    APITimeoutError,
    AsyncInkit,
    Backoff,
    InternalServerError,
    NotFoundError,
    PauseEvent,
    RateLimitError,
    RetryEvent,
)
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.events import Events, attempts
from tests.support.loopback import BATCH_JSON, Drop, Hang, Respond


def inkit_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    """The SDK's own records at exactly *level*, in order."""
    return [r for r in caplog.records if r.name == "inkit_async" and r.levelno == level]


async def test_events_arrive_in_order_as_records(api, events):
    """429 with Retry-After, a refused connection, 200: the pause, then two retries, in order."""
    route = api.get("/batch/rb_1")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "0.01"}),
        httpx.ConnectError("refused"),
        httpx.Response(200, json={**BATCH_JSON, "id": "rb_1"}),
    ]
    async with AsyncInkit(TOKEN, backoff=NO_WAIT, on_event=events) as client:
        await client.batch.get("rb_1")
    first, second = events.retries
    assert {(e.method, e.path) for e in events} == {("GET", "/batch/rb_1")}
    assert [(e.attempt, e.delay, e.reason, e.status_code, e.exception) for e in events.retries] == [
        (1, 0.01, "429 Too Many Requests", 429, None),
        (2, 0.0, "GET /batch/rb_1 failed: refused", None, "ConnectError"),
    ]
    pause = events.pauses[0]
    assert (pause.method, pause.path, pause.seconds, pause.status_code) == (
        "GET",
        "/batch/rb_1",
        0.01,
        429,
    )
    assert events.index(pause) < events.index(first) < events.index(second)


async def test_each_event_is_logged_at_info_with_the_record_attached(api, events, caplog):
    """Every INFO record of the SDK carries, as inkit_event, the event on_event received."""
    caplog.set_level(logging.INFO, logger="inkit_async")
    api.get("/batch/rb_1").respond(429, headers={"Retry-After": "0.01"})
    async with AsyncInkit(TOKEN, on_event=events) as client:
        with pytest.raises(RateLimitError):
            await client.batch.get("rb_1")
    assert [e.attempt for e in events.retries] == [1, 2]
    assert [e.seconds for e in events.pauses[:3]] == [0.01] * 3  # the last 429 pauses too
    logged = [record.inkit_event for record in inkit_records(caplog, logging.INFO)]
    assert logged == events
    assert all(a is b for a, b in zip(logged, events, strict=True))


async def test_a_callback_that_raises_is_logged_and_the_call_goes_on(api, caplog):
    """A broken on_event hook: the error is logged with its traceback, the call succeeds."""
    caplog.set_level(logging.INFO, logger="inkit_async")
    route = api.get("/batch/rb_1")
    route.side_effect = [
        httpx.Response(503),
        httpx.Response(200, json={**BATCH_JSON, "id": "rb_1"}),
    ]

    def broken(event: object) -> None:
        raise RuntimeError("metrics backend down")

    async with AsyncInkit(TOKEN, backoff=NO_WAIT, on_event=broken) as client:
        batch = await client.batch.get("rb_1")
    assert batch.id == "rb_1"
    assert route.call_count == 2
    [error] = inkit_records(caplog, logging.ERROR)
    assert error.getMessage() == "The on_event callback raised; the call goes on"
    assert error.exc_info is not None
    assert str(error.exc_info[1]) == "metrics backend down"


async def test_a_variant_reports_to_the_parents_callback_unless_given_its_own(api):
    """with_options keeps on_event; with_options(on_event=...) replaces it for the variant."""
    api.get("/batch/rb_1").respond(503)
    parents, variants = Events(), Events()
    async with AsyncInkit(TOKEN, backoff=NO_WAIT, max_retries=1, on_event=parents) as client:
        with pytest.raises(InternalServerError):
            await client.with_options(timeout=5).batch.get("rb_1")
        with pytest.raises(InternalServerError):
            await client.with_options(on_event=variants).batch.get("rb_1")
    assert [(e.attempt, e.status_code) for e in parents.retries] == [(1, 503)]
    assert [(e.attempt, e.status_code) for e in variants.retries] == [(1, 503)]


async def test_each_attempt_is_logged_at_debug_with_its_number_and_outcome(server, caplog):
    """503, dropped, 200: three DEBUG records numbered 1-3 with the status or exception."""
    caplog.set_level(logging.DEBUG, logger="inkit_async")
    # Two drops: aiohttp sends a dropped GET again once by itself, within one attempt.
    server.script(Respond(503, "busy", close=True), Drop(), Drop())
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        await client.batch.get("rb_1")
    assert attempts(caplog) == [(1, 503), (2, "RemoteProtocolError"), (3, 200)]
    elapsed = [r.inkit_elapsed_ms for r in inkit_records(caplog, logging.DEBUG)]
    assert len(elapsed) == 3
    assert all(isinstance(ms, float) and ms >= 0 for ms in elapsed)


async def test_elapsed_ms_of_an_attempt_excludes_waiting_for_a_slot(server, caplog):
    """A call queued behind a 300 ms one on a single slot logs only its own time on the wire."""
    caplog.set_level(logging.DEBUG, logger="inkit_async")
    server.script(Respond(body={**BATCH_JSON, "id": "slow"}, delay=0.3))
    async with AsyncInkit(TOKEN, base_url=server.url, max_concurrency=1) as client:
        await asyncio.gather(client.batch.get("slow"), client.batch.get("instant"))
    elapsed = {
        r.getMessage().split()[1]: r.inkit_elapsed_ms for r in inkit_records(caplog, logging.DEBUG)
    }
    assert elapsed["/batch/slow"] >= 250  # it waited out the 300 ms answer
    # Counting its wait for the slot, the second call would take longer than the first.
    assert elapsed["/batch/instant"] < elapsed["/batch/slow"] / 2


ATTEMPT_LINE = re.compile(r"^GET /batch/rb_1 -> (\w+) \(attempt (\d), \d+\.\d ms\)$")


async def test_log_lines_read_as_text_and_never_show_the_token(server, caplog):
    """The human-readable lines: each attempt at DEBUG, each pause and retry at INFO, no token."""
    caplog.set_level(logging.DEBUG)
    # Two drops: aiohttp sends a dropped GET again once by itself, within one attempt.
    server.script(
        Respond(429, {"error": "slow down"}, {"Retry-After": "0.01"}, close=True), Drop(), Drop()
    )
    backoff = Backoff(initial=0.01, maximum=0.01, jitter=0)
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=backoff) as client:
        await client.batch.get("rb_1")
    debug = [ATTEMPT_LINE.match(r.getMessage()) for r in inkit_records(caplog, logging.DEBUG)]
    assert [(m[1], m[2]) if m else None for m in debug] == [
        ("429", "1"),
        ("RemoteProtocolError", "2"),
        ("200", "3"),
    ]
    info = inkit_records(caplog, logging.INFO)
    retries = [r.getMessage() for r in info if isinstance(r.inkit_event, RetryEvent)]
    assert retries[0] == "Retrying GET /batch/rb_1 in 0.01 s (retry 1 of 2): 429 Too Many Requests"
    assert retries[1].startswith("Retrying GET /batch/rb_1 in 0.01 s (retry 2 of 2): GET /batch/")
    assert "disconnected" in retries[1]
    assert len(retries) == 2
    pause = next(r.getMessage() for r in info if isinstance(r.inkit_event, PauseEvent))
    assert pause.startswith("Pausing every request for 0.01 s")
    assert "GET /batch/rb_1" in pause
    assert "429" in pause
    # No record from any logger, httpx's and aiohttp's included, shows the token.
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
        for error in (RateLimitError, NotFoundError, APIResponseValidationError, APITimeoutError):
            with pytest.raises(error):
                await client.batch.get("rb_1")
    ours = [r for r in caplog.records if r.name.startswith("inkit_async")]
    assert len(ours) >= 5
    assert all(r.levelno < logging.WARNING for r in ours)

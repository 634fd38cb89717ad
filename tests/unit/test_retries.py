"""Which failures are retried, how often, and how long the client waits between tries."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from inkit_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncInkit,
    Backoff,
    InternalServerError,
    NotFoundError,
    RateLimitError,
)
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.http_library import library_error
from tests.support.loopback import BATCH_JSON


async def test_transient_status_then_success_returns_the_batch(api, events):
    """A 503 followed by a 200 returns the batch after two requests and one retry."""
    route = api.get("/batch/rb_1")
    route.side_effect = [
        httpx.Response(503),
        httpx.Response(200, json={**BATCH_JSON, "id": "rb_1"}),
    ]
    async with AsyncInkit(TOKEN, backoff=NO_WAIT, on_event=events) as client:
        batch = await client.batch.get("rb_1")
    assert batch.id == "rb_1"
    assert route.call_count == 2
    assert [(e.attempt, e.status_code) for e in events.retries] == [(1, 503)]


@pytest.mark.parametrize("max_retries", [0, 1, 4])
async def test_max_retries_bounds_the_attempts(api, max_retries):
    """A request is tried 1 + max_retries times; 0 disables retries."""
    route = api.get("/batch/rb_1").respond(500)
    async with AsyncInkit(TOKEN, max_retries=max_retries, backoff=NO_WAIT) as client:
        with pytest.raises(InternalServerError):
            await client.batch.get("rb_1")
    assert route.call_count == 1 + max_retries


async def test_client_errors_are_never_retried(api, client):
    """A 404 is final at once."""
    route = api.get("/batch/rb_1").respond(404)
    with pytest.raises(NotFoundError):
        await client.batch.get("rb_1")
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("kind", "message", "raised", "attempts"),
    [
        ("ConnectError", "refused", APIConnectionError, 3),
        ("ConnectTimeout", "slow syn", APITimeoutError, 3),
        ("ReadTimeout", "slow read", APITimeoutError, 3),
        ("ReadError", "reset", APIConnectionError, 3),
        ("RemoteProtocolError", "disconnected", APIConnectionError, 3),
        ("PoolTimeout", "pool", APITimeoutError, 3),
        # Failures another attempt cannot fix are raised after one try.
        ("UnsupportedProtocol", "gopher", APIConnectionError, 1),
        ("LocalProtocolError", "bad header", APIConnectionError, 1),
        ("DecodingError", "bad gzip", APIConnectionError, 1),
    ],
)
async def test_transport_failures_are_raised_as_the_sdks_class(
    http_library, kind, message, raised, attempts
):
    """No library error escapes: each is raised as its SDK class, after the retries if any."""
    exc = getattr(http_library, kind)(message)
    sent = []

    def fail(request):
        sent.append(request)
        raise exc

    transport = http_library.MockTransport(fail)
    async with AsyncInkit(TOKEN, transport=transport, backoff=NO_WAIT) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    assert type(info.value) is raised
    assert library_error(info.value, http_library) is exc
    assert type(info.value.__cause__) is getattr(httpx, kind)
    assert len(sent) == attempts
    assert str(info.value).startswith("GET /batch/rb_1 ")
    # A timeout names its kind; any other failure quotes the library's message.
    assert (kind if raised is APITimeoutError else message) in str(info.value)


async def test_backoff_grows_exponentially_up_to_its_maximum(api, events):
    """Without Retry-After, waits double from `initial` and stop at `maximum`."""
    api.get("/batch/rb_1").respond(502)
    backoff = Backoff(initial=0.01, maximum=0.03, jitter=0)
    async with AsyncInkit(TOKEN, max_retries=4, backoff=backoff, on_event=events) as client:
        with pytest.raises(InternalServerError):
            await client.batch.get("rb_1")
    assert events.delays == [0.01, 0.02, 0.03, 0.03]


def test_default_backoff_delays_with_jitter():
    """The default backoff waits 0.5 s, 1 s, 2 s ... at most 8 s, each cut by up to 25%."""
    backoff = Backoff()
    for retry, full in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]):
        for _ in range(50):
            assert 0.75 * full <= backoff.delay(retry) <= full
    assert backoff.delay(10_000) <= 8.0


async def test_retry_after_seconds_is_honoured_exactly(api, events):
    """Retry-After: 0.05 makes the client wait that long, not its backoff."""
    route = api.get("/batch/rb_1")
    route.side_effect = [
        httpx.Response(503, headers={"Retry-After": "0.05"}),
        httpx.Response(200, json={**BATCH_JSON, "id": "rb_1"}),
    ]
    backoff = Backoff(initial=1, maximum=1, jitter=0)
    async with AsyncInkit(TOKEN, backoff=backoff, on_event=events) as client:
        started = time.monotonic()
        await client.batch.get("rb_1")
        waited = time.monotonic() - started
    assert events.delays == [0.05]
    # The wait announced is the wait made, less one tick of uvloop's millisecond clock.
    assert waited >= 0.05 - 0.001


@pytest.mark.parametrize(
    "header",
    ["0", format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)],
    ids=["zero", "date-in-the-past"],
)
async def test_retry_after_that_has_passed_retries_at_once(api, events, header):
    """Retry-After: 0, or an HTTP date that has passed, retries at once despite a slow backoff."""
    route = api.get("/batch/rb_1")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": header}),
        httpx.Response(200, json={**BATCH_JSON, "id": "rb_1"}),
    ]
    async with AsyncInkit(TOKEN, on_event=events) as client:
        await client.batch.get("rb_1")
    assert route.call_count == 2
    assert events.delays == [0.0]


async def test_retry_after_http_date_beyond_the_cap_raises_at_once(api, client):
    """A Retry-After date two minutes out (cap 60 s) raises RateLimitError after one try."""
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    route = api.get("/batch/rb_1").respond(429, headers={"Retry-After": future})
    with pytest.raises(RateLimitError) as info:
        await client.batch.get("rb_1")
    assert route.call_count == 1
    assert info.value.retry_after is not None
    assert 115 <= info.value.retry_after <= 121


@pytest.mark.parametrize("header", ["soon", "-5", "inf", "nan", ""])
async def test_unreadable_retry_after_falls_back_to_backoff(api, events, header):
    """A Retry-After that is not seconds or a date is ignored in favour of backoff."""
    route = api.get("/batch/rb_1")
    route.side_effect = [
        httpx.Response(503, headers={"Retry-After": header}),
        httpx.Response(200, json={**BATCH_JSON, "id": "rb_1"}),
    ]
    backoff = Backoff(initial=0.01, maximum=0.01, jitter=0)
    async with AsyncInkit(TOKEN, backoff=backoff, on_event=events) as client:
        await client.batch.get("rb_1")
    assert events.delays == [0.01]  # the backoff's, not the header's


async def test_rate_limit_error_carries_retry_after_when_budget_is_spent(api, client):
    """After the last retry, RateLimitError.retry_after holds the server's last ask."""
    api.get("/batch/rb_1").respond(429, headers={"Retry-After": "0"})
    with pytest.raises(RateLimitError) as info:
        await client.batch.get("rb_1")
    assert info.value.retry_after == 0.0


async def test_rate_limit_without_retry_after_has_none(api, client):
    """A 429 without Retry-After backs off and ends with retry_after None."""
    route = api.get("/batch/rb_1").respond(429)
    with pytest.raises(RateLimitError) as info:
        await client.batch.get("rb_1")
    assert info.value.retry_after is None
    assert route.call_count == 3

"""Which failures are retried, how often, and how long the client waits between tries."""

from __future__ import annotations

import logging
import re
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

from .conftest import NO_WAIT, TOKEN
from .loopback import BATCH_JSON


def retry_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The waits the client announced in its INFO retry records, in order."""
    delays = []
    for record in caplog.records:
        if record.name == "inkit_async" and record.levelno == logging.INFO:
            match = re.search(r" in ([0-9.]+) s ", record.getMessage())
            assert match, record.getMessage()
            delays.append(float(match.group(1)))
    return delays


async def test_transient_status_then_success_returns_the_batch(api, client):
    """A 503 followed by a 200 returns the batch after two requests."""
    route = api.get("/batch/rb_1")
    route.side_effect = [httpx.Response(503), httpx.Response(200, json=BATCH_JSON)]
    batch = await client.batch.get("rb_1")
    assert batch.id == BATCH_JSON["id"]
    assert route.call_count == 2


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
    ("exc", "raised"),
    [
        (httpx.ConnectError("refused"), APIConnectionError),
        (httpx.ConnectTimeout("slow syn"), APITimeoutError),
        (httpx.ReadTimeout("slow read"), APITimeoutError),
        (httpx.ReadError("reset"), APIConnectionError),
        (httpx.RemoteProtocolError("disconnected"), APIConnectionError),
        (httpx.PoolTimeout("pool"), APITimeoutError),
    ],
)
async def test_transport_failures_are_retried_then_raised(api, client, exc, raised):
    """Connection errors and timeouts are retried, then raised as the SDK's class."""
    route = api.get("/batch/rb_1").mock(side_effect=exc)
    with pytest.raises(raised) as info:
        await client.batch.get("rb_1")
    assert type(info.value) is raised
    assert route.call_count == 3
    assert "GET /batch/rb_1" in str(info.value)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.UnsupportedProtocol("gopher"),
        httpx.LocalProtocolError("bad header"),
        httpx.DecodingError("bad gzip"),
    ],
)
async def test_failures_that_would_repeat_are_not_retried(api, client, exc):
    """Errors that another attempt cannot fix are raised after one try."""
    route = api.get("/batch/rb_1").mock(side_effect=exc)
    with pytest.raises(APIConnectionError):
        await client.batch.get("rb_1")
    assert route.call_count == 1


async def test_backoff_grows_exponentially_up_to_its_maximum(api, caplog):
    """Without Retry-After, waits double from `initial` and stop at `maximum`."""
    caplog.set_level(logging.INFO, logger="inkit_async")
    api.get("/batch/rb_1").respond(502)
    backoff = Backoff(initial=0.01, maximum=0.03, jitter=0)
    async with AsyncInkit(TOKEN, max_retries=4, backoff=backoff) as client:
        with pytest.raises(InternalServerError):
            await client.batch.get("rb_1")
    assert retry_delays(caplog) == [0.01, 0.02, 0.03, 0.03]


def test_default_backoff_delays_with_jitter():
    """The default backoff waits 0.5 s, 1 s, 2 s ... at most 8 s, each cut by up to 25%."""
    backoff = Backoff()
    for retry, full in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]):
        for _ in range(50):
            assert 0.75 * full <= backoff.delay(retry) <= full
    assert backoff.delay(10_000) <= 8.0


async def test_retry_after_seconds_is_honoured_exactly(api, client, caplog):
    """Retry-After: 0.05 makes the client wait that long, not its backoff."""
    caplog.set_level(logging.INFO, logger="inkit_async")
    route = api.get("/batch/rb_1")
    route.side_effect = [
        httpx.Response(503, headers={"Retry-After": "0.05"}),
        httpx.Response(200, json=BATCH_JSON),
    ]
    started = time.monotonic()
    await client.batch.get("rb_1")
    assert time.monotonic() - started >= 0.05
    assert retry_delays(caplog) == [0.05]


async def test_retry_after_zero_retries_at_once(api, caplog):
    """Retry-After: 0 retries immediately, even with a slow default backoff."""
    caplog.set_level(logging.INFO, logger="inkit_async")
    route = api.get("/batch/rb_1")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "0"}),
        httpx.Response(200, json=BATCH_JSON),
    ]
    async with AsyncInkit(TOKEN) as client:
        await client.batch.get("rb_1")
    assert route.call_count == 2
    assert retry_delays(caplog) == [0.0]


async def test_retry_after_http_date_in_the_past_retries_at_once(api, client, caplog):
    """An HTTP-date Retry-After that has passed means no wait."""
    caplog.set_level(logging.INFO, logger="inkit_async")
    past = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    route = api.get("/batch/rb_1")
    route.side_effect = [
        httpx.Response(503, headers={"Retry-After": past}),
        httpx.Response(200, json=BATCH_JSON),
    ]
    await client.batch.get("rb_1")
    assert retry_delays(caplog) == [0.0]


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
async def test_unreadable_retry_after_falls_back_to_backoff(api, client, caplog, header):
    """A Retry-After that is not seconds or a date is ignored in favour of backoff."""
    caplog.set_level(logging.INFO, logger="inkit_async")
    route = api.get("/batch/rb_1")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": header}),
        httpx.Response(200, json=BATCH_JSON),
    ]
    await client.batch.get("rb_1")
    assert retry_delays(caplog) == [0.0]  # NO_WAIT backoff


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


async def test_each_retry_is_logged_at_info_with_reason(api, client, caplog):
    """One INFO record per retry names the method, path, reason and wait."""
    caplog.set_level(logging.INFO, logger="inkit_async")
    api.get("/batch/rb_1").respond(503)
    with pytest.raises(InternalServerError):
        await client.batch.get("rb_1")
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(messages) == 2
    assert messages[0].startswith("Retrying GET /batch/rb_1 in 0.00 s (retry 1 of 2): 503")

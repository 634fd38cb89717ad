"""FakeInkit misbehaving like a network, in process: latency, scripts, drops, resets, hangs.

The same steps over a real socket are in tests/functional/test_fake_faults_over_a_socket.py.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import httpx
import pytest

from inkit_async import (
    APIConnectionError,
    APITimeoutError,
    InternalServerError,
    RateLimitError,
    RetryEvent,
)
from inkit_async.testing import Drop, FakeInkit, FakeRequest, FakeServer, Hang, Reset, Respond

NO_RETRY = {"max_retries": 0, "throttle": False}


async def test_a_script_answers_one_batch_step_by_step(fake):
    """script(id, [503, 503, 200]): two 503s, then the batch; other ids are untouched."""
    scripted, other = fake.add_batch(), fake.add_batch()
    fake.script(scripted, [503, 503, 200])
    events = []
    async with fake.client(on_event=events.append, throttle=False) as client:
        assert (await client.batch.get(other)).id == other
        assert (await client.batch.get(scripted)).id == scripted
        assert (await client.batch.get(scripted)).id == scripted  # the script is used up
    statuses = [event.status_code for event in events if isinstance(event, RetryEvent)]
    assert statuses == [503, 503]
    assert [request.path.rsplit("/", 1)[1] for request in fake.requests] == [
        other,
        scripted,
        scripted,
        scripted,
        scripted,
    ]


async def test_a_flow_batch_is_scripted_by_its_id_too(fake):
    """The id in /invoke/batch/<id> takes the script as /batch/<id> does."""
    flow = fake.add_batch(flow=True)
    fake.script(flow, [Respond(500, body={"error": "boom"})])
    async with fake.client(**NO_RETRY) as client:
        with pytest.raises(InternalServerError) as info:
            await client.flow_batch.get(flow)
        assert (await client.flow_batch.get(flow)).id == flow
    assert info.value.body == {"error": "boom"}


async def test_respond_sends_its_retry_after_and_body(fake):
    """Respond(429, retry_after=7, body=...) is answered as given, header and all."""
    batch_id = fake.add_batch()
    fake.script(batch_id, [Respond(429, retry_after=7, body={"error": "slow down"})])
    async with fake.client(max_retries=0, max_retry_after=1, throttle=False) as client:
        with pytest.raises(RateLimitError) as info:
            await client.batch.get(batch_id)
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.body == {"error": "slow down"}


async def test_steps_for_whatever_comes_next_come_before_a_batch_script(fake):
    """script_next's steps are taken first, whatever the request; then the id's own."""
    batch_id = fake.add_batch()
    fake.script(batch_id, [502])
    fake.script_next([504, 200])
    events = []
    async with fake.client(on_event=events.append, throttle=False) as client:
        await client.batch.get(batch_id)
    assert [e.status_code for e in events if isinstance(e, RetryEvent)] == [504]
    # 504 (next), 200 as usual (next), and the 502 still waits for the next lookup.
    async with fake.client(on_event=events.append, throttle=False) as client:
        await client.batch.get(batch_id)
    assert [e.status_code for e in events if isinstance(e, RetryEvent)] == [504, 502]


async def test_fail_next_is_a_script_of_the_next_requests(fake):
    """fail_next(2, 503) and script_next([503, 503]) answer alike."""
    batch_id = fake.add_batch()
    fake.fail_next(1, 503, retry_after=0)
    fake.script_next([503])
    events = []
    async with fake.client(on_event=events.append, throttle=False) as client:
        await client.batch.get(batch_id)
    assert [e.status_code for e in events if isinstance(e, RetryEvent)] == [503, 503]


@pytest.mark.parametrize(
    ("step", "cause"),
    [(Drop(), httpx.RemoteProtocolError), (Reset(), httpx.ReadError)],
    ids=["drop", "reset"],
)
async def test_a_dropped_or_reset_connection_is_the_transport_failure_of_a_socket(
    fake, step, cause
):
    """In process, a drop and a reset are the failures the SDK's sender reports for them."""
    batch_id = fake.add_batch()
    fake.script(batch_id, [step])
    async with fake.client(**NO_RETRY) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get(batch_id)
    assert type(info.value.__cause__) is cause
    assert len(fake.requests) == 1


async def test_retries_absorb_a_drop_and_a_reset(fake):
    """A drop and a reset are retried as transport failures are."""
    batch_id = fake.add_batch()
    fake.script(batch_id, [Drop(), Reset()])
    async with fake.client(throttle=False) as client:
        assert (await client.batch.get(batch_id)).id == batch_id
    assert len(fake.requests) == 3


async def test_a_hang_ends_with_the_clients_timeout(fake):
    """No answer ever comes: the attempt's deadline ends it, as over a socket."""
    batch_id = fake.add_batch()
    fake.script(batch_id, [Hang()])
    async with asyncio.timeout(10), fake.client(timeout=0.2, **NO_RETRY) as client:
        with pytest.raises(APITimeoutError):
            await client.batch.get(batch_id)


async def test_a_slow_answer_meets_the_read_timeout_in_process(fake):
    """Per-phase timeouts (no deadline): the read timeout bounds the wait for the answer.

    Before, the in-process sender ignored it, so a test of a read timeout waited for
    the whole delay and saw a success a socket client would never see.
    """
    batch_id = fake.add_batch()
    fake.fail_next(1, 503, delay=30)
    async with asyncio.timeout(10), fake.client(timeout=httpx.Timeout(0.2), **NO_RETRY) as client:
        with pytest.raises(APITimeoutError):
            await client.batch.get(batch_id)


async def test_a_hang_without_a_deadline_meets_the_read_timeout(fake):
    """A hang under per-phase timeouts ends with the read timeout, and a retry succeeds."""
    batch_id = fake.add_batch()
    fake.script(batch_id, [Hang()])
    async with (
        asyncio.timeout(10),
        fake.client(timeout=httpx.Timeout(0.2), throttle=False) as client,
    ):
        assert (await client.batch.get(batch_id)).id == batch_id
    assert len(fake.requests) == 2


async def test_latency_is_asked_of_a_function_for_each_request(fake):
    """A latency function is called with each request; its seconds pass before the answer."""
    seen: list[FakeRequest] = []

    def latency(request: FakeRequest) -> float:
        seen.append(request)
        return 30.0 if request.path.endswith(slow) else 0.0

    fast, slow = fake.add_batch(), fake.add_batch()
    fake.set_latency(latency)
    async with asyncio.timeout(10), fake.client(timeout=0.3, **NO_RETRY) as client:
        assert (await client.batch.get(fast)).id == fast
        with pytest.raises(APITimeoutError):
            await client.batch.get(slow)
    assert seen == fake.requests


async def test_a_fixed_latency_applies_to_every_request():
    """FakeInkit(latency=30): every answer is later than a short timeout; 0 lifts it."""
    fake = FakeInkit(latency=30)
    batch_id = fake.add_batch()
    async with asyncio.timeout(10), fake.client(timeout=0.2, **NO_RETRY) as client:
        with pytest.raises(APITimeoutError):
            await client.batch.get(batch_id)
        fake.set_latency(0)
        assert (await client.batch.get(batch_id)).id == batch_id


@pytest.mark.parametrize(
    "latency", [lambda request: -1, lambda request: "1", lambda request: 1 / 0], ids=str
)
async def test_a_latency_function_that_fails_is_the_fakes_own_fault(fake, latency, caplog):
    """A latency function that raises or returns no duration: a 500, logged."""
    batch_id = fake.add_batch()
    fake.set_latency(latency)
    caplog.set_level(logging.ERROR, logger="inkit_async.testing")
    async with fake.client(**NO_RETRY) as client:
        with pytest.raises(InternalServerError) as info:
            await client.batch.get(batch_id)
    assert "FakeInkit failed" in info.value.body["error"]
    assert caplog.records


async def test_headers_are_recorded_with_the_credentials_redacted(fake):
    """fake.requests keeps each header, names lower-cased; the token only as [redacted]."""
    batch_id = fake.add_batch()
    async with fake.client() as client:
        await client.batch.get(batch_id)
    async with fake.client(api_token="a-wrong-token-of-some-length") as client:
        with pytest.raises(Exception):  # noqa: B017 - the 401 is not what is tested
            await client.batch.get(batch_id)
    for request in fake.requests:
        assert request.headers["x-inkit-api-token"] == "[redacted]"
        assert request.headers["user-agent"].startswith("inkit-async/")
        assert all(name == name.lower() for name in request.headers)
        assert fake.token not in repr(request)
        assert "a-wrong-token" not in repr(request)
    assert [request.authorized for request in fake.requests] == [True, False]


async def test_every_credential_header_is_redacted(fake):
    """Authorization, Proxy-Authorization and Cookie, in any case, are kept redacted."""
    await fake.handle(
        "GET",
        "/v1/batch/x",
        "",
        {"Authorization": "Bearer s3cret", "PROXY-AUTHORIZATION": "Basic s3cret", "cookie": "s3"},
        b"",
    )
    assert fake.requests[0].headers == {
        "authorization": "[redacted]",
        "proxy-authorization": "[redacted]",
        "cookie": "[redacted]",
    }


BAD_STEPS = [
    ("not a list", "503", TypeError),
    ("a status below 100", [99], ValueError),
    ("a status above 599", [503, 600], ValueError),
    ("a bool", [True], TypeError),
    ("a float", [503.0], TypeError),
    ("an object", [object()], TypeError),
    ("a None", [None], TypeError),
]


@pytest.mark.parametrize(("what", "steps", "error"), BAD_STEPS, ids=[b[0] for b in BAD_STEPS])
def test_bad_steps_are_refused_when_given_and_nothing_is_queued(fake, what, steps, error):
    """A bad step refuses the whole call: neither script nor script_next queues any."""
    batch_id = fake.add_batch()
    with pytest.raises(error):
        fake.script(batch_id, steps)
    with pytest.raises(error):
        fake.script_next(steps)
    assert fake._next == []  # noqa: SLF001 - nothing was queued
    assert fake._scripts.get(batch_id, []) == []  # noqa: SLF001


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda fake: fake.script(7, [503]), TypeError),
        (lambda fake: fake.script("", [503]), ValueError),
        (lambda fake: Respond(600), ValueError),
        (lambda fake: Respond("503"), TypeError),  # type: ignore[arg-type]
        (lambda fake: Respond(503, retry_after=-1), ValueError),
        (lambda fake: Respond(503, retry_after=float("nan")), ValueError),
        (lambda fake: Respond(503, body=object()), TypeError),
        (lambda fake: Respond(503, delay=float("inf")), ValueError),
        (lambda fake: Drop(delay=-1), ValueError),
        (lambda fake: Reset(delay="1"), TypeError),  # type: ignore[arg-type]
        (lambda fake: fake.set_latency(-0.5), ValueError),
        (lambda fake: fake.set_latency("1"), TypeError),  # type: ignore[arg-type]
        (lambda fake: fake.set_latency(float("inf")), ValueError),
        (lambda fake: FakeInkit(latency=True), TypeError),
        (lambda fake: FakeServer(fake, start_within=0), ValueError),
        (lambda fake: FakeServer(fake, stop_within="1"), TypeError),  # type: ignore[arg-type]
    ],
)
def test_new_arguments_are_checked_where_they_are_given(fake, call, error):
    """Every argument of the fault API is checked at the call, not at a request."""
    with pytest.raises(error):
        call(fake)


async def test_the_app_cuts_an_answer_short_under_a_server_without_a_transport(fake):
    """Under a server that hands the app no transport, a drop is an answer cut short.

    ASGI has no message for closing a connection unanswered: the app starts an answer
    and fails, which servers turn into a connection closed mid-answer.
    """
    fake.script_next([Drop()])
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/v1/batch/x", "headers": []}
    with pytest.raises(ConnectionAbortedError):
        await fake.app(scope, receive, send)
    assert [message["type"] for message in sent] == ["http.response.start"]


async def test_the_app_holds_a_hanging_request_until_the_client_goes(fake):
    """A hang sends nothing and returns once the server reports the client gone."""
    fake.script_next([Hang()])
    messages = iter(
        [
            {"type": "http.request", "body": b"", "more_body": False},
            {"type": "http.request", "body": b"", "more_body": False},
            {"type": "http.disconnect"},
        ]
    )
    sent = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/v1/batch/x", "headers": []}
    await fake.app(scope, receive, send)
    assert sent == []


def test_a_fake_server_without_uvicorn_says_which_extra_to_install(fake, monkeypatch):
    """No uvicorn: start() fails at once, naming the extra, before any socket is made."""
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    server = FakeServer(fake)
    with pytest.raises(RuntimeError, match=r"inkit-async\[testing\]"):
        server.start()
    server.stop()  # never started: nothing to do


def test_a_fake_server_checks_what_it_is_given(fake):
    """Its fake must be a FakeInkit; its URL exists only while it runs; no token in repr."""
    server = FakeServer(fake)
    with pytest.raises(TypeError):
        server.fake = "fake"  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    assert server.token == fake.token
    assert fake.token not in repr(server)


async def test_a_timeout_of_the_transports_own_is_not_taken_for_the_read_timeout():
    """Only the read timeout's own expiry is a ReadTimeout; another TimeoutError passes on."""
    from inkit_async import AsyncInkit
    from inkit_async._senders import InProcessTransport

    class TimesOut(InProcessTransport):
        async def answer(self, *_request):
            raise TimeoutError

    async with AsyncInkit("token", transport=TimesOut(), **NO_RETRY) as client:
        with pytest.raises(APITimeoutError) as info:
            await client.batch.get("rb_x")
    assert not isinstance(info.value.__cause__, httpx.ReadTimeout)

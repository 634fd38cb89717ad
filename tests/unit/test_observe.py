"""Observers (``_observe.py``): what the engine tells them, when, and in what order.

A recording observer joins the client's shared observers (``_state.shared_observers``,
where OpenTelemetry's comes from) and keeps every call it hears; the calls go through
``FakeInkit``'s in-process sender or respx, so every line of the engine runs but the
socket. The peers' own output (log lines, spans, ``on_event``) is tested in
``test_events.py`` and ``test_tracing.py``; here: the dispatch.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest

from inkit_async import AsyncInkit, PauseEvent, RetryEvent, Throttle, _state
from inkit_async._log import LogObserver
from inkit_async._observe import Observer, hooked
from inkit_async.testing import FAKE_BASE_URL, FakeInkit
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.events import Events, attempts

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping

    from inkit_async import ClientEvent

T = TypeVar("T")


class Recorder(Observer):
    """Keeps, in order, every call the engine makes to it; its watches add a header."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def traced(
        self, operation: str, attributes: Mapping[str, str | int], work: Awaitable[T]
    ) -> Awaitable[T]:
        """Keep the call's name and attributes; leave the work as it is."""
        self.calls.append(("call", operation, dict(attributes)))
        return work

    def throttle_wait(self, seconds: float) -> None:
        """Keep that a notable wait was told."""
        assert seconds > 0.001
        self.calls.append(("wait",))

    def attempt_started(self, method: str, url: str, path: str, number: int) -> Watch:
        """Keep the attempt's start; watch it."""
        self.calls.append(("start", method, url, path, number))
        return Watch(self.calls, number)

    def event(self, event: ClientEvent) -> None:
        """Keep the event's kind."""
        self.calls.append(("event", type(event).__name__))


class Watch:
    """One attempt, as the recorder sees it."""

    def __init__(self, calls: list[tuple[Any, ...]], number: int) -> None:
        self.calls = calls
        self.number = number

    def headers(self) -> Mapping[str, str]:
        """A header naming the attempt."""
        return {"X-Observed": str(self.number)}

    def ended(self, status: int | None, failure: str | None, elapsed: float) -> None:
        """Keep how it ended."""
        assert elapsed >= 0
        self.calls.append(("end", status, failure))

    def interrupted(self, failure: str, elapsed: float) -> None:
        """Keep what cut it short."""
        assert elapsed >= 0
        self.calls.append(("interrupted", failure))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """A recording observer that every client made in the test shares, after the others."""
    recorder = Recorder()
    shared = _state.shared_observers

    def with_recorder(root: str) -> tuple[Observer, ...]:
        return (*shared(root), recorder)

    monkeypatch.setattr(_state, "shared_observers", with_recorder)
    return recorder


async def test_a_retried_lookup_is_told_step_by_step_in_order(recorder):
    """503, then 200: the call, each attempt's start and end, the retry between them."""
    fake = FakeInkit()
    batch_id = fake.add_batch()
    fake.fail_next(1, 503)
    async with fake.client() as client:
        await client.batch.get(batch_id)
    path = f"/batch/{batch_id}"
    assert recorder.calls == [
        ("call", "batch.get", {"inkit.batch.id": batch_id}),
        ("start", "GET", FAKE_BASE_URL + path, path, 1),
        ("end", 503, None),
        ("event", "RetryEvent"),
        ("start", "GET", FAKE_BASE_URL + path, path, 2),
        ("end", 200, None),
    ]


async def test_a_refusal_is_told_as_its_pause_before_the_retry(recorder):
    """429 with Retry-After: the attempt ends, the pause is told, then the retry, then attempt 2."""
    fake = FakeInkit()
    batch_id = fake.add_batch()
    fake.fail_next(1, 429, retry_after=0.01)
    async with fake.client() as client:
        await client.batch.get(batch_id)
    told = [call for call in recorder.calls if call[0] in {"end", "event"}]
    assert told[0] == ("end", 429, None)
    assert told[-3:] == [("event", "PauseEvent"), ("event", "RetryEvent"), ("end", 200, None)]


async def test_a_transport_failure_ends_its_attempt_with_the_failure_name(api, recorder):
    """A refused connection: the attempt ends with no status and ConnectError."""
    route = api.get("/batch/rb_1")
    route.side_effect = [httpx.ConnectError("refused"), httpx.Response(404)]
    async with AsyncInkit(TOKEN, backoff=NO_WAIT) as client:
        with pytest.raises(Exception, match="404"):
            await client.batch.get("rb_1")
    ends = [call for call in recorder.calls if call[0] == "end"]
    assert ends == [("end", None, "ConnectError"), ("end", 404, None)]


async def test_a_watch_adds_its_headers_to_its_own_attempt(api, recorder):
    """Each attempt carries the headers its watches gave (as traceparent is carried)."""
    route = api.get("/batch/rb_1")
    route.side_effect = [httpx.Response(503), httpx.Response(404)]
    async with AsyncInkit(TOKEN, backoff=NO_WAIT) as client:
        with pytest.raises(Exception, match="404"):
            await client.batch.get("rb_1")
    sent = [call.request.headers["X-Observed"] for call in route.calls]
    assert sent == ["1", "2"]


async def test_a_cancelled_attempt_is_interrupted_and_logs_no_attempt_line(recorder, caplog):
    """Cancelled on the wire: watches hear 'interrupted', and the DEBUG log has no line for it."""
    caplog.set_level(logging.DEBUG, logger="inkit_async")
    fake = FakeInkit()
    batch_id = fake.add_batch()
    fake.fail_next(1, 503, delay=30)
    async with fake.client() as client:
        call = asyncio.create_task(client.batch.get(batch_id))
        async with asyncio.timeout(5):
            while not fake.requests:
                await asyncio.sleep(0.01)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    assert recorder.calls[-1] == ("interrupted", "CancelledError")
    assert attempts(caplog) == []


async def test_every_observer_hears_an_event_though_on_event_raises(recorder, caplog):
    """The log first, the shared observers next, on_event last; its error is logged only."""
    caplog.set_level(logging.INFO, logger="inkit_async")
    heard: list[ClientEvent] = []

    def broken(event: ClientEvent) -> None:
        # By now the log has the event's line, and the recorder has heard it.
        assert caplog.records[-1].inkit_event is event
        assert recorder.calls[-1] == ("event", type(event).__name__)
        heard.append(event)
        raise RuntimeError("metrics backend down")

    fake = FakeInkit()
    batch_id = fake.add_batch()
    fake.fail_next(2, 503)
    async with fake.client(on_event=broken) as client:
        batch = await client.batch.get(batch_id)
    assert batch.id == batch_id
    assert [type(event) for event in heard] == [RetryEvent, RetryEvent]
    records = [r for r in caplog.records if r.name == "inkit_async"]
    assert [r.levelno for r in records] == [logging.INFO, logging.ERROR] * 2
    assert [r.inkit_event for r in records[::2]] == heard
    errors = records[1::2]
    assert {r.getMessage() for r in errors} == {"The on_event callback raised; the call goes on"}
    assert all(r.exc_info and str(r.exc_info[1]) == "metrics backend down" for r in errors)


async def test_a_variant_tells_its_own_callback_and_the_shared_observers(recorder):
    """A variant's observers: its own on_event, and the client's shared ones."""
    fake = FakeInkit()
    batch_id = fake.add_batch()
    parents, variants = Events(), Events()
    async with fake.client(on_event=parents) as client:
        fake.fail_next(1, 503)
        await client.with_options(on_event=variants).batch.get(batch_id)
    assert [type(event) for event in variants] == [RetryEvent]
    assert parents == []
    assert ("event", "RetryEvent") in recorder.calls


async def test_a_wait_in_the_throttle_is_told_before_the_attempt_it_held(recorder):
    """At 20 requests/s the second lookup waits for its turn: 'wait', then its start."""
    fake = FakeInkit()
    first, second = fake.add_batch(), fake.add_batch()
    async with fake.client(throttle=Throttle(rate_limit=20)) as client:
        await client.batch.get(first)
        await client.batch.get(second)
    steps = [call[0] for call in recorder.calls]
    assert steps.count("wait") >= 1
    wait = steps.index("wait")
    assert steps[wait + 1] == "start"
    assert recorder.calls[wait + 1][3] == f"/batch/{second}"


async def test_get_many_is_one_call_around_its_lookups(recorder):
    """get_many is told as one call, before the calls of its lookups."""
    fake = FakeInkit()
    ids = [fake.add_batch() for _ in range(3)]
    async with fake.client() as client:
        await client.batch.get_many(ids)
    calls = [call for call in recorder.calls if call[0] == "call"]
    assert calls[0][1] == "batch.get_many"
    assert sorted(call[2]["inkit.batch.id"] for call in calls[1:]) == sorted(ids)


async def test_a_plain_observer_hears_nothing_and_changes_nothing(monkeypatch):
    """An observer that overrides nothing hears events and waits and changes no call."""
    monkeypatch.setattr(_state, "shared_observers", lambda root: (Observer(),))
    fake = FakeInkit()
    batch_id = fake.add_batch()
    fake.fail_next(1, 429, retry_after=0.01)
    events = Events()
    async with fake.client(on_event=events, throttle=Throttle(rate_limit=50)) as client:
        await asyncio.gather(client.batch.get(batch_id), client.batch.get_many([batch_id]))
    assert any(isinstance(event, PauseEvent) for event in events)


async def test_the_engine_calls_a_hook_only_on_the_observers_that_override_it():
    """hooked: the interface's no-op defaults are never called on the hot path."""
    recorder, plain, log = Recorder(), Observer(), LogObserver(2)
    assert hooked((log, plain, recorder), "traced") == (recorder,)
    assert hooked((log, plain, recorder), "attempt_started") == (log, recorder)
    work = asyncio.sleep(0, "done")
    assert plain.traced("batch.get", {}, work) is work
    assert await work == "done"
    assert plain.attempt_started("GET", FAKE_BASE_URL + "/batch/x", "/batch/x", 1) is None

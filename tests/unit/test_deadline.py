"""deadline=: the fail-now-or-sleep decision with plain numbers, the error, and the checks.

What happens over a socket (a Retry-After past the deadline, a slot, the throttle, an
attempt, shared lookups) is in tests/functional/test_deadline.py.
"""

from __future__ import annotations

import asyncio
import copy
import math
import pickle

import pytest

from inkit_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncInkit,
    DeadlineExceededError,
    InkitError,
    InternalServerError,
)
from inkit_async._deadline import CallDeadline, overrun
from inkit_async.testing import FakeInkit
from tests.support.constants import TOKEN

# -- overrun: fail now, or sleep ------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "end", "delay", "retry_after", "expected"),
    [
        (0.0, None, 1e9, True, None),  # no deadline: always sleep
        (10.0, 15.0, 1.0, False, None),  # ends at 11, 4 s to spare
        (10.0, 10.5, 5.0, True, "retry_after"),  # the target: Retry-After 5 with 0.5 s left
        (10.0, 11.0, 5.0, False, "backoff"),
        (10.0, 11.0, 1.0, False, "backoff"),  # ends exactly at the deadline: no time to send
        (10.0, 11.0, 0.999, False, None),
        (11.0, 11.0, 0.0, True, "attempt"),  # the deadline passed during the attempt
        (12.0, 11.0, 0.0, False, "attempt"),
        (10.0, 11.0, 0.0, True, None),  # Retry-After: 0 with time left: retry at once
    ],
)
def test_overrun_decides_with_plain_numbers(now, end, delay, retry_after, expected):
    """Sleep only when the sleep ends before the deadline; else name what rules it out."""
    assert overrun(now, end, delay, retry_after=retry_after) == expected


# -- the error ----------------------------------------------------------------------------


def test_the_error_names_the_wait_and_chains_the_last_error():
    """.wait, the message, the cause, may_have_reached_server; an APITimeoutError."""
    deadline = CallDeadline(5.0, "GET /batch/rb_1")
    last = InkitError("503 Service Unavailable from GET /batch/rb_1")
    deadline.last_error = last
    deadline.sent = True
    error = deadline.error("retry_after", 5.0)
    assert error.wait == "retry_after"
    assert error.__cause__ is last
    assert error.may_have_reached_server is True
    assert str(error) == (
        "GET /batch/rb_1 cannot finish within its deadline: the Retry-After of 5 s the "
        "server asked for ends after it"
    )
    assert isinstance(error, APITimeoutError)
    assert isinstance(error, APIConnectionError)
    assert not isinstance(error, TimeoutError)  # as APITimeoutError: not the builtin


@pytest.mark.parametrize(
    ("wait", "words"),
    [
        ("slot", "waiting for a concurrency slot"),
        ("throttle", "waiting for the throttle's leave to send"),
        ("attempt", "during an attempt"),
        ("backoff", "the backoff of 2.5 s before its retry ends after it"),
        ("shared", "waiting for the same lookup another caller started"),
        ("poll", "its next poll would start after it"),
    ],
)
def test_every_wait_is_said_in_words(wait, words):
    """Each wait's message says what ran out."""
    error = CallDeadline(1.0, "GET /batch/rb_1").error(wait, 2.5)
    assert error.wait == wait
    assert words in str(error)
    assert error.__cause__ is None
    assert error.may_have_reached_server is False


def test_a_create_says_whether_the_batch_may_exist():
    """Not sent: no batch was made; sent: it may exist."""
    deadline = CallDeadline(1.0, "POST /batch", create=True)
    assert "no batch was created" in str(deadline.error("slot"))
    deadline.sent = True
    assert "the batch may exist" in str(deadline.error("attempt"))


def test_the_error_pickles_and_copies_with_its_wait():
    """Task queues pickle errors: .wait and may_have_reached_server survive."""
    error = CallDeadline(1.0, "GET /batch/rb_1").error("throttle")
    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error)):  # noqa: S301 - our own
        assert type(again) is DeadlineExceededError
        assert again.wait == "throttle"
        assert again.may_have_reached_server is False
        assert str(again) == str(error)


def test_no_end_means_no_deadline():
    """CallDeadline.of: None without an end, so a call without a deadline carries nothing."""
    assert CallDeadline.of(None, "GET", "/batch/rb_1") is None
    deadline = CallDeadline.of(3.0, "POST", "/batch", may_repeat=False)
    assert deadline is not None
    assert (deadline.end, deadline.what, deadline.create) == (3.0, "POST /batch", True)


def test_extend_runs_to_the_latest_end_and_none_lifts_it():
    """A shared request runs to its callers' latest end; one without a deadline lifts it."""
    deadline = CallDeadline(5.0, "GET /batch/rb_1")
    deadline.extend(3.0)
    assert deadline.end == 5.0
    deadline.extend(8.0)
    assert deadline.end == 8.0
    deadline.extend(None)
    assert deadline.end is None
    deadline.extend(2.0)
    assert deadline.end is None


async def test_a_wait_is_not_started_once_the_deadline_has_passed():
    """within: a passed deadline fails at once, and the wait's coroutine is closed unrun."""
    ran = False

    async def work() -> None:
        nonlocal ran
        ran = True

    now = asyncio.get_running_loop().time()
    deadline = CallDeadline(now - 1.0, "GET /batch/rb_1")
    coroutine = work()
    with pytest.raises(DeadlineExceededError) as info:
        await deadline.within(coroutine, "slot")
    assert info.value.wait == "slot"
    assert not ran
    assert coroutine.cr_frame is None  # closed: no "never awaited" warning


async def test_within_passes_other_timeouts_through():
    """A TimeoutError that is not the deadline's own goes on as it is."""

    async def times_out() -> None:
        raise TimeoutError

    deadline = CallDeadline(asyncio.get_running_loop().time() + 60, "GET /batch/rb_1")
    with pytest.raises(TimeoutError):
        await deadline.within(times_out(), "throttle")


async def test_before_sleep_fails_now_or_lets_the_sleep_go():
    """A sleep past the deadline raises with the retry's error as cause; one that fits does not."""
    now = asyncio.get_running_loop().time()
    deadline = CallDeadline(now + 1.0, "GET /batch/rb_1")
    last = InkitError("503")
    deadline.before_sleep(0.1, retry_after=False, error=last)
    assert deadline.wait == "backoff"
    with pytest.raises(DeadlineExceededError) as info:
        deadline.before_sleep(5.0, retry_after=True, error=last)
    assert info.value.wait == "retry_after"
    assert info.value.__cause__ is last


async def test_before_sleep_fails_the_callers_whose_end_comes_first():
    """Of a shared request's callers, those whose end the sleep passes fail at once."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    deadline = CallDeadline(now + 60.0, "GET /batch/rb_1")
    hurried, patient = loop.create_future(), loop.create_future()
    deadline.watch(now + 0.5, hurried)
    deadline.watch(now + 60.0, patient)
    deadline.before_sleep(1.0, retry_after=True, error=InkitError("503"))
    assert isinstance(hurried.exception(), DeadlineExceededError)
    assert hurried.exception().wait == "retry_after"  # type: ignore[union-attr]
    assert not patient.done()


# -- the option and the keyword: checked before anything is sent --------------------------

MUST = r"^deadline must be"
HOSTILE = [
    (math.nan, ValueError),
    (math.inf, ValueError),
    (-math.inf, ValueError),
    (-1.0, ValueError),
    (0, ValueError),
    (0.0, ValueError),
    (10**400, ValueError),
    (True, TypeError),
    (False, TypeError),
    ("0.5", TypeError),
    (b"1", TypeError),
]


@pytest.mark.parametrize(("value", "error"), HOSTILE)
def test_the_option_refuses_hostile_values(value, error):
    """AsyncInkit(deadline=...) and with_options(deadline=...) check the value by name."""
    with pytest.raises(error, match=MUST):
        AsyncInkit(TOKEN, deadline=value)
    client = AsyncInkit(TOKEN)
    with pytest.raises(error, match=MUST):
        client.with_options(deadline=value)


def test_the_option_reads_back_as_given_and_none_lifts_it():
    """client.deadline; a variant keeps it, changes it, or lifts it with None."""
    client = AsyncInkit(TOKEN, deadline=2)
    assert client.deadline == 2
    assert type(client.deadline) is int
    assert client.with_options(timeout=5).deadline == 2
    assert client.with_options(deadline=0.5).deadline == 0.5
    assert client.with_options(deadline=None).deadline is None
    assert AsyncInkit(TOKEN).deadline is None


@pytest.mark.parametrize(("value", "error"), HOSTILE)
async def test_every_method_refuses_a_hostile_deadline_before_sending(value, error):
    """get, get_many, iter_many, list, watch, wait, create (batch and flow_batch): nothing sent."""
    fake = FakeInkit()
    async with fake.client() as client:
        for resource in (client.batch, client.flow_batch):
            with pytest.raises(error, match=MUST):
                await resource.get("rb_1", deadline=value)
            with pytest.raises(error, match=MUST):
                await resource.get_many(["rb_1"], deadline=value)
            with pytest.raises(error, match=MUST):
                await resource.wait("rb_1", deadline=value)
            with pytest.raises(error, match=MUST):
                resource.iter_many(["rb_1"], deadline=value)
            with pytest.raises(error, match=MUST):
                resource.list(deadline=value)
            with pytest.raises(error, match=MUST):
                resource.watch("rb_1", deadline=value)
        with pytest.raises(error, match=MUST):
            await client.batch.create(
                template_id="tmpl_1", renders=[{"merge_parameters": {}}], deadline=value
            )
    assert fake.requests == []


async def test_a_deadline_that_is_met_changes_nothing():
    """A call within its deadline answers as without one, on every method."""
    fake = FakeInkit()
    fake.add_batch(batch_id="rb_1")
    fake.complete("rb_1")
    async with fake.client(deadline=30) as client:
        assert (await client.batch.get("rb_1", deadline=5)).id == "rb_1"
        assert [b.id for b in await client.batch.get_many(["rb_1"], deadline=5)] == ["rb_1"]
        assert [batch_id async for batch_id, _ in client.batch.iter_many(["rb_1"])] == ["rb_1"]
        assert (await client.batch.wait("rb_1", deadline=5)).id == "rb_1"
        assert [b.id async for b in client.batch.list(deadline=5)] == ["rb_1"]
        assert [b.id async for b in client.batch.watch("rb_1", deadline=5)] == ["rb_1"]
        created = await client.batch.create(
            template_id="tmpl_1", renders=[{"merge_parameters": {}}], deadline=5
        )
        assert created.id


async def test_a_fake_503_with_a_long_retry_after_fails_at_once():
    """In process too: Retry-After 5 against deadline 0.5 ends after one request."""
    fake = FakeInkit()
    fake.add_batch(batch_id="rb_1")
    fake.fail_next(1, 503, retry_after=5)
    async with fake.client(deadline=0.5) as client:
        async with asyncio.timeout(3):
            with pytest.raises(DeadlineExceededError) as info:
                await client.batch.get("rb_1")
    assert info.value.wait == "retry_after"
    assert isinstance(info.value.__cause__, InternalServerError)
    assert len(fake.requests) == 1


def test_a_wait_begun_after_the_deadline_is_blamed_on_the_one_before() -> None:
    """A slot got at the very deadline: the attempt is not started, the slot wait is named.

    Under load the slot came just as the deadline passed, and the error said "attempt"
    for a request that was never sent (tests/functional/test_deadline.py saw it in CI).
    """

    async def run() -> None:
        loop = asyncio.get_running_loop()
        deadline = CallDeadline(loop.time() + 0.05, "GET /batch/rb_2")

        async def slot() -> None:
            await asyncio.sleep(0.1)  # the slot comes after the deadline

        with pytest.raises(DeadlineExceededError) as during:
            await deadline.within(slot(), "slot")
        assert during.value.wait == "slot"

        async def attempt() -> None:
            raise AssertionError("never started")

        work = attempt()
        with pytest.raises(DeadlineExceededError) as after:
            await deadline.within(work, "attempt")
        assert after.value.wait == "slot"
        assert not deadline.sent

    asyncio.run(run())

"""The retry policy as a pure function: ``decide(outcome, attempt, options)`` on plain values.

No client, no server, no event loop: each test builds an outcome (an ``Answer`` or a
``Failure``), says which attempt of which call it was, and reads the decision. The
private module is imported on purpose: it is the unit under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from inkit_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    Backoff,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from inkit_async._config import ClientOptions
from inkit_async._exceptions import DeadlineExceeded
from inkit_async._policy import Answer, Attempt, Fail, Failure, Retry, decide
from tests.support.constants import BASE_URL, TOKEN

#: Backoff without jitter, so each retry's delay is exact: 1, 2, 4, 8, 8 ... seconds.
BACKOFF = Backoff(initial=1, maximum=8, jitter=0)
GET = f"{BASE_URL}/batch/rb_1"


def options(**changes: object) -> ClientOptions:
    """The client's options with a jitter-free backoff, and *changes*."""
    return ClientOptions(api_token=TOKEN, base_url=BASE_URL, backoff=BACKOFF, **changes)


def attempt(retries: int = 0, *, may_repeat: bool = True) -> Attempt:
    """Attempt number ``retries + 1`` of ``GET /batch/rb_1`` (or ``POST /batch``)."""
    if may_repeat:
        return Attempt(method="GET", path="/batch/rb_1", retries=retries, may_repeat=True)
    return Attempt(method="POST", path="/batch", retries=retries, may_repeat=False)


def request(*, may_repeat: bool = True) -> httpx.Request:
    """The request of that call, token included."""
    if may_repeat:
        return httpx.Request("GET", GET, headers={"X-Inkit-API-Token": TOKEN})
    return httpx.Request("POST", f"{BASE_URL}/batch", headers={"X-Inkit-API-Token": TOKEN})


def answer(
    status: int,
    *,
    retry_after: str | None = None,
    content: bytes | None = b'{"error": "busy"}',
    may_repeat: bool = True,
) -> Answer:
    """The server's answer: *status*, an optional Retry-After, the body read (None: too big)."""
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    response = httpx.Response(status, headers=headers, request=request(may_repeat=may_repeat))
    return Answer(response, content)


def failure(error: Exception, *, may_repeat: bool = True) -> Failure:
    """No answer: the transport raised *error* (or the deadline passed)."""
    return Failure(request(may_repeat=may_repeat), error)


def retried(decision: Retry | Fail) -> Retry:
    """The decision, which must be a Retry."""
    assert isinstance(decision, Retry), decision
    return decision


def failed(decision: Retry | Fail) -> Fail:
    """The decision, which must be a Fail."""
    assert isinstance(decision, Fail), decision
    return decision


# -- transport failures ----------------------------------------------------------------

NOT_SENT = [
    (httpx.ConnectError("refused"), APIConnectionError, "failed: refused"),
    (httpx.ConnectTimeout("slow syn"), APITimeoutError, "timed out (ConnectTimeout)"),
    (httpx.PoolTimeout("pool"), APITimeoutError, "timed out (PoolTimeout)"),
]
MAYBE_SENT = [
    (httpx.ReadTimeout("slow"), APITimeoutError, "timed out (ReadTimeout)"),
    (httpx.WriteTimeout("slow"), APITimeoutError, "timed out (WriteTimeout)"),
    (httpx.ReadError("reset"), APIConnectionError, "failed: reset"),
    (httpx.WriteError("broken pipe"), APIConnectionError, "failed: broken pipe"),
    (httpx.RemoteProtocolError("disconnected"), APIConnectionError, "failed: disconnected"),
    (DeadlineExceeded(), APITimeoutError, "timed out"),
]
NEVER_RETRIED = [
    (httpx.UnsupportedProtocol("gopher"), APIConnectionError, "failed: gopher"),
    (httpx.LocalProtocolError("bad header"), APIConnectionError, "failed: bad header"),
    (httpx.DecodingError("bad gzip"), APIConnectionError, "failed: bad gzip"),
]


#: What a create's connection error adds: whether the batch may exist.
MAY_EXIST = (
    ". The request may have reached the server, so the batch may exist; it was not sent again"
)
NOT_CREATED = ". The request never reached the server, so no batch was created"


def name(value: object) -> str:
    """A test id: the exception's class name."""
    return type(value).__name__


@pytest.mark.parametrize("may_repeat", [True, False], ids=["get", "create"])
@pytest.mark.parametrize(("error", "raises", "message"), NOT_SENT, ids=name)
def test_failures_that_never_reached_the_server_are_retried_for_any_call(
    may_repeat, error, raises, message
):
    """Refused, connect or pool timeout: retried after the backoff, even for a create."""
    call = attempt(may_repeat=may_repeat)
    decision = retried(decide(failure(error, may_repeat=may_repeat), call, options()))
    assert decision.delay == 1.0
    # A create's error says no batch was made; a lookup's has nothing to add.
    after = "" if may_repeat else NOT_CREATED
    assert decision.reason == f"{call.what} {message}{after}"
    assert decision.error.may_have_reached_server is False
    assert decision.exception == type(error).__name__
    assert decision.status_code is None
    assert decision.pause == 0.0


@pytest.mark.parametrize(("error", "raises", "message"), MAYBE_SENT, ids=name)
def test_other_transport_failures_are_retried_only_when_the_call_may_repeat(error, raises, message):
    """Read/write timeouts, resets, disconnects, the deadline: a GET retries, a create fails."""
    decision = retried(decide(failure(error), attempt(), options()))
    assert (decision.delay, decision.reason) == (1.0, f"GET /batch/rb_1 {message}")
    # The per-attempt deadline is named as what it is to users: a TimeoutError.
    expected = "TimeoutError" if isinstance(error, DeadlineExceeded) else type(error).__name__
    assert decision.exception == expected
    create = failed(decide(failure(error, may_repeat=False), attempt(may_repeat=False), options()))
    assert type(create.error) is raises
    assert create.error.message == f"POST /batch {message}{MAY_EXIST}"
    assert create.error.may_have_reached_server is True
    assert decision.error.may_have_reached_server is True
    assert create.pause == 0.0


@pytest.mark.parametrize(("error", "raises", "message"), NEVER_RETRIED, ids=name)
def test_failures_another_attempt_cannot_fix_are_never_retried(error, raises, message):
    """An unsupported URL, a request httpx cannot send, a body it cannot decode: fail at once."""
    decision = failed(decide(failure(error), attempt(), options()))
    assert type(decision.error) is raises
    assert decision.error.message == f"GET /batch/rb_1 {message}"


@pytest.mark.parametrize(
    ("error", "raises", "message"), NOT_SENT + MAYBE_SENT + NEVER_RETRIED, ids=name
)
def test_the_error_of_a_failure_names_the_call_and_masks_the_token(error, raises, message):
    """The error a failure raises: its class, 'GET /batch/rb_1 ...', the request token-free."""
    decision = failed(decide(failure(error), attempt(2), options()))
    assert type(decision.error) is raises
    assert str(decision.error) == f"GET /batch/rb_1 {message}"
    assert decision.error.request is not None
    assert decision.error.request.url == GET
    assert decision.error.request.headers["X-Inkit-API-Token"] == "[redacted]"


# -- statuses --------------------------------------------------------------------------

RETRYABLE = [
    (408, "Request Timeout", APIStatusError),
    (429, "Too Many Requests", RateLimitError),
    (500, "Internal Server Error", InternalServerError),
    (502, "Bad Gateway", InternalServerError),
    (503, "Service Unavailable", InternalServerError),
    (504, "Gateway Timeout", InternalServerError),
]


@pytest.mark.parametrize(("status", "phrase", "raises"), RETRYABLE)
def test_retryable_statuses_are_retried_for_a_call_that_may_repeat(status, phrase, raises):
    """408, 429 and 500/502/503/504 are retried, the reason and status on the decision."""
    decision = retried(decide(answer(status, retry_after="2"), attempt(), options()))
    assert decision.reason == f"{status} {phrase}"
    assert decision.status_code == status
    assert decision.exception is None
    assert decision.delay == 2.0


def test_a_create_is_retried_on_429():
    """A 429 to a create is retried: the server refused it without acting on it."""
    outcome = answer(429, retry_after="2", may_repeat=False)
    decision = retried(decide(outcome, attempt(may_repeat=False), options()))
    assert (decision.status_code, decision.delay) == (429, 2.0)


@pytest.mark.parametrize(
    ("status", "phrase", "raises"), [row for row in RETRYABLE if row[0] != 429]
)
def test_a_create_is_not_retried_on_other_retryable_statuses(status, phrase, raises):
    """408 and 5xx to a create fail at once: the batch may have been made."""
    outcome = answer(status, retry_after="2", may_repeat=False)
    error = failed(decide(outcome, attempt(may_repeat=False), options())).error
    assert type(error) is raises
    assert str(error) == f"{status} {phrase} from POST /batch: busy"


@pytest.mark.parametrize(
    ("status", "raises"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (405, APIStatusError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (501, InternalServerError),
        (505, InternalServerError),
        (302, APIStatusError),
    ],
)
def test_other_statuses_fail_at_once_with_their_class(status, raises):
    """Any other non-2xx status fails on the first attempt with its APIStatusError class."""
    decision = failed(decide(answer(status), attempt(), options()))
    assert type(decision.error) is raises
    assert decision.error.status_code == status
    assert decision.pause == 0.0


def test_the_error_of_a_status_carries_the_answer():
    """A status error: message with the API's text, .body, .request_id, token masked."""
    response = httpx.Response(
        404, headers={"x-request-id": "req_7"}, request=request(), json={"error": "no batch"}
    )
    decision = failed(decide(Answer(response, response.content), attempt(), options()))
    error = decision.error
    assert type(error) is NotFoundError
    assert str(error) == "404 Not Found from GET /batch/rb_1: no batch"
    assert error.body == {"error": "no batch"}
    assert error.request_id == "req_7"
    assert error.response.request.headers["X-Inkit-API-Token"] == "[redacted]"


# -- waits -----------------------------------------------------------------------------


@pytest.mark.parametrize(("retries", "delay"), [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (9, 8.0)])
def test_without_retry_after_the_backoff_sets_the_delay(retries, delay):
    """Retry n waits the backoff's n-th delay: doubling from initial, capped at maximum."""
    many = options(max_retries=10)
    assert retried(decide(answer(503), attempt(retries), many)).delay == delay
    assert retried(decide(failure(httpx.ReadError("x")), attempt(retries), many)).delay == delay


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_replace_the_backoff(status):
    """Retry-After: 2.5 is the delay exactly, whatever the backoff would say."""
    assert retried(decide(answer(status, retry_after="2.5"), attempt(1), options())).delay == 2.5


def test_retry_after_as_an_http_date_is_seconds_from_now():
    """A Retry-After date 30 s ahead waits those seconds (less the time gone by)."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    decision = retried(decide(answer(429, retry_after=when), attempt(), options()))
    assert 28 < decision.delay <= 30
    assert decision.pause == decision.delay


@pytest.mark.parametrize("header", ["soon", "-5", "inf", "nan", ""])
def test_unreadable_retry_after_falls_back_to_the_backoff(header):
    """A Retry-After that is neither seconds nor a date is ignored: the backoff applies."""
    decision = retried(decide(answer(503, retry_after=header), attempt(1), options()))
    assert decision.delay == 2.0
    error = failed(decide(answer(429, retry_after=header), attempt(2), options())).error
    assert isinstance(error, RateLimitError)
    assert error.retry_after is None


def in_two_minutes() -> str:
    """An HTTP date 120 s from now (made when the test runs, not when it is collected)."""
    return format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)


TOO_LONG = [lambda: "61", in_two_minutes]


@pytest.mark.parametrize("header", TOO_LONG, ids=["seconds", "http-date"])
def test_429_asking_longer_than_max_retry_after_fails_at_once(header):
    """A 429 wait beyond max_retry_after (60 s) is not made: fail now, pause nobody."""
    decision = failed(decide(answer(429, retry_after=header()), attempt(), options()))
    assert decision.pause == 0.0
    assert isinstance(decision.error, RateLimitError)
    assert decision.error.retry_after is not None
    assert 60 < decision.error.retry_after <= 120


@pytest.mark.parametrize("header", TOO_LONG, ids=["seconds", "http-date"])
def test_503_asking_longer_than_max_retry_after_fails_at_once(header):
    """The cap holds for any retryable status: a 503 asking 61 s or more fails now."""
    decision = failed(decide(answer(503, retry_after=header()), attempt(), options()))
    assert type(decision.error) is InternalServerError
    assert decision.pause == 0.0


def test_retry_after_equal_to_max_retry_after_is_waited_for():
    """The cap is inclusive: Retry-After equal to max_retry_after is honoured."""
    decision = retried(decide(answer(429, retry_after="5"), attempt(), options(max_retry_after=5)))
    assert (decision.delay, decision.pause) == (5.0, 5.0)


# -- pauses ----------------------------------------------------------------------------


def test_429_with_an_honoured_retry_after_pauses_on_retry_and_on_fail():
    """The pause is set whether the call retries (first attempt) or gives up (last one)."""
    limited = answer(429, retry_after="3")
    retry = retried(decide(limited, attempt(0), options()))
    assert (retry.delay, retry.pause) == (3.0, 3.0)
    fail = failed(decide(limited, attempt(2), options()))
    assert fail.pause == 3.0
    assert isinstance(fail.error, RateLimitError)
    assert fail.error.retry_after == 3.0
    create = failed(decide(answer(429, retry_after="3", may_repeat=False),
                           attempt(2, may_repeat=False), options()))  # fmt: skip
    assert create.pause == 3.0


@pytest.mark.parametrize("status", [408, 500, 503])
def test_retry_after_on_other_statuses_sets_no_pause(status):
    """Only a 429 pauses the client; another status's Retry-After is this call's wait only."""
    decision = retried(decide(answer(status, retry_after="3"), attempt(), options()))
    assert (decision.delay, decision.pause) == (3.0, 0.0)


def test_429_without_retry_after_sets_no_pause():
    """A 429 with no Retry-After is retried, but pauses nobody."""
    decision = retried(decide(answer(429), attempt(), options()))
    assert decision.status_code == 429
    assert decision.pause == 0.0


# -- the budget and the body -----------------------------------------------------------


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_max_retries_is_the_last_retry(max_retries):
    """Attempts below max_retries retries retry; the one after the last retry fails."""
    budget = options(max_retries=max_retries)
    for outcome in (answer(503), failure(httpx.ConnectError("refused"))):
        for retries in range(max_retries):
            assert isinstance(decide(outcome, attempt(retries), budget), Retry)
        last = failed(decide(outcome, attempt(max_retries), budget))
        assert isinstance(last.error, InternalServerError | APIConnectionError)


def test_a_429_the_throttle_had_answered_already_is_retried_without_counting():
    """A 429 to a request sent before the last cut: past max_retries it is still retried.

    Only that: any other status, or a 429 whose request left after the cut, fails at
    max_retries; and a Retry-After above max_retry_after still fails at once.
    """
    answered = Attempt(
        method="GET", path="/batch/rb_1", retries=2, may_repeat=True, refusal_answered=True
    )
    budget = options(max_retries=2)
    assert retried(decide(answer(429), answered, budget)).delay == 0.0
    assert retried(decide(answer(429, retry_after="3"), answered, budget)).pause == 3.0
    assert not retried(decide(answer(429), answered, budget)).counted  # the engine's count
    assert retried(decide(answer(429), attempt(1), budget)).counted
    assert retried(decide(answer(503), attempt(1), budget)).counted
    assert isinstance(decide(answer(429), attempt(2), budget), Fail)
    assert isinstance(decide(answer(503), answered, budget), Fail)
    assert isinstance(decide(answer(429, retry_after="61"), answered, budget), Fail)


@pytest.mark.parametrize("status", [200, 429, 503, 404])
def test_a_body_over_the_limit_fails_whatever_the_status(status):
    """An answer whose body was too large to read fails at once, never retried."""
    decision = failed(decide(answer(status, retry_after="1", content=None), attempt(), options()))
    assert type(decision.error) is APIResponseValidationError
    assert decision.error.message == (
        f"GET /batch/rb_1 returned {status} with a body over the limit of 10,485,760 bytes; "
        "it was not read"
    )
    assert decision.error.body is None
    assert decision.error.status_code == status
    assert decision.pause == 0.0

"""What an attempt's outcome means: try again after a delay, or fail with this error.

``decide`` is a pure function of plain values: the outcome of one attempt, which
attempt it was, and the client's options. It performs no I/O and touches no state;
the engine carries out what it returns (sleeps, pauses the client, raises). That is
what makes every retry rule testable with plain values.

The rules:

- A transport failure after which the request certainly did not reach the server
  (connection refused, connect timeout, and a connection the server had closed before
  any byte of the request reached it, which the SDK's transport reports as
  ``httpx.ConnectError``) may be retried for any call. Other transport failures (a
  dropped connection, a read timeout, the deadline) are retried only for a call that
  may run twice (``may_repeat``): a create that may have been received is never sent
  again, and its error says the batch may exist (``may_have_reached_server``).
- A TLS failure (an untrusted or mismatched certificate, a failed handshake) is final:
  trying again cannot change it.
- The statuses 408, 429, 500, 502, 503 and 504 are retried; for a call that must not
  run twice only 429 is, since the server refused it without acting on it.
- Each retry waits the answer's ``Retry-After`` if it has one, else the backoff;
  with flow control on, a 429 without ``Retry-After`` is retried without a backoff of
  its own, since the throttle has cut the rate and paces the retry. A
  ``Retry-After`` longer than ``max_retry_after`` is not waited for: the call fails at
  once.
- A 429 with an honoured ``Retry-After`` also pauses the whole client for that long,
  whether or not this call retries (``pause``).
- A call's ``deadline=`` is not decided here: the engine asks ``_deadline.overrun``
  whether the retry's delay leaves time to send (``Retry.server_asked`` says whether the
  delay is the server's ``Retry-After``).
- After ``max_retries`` retries the call fails with the last outcome's error. A 429 to
  a request sent before the throttle's last cut is retried without counting: the cut
  answered it (``Attempt.refusal_answered``), and ``max_wait`` still bounds the call.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Final

import attrs
import httpx

from ._constants import RETRYABLE_STATUS_CODES
from ._exceptions import (
    DeadlineExceeded,
    InkitError,
    connection_error,
    failure_name,
    oversized_error,
    status_error,
)
from ._retry import parse_retry_after

if TYPE_CHECKING:
    from ._config import ClientOptions

__all__ = ["Answer", "Attempt", "Fail", "Failure", "Retry", "decide"]

# Transport failures after which the request certainly did not reach the server, so
# even a request that must not run twice (a create) may be retried.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Failures worth another attempt for a request that may safely run twice.
_TRANSIENT: Final = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    DeadlineExceeded,
)


# TLS errors that say the connection went away, not that the peer cannot be trusted.
_TLS_TRANSIENT: Final = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLWantReadError)


@attrs.frozen(kw_only=True)
class Attempt:
    """Which attempt of which call an outcome belongs to."""

    method: str
    path: str
    retries: int
    """Retries made before this attempt (0 for the first attempt)."""
    may_repeat: bool
    """Whether the call may safely reach the server twice (false for a create)."""
    refusal_answered: bool = False
    """Whether this is a 429 to a request sent before the throttle's last cut: the cut
    answered it (the request left at the old rate), so its retry does not count against
    ``max_retries``; the throttle's ``max_wait`` still bounds the call."""

    @property
    def what(self) -> str:
        """The call as error messages name it: ``GET /batch/rb_1``."""
        return f"{self.method} {self.path}"


@attrs.frozen
class Answer:
    """The server answered: the response, and its body (``None``: over the size limit)."""

    response: httpx.Response
    content: bytes | None


@attrs.frozen
class Failure:
    """No usable answer: the transport failed, or the attempt's deadline passed."""

    request: httpx.Request
    error: Exception


Outcome = Answer | Failure


@attrs.frozen(kw_only=True)
class Retry:
    """Send the call again after *delay* seconds."""

    delay: float
    reason: str
    error: InkitError
    """What the call raises if the retry cannot happen (no budget, no time)."""
    status_code: int | None = None
    exception: str | None = None
    pause: float = 0.0
    """Seconds every caller of the client holds back (a 429's ``Retry-After``)."""
    counted: bool = True
    """Whether the retry counts against ``max_retries``: not when the throttle's cut
    answered the refusal (``Attempt.refusal_answered``)."""
    server_asked: bool = False
    """Whether *delay* is the server's ``Retry-After`` (else the backoff, or none)."""


@attrs.frozen(kw_only=True)
class Fail:
    """Give up: raise *error*."""

    error: InkitError
    pause: float = 0.0
    """Seconds every caller of the client holds back (a 429's ``Retry-After``)."""


def decide(outcome: Outcome, attempt: Attempt, options: ClientOptions) -> Retry | Fail:
    """Decide what a non-successful outcome means (the rules are in the module docstring)."""
    if isinstance(outcome, Failure):
        return _decide_failure(outcome, attempt, options)
    return _decide_answer(outcome, attempt, options)


def _is_tls_failure(failure: BaseException) -> bool:
    """Whether a TLS problem (certificate, handshake) lies anywhere in the failure's chain."""
    seen: set[int] = set()
    cause: BaseException | None = failure
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, _TLS_TRANSIENT):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _decide_failure(outcome: Failure, attempt: Attempt, options: ClientOptions) -> Retry | Fail:
    failure = outcome.error
    not_sent = isinstance(failure, _NOT_SENT)
    error = connection_error(
        attempt.what,
        failure,
        outcome.request,
        reached=not not_sent,
        create=not attempt.may_repeat,
    )
    if _is_tls_failure(failure):
        return Fail(error=error)
    if isinstance(failure, httpx.ProxyError):
        # The proxy refused the tunnel (its answer, such as 407, is final): the request
        # never reached the API.
        return Fail(
            error=connection_error(
                attempt.what, failure, outcome.request, reached=False, create=not attempt.may_repeat
            )
        )
    retryable = not_sent or (attempt.may_repeat and isinstance(failure, _TRANSIENT))
    if not retryable or attempt.retries >= options.max_retries:
        return Fail(error=error)
    return Retry(
        delay=options.backoff.delay(attempt.retries),
        reason=error.message,
        error=error,
        exception=failure_name(failure),
    )


def _decide_answer(outcome: Answer, attempt: Attempt, options: ClientOptions) -> Retry | Fail:
    response, content = outcome.response, outcome.content
    if content is None:
        return Fail(error=oversized_error(attempt.what, response))
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    too_long = retry_after is not None and retry_after > options.max_retry_after
    pause = retry_after if status == 429 and retry_after is not None and not too_long else 0.0
    retryable = status in RETRYABLE_STATUS_CODES and (attempt.may_repeat or status == 429)
    error = status_error(attempt.what, response, content, retry_after)
    answered = status == 429 and attempt.refusal_answered
    spent = attempt.retries >= options.max_retries and not answered
    if not retryable or too_long or spent:
        return Fail(error=error, pause=pause)
    if retry_after is not None:
        delay = retry_after
    elif status == 429 and options.adaptive:
        delay = 0.0
    else:
        delay = options.backoff.delay(attempt.retries)
    return Retry(
        delay=delay,
        # The masked copy's phrase: a server may echo the token anywhere.
        reason=f"{status} {error.response.reason_phrase}".rstrip(),
        error=error,
        status_code=status,
        pause=pause,
        counted=not answered,
        server_asked=retry_after is not None,
    )

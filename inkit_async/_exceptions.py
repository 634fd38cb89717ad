"""Everything the SDK raises on purpose.

The tree::

    InkitError                       anything raised by the SDK on purpose
    ├── WaitTimeoutError             batch.wait() gave up (also a builtin TimeoutError)
    ├── APIConnectionError           no usable response: refused, dropped, reset
    │   └── APITimeoutError          ... because an attempt ran out of time
    ├── APIResponseValidationError   a body the SDK cannot use: not JSON, wrong shape, too large
    └── APIStatusError               a non-2xx response
        ├── BadRequestError              400
        ├── AuthenticationError          401
        ├── PermissionDeniedError        403
        ├── NotFoundError                404
        ├── ConflictError                409
        ├── UnprocessableEntityError     422
        ├── RateLimitError               429 (``.retry_after``)
        └── InternalServerError          >= 500

Bad arguments raise the builtin ``ValueError`` or ``TypeError`` before any request is
sent. No ``httpx`` exception escapes a public call: transport failures become
``APIConnectionError`` with the original as ``__cause__``.

The API token never appears in an exception: messages name the method and the path
only, and the ``httpx`` objects attached as ``.request`` and ``.response`` are copies
whose token header is masked.

Every error the client raises is built here, by the functions at the end of the module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, cast

import httpx

from ._body import parse_json_or_text
from ._constants import MAX_RESPONSE_BYTES, TOKEN_HEADER

if TYPE_CHECKING:
    from ._models import Batch

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InkitError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnprocessableEntityError",
    "WaitTimeoutError",
]


class InkitError(Exception):
    """Root of every exception the SDK raises on purpose.

    Catch this to handle any failure of a call; catch a subclass to handle one kind.
    """

    message: str
    """A one-line description of what went wrong; also ``str(error)``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle and copy by message and attributes, whatever the subclass's arguments.

        Task queues, process pools and error reporters pickle exceptions; the default
        way calls ``cls(*args)``, which the keyword-only arguments of the subclasses
        refuse. The attached ``httpx`` objects are the masked copies.
        """
        return (_rebuild, (type(self), self.message), dict(self.__dict__))


def _rebuild(cls: type[InkitError], message: str) -> InkitError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


class WaitTimeoutError(InkitError, TimeoutError):
    """``batch.wait(..., timeout=...)`` ran out of time before the batch finished.

    Also a builtin ``TimeoutError``, so ``except TimeoutError`` catches it too.
    """

    batch: Batch | None
    """The last snapshot seen before giving up, or ``None`` if no poll completed."""

    def __init__(self, message: str, *, batch: Batch | None = None) -> None:
        super().__init__(message)
        self.batch = batch


class APIConnectionError(InkitError):
    """No usable response: the connection was refused, reset, dropped or timed out.

    Raised after the retry budget is spent. The underlying ``httpx`` exception is the
    ``__cause__``.
    """

    request: httpx.Request | None
    """The request that failed (token masked), when one was built."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.request = request


class APITimeoutError(APIConnectionError):
    """An attempt ran out of time (connect, write, read or the per-attempt deadline)."""


class APIResponseValidationError(InkitError):
    """A response whose body cannot be used: not JSON, not the documented shape, or too large.

    The message names the offending field path (``$.total``,
    ``$.destinations['x'].count``). A body over the size limit (10 MiB) is not read at
    all. Not retried: the same request would get the same body.
    """

    response: httpx.Response
    """The response (token masked in its ``.request``)."""
    body: object
    """The parsed JSON body, the text when it is not JSON, ``None`` when not read."""
    status_code: int
    """The response's HTTP status."""

    def __init__(self, message: str, *, response: httpx.Response, body: object) -> None:
        super().__init__(message)
        self.response = response
        self.body = body
        self.status_code = response.status_code


class APIStatusError(InkitError):
    """The API answered with a non-2xx status.

    A status without a subclass of its own (405, 410, 418, ...) raises this class.
    """

    status_code: int
    """The HTTP status."""
    response: httpx.Response
    """The response (token masked in its ``.request``)."""
    body: object
    """The parsed JSON body if it is JSON, else its text (``None`` when empty)."""
    request_id: str | None
    """The ``x-request-id`` (or ``request-id``) response header, for support tickets."""

    def __init__(self, message: str, *, response: httpx.Response, body: object) -> None:
        super().__init__(message)
        self.response = response
        self.body = body
        self.status_code = response.status_code
        self.request_id = response.headers.get("x-request-id") or response.headers.get("request-id")


class BadRequestError(APIStatusError):
    """400: the API rejected the request as malformed."""


class AuthenticationError(APIStatusError):
    """401: the token is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """403: the token lacks the role for this call."""


class NotFoundError(APIStatusError):
    """404: no such batch (or resource) for this token."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the resource's current state."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was well-formed but its values were rejected."""


class RateLimitError(APIStatusError):
    """429: too many requests.

    Retried within the retry budget; raised when the budget is spent, or at once when
    the server asks for a pause longer than the client's ``max_retry_after``.
    """

    retry_after: float | None
    """Seconds the server asked to wait (from ``Retry-After``), or ``None``."""

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        body: object,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, response=response, body=body)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """A status of 500 or above: the server (or a proxy in front of it) failed."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def _status_error_class(status_code: int) -> type[APIStatusError]:
    """Return the exception class for a non-2xx status."""
    if status_code >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status_code, APIStatusError)


def _api_error_text(body: object) -> str | None:
    """Find the API's own error message in an error body, if it has one.

    The error shape is undocumented; seen shapes are ``{"error": "..."}``,
    ``{"message": "..."}``, ``{"error": {"message": "..."}}`` and ``{"detail": "..."}``.
    """
    if isinstance(body, dict):
        fields = cast("dict[str, object]", body)
        for key in ("message", "error", "detail", "error_description"):
            value = fields.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict):
                nested = _api_error_text(cast("object", value))
                if nested:
                    return nested
    return None


# -- building errors (package-internal) ---------------------------------------------------

_REDACTED: Final = "[redacted]"


class DeadlineExceeded(Exception):  # noqa: N818 - private; it becomes APITimeoutError
    """An attempt ran past its end-to-end deadline (never raised to users)."""


def failure_name(failure: BaseException) -> str:
    """How events and logs name a transport failure (the deadline is a ``TimeoutError``)."""
    return "TimeoutError" if isinstance(failure, DeadlineExceeded) else type(failure).__name__


def redacted_request(request: httpx.Request) -> httpx.Request:
    """A copy of *request* whose token header is masked."""
    headers = request.headers.copy()
    if TOKEN_HEADER in headers:
        headers[TOKEN_HEADER] = _REDACTED
    return httpx.Request(request.method, request.url, headers=headers, content=request.content)


def _detached_response(
    response: httpx.Response, content: bytes, request: httpx.Request
) -> httpx.Response:
    """A copy of *response* with its body in memory and its request's token masked."""
    headers = response.headers.copy()
    # `content` is already decoded; a kept Content-Encoding would decode it twice.
    headers.pop("content-encoding", None)
    headers.pop("content-length", None)
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=content,
        request=redacted_request(request),
        extensions={
            key: response.extensions[key]
            for key in ("http_version", "reason_phrase")
            if key in response.extensions
        },
    )


def status_error(
    what: str, response: httpx.Response, content: bytes, retry_after: float | None
) -> APIStatusError:
    """The error for a non-2xx answer to *what* (``"GET /batch/x"``)."""
    body = parse_json_or_text(content, response.encoding)
    status = response.status_code
    message = f"{status} {response.reason_phrase} from {what}".rstrip()
    detail = _api_error_text(body)
    if (
        detail is None
        and isinstance(body, str)
        and "html" not in response.headers.get("content-type", "")
    ):
        detail = " ".join(body.split())[:200] or None
    if detail:
        message = f"{message}: {detail}"
    cls = _status_error_class(status)
    detached = _detached_response(response, content, response.request)
    if cls is RateLimitError:
        return RateLimitError(message, response=detached, body=body, retry_after=retry_after)
    return cls(message, response=detached, body=body)


def connection_error(
    what: str, failure: BaseException, request: httpx.Request
) -> APIConnectionError:
    """The error for a transport failure (or a passed deadline) of *what*."""
    redacted = redacted_request(request)
    if isinstance(failure, DeadlineExceeded):
        return APITimeoutError(f"{what} timed out", request=redacted)
    if isinstance(failure, httpx.TimeoutException):
        return APITimeoutError(f"{what} timed out ({type(failure).__name__})", request=redacted)
    reason = str(failure) or type(failure).__name__
    return APIConnectionError(f"{what} failed: {reason}", request=redacted)


def oversized_error(what: str, response: httpx.Response) -> APIResponseValidationError:
    """The error for an answer whose body is over the size limit (it was not read)."""
    return APIResponseValidationError(
        f"{what} returned {response.status_code} with a body over the limit of "
        f"{MAX_RESPONSE_BYTES:,} bytes; it was not read",
        response=_detached_response(response, b"", response.request),
        body=None,
    )


def not_json_error(
    what: str, response: httpx.Response, content: bytes, problem: ValueError
) -> APIResponseValidationError:
    """The error for a 2xx answer whose body is not JSON."""
    return APIResponseValidationError(
        f"{what} returned {response.status_code} with a body that is not JSON: {problem}",
        response=_detached_response(response, content, response.request),
        body=content.decode("utf-8", errors="replace"),
    )


def shape_error(
    what: str, response: httpx.Response, content: bytes, data: object, problem: Exception
) -> APIResponseValidationError:
    """The error for a 2xx answer whose JSON does not fit the record asked for."""
    return APIResponseValidationError(
        f"{what} returned an unexpected body: {problem}",
        response=_detached_response(response, content, response.request),
        body=data,
    )

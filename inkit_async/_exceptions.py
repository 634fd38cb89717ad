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

The API token never appears in an exception, nor in anything reachable from one but
the frames of its traceback. Messages name the method and the path, and any text from
the server in them (the reason phrase, the API's message, a transport failure's text)
has the token masked as ``[redacted]``: a server may echo it back. So do ``.body`` and
the ``httpx`` objects attached as ``.request`` and ``.response`` (copies, headers and
reason phrase masked too), and the ``.request`` of each httpx exception in the
``__cause__`` chain. The token to mask is the one the request carried, read from its
``X-Inkit-API-Token`` header.

Hostile answers stay bounded: the API's own text in a message is one printable line
(whitespace collapsed, control characters escaped) of at most ``MAX_ERROR_DETAIL`` (500)
characters, the reason phrase at most 100, each cut with an ellipsis; the whole body
stays in ``.body``. A body is kept as JSON only up to ``MAX_JSON_DEPTH`` (64) levels of
nesting, else as its text, so printing, copying or pickling an error never recurses
deeply.

Every error the client raises is built here, by the functions at the end of the module.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final, cast

import httpx

from ._body import nests_deeper_than, parse_json_or_text
from ._constants import MAX_ERROR_DETAIL, MAX_JSON_DEPTH, MAX_RESPONSE_BYTES, TOKEN_HEADER

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
    ``__cause__``. For a create, the message also says whether the batch may exist.
    """

    request: httpx.Request | None
    """The request that failed (token masked), when one was built."""
    may_have_reached_server: bool
    """Whether the request may have reached the server. ``False`` only when it provably
    did not: the connection was refused or never opened, the call gave up before sending,
    or the server had closed the connection before any byte of the request reached it.
    For a create, ``True`` means the batch may exist: the SDK did not send it again, so
    look for it (``list(search=...)``) before creating it again."""

    def __init__(
        self,
        message: str,
        *,
        request: httpx.Request | None = None,
        may_have_reached_server: bool = True,
    ) -> None:
        super().__init__(message)
        self.request = request
        self.may_have_reached_server = may_have_reached_server


class APITimeoutError(APIConnectionError):
    """An attempt ran out of time (connect, write, read or the per-attempt deadline)."""


class APIResponseValidationError(InkitError):
    """A response whose body cannot be used: not JSON, not the documented shape, or too large.

    The message names the offending field path (``$.total``,
    ``$.destinations['x'].count``). A body over the size limit (10 MiB) is not read at
    all. Not retried: the same request would get the same body.
    """

    response: httpx.Response
    """A copy of the response, its body read, the token masked in it and its ``.request``."""
    body: object
    """The parsed JSON body, the text when it is not JSON (or nests over 64 levels),
    ``None`` when not read; the token masked."""
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
    """A copy of the response, its body read, the token masked in it and its ``.request``."""
    body: object
    """The parsed JSON body if it is JSON, else its text (``None`` when empty), whole and
    with the token masked; JSON nested over 64 levels is kept as its text."""
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
#
# Every text below that comes from the server (the reason phrase, the API's message, a
# transport failure's text) is masked of the token, made one printable line (whitespace
# collapsed, control characters escaped, so it cannot forge log lines or drive a
# terminal) and cut: the reason phrase at 100 characters, anything else at
# MAX_ERROR_DETAIL (500), with an ellipsis. The whole body stays in `.body`.

_REDACTED: Final = "[redacted]"
_REDACTED_BYTES: Final = _REDACTED.encode()
_MAX_REASON: Final = 100
_ELLIPSIS: Final = "\N{HORIZONTAL ELLIPSIS}"
_UNREAD: Final = b""


class DeadlineExceeded(Exception):  # noqa: N818 - private; it becomes APITimeoutError
    """An attempt ran past its end-to-end deadline (never raised to users)."""


def failure_name(failure: BaseException) -> str:
    """How events and logs name a transport failure (the deadline is a ``TimeoutError``)."""
    return "TimeoutError" if isinstance(failure, DeadlineExceeded) else type(failure).__name__


class _Secret:
    """The token a request carried, and masking it out of what is built from an answer.

    The builders learn the token from the request itself (its ``X-Inkit-API-Token``
    header), so they mask exactly what was sent, whoever built the request, and need no
    argument for it. The token is visible ASCII (``ClientOptions`` checks it), so it is
    the same in bytes and in text.

    Masking is idempotent: text already masked is left as it is, and a ``[redacted]``
    is never searched for the token (a short token could be part of the word).
    """

    __slots__ = ("raw", "text")

    def __init__(self, request: httpx.Request | None) -> None:
        token = request.headers.get(TOKEN_HEADER) if request is not None else None
        self.text = token if token and token != _REDACTED else None
        self.raw = self.text.encode() if self.text else None

    def exposed(self, text: str) -> bool:
        """Whether *text* holds the token outside the ``[redacted]`` already in it."""
        token = self.text
        if token is None or token not in text:
            return False
        return any(token in piece for piece in text.split(_REDACTED))

    def mask(self, text: str) -> str:
        """*text* with every occurrence of the token replaced by ``[redacted]``."""
        token = self.text
        if token is None or not self.exposed(text):
            return text
        return _REDACTED.join(piece.replace(token, _REDACTED) for piece in text.split(_REDACTED))

    def mask_bytes(self, data: bytes) -> bytes:
        """*data* with every occurrence of the token replaced by ``[redacted]``."""
        token = self.raw
        if token is None or token not in data:
            return data
        pieces = data.split(_REDACTED_BYTES)
        return _REDACTED_BYTES.join(piece.replace(token, _REDACTED_BYTES) for piece in pieces)

    def held_by(self, data: object) -> bool:
        """Whether the token is in any string (key or value) of decoded JSON, at any depth."""
        if self.text is None:
            return False
        pending = [data]
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                if self.exposed(item):
                    return True
            elif isinstance(item, dict):
                pending.extend(cast("dict[object, object]", item).keys())
                pending.extend(cast("dict[object, object]", item).values())
            elif isinstance(item, list):
                pending.extend(cast("list[object]", item))
        return False

    def mask_data(self, data: object) -> object:
        """A copy of decoded JSON with the token masked in every string (at most 64 deep)."""
        if isinstance(data, str):
            return self.mask(data)
        if isinstance(data, dict):
            fields = cast("dict[object, object]", data)
            return {self.mask_data(key): self.mask_data(value) for key, value in fields.items()}
        if isinstance(data, list):
            return [self.mask_data(item) for item in cast("list[object]", data)]
        return data


def _one_line(text: str, limit: int) -> str:
    """*text* as one printable line of at most *limit* characters (an ellipsis marks a cut)."""
    line = " ".join(text[: limit * 8].split())
    if not line.isprintable():
        line = "".join(char if char.isprintable() else ascii(char)[1:-1] for char in line)
    return line if len(line) <= limit else line[: limit - 1] + _ELLIPSIS


def _kept(
    content: bytes, encoding: str | None, secret: _Secret, body: object
) -> tuple[bytes, object]:
    r"""The body and the response content to keep on an error, neither holding the token.

    *content* has had the literal token masked already. What is left is the token
    spelled in JSON escapes (``\u0074ok...``), or in an encoding that is not ASCII
    (UTF-16): a body that decodes to the token is masked after decoding, and the content
    becomes the masked body encoded again. A body nested too deeply to mask that way
    (over ``MAX_JSON_DEPTH``) and still spelling the token is dropped.
    """
    if secret.text is None:
        return content, body
    charset = encoding or "utf-8"
    if isinstance(body, str):
        if secret.exposed(body):  # an encoding that is not ASCII-compatible
            body = secret.mask(body)
            content = body.encode(charset, errors="replace")
        elif b"\\" in content:  # a text body kept because it nests too deeply
            try:
                decoded = json.loads(content)
            except (ValueError, RecursionError):
                return content, body
            if secret.held_by(decoded):
                return _UNREAD, None
        return content, body
    if secret.held_by(body):
        body = secret.mask_data(body)
        content = json.dumps(body, ensure_ascii=False).encode(charset, errors="replace")
    return content, body


def _sever(problem: BaseException, secret: _Secret) -> None:
    """Mask *problem*, the decoder's or the converter's own exception, in place.

    The engine raises the error while handling *problem*, so *problem* becomes the
    error's ``__context__``: it must hold nothing unmasked either. A JSON decoder's
    error keeps the whole document (``.doc``); the converter's chains to cattrs'
    exceptions, which quote the values they refused. The links are cut, the texts masked.
    """
    problem.args = tuple(secret.mask(arg) if isinstance(arg, str) else arg for arg in problem.args)
    if isinstance(problem, json.JSONDecodeError):
        problem.doc = secret.mask(problem.doc)
    problem.__cause__ = None
    problem.__context__ = None


def redacted_request(request: httpx.Request) -> httpx.Request:
    """A copy of *request* whose token header is masked (a streamed body is left out)."""
    headers = request.headers.copy()
    if TOKEN_HEADER in headers:
        headers[TOKEN_HEADER] = _REDACTED
    try:
        content = request.content
    except httpx.RequestNotRead:  # a caller's hook re-sent a streaming request
        content = b""
    return httpx.Request(request.method, request.url, headers=headers, content=content)


def _detached_response(
    response: httpx.Response, content: bytes, secret: _Secret, request: httpx.Request
) -> httpx.Response:
    """A copy of *response* with its body in memory and the token masked everywhere.

    *content* is the body to keep (already masked); *request* the masked request. The
    response's headers and reason phrase are masked too: a server can echo the token in
    any of them.
    """
    # `content` is already decoded; a kept Content-Encoding would decode it twice.
    headers = [
        (secret.mask_bytes(name), secret.mask_bytes(value))
        for name, value in response.headers.raw
        if name.lower() not in {b"content-encoding", b"content-length"}
    ]
    extensions: dict[str, object] = {}
    if "http_version" in response.extensions:
        extensions["http_version"] = response.extensions["http_version"]
    reason = response.extensions.get("reason_phrase")
    if isinstance(reason, bytes):
        extensions["reason_phrase"] = secret.mask_bytes(reason)
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=content,
        request=request,
        extensions=extensions,
    )


def scrub_failure(
    failure: BaseException, request: httpx.Request, masked: httpx.Request | None = None
) -> BaseException:
    """*failure*, with every httpx request and response in its chain masked; in place.

    A caller's ``http_client`` attaches the real request, token and all, to the httpx
    exception it raises, and the SDK raises that exception as the ``__cause__`` of its
    own: every httpx exception along ``__cause__`` and ``__context__`` gets a masked copy
    instead (*masked*, when given, for *request* itself).
    """
    masked = masked or redacted_request(request)
    seen: set[int] = set()
    pending: list[BaseException] = [failure]
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, httpx.HTTPError):
            _scrub_httpx_error(error, request, masked)
        pending.extend(link for link in (error.__cause__, error.__context__) if link is not None)
    return failure


def _scrub_httpx_error(
    error: httpx.HTTPError, request: httpx.Request, masked: httpx.Request
) -> None:
    try:
        attached = error.request
    except RuntimeError:  # no request attached (the SDK's own transport attaches none)
        attached = None
    if attached is not None and attached.headers.get(TOKEN_HEADER) not in {None, _REDACTED}:
        error.request = masked if attached is request else redacted_request(attached)
    if isinstance(error, httpx.HTTPStatusError):
        response = error.response
        secret = _Secret(response.request)
        content = secret.mask_bytes(response.content if hasattr(response, "_content") else b"")
        error.response = _detached_response(response, content, secret, error.request)


def status_error(
    what: str, response: httpx.Response, content: bytes, retry_after: float | None
) -> APIStatusError:
    """The error for a non-2xx answer to *what* (``"GET /batch/x"``)."""
    secret = _Secret(response.request)
    content = secret.mask_bytes(content)
    content, body = _kept(
        content, response.encoding, secret, parse_json_or_text(content, response.encoding)
    )
    detached = _detached_response(response, content, secret, redacted_request(response.request))
    status = response.status_code
    reason = _one_line(detached.reason_phrase, _MAX_REASON)
    message = f"{status} {reason} from {what}".rstrip()
    detail = _api_error_text(body)
    if (
        detail is None
        and isinstance(body, str)
        and "html" not in response.headers.get("content-type", "")
    ):
        detail = body
    if detail:
        line = _one_line(detail, MAX_ERROR_DETAIL)
        if line:
            message = f"{message}: {line}"
    message = secret.mask(message)
    cls = _status_error_class(status)
    if cls is RateLimitError:
        return RateLimitError(message, response=detached, body=body, retry_after=retry_after)
    return cls(message, response=detached, body=body)


def connection_error(
    what: str,
    failure: BaseException,
    request: httpx.Request,
    *,
    reached: bool = True,
    create: bool = False,
) -> APIConnectionError:
    """The error for a transport failure (or a passed deadline) of *what*.

    *reached* says whether the request may have reached the server (the error's
    ``may_have_reached_server``); for a *create* (a call that must not run twice) the
    message says what that means: whether the batch may exist. The httpx exceptions in
    *failure*'s chain get the masked request (``scrub_failure``).
    """
    secret = _Secret(request)
    redacted = redacted_request(request)
    scrub_failure(failure, request, redacted)
    after = (_MAY_EXIST if reached else _NOT_CREATED) if create else ""
    cls: type[APIConnectionError]
    if isinstance(failure, DeadlineExceeded):
        message, cls = f"{what} timed out", APITimeoutError
    elif isinstance(failure, httpx.TimeoutException):
        message, cls = f"{what} timed out ({type(failure).__name__})", APITimeoutError
    else:
        reason = _one_line(secret.mask(str(failure)), MAX_ERROR_DETAIL) or type(failure).__name__
        message, cls = f"{what} failed: {reason}", APIConnectionError
    return cls(secret.mask(message) + after, request=redacted, may_have_reached_server=reached)


# What a create's connection error adds, by whether the request may have reached the server.
_MAY_EXIST: Final = (
    ". The request may have reached the server, so the batch may exist; it was not sent again"
)
_NOT_CREATED: Final = ". The request never reached the server, so no batch was created"


def oversized_error(what: str, response: httpx.Response) -> APIResponseValidationError:
    """The error for an answer whose body is over the size limit (it was not read)."""
    secret = _Secret(response.request)
    return APIResponseValidationError(
        secret.mask(
            f"{what} returned {response.status_code} with a body over the limit of "
            f"{MAX_RESPONSE_BYTES:,} bytes; it was not read"
        ),
        response=_detached_response(response, _UNREAD, secret, redacted_request(response.request)),
        body=None,
    )


def not_json_error(
    what: str, response: httpx.Response, content: bytes, problem: Exception
) -> APIResponseValidationError:
    """The error for a 2xx answer whose body is not JSON, or nests too deeply to decode.

    *problem* is the ``ValueError`` of the decoder, or its ``RecursionError``.
    """
    secret = _Secret(response.request)
    _sever(problem, secret)
    content = secret.mask_bytes(content)
    text = content.decode("utf-8", errors="replace")
    content, body = _kept(content, response.encoding, secret, text)
    if isinstance(problem, RecursionError):
        message = f"{what} returned {response.status_code} with JSON nested too deeply to decode"
    else:
        reason = _one_line(str(problem), MAX_ERROR_DETAIL)
        message = f"{what} returned {response.status_code} with a body that is not JSON: {reason}"
    return APIResponseValidationError(
        secret.mask(message),
        response=_detached_response(response, content, secret, redacted_request(response.request)),
        body=body,
    )


def shape_error(
    what: str, response: httpx.Response, content: bytes, data: object, problem: Exception
) -> APIResponseValidationError:
    """The error for a 2xx answer whose JSON does not fit the record asked for.

    ``.body`` is *data*, the decoded JSON; nested deeper than ``MAX_JSON_DEPTH``, its text.
    """
    secret = _Secret(response.request)
    _sever(problem, secret)
    content = secret.mask_bytes(content)
    if nests_deeper_than(data, MAX_JSON_DEPTH):
        data = content.decode(response.encoding or "utf-8", errors="replace")
    content, body = _kept(content, response.encoding, secret, data)
    reason = _one_line(str(problem), MAX_ERROR_DETAIL)
    return APIResponseValidationError(
        secret.mask(f"{what} returned an unexpected body: {reason}"),
        response=_detached_response(response, content, secret, redacted_request(response.request)),
        body=body,
    )

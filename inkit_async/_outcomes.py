"""From what a sender gave back to what a call returns, or to what its error carries.

The engine sends plain records (``_wire.py``). A usable 2xx becomes the caller's record
here (``cast_reply``) with no httpx object made; a client that keeps responses
remembers it as the answer behind that record (``_responses.py``). Anything else
becomes the ``Answer`` or ``Failure`` that ``decide`` reads (``answer_of``,
``failure_of``), with the ``httpx.Request`` and ``httpx.Response`` its error will carry
built now: the errors keep httpx's types, whichever library sent the request. Each
httpx request carries the client's ``Secrets`` (``SECRETS_EXTENSION``), so the error
built from it masks them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ._constants import TOKEN_HEADER
from ._converter import ShapeError
from ._exceptions import SECRETS_EXTENSION, DeadlineExceeded, not_json_error, shape_error
from ._policy import Answer, Failure
from ._responses import keep
from ._wire import TransportFailure

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._wire import Reply, Request

__all__ = ["answer_of", "cast_reply", "failure_of", "json_bytes", "no_content"]

T = TypeVar("T")


def json_bytes(body: object) -> bytes:
    """*body* as JSON, as httpx encodes ``json=`` (compact, UTF-8, no NaN)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def no_content(_: object) -> None:
    """The cast of a call whose 2xx carries nothing to read (a delete's 204).

    ``cast_reply`` does not decode the body for it: any 2xx is success, whatever it holds.
    """


def cast_reply(reply: Reply, cast: Callable[[Any], T], method: str, path: str, call: Request) -> T:
    """``cast`` of a 2xx's JSON, or the ``APIResponseValidationError`` of a body that fails.

    Args:
        reply: The usable 2xx.
        cast: Builds the caller's record; raises ``ShapeError`` when the JSON does not fit.
        method: The call's method, for the error's message.
        path: The call's path, for the message and the error's request.
        call: A request of the client with the API's root as its URL: what the error's
            httpx request is made from (only when there is an error).

    Raises:
        APIResponseValidationError: The body is not JSON, is nested too deeply to
            decode, or does not fit ``cast``.
    """
    if cast is no_content:
        return cast(None)
    what = f"{method} {path}"
    content = reply.content or b""
    try:
        data = json.loads(content)
    except (ValueError, RecursionError) as exc:  # not JSON, or nested too deeply
        response = _response(_of_call(call, method, path), reply)
        raise not_json_error(what, response, content, exc) from None
    try:
        record = cast(data)
    except ShapeError as exc:
        response = _response(_of_call(call, method, path), reply)
        raise shape_error(what, response, content, data, exc) from None
    if reply.elapsed is not None:  # the client keeps responses: the engine timed it
        keep(record, reply, call.secrets)
    return record


def answer_of(request: Request, reply: Reply) -> Answer:
    """The outcome of an answer the call cannot use as it is (a non-2xx, a body too large)."""
    if reply.sent_token is not None:  # what the answer may echo: masked too
        request = request._replace(headers={**request.headers, TOKEN_HEADER: reply.sent_token})
    return Answer(_response(request, reply), reply.content)


def failure_of(request: Request, failure: TransportFailure | TimeoutError) -> Failure:
    """The outcome of an attempt that got no answer: the sender failed, or the deadline passed.

    A passed deadline is the private ``DeadlineExceeded``, its cause the ``TimeoutError``.
    """
    error: BaseException
    if isinstance(failure, TransportFailure):
        error = _as_httpx_error(failure)
    else:
        error = DeadlineExceeded()
        error.__cause__ = failure
    return Failure(_httpx_request(request), error)


def _of_call(call: Request, method: str, path: str) -> Request:
    return call._replace(method=method, url=call.url + path)


def _httpx_request(request: Request) -> httpx.Request:
    """The httpx request an error carries (it masks the credentials the request names)."""
    return httpx.Request(
        request.method,
        request.url,
        headers=request.headers,
        content=request.body,
        extensions={SECRETS_EXTENSION: request.secrets},
    )


def _response(request: Request, reply: Reply) -> httpx.Response:
    """The httpx response an error carries, for an answer the call cannot use."""
    # The body is decoded already: a kept Content-Encoding would decode it twice.
    headers = [
        (name, value)
        for name, value in reply.headers
        if name.lower() not in {b"content-encoding", b"content-length"}
    ]
    extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
    if reply.reason:
        extensions["reason_phrase"] = reply.reason.encode("ascii", "replace")
    return httpx.Response(
        reply.status,
        headers=headers,
        content=reply.content or b"",
        request=_httpx_request(request),
        extensions=extensions,
    )


def _as_httpx_error(failure: TransportFailure) -> httpx.HTTPError:
    """The httpx exception of a failure's kind, for the error built from it.

    An httpx exception a caller's client raised (a hook's ``HTTPStatusError`` too) is
    kept as it is; any other cause is chained to a new one of the failure's kind.
    """
    cause = failure.__cause__
    if isinstance(cause, httpx.HTTPError):
        return cause
    error: httpx.HTTPError = getattr(httpx, failure.kind)(failure.message)
    error.__cause__ = cause
    return error

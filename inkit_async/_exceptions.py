"""Everything the SDK raises on purpose.

The tree::

    InkitError                       anything raised by the SDK on purpose
    ├── WaitTimeoutError             batch.wait() gave up (also a builtin TimeoutError)
    ├── AsyncioRequiredError         awaited outside asyncio, under trio say (also a RuntimeError)
    ├── APIConnectionError           no usable response: refused, dropped, reset
    │   └── APITimeoutError          ... because an attempt ran out of time
    │       └── DeadlineExceededError    ... because the call's deadline= ran out (``.wait``)
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

No credential of the client appears in an exception, nor in anything reachable from
one but the frames of its traceback: not the API token, nor the user name and password
of a proxy (``proxy=`` or the proxy variables), in a URL or as the
``Proxy-Authorization`` header they make. Messages name the method and the path, and
any text from the server or the network in them (the reason phrase, the API's message,
a transport failure's text) has the credentials masked as ``[redacted]``: a server or a
proxy may echo them back. So do ``.body`` and the ``httpx`` objects attached as
``.request`` and ``.response`` (copies: credential headers, reason phrase and user info
masked too), and every exception in the ``__cause__`` and ``__context__`` chain and in
the exception groups there (its text and notes, and the ``.request`` of each httpx
exception); an exception there whose traceback would still show one is replaced by a
``RedactedException`` that reads as it did, masked (``scrub_failure``). A credential is
masked only where it appears as itself, never inside an ordinary word (the rule is in
``Secrets``): with ``api_token="a"`` an error reads exactly as the server wrote it.

Hostile answers stay bounded: the API's own text in a message is one printable line
(whitespace collapsed, control characters escaped) of at most ``MAX_ERROR_DETAIL`` (500)
characters, the reason phrase at most 100, each cut with an ellipsis; the whole body
stays in ``.body``. A body is kept as JSON only up to ``MAX_JSON_DEPTH`` (64) levels of
nesting, else as its text, so printing, copying or pickling an error never recurses
deeply.

Every error the client raises is built here, by the functions at the end of the module.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import sys
import traceback
from typing import TYPE_CHECKING, Any, AnyStr, Final, Literal, TypeAlias, cast
from urllib.parse import quote, unquote, urlsplit

import httpx

from ._body import nests_deeper_than, parse_json_or_text
from ._constants import (
    HTTPX_LIBRARIES,
    MAX_ERROR_DETAIL,
    MAX_JSON_DEPTH,
    MAX_RESPONSE_BYTES,
    TOKEN_HEADER,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from ._models import Batch

#: Which wait of a call its deadline ended (``DeadlineExceededError.wait``).
DeadlineWait: TypeAlias = Literal[
    "slot", "throttle", "pause", "attempt", "backoff", "retry_after", "shared", "poll"
]

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncioRequiredError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "DeadlineExceededError",
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


class AsyncioRequiredError(InkitError, RuntimeError):
    """A call was awaited outside asyncio, under trio say: the SDK runs on asyncio only.

    Raised by the first await of a call (or of ``aclose``) where no asyncio event loop
    runs, before anything is sent. A ``RuntimeError`` too, as asyncio's own error there
    was. Run the code with ``asyncio.run()`` or anyio's asyncio backend; from trio, host
    it with trio-asyncio, or use ``BlockingInkit`` from a thread.
    """


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
    """The request that failed (credentials masked), when one was built."""
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


class DeadlineExceededError(APITimeoutError):
    """The call's ``deadline=`` ran out, or the call could not finish before it.

    Raised as soon as that is known: when a wait of the call reaches the deadline (a
    concurrency slot, the throttle, an attempt), and at once, without sleeping, when a
    backoff or a server's ``Retry-After`` would end after it. ``.wait`` says which
    wait it was; the error of the call's last attempt, if there was one, is the
    ``__cause__``. An ``APITimeoutError``, so ``except APITimeoutError`` (and
    ``APIConnectionError``) handlers that deal with a call that ran out of time see it
    too; ``may_have_reached_server`` is ``True`` once an attempt was sent.
    """

    wait: DeadlineWait
    """Which wait ran out: ``"slot"`` (a concurrency slot), ``"throttle"`` (the
    throttle's leave to send), ``"pause"`` (the throttle was paused, by a
    ``Retry-After`` or an outage, until after the deadline), ``"attempt"`` (an
    attempt under way), ``"backoff"`` (the delay before a retry), ``"retry_after"``
    (the server's ``Retry-After``),
    ``"shared"`` (a lookup another caller started, with no deadline of its own, that
    this caller waited for) or ``"poll"`` (``wait()``: the next poll would start after
    the deadline)."""

    def __init__(
        self,
        message: str,
        *,
        wait: DeadlineWait,
        request: httpx.Request | None = None,
        may_have_reached_server: bool = False,
    ) -> None:
        super().__init__(message, request=request, may_have_reached_server=may_have_reached_server)
        self.wait = wait


class APIResponseValidationError(InkitError):
    """A response whose body cannot be used: not JSON, not the documented shape, or too large.

    The message names the offending field path (``$.total``,
    ``$.destinations['x'].count``). A body over the size limit (10 MiB) is not read at
    all; a download over its ``max_size`` is refused at its ``Content-Length``, or
    stopped as its bytes pass the bound. Not retried: the same request would get the
    same body.
    """

    response: httpx.Response
    """A copy of the response, its body read, the credentials masked in it and its ``.request``."""
    body: object
    """The parsed JSON body, the text when it is not JSON (or nests over 64 levels),
    ``None`` when not read; the credentials masked."""
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
    """A copy of the response, its body read, the credentials masked in it and its ``.request``."""
    body: object
    """The parsed JSON body if it is JSON, else its text (``None`` when empty), whole and
    with the credentials masked; JSON nested over 64 levels is kept as its text."""
    request_id: str | None
    """The ``x-request-id`` (or ``request-id``) response header, for support tickets."""

    def __init__(self, message: str, *, response: httpx.Response, body: object) -> None:
        super().__init__(message)
        self.response = response
        self.body = body
        self.status_code = response.status_code
        self.request_id = request_id_of(response.headers)


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The request id an answer's *headers* carry: ``x-request-id``, else ``request-id``.

    The one reader of it, for errors (``APIStatusError.request_id``) and for successes
    (``ResponseInfo.request_id``); *headers* must look names up whatever their case, as
    ``httpx.Headers`` does. An empty value counts as none, and so does a hostile one
    (the server's, unchecked until here): longer than ``MAX_REQUEST_ID`` characters, or
    holding anything but visible ASCII, which would reach a log line or a terminal as is.
    """
    value = headers.get("x-request-id") or headers.get("request-id")
    if not value or len(value) > MAX_REQUEST_ID or not _VISIBLE_ASCII.fullmatch(value):
        return None
    return value


#: The longest request id kept (ids seen in the wild are 16-64 characters).
MAX_REQUEST_ID: Final = 256
_VISIBLE_ASCII: Final = re.compile(r"[\x21-\x7e]+")


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
# transport failure's text) is masked of the credentials (`Secrets`), made one printable
# line (whitespace collapsed, control characters escaped, so it cannot forge log lines or
# drive a terminal) and cut: the reason phrase at 100 characters, anything else at
# MAX_ERROR_DETAIL (500), with an ellipsis. The whole body stays in `.body`.

_REDACTED: Final = "[redacted]"
_REDACTED_BYTES: Final = _REDACTED.encode()
_MAX_REASON: Final = 100
#: A credential at least this long is masked wherever it appears, glued to a word too.
ALWAYS_MASKED_LENGTH: Final = 16
#: A credential shorter than this is not masked in text: it is no secret (see ``Secrets``).
MIN_MASKED_LENGTH: Final = 8
#: The request extension that carries the client's ``Secrets``.
SECRETS_EXTENSION: Final = "inkit.secrets"
#: Request headers that hold a credential, masked by name in every copy the SDK keeps.
CREDENTIAL_HEADERS: Final = (TOKEN_HEADER, "Authorization", "Proxy-Authorization")
_ELLIPSIS: Final = "\N{HORIZONTAL ELLIPSIS}"
_UNREAD: Final = b""


class DeadlineExceeded(Exception):  # noqa: N818 - private; it becomes APITimeoutError
    """An attempt ran past its end-to-end deadline (never raised to users)."""


def failure_name(failure: BaseException) -> str:
    """How events and logs name a transport failure (the deadline is a ``TimeoutError``)."""
    return "TimeoutError" if isinstance(failure, DeadlineExceeded) else type(failure).__name__


def _ordered(values: set[str]) -> tuple[str, ...]:
    """The values to mask, longest first (the longest match wins); none too short to be secret."""
    kept = {value for value in values if len(value) >= MIN_MASKED_LENGTH} - {_REDACTED}
    return tuple(sorted(kept, key=lambda value: (-len(value), value)))


class Secrets:
    r"""Every credential of one client, and masking them out of what is built from an answer.

    A client's credentials are its API token and the user name and password of each
    proxy it may send through (``proxy=``, or ``HTTPS_PROXY`` and the other proxy
    variables): each proxy's user info (``user:password``) as written in its URL and
    percent-decoded, its password in both spellings, and the ``Proxy-Authorization``
    value they make (``Basic`` + base64 of ``user:password``). A user name on its own is
    masked only when it is the whole user info (a proxy that takes a token as its user).

    **The rule.** A credential is masked where it appears as itself, never inside an
    ordinary word, by its length:

    - ``ALWAYS_MASKED_LENGTH`` (16) characters or more: wherever it appears, glued to
      other characters too (``Bearertok_live_...``). A string that long does not occur
      in text by chance: any occurrence is the credential itself.
    - ``MIN_MASKED_LENGTH`` (8) to 15 characters: where it stands as a word of its own,
      not glued to a word character (a letter, a digit, ``_`` or ``-``) on either side:
      ``token=tok_test1`` and ``"tok_test1"`` are masked, ``tok_test1s`` is not.
    - Shorter: not masked in text. Nothing that short is a secret (it is under the
      shortest password NIST SP 800-63B allows, and can be guessed), and an occurrence
      is far likelier an ordinary word ("a", "test", "token") than the credential:
      with ``api_token="a"`` an error reads exactly as the server wrote it. Where the
      SDK knows a credential's place it is masked whatever its length: the token
      header and ``Proxy-Authorization`` in the requests it keeps, the user info of a
      URL.

    The same rule holds for text and for bytes (where any byte of a multi-byte UTF-8
    character counts as a word character).

    Masking is idempotent: text already masked is left as it is, and a ``[redacted]``
    is never searched for a credential (a short one could be part of the word).

    The client builds one ``Secrets`` and its requests carry it (the
    ``inkit.secrets`` request extension), so whatever builds an error from a request
    or a response masks exactly what that client holds, and needs no argument for it.
    A request without it (rebuilt by a caller's hook) still has its token masked, read
    from its ``X-Inkit-API-Token`` header. A ``Secrets`` never shows what it holds: its
    repr says how many values it masks, a copy is itself, and a pickled one holds none.

    The values of a client's ``default_headers`` are credentials too (``with_headers``):
    masked by the rule above in text, and by name in the requests the SDK keeps.
    """

    __slots__ = ("_bytes", "_text", "_values", "header_names", "token")

    token: str | None
    """The API token, or ``None``."""
    header_names: frozenset[str]
    """The (lower-case) names of the headers whose values are credentials, besides
    ``CREDENTIAL_HEADERS``: masked by name in every copy of a request the SDK keeps."""

    def __init__(self, token: str | None = None, proxies: Iterable[object] = ()) -> None:
        """Mask *token* and the credentials in each proxy URL of *proxies* (``None`` skipped)."""
        self.token = token if token and token != _REDACTED else None
        values: set[str] = {self.token} if self.token else set()
        for url in proxies:
            if url is not None:
                values |= _url_credentials(str(url))
        self._values = _ordered(values)
        self.header_names = frozenset()
        self._text: re.Pattern[str] | None = None
        self._bytes: re.Pattern[bytes] | None = None

    @classmethod
    def of(cls, request: httpx.Request) -> Secrets:
        """The credentials *request* was sent with: the client's, and the token it carries."""
        carried = request.extensions.get(SECRETS_EXTENSION)
        token = request.headers.get(TOKEN_HEADER)
        if not isinstance(carried, Secrets):
            return cls(token)
        return carried.sent_with(token)

    def sent_with(self, token: str | None) -> Secrets:
        """These credentials, and *token* too when a request went out with another one.

        A caller's client hook may change the token a request carries (``Reply.sent_token``);
        what the answer echoes of it is masked as the client's own.
        """
        if token in {None, _REDACTED, self.token}:
            return self
        combined = Secrets(token)
        combined._values = _ordered({*self._values, *combined._values})
        combined.header_names = self.header_names
        return combined

    def with_headers(self, headers: Mapping[str, str]) -> Secrets:
        """These credentials and the values of *headers* (a client's default headers) too.

        Their values are masked in text by the rule above, and by name in request copies;
        so is the part of a value after its first space: the credentials of an
        ``Authorization: <scheme> <credentials>``, which a server may echo on their own.
        """
        if not headers:
            return self
        values = {*self._values, *headers.values()}
        values |= {value.partition(" ")[2].strip() for value in headers.values()}
        combined = Secrets(self.token)
        combined._values = _ordered(values)
        combined.header_names = self.header_names | {name.lower() for name in headers}
        return combined

    def __bool__(self) -> bool:
        """Whether there is anything to mask."""
        return bool(self._values)

    def __repr__(self) -> str:
        """Say how many values are masked, never which."""
        return f"<Secrets: {len(self._values)} masked values, not shown>"

    def __copy__(self) -> Secrets:
        """Itself: it never changes."""
        return self

    def __deepcopy__(self, memo: object) -> Secrets:
        """Itself: it never changes."""
        return self

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle as an empty ``Secrets``: the credentials never leave the process this way."""
        return (Secrets, ())

    def _text_pattern(self) -> re.Pattern[str] | None:
        if self._text is None and self._values:
            self._text = re.compile(
                "|".join(_guarded(value, re.escape(value), _TEXT_GUARDS) for value in self._values)
            )
        return self._text

    def _bytes_pattern(self) -> re.Pattern[bytes] | None:
        if self._bytes is None and self._values:
            self._bytes = re.compile(
                b"|".join(
                    _guarded(value, re.escape(value.encode()), _BYTES_GUARDS)
                    for value in self._values
                )
            )
        return self._bytes

    def exposed(self, text: str) -> bool:
        """Whether *text* shows a credential outside the ``[redacted]`` already in it."""
        pattern = self._text_pattern()
        if pattern is None or pattern.search(text) is None:
            return False
        return any(pattern.search(piece) for piece in text.split(_REDACTED))

    def mask(self, text: str) -> str:
        """*text* with every credential in it replaced by ``[redacted]``, by the rule above."""
        pattern = self._text_pattern()
        if pattern is None or not self.exposed(text):
            return text
        return _REDACTED.join(pattern.sub(_REDACTED, piece) for piece in text.split(_REDACTED))

    def mask_bytes(self, data: bytes) -> bytes:
        """*data* with every credential in it replaced by ``[redacted]``, by the rule above."""
        pattern = self._bytes_pattern()
        if pattern is None or pattern.search(data) is None:
            return data
        pieces = data.split(_REDACTED_BYTES)
        return _REDACTED_BYTES.join(pattern.sub(_REDACTED_BYTES, piece) for piece in pieces)

    def held_by(self, data: object) -> bool:
        """Whether a credential is in any string (key or value) of decoded JSON, at any depth."""
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
        """A copy of decoded JSON with the credentials masked in every string (at most 64 deep)."""
        if isinstance(data, str):
            return self.mask(data)
        if isinstance(data, dict):
            fields = cast("dict[object, object]", data)
            return {self.mask_data(key): self.mask_data(value) for key, value in fields.items()}
        if isinstance(data, list):
            return [self.mask_data(item) for item in cast("list[object]", data)]
        return data


# What may stand before and after a short credential: no word character (letters,
# digits, `_` and `-`; in bytes, also any byte of a multi-byte UTF-8 character).
_TEXT_GUARDS: Final = (r"(?<![\w-])", r"(?![\w-])")
_BYTES_GUARDS: Final = (rb"(?<![\w\x80-\xff-])", rb"(?![\w\x80-\xff-])")


def _guarded(value: str, escaped: AnyStr, guards: tuple[AnyStr, AnyStr]) -> AnyStr:
    """The pattern of one credential: one under 16 characters must not continue a word."""
    if len(value) >= ALWAYS_MASKED_LENGTH:
        return escaped
    before, after = guards
    if _is_word(value[0]):
        escaped = before + escaped
    if _is_word(value[-1]):
        escaped += after
    return escaped


def _is_word(char: str) -> bool:
    return char.isalnum() or char in "_-"


def _url_credentials(url: str) -> set[str]:
    """Every spelling of the credentials in *url*'s user info (none without one)."""
    if "://" not in url:
        url = f"http://{url}"  # how proxy variables without a scheme are read
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        netloc = url.partition("://")[2].partition("/")[0]
    userinfo, at, _ = netloc.rpartition("@")
    if not at or not userinfo:
        return set()
    values = {userinfo, unquote(userinfo), quote(unquote(userinfo), safe=":")}
    user, colon, password = userinfo.partition(":")
    if colon:
        values |= {password, unquote(password), quote(unquote(password), safe="")}
    # The Proxy-Authorization value a client builds from them (aiohttp encodes in
    # latin-1, httpx in UTF-8), from the decoded and the written spelling.
    for login, secret in ((unquote(user), unquote(password)), (user, password)):
        for encoding in ("latin-1", "utf-8"):
            with contextlib.suppress(UnicodeEncodeError):
                values.add(base64.b64encode(f"{login}:{secret}".encode(encoding)).decode())
    return values


def _one_line(text: str, limit: int) -> str:
    """*text* as one printable line of at most *limit* characters (an ellipsis marks a cut)."""
    line = " ".join(text[: limit * 8].split())
    if not line.isprintable():
        line = "".join(char if char.isprintable() else ascii(char)[1:-1] for char in line)
    return line if len(line) <= limit else line[: limit - 1] + _ELLIPSIS


def _kept(
    content: bytes, encoding: str | None, secret: Secrets, body: object
) -> tuple[bytes, object]:
    r"""The body and the response content to keep on an error, neither holding a credential.

    *content* has had the literal credentials masked already. What is left is a
    credential spelled in JSON escapes (``\u0074ok...``), or in an encoding that is not
    ASCII (UTF-16): a body that decodes to one is masked after decoding, and the content
    becomes the masked body encoded again. A body nested too deeply to mask that way
    (over ``MAX_JSON_DEPTH``) and still spelling one is dropped.
    """
    if not secret:
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


def _sever(problem: BaseException, secret: Secrets) -> None:
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


def _library(value: object) -> Any:  # noqa: ANN401 - the httpx or httpx2 module
    """The httpx-API module *value* belongs to (httpx2's objects are copied as httpx2's)."""
    name = type(value).__module__.partition(".")[0]
    return sys.modules.get(name, httpx) if name in HTTPX_LIBRARIES else httpx


def _httpx_error_classes() -> tuple[type[Exception], ...]:
    """``HTTPError`` of each httpx-API library imported."""
    modules = (sys.modules.get(name) for name in HTTPX_LIBRARIES)
    return tuple(module.HTTPError for module in modules if module is not None)


def redacted_request(request: httpx.Request) -> httpx.Request:
    """A copy of *request* with its credentials masked (a streamed body is left out).

    The token, ``Authorization`` and ``Proxy-Authorization`` headers, and the client's
    default headers (``Secrets.header_names``), read ``[redacted]``, the URL loses any
    user info, and the copy carries no extensions (so not the client's ``Secrets``).
    An httpx2 request is copied as an httpx2 one.
    """
    library = _library(request)
    headers = request.headers.copy()
    for name in (*CREDENTIAL_HEADERS, *Secrets.of(request).header_names):
        if name in headers:
            headers[name] = _REDACTED
    url = request.url
    if url.userinfo:
        url = url.copy_with(username=None, password=None)
    try:
        content = request.content
    except library.RequestNotRead:  # a caller's hook re-sent a streaming request
        content = b""
    return cast(
        "httpx.Request", library.Request(request.method, url, headers=headers, content=content)
    )


def _unmasked(request: httpx.Request) -> bool:
    """Whether *request* may hold a credential (it is not one of the masked copies)."""
    if SECRETS_EXTENSION in request.extensions or request.url.userinfo:
        return True
    return any(request.headers.get(name, _REDACTED) != _REDACTED for name in CREDENTIAL_HEADERS)


def _detached_response(
    response: httpx.Response, content: bytes, secret: Secrets, request: httpx.Request
) -> httpx.Response:
    """A copy of *response* with its body in memory and the credentials masked everywhere.

    *content* is the body to keep (already masked); *request* the masked request. The
    response's headers and reason phrase are masked too: a server can echo a credential in
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
    return _library(response).Response(  # type: ignore[no-any-return]
        response.status_code,
        headers=headers,
        content=content,
        request=request,
        extensions=extensions,
    )


def scrub_failure(
    failure: BaseException, request: httpx.Request, masked: httpx.Request | None = None
) -> BaseException:
    """*failure* with every credential masked out of every exception in its chain.

    A caller's ``http_client`` attaches the real request, token and all, to the httpx
    exception it raises, and the SDK raises that exception as the ``__cause__`` of its
    own; a transport's text can quote a proxy URL. Along ``__cause__``, ``__context__``
    and the members of exception groups, every exception's text (its ``args``, string
    attributes, notes, and an ``OSError``'s ``strerror`` and file names) has the
    client's credentials (``Secrets``, carried by *request*) masked in place, and every
    httpx exception gets a masked copy of its request and response (*masked*, when
    given, for *request* itself). The SDK's transport has already taken the
    credentials out of aiohttp's own exceptions (URLs, headers), which only it knows.

    What a foreign exception shows can come from anywhere (a dict among its ``args``, a
    ``__str__`` of its own): should the formatted traceback still show a credential,
    each exception whose own text does is replaced by a ``RedactedException`` standing
    in for it (``_stand_ins``). The one returned is what to chain: *failure* itself, or
    its stand-in. Runs only when an error is built, never on a successful call.
    """
    secrets = Secrets.of(request)
    masked = masked or redacted_request(request)
    httpx_errors = _httpx_error_classes()
    for error in exception_chain(failure):
        _mask_text_of(error, secrets)
        if isinstance(error, httpx_errors):  # httpx's, or httpx2's from a caller's client
            _scrub_httpx_error(cast("httpx.HTTPError", error), request, masked, secrets)
    if secrets and secrets.exposed("".join(traceback.format_exception(failure))):
        return _stand_ins(failure, secrets)
    return failure


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """*error* and every exception down its links, once each.

    The links: ``__cause__``, ``__context__``, and an exception group's members. Each
    exception's links are read when the walk comes back from yielding it, so a link
    changed meanwhile is followed as it is then.
    """
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(link for link in (current.__cause__, current.__context__) if link)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(cast("BaseExceptionGroup[BaseException]", current).exceptions)


def _mask_text_of(error: BaseException, secrets: Secrets) -> None:
    """Mask the credentials in *error*'s arguments, string attributes and notes, in place."""
    if not secrets:
        return
    if any(isinstance(arg, str) and secrets.exposed(arg) for arg in error.args):
        error.args = tuple(secrets.mask(arg) if isinstance(arg, str) else arg for arg in error.args)
    fields = getattr(error, "__dict__", {})
    for name, value in list(fields.items()):
        if isinstance(value, str) and secrets.exposed(value):
            fields[name] = secrets.mask(value)
    notes = fields.get("__notes__")
    if isinstance(notes, list):  # add_note's; a traceback prints each
        items = cast("list[object]", notes)
        notes[:] = [secrets.mask(note) if isinstance(note, str) else note for note in items]
    if isinstance(error, OSError):
        # Not in `args` alone: str() of an OSError reads these (set apart by the OS layer).
        for name in ("strerror", "filename", "filename2"):
            value = getattr(error, name)
            if isinstance(value, str) and secrets.exposed(value):
                setattr(error, name, secrets.mask(value))
            elif isinstance(value, bytes):
                setattr(error, name, secrets.mask_bytes(value))


class RedactedException(Exception):  # noqa: N818 - it stands in for any exception
    """Stands in, in an error's chain, for a foreign exception that showed a credential.

    Its text is the original's as a traceback shows it (type name, message, notes and,
    for a group, its members' lines), masked; its ``__cause__``, ``__context__`` and
    traceback are the original's, so the chain reads on below it.
    """


def _stand_ins(failure: BaseException, secrets: Secrets) -> BaseException:
    """*failure*'s chain with each exception whose own text shows a credential replaced.

    Returns *failure*, or its stand-in if it shows one itself. An exception group is
    replaced as a whole when a member shows one (its members cannot be swapped).
    """
    replaced: dict[int, BaseException] = {}

    def safe(error: BaseException) -> BaseException:
        if id(error) in replaced:
            return replaced[id(error)]
        lines = _own_text(error)
        if not secrets.exposed("".join(lines)):
            return error
        stand_in = RedactedException(secrets.mask("".join(lines).rstrip("\n")))
        stand_in.__cause__ = error.__cause__
        stand_in.__context__ = error.__context__
        stand_in.__suppress_context__ = error.__suppress_context__
        stand_in.__traceback__ = error.__traceback__
        replaced[id(error)] = stand_in
        return stand_in

    root = safe(failure)
    for error in exception_chain(root):
        for name in ("__cause__", "__context__"):
            link = getattr(error, name)
            if link is not None and (swap := safe(link)) is not link:
                suppress = error.__suppress_context__  # setting __cause__ would set it
                setattr(error, name, swap)
                error.__suppress_context__ = suppress
    return root


def _own_text(error: BaseException) -> list[str]:
    """The lines a traceback shows for *error* itself, with a group's members', not its chain."""
    lines = traceback.format_exception_only(error)
    if isinstance(error, BaseExceptionGroup):
        group = cast("BaseExceptionGroup[BaseException]", error)
        for member in group.exceptions:
            lines += ["  " + line for line in _own_text(member)]
    return lines


def _scrub_httpx_error(
    error: httpx.HTTPError, request: httpx.Request, masked: httpx.Request, secrets: Secrets
) -> None:
    try:
        attached = error.request
    except RuntimeError:  # no request attached (the SDK's own transport attaches none)
        attached = None
    if attached is not None and _unmasked(attached):
        error.request = masked if attached is request else redacted_request(attached)
    if isinstance(error, _library(error).HTTPStatusError):
        error = cast("httpx.HTTPStatusError", error)
        response = error.response
        try:
            content = secrets.mask_bytes(response.content)
        except _library(response).ResponseNotRead:  # a streamed body nobody read
            content = b""
        error.response = _detached_response(response, content, secrets, error.request)


def status_error(
    what: str, response: httpx.Response, content: bytes, retry_after: float | None
) -> APIStatusError:
    """The error for a non-2xx answer to *what* (``"GET /batch/x"``)."""
    secret = Secrets.of(response.request)
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
    *failure*'s chain get the masked request (``scrub_failure``), and the error's
    ``__cause__`` is what ``scrub_failure`` returns: *failure*, or what stands in for it.
    """
    secret = Secrets.of(request)
    redacted = redacted_request(request)
    cause = scrub_failure(failure, request, redacted)
    after = (_MAY_EXIST if reached else _NOT_CREATED) if create else ""
    cls: type[APIConnectionError]
    if isinstance(failure, DeadlineExceeded):
        message, cls = f"{what} timed out", APITimeoutError
    elif isinstance(failure, httpx.TimeoutException):
        message, cls = f"{what} timed out ({type(failure).__name__})", APITimeoutError
    else:
        reason = _one_line(secret.mask(str(failure)), MAX_ERROR_DETAIL) or type(failure).__name__
        message, cls = f"{what} failed: {reason}", APIConnectionError
    error = cls(secret.mask(message) + after, request=redacted, may_have_reached_server=reached)
    error.__cause__ = cause  # what to chain: the failure, or what stands in for it
    return error


#: How a deadline error says what ran out, by the wait (a delay's own length is added).
_DEADLINE_WAITS: Final[dict[str, str]] = {
    "slot": "reached its deadline waiting for a concurrency slot",
    "throttle": "reached its deadline waiting for the throttle's leave to send",
    "pause": "cannot finish within its deadline: the throttle is paused for {delay:.3g} s "
    "more (a Retry-After or an outage), which ends after it",
    "attempt": "reached its deadline during an attempt",
    "backoff": "cannot finish within its deadline: the backoff of {delay:.3g} s before "
    "its retry ends after it",
    "retry_after": "cannot finish within its deadline: the Retry-After of {delay:.3g} s "
    "the server asked for ends after it",
    "shared": "reached its deadline waiting for the same lookup another caller started",
    "poll": "cannot finish within its deadline: its next poll would start after it",
}


def deadline_error(
    what: str,
    wait: DeadlineWait,
    *,
    delay: float = 0.0,
    reached: bool = False,
    create: bool = False,
) -> DeadlineExceededError:
    """The error for a call (*what*) whose deadline ended *wait* (a *delay* too long).

    *reached*: whether an attempt of it was sent (``may_have_reached_server``); for a
    *create* the message says what that means, as a connection error's does. The
    caller chains the call's last error as the ``__cause__``.
    """
    after = (_MAY_EXIST if reached else _NOT_CREATED) if create else ""
    message = f"{what} {_DEADLINE_WAITS[wait].format(delay=delay)}{after}"
    return DeadlineExceededError(message, wait=wait, may_have_reached_server=reached)


# What a create's connection error adds, by whether the request may have reached the server.
_MAY_EXIST: Final = (
    ". The request may have reached the server, so the batch may exist; it was not sent again"
)
_NOT_CREATED: Final = ". The request never reached the server, so no batch was created"


def oversized_error(what: str, response: httpx.Response) -> APIResponseValidationError:
    """The error for an answer whose body is over the size limit (it was not read)."""
    secret = Secrets.of(response.request)
    return APIResponseValidationError(
        secret.mask(
            f"{what} returned {response.status_code} with a body over the limit of "
            f"{MAX_RESPONSE_BYTES:,} bytes; it was not read"
        ),
        response=_detached_response(response, _UNREAD, secret, redacted_request(response.request)),
        body=None,
    )


def too_large_error(what: str, response: httpx.Response, reason: str) -> APIResponseValidationError:
    """The error for a download over its ``max_size`` (*reason* says how it showed)."""
    secret = Secrets.of(response.request)
    return APIResponseValidationError(
        secret.mask(f"{what} returned {response.status_code} with a body too large: {reason}"),
        response=_detached_response(response, _UNREAD, secret, redacted_request(response.request)),
        body=None,
    )


def not_json_error(
    what: str, response: httpx.Response, content: bytes, problem: Exception
) -> APIResponseValidationError:
    """The error for a 2xx answer whose body is not JSON, or nests too deeply to decode.

    *problem* is the ``ValueError`` of the decoder, or its ``RecursionError``.
    """
    secret = Secrets.of(response.request)
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
    secret = Secrets.of(response.request)
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

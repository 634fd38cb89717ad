"""``AsyncInkit``: options, lifecycle, variants, and the one request core.

Every public call goes through ``AsyncInkit._request``, in this order:

1. arguments were validated by the resource (before any I/O);
2. take a client-wide concurrency slot (waiting here never counts against a pool
   timeout, because the pool is sized to the slots);
3. wait out a shared rate-limit cooldown, if one is active;
4. send, under a per-attempt deadline, and read the body up to a size limit;
5. on a retryable outcome, give the slot back, sleep (``Retry-After`` or backoff) and
   go back to 2 within the retry budget;
6. map the outcome: transport failure -> ``APIConnectionError``/``APITimeoutError``,
   non-2xx -> an ``APIStatusError`` subclass, 2xx -> a record, or
   ``APIResponseValidationError`` when the body does not fit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import platform
import time
import zlib
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Self, TypeVar

import httpx

from ._constants import (
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_KEEPALIVE_EXPIRY,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_TIMEOUT,
    ENV_API_TOKEN,
    ENV_BASE_URL,
    MAX_RESPONSE_BYTES,
    RETRYABLE_STATUS_CODES,
)
from ._converter import ShapeError
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    InkitError,
    RateLimitError,
    api_error_text,
    status_error_class,
)
from ._retry import Backoff, Cooldown, parse_retry_after
from ._version import __version__
from .resources._batches import BatchResource, DocumentBatchResource

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

__all__ = ["AsyncInkit"]

T = TypeVar("T")

logger: Final = logging.getLogger("inkit_async")

TOKEN_HEADER: Final = "X-Inkit-API-Token"  # noqa: S105 - a header name, not a secret
_REDACTED: Final = "[redacted]"
_USER_AGENT: Final = (
    f"inkit-async/{__version__} httpx/{httpx.__version__} "
    f"{platform.python_implementation()}/{platform.python_version()}"
)


class _DeadlineExceededError(Exception):
    """The per-attempt deadline passed (private; becomes ``APITimeoutError``)."""


# Transport failures after which the request certainly did not reach the server, so
# even a request that must not run twice (a create) may be retried.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Failures worth another attempt for a request that may safely run twice.
_TRANSIENT: Final = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    _DeadlineExceededError,
)


class _CallInfo(NamedTuple):
    """One attempt of one API call, as the retry decisions see it."""

    method: str
    path: str
    request: httpx.Request
    retries: int
    may_repeat: bool


class _Shared:
    """What a client shares with its ``with_options`` variants: pool, slots, cooldown."""

    __slots__ = ("closed", "cooldown", "http", "loop", "max_concurrency", "owns_http", "slots")

    def __init__(self, http: httpx.AsyncClient, *, owns_http: bool, max_concurrency: int) -> None:
        self.http = http
        self.owns_http = owns_http
        self.max_concurrency = max_concurrency
        self.slots = asyncio.Semaphore(max_concurrency)
        self.cooldown = Cooldown()
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None

    def build_request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str | int] | None,
        json_body: object,
        headers: dict[str, str],
        timeout: httpx.Timeout,
    ) -> httpx.Request:
        """Build the request; a caller's own client merges its defaults into it."""
        if self.owns_http:
            # The SDK's own client has no default headers, cookies or auth to merge.
            return httpx.Request(
                method,
                url,
                params=params,
                json=json_body,
                headers=headers,
                extensions={"timeout": timeout.as_dict()},
            )
        return self.http.build_request(
            method, url, params=params, json=json_body, headers=headers, timeout=timeout
        )

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send *request* and return the response with its body still unread."""
        if self.owns_http:
            # The lean path: straight to the transport httpx would pick for this URL
            # (ours, a proxy's from the environment, or respx's when it patches
            # `_transport_for_url`), skipping the auth, redirect, cookie and hook layers
            # that the SDK's own client never configures. They cost ~60 us a request.
            transport = self.http._transport_for_url(request.url)  # noqa: SLF001  # pyright: ignore[reportPrivateUsage]
            response = await transport.handle_async_request(request)
            response.request = request
            return response
        return await self.http.send(request, stream=True)


class AsyncInkit:
    """An asyncio client for the Inkit API.

    Use one client for the lifetime of your application and share it between tasks::

        async with AsyncInkit() as client:
            batch = await client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")

    Args:
        api_token: Your Inkit API token. Defaults to the ``INKIT_API_TOKEN`` environment
            variable; without either, ``InkitError`` is raised here.
        base_url: The API root, path included. Defaults to ``INKIT_BASE_URL``, then
            ``https://api.inkit.com/v1``. Requests go to ``<base_url>/batch/<id>``.
        timeout: Seconds one attempt may take end to end (default 30; connecting gets at
            most 5 of them). An ``httpx.Timeout`` instead applies httpx's per-phase
            timeouts exactly as given, with no end-to-end deadline. Retries do not
            stretch a single attempt: the longest one call can take against a server
            that never answers is ``(1 + max_retries) * timeout`` plus the backoff
            waits, about 91.5 s with the defaults (3 x 30 s + 0.5 s + 1 s).
        max_retries: Retries after the first attempt for connection errors, timeouts and
            the statuses 408, 429, 500, 502, 503 and 504 (default 2; 0 disables).
        max_concurrency: Requests in flight at once across every caller of this client
            (default 100). Further calls wait inside the client; the connection pool the
            client creates is sized to match.
        max_retry_after: Longest ``Retry-After`` in seconds the client waits on (default
            60). A longer one raises ``RateLimitError`` (or the status error) at once.
        backoff: Backoff between retries the server gave no ``Retry-After`` for.
        http_client: An ``httpx.AsyncClient`` to send through instead of the client's
            own. The caller owns it: ``aclose()`` leaves it open, and its pool limits
            apply instead of ``max_concurrency``-sized ones.

    Raises:
        InkitError: No token was given or found in the environment.
        TypeError: An option has the wrong type.
        ValueError: An option has an impossible value.
    """

    batch: DocumentBatchResource
    """Document batches (``/batch``): get, get_many, list, wait, watch, create."""
    flow_batch: BatchResource
    """Flow batches (``/invoke/batch``): get, get_many, list, wait, watch."""

    def __init__(
        self,
        api_token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        backoff: Backoff | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        token = api_token if api_token is not None else os.environ.get(ENV_API_TOKEN)
        if not token:
            raise InkitError(
                f"No API token: pass api_token=... or set the {ENV_API_TOKEN} environment variable."
            )
        _check_token(token)
        self._base_url = _check_base_url(
            base_url if base_url is not None else os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        )
        self._headers = {
            TOKEN_HEADER: token,
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": _USER_AGENT,
        }
        self._timeout, self._deadline = _check_timeout(timeout)
        self._max_retries = _check_int("max_retries", max_retries, 0)
        self._max_retry_after = _check_seconds("max_retry_after", max_retry_after)
        self._backoff = _check_backoff(backoff)
        _check_int("max_concurrency", max_concurrency, 1)
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise TypeError(
                f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
            )
        self._shared = _Shared(
            http_client or _default_http_client(max_concurrency),
            owns_http=http_client is None,
            max_concurrency=max_concurrency,
        )
        self._owner = True
        self._closed = False
        self._bind_resources()

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Return the client itself."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client (see ``aclose``)."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client; calls afterwards raise ``InkitError``.

        Idempotent. Closes the connection pool the client created; an ``http_client``
        you passed in stays open (you own it). Closing a ``with_options`` variant closes
        only the variant: the pool, slots and cooldown belong to the original client.
        Call it from the event loop the client was used in; once that loop has ended
        (``asyncio.run`` returned), closing from another loop just drops what is left.

        Raises:
            InkitError: Called from another event loop while the client's loop still runs.
        """
        shared = self._shared
        if self._owner and not shared.closed and shared.owns_http:
            loop = shared.loop
            if loop is not None and not loop.is_closed() and loop is not asyncio.get_running_loop():
                raise InkitError(
                    "aclose() was called from another event loop than the one this client "
                    "runs in; its connections belong to that loop, so close it there."
                )
        self._closed = True
        if not self._owner or shared.closed:
            return
        shared.closed = True
        if shared.owns_http:
            await shared.http.aclose()

    @property
    def is_closed(self) -> bool:
        """Whether ``aclose()`` was called on this client (or on its parent)."""
        return self._closed or self._shared.closed

    @property
    def base_url(self) -> str:
        """The API root requests are sent to, without a trailing slash."""
        return self._base_url

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt of a retryable request."""
        return self._max_retries

    @property
    def max_concurrency(self) -> int:
        """Requests this client (with its variants) keeps in flight at most."""
        return self._shared.max_concurrency

    @property
    def timeout(self) -> httpx.Timeout:
        """The per-phase timeouts applied to every attempt."""
        return self._timeout

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
        max_retry_after: float | None = None,
        backoff: Backoff | None = None,
    ) -> AsyncInkit:
        """Return a client with other per-call options over the same shared resources.

        The variant shares this client's connection pool, concurrency slots and
        rate-limit cooldown: ``client.with_options(timeout=5).batch.get(...)`` is cheap.
        Options left as ``None`` keep this client's value. Closing the original closes
        the shared resources; closing the variant never does.
        """
        variant = object.__new__(AsyncInkit)
        variant.__dict__.update(self.__dict__)
        if timeout is not None:
            variant._timeout, variant._deadline = _check_timeout(timeout)
        if max_retries is not None:
            variant._max_retries = _check_int("max_retries", max_retries, 0)
        if max_retry_after is not None:
            variant._max_retry_after = _check_seconds("max_retry_after", max_retry_after)
        if backoff is not None:
            variant._backoff = _check_backoff(backoff)
        variant._owner = False
        variant._closed = False
        variant._bind_resources()
        return variant

    def _bind_resources(self) -> None:
        self.batch = DocumentBatchResource(self, "batch")
        self.flow_batch = BatchResource(self, "invoke/batch")

    def __repr__(self) -> str:
        """Describe the client without its token."""
        state = " closed" if self.is_closed else ""
        return (
            f"<AsyncInkit base_url={self._base_url!r} max_retries={self._max_retries}"
            f" max_concurrency={self._shared.max_concurrency}{state}>"
        )

    # -- the request core ------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        params: dict[str, str | int] | None = None,
        json_body: object = None,
        may_repeat: bool = True,
    ) -> T:
        """Send one API call with retries and return ``parse(json_body_of_response)``.

        *path* is relative to ``base_url`` and already percent-encoded. *parse* raises
        ``ShapeError`` when the JSON does not fit. ``may_repeat=False`` marks a call that
        must not run twice (a create): it is retried only when it certainly did not
        reach the server (connect failure) or the server refused it with 429.
        """
        shared = self._check_usable()
        request: httpx.Request | None = None
        retries = 0
        while True:
            async with shared.slots:
                await shared.cooldown.wait()
                if self.is_closed:
                    raise InkitError("The AsyncInkit client is closed; create a new one.")
                started = time.perf_counter()  # the attempt's own time, not its queueing
                # Built inside the slot: a 10,000-way gather then builds requests as
                # slots free up, instead of all of them in one loop iteration up front
                # (which stalled the event loop and held every request in memory).
                if request is None:
                    request = shared.build_request(
                        method,
                        self._base_url + path,
                        params=params,
                        json_body=json_body,
                        headers=self._headers,
                        timeout=self._timeout,
                    )
                outcome = await self._attempt(shared, request)

            call = _CallInfo(method, path, request, retries, may_repeat)
            if isinstance(outcome, BaseException):
                self._log_attempt(call, type(outcome).__name__, started)
                delay, reason = self._retry_after_failure(call, outcome)
            else:
                response, content = outcome
                self._log_attempt(call, response.status_code, started)
                if content is not None and 200 <= response.status_code < 300:
                    return _decode(response, content, parse, method, path, request)
                delay, reason = self._retry_after_status(call, response, content)
            # The slot was given back above: a caller backing off holds nothing others need.
            retries += 1
            self._log_retry(method, path, reason, delay, retries)
            await asyncio.sleep(delay)

    def _retry_after_failure(self, call: _CallInfo, failure: BaseException) -> tuple[float, str]:
        """The wait before retrying a transport failure; raises when it is final."""
        if self.is_closed:
            raise InkitError("The client was closed while the request was under way.") from failure
        error = _connection_error(failure, call.method, call.path, call.request)
        retryable = isinstance(failure, _NOT_SENT) or (
            call.may_repeat and isinstance(failure, _TRANSIENT)
        )
        if not retryable or call.retries >= self._max_retries:
            raise error from failure
        return self._backoff.delay(call.retries), error.message

    def _retry_after_status(
        self, call: _CallInfo, response: httpx.Response, content: bytes | None
    ) -> tuple[float, str]:
        """The wait before retrying a non-2xx (or oversized) answer; raises when it is final."""
        status = response.status_code
        if content is None:
            raise APIResponseValidationError(
                f"{call.method} {call.path} returned {status} with a body over the limit of "
                f"{MAX_RESPONSE_BYTES:,} bytes; it was not read",
                response=_detached_response(response, b"", call.request),
                body=None,
            )
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        too_long = retry_after is not None and retry_after > self._max_retry_after
        if status == 429 and retry_after is not None and not too_long:
            # Pause every caller of this client, whether or not this call retries.
            self._shared.cooldown.extend(retry_after)
        retryable = status in RETRYABLE_STATUS_CODES and (call.may_repeat or status == 429)
        if not retryable or too_long or call.retries >= self._max_retries:
            raise _status_error(
                response, content, call.method, call.path, call.request, retry_after
            )
        if retry_after is None:
            return self._backoff.delay(call.retries), f"{status} {response.reason_phrase}"
        return retry_after, f"{status} {response.reason_phrase}"

    def _check_usable(self) -> _Shared:
        shared = self._shared
        if self._closed or shared.closed:
            raise InkitError("The AsyncInkit client is closed; create a new one.")
        loop = asyncio.get_running_loop()
        if shared.loop is None:
            shared.loop = loop
        elif shared.loop is not loop:
            raise InkitError(
                "This AsyncInkit client was first used in another event loop; its connections "
                "belong to that loop. Create one client per event loop (for example, inside "
                "the coroutine you pass to asyncio.run)."
            )
        return shared

    async def _attempt(
        self, shared: _Shared, request: httpx.Request
    ) -> tuple[httpx.Response, bytes | None] | Exception:
        """Send once under the per-attempt deadline and read the body (``None``: too large).

        A transport failure is returned, not raised: the caller decides on a retry after
        it has given its concurrency slot back.
        """
        try:
            async with asyncio.timeout(self._deadline):
                response = await shared.send(request)
                try:
                    content = await _read_limited(response)
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            deadline = _DeadlineExceededError()
            deadline.__cause__ = exc
            return deadline
        except httpx.HTTPError as exc:
            return exc
        return response, content

    def _log_attempt(self, call: _CallInfo, outcome: object, started: float) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.debug(
                "%s %s -> %s (attempt %d, %.1f ms)",
                call.method,
                call.path,
                outcome,
                call.retries + 1,
                elapsed_ms,
            )

    def _log_retry(self, method: str, path: str, reason: str, delay: float, retries: int) -> None:
        logger.info(
            "Retrying %s %s in %.2f s (retry %d of %d): %s",
            method,
            path,
            delay,
            retries,
            self._max_retries,
            reason,
        )


# -- helpers of the core, kept out of the class to keep its hot path short -------------


def _default_http_client(max_concurrency: int) -> httpx.AsyncClient:
    # The pool holds one connection per slot, so a request that holds a slot never
    # queues for a connection and the pool timeout only measures a real stall.
    # Imported here: aiohttp costs ~60 ms to import, paid only by clients that use it.
    from ._transport import AiohttpTransport  # noqa: PLC0415

    transport = AiohttpTransport(
        max_connections=max_concurrency, keepalive_expiry=DEFAULT_KEEPALIVE_EXPIRY
    )
    return httpx.AsyncClient(transport=transport, follow_redirects=False)


async def _read_limited(response: httpx.Response) -> bytes | None:
    """Read and decode the body; ``None`` once it is over ``MAX_RESPONSE_BYTES``.

    The limit applies to the decoded size and memory stays bounded while decoding: a
    small gzip body that would inflate to gigabytes is refused after 10 MiB, not after
    it has been inflated (httpx's own decoder inflates each chunk in full).
    """
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        return None
    if response.is_stream_consumed:
        # Built in memory, as mock transports do: httpx has already decoded it.
        content = response.content
        return content if len(content) <= MAX_RESPONSE_BYTES else None
    decoder = _Inflater.for_encoding(response.headers.get("content-encoding"))
    chunks: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        for chunk in decoder.pieces(raw) if decoder else (raw,):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                return None
            chunks.append(chunk)
    if decoder:
        decoder.check_complete()
    return b"".join(chunks)


class _Inflater:
    """gzip/deflate decoding in bounded pieces, so memory follows the size check."""

    __slots__ = ("_zlib",)

    #: Most bytes one decompression step may produce.
    PIECE: Final = 256 * 1024

    def __init__(self, wbits: int) -> None:
        self._zlib = zlib.decompressobj(wbits)

    @classmethod
    def for_encoding(cls, encoding: str | None) -> _Inflater | None:
        """The decoder for a Content-Encoding (``None``: the body is not encoded)."""
        name = (encoding or "identity").strip().lower()
        if name in {"", "identity"}:
            return None
        if name in {"gzip", "x-gzip"}:
            return cls(16 + zlib.MAX_WBITS)
        if name == "deflate":
            return cls(32 + zlib.MAX_WBITS)  # zlib-wrapped, as RFC 9110 says
        raise httpx.DecodingError(f"unsupported Content-Encoding {encoding!r}")

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """Decode *data* in pieces of at most ``PIECE`` bytes."""
        try:
            while data:
                yield self._zlib.decompress(data, self.PIECE)
                data = self._zlib.unconsumed_tail
        except zlib.error as exc:
            raise httpx.DecodingError(f"bad compressed body: {exc}") from exc

    def check_complete(self) -> None:
        """Refuse a compressed body that ended before its compressed stream did."""
        if not self._zlib.eof:
            raise httpx.DecodingError("bad compressed body: it ends before its data does")


def _redacted_request(request: httpx.Request) -> httpx.Request:
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
        request=_redacted_request(request),
        extensions={
            key: response.extensions[key]
            for key in ("http_version", "reason_phrase")
            if key in response.extensions
        },
    )


def _parse_error_body(content: bytes, response: httpx.Response) -> object:
    if not content:
        return None
    text = content.decode(response.encoding or "utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _status_error(
    response: httpx.Response,
    content: bytes,
    method: str,
    path: str,
    request: httpx.Request,
    retry_after: float | None,
) -> InkitError:
    body = _parse_error_body(content, response)
    status = response.status_code
    message = f"{status} {response.reason_phrase} from {method} {path}".rstrip()
    detail = api_error_text(body)
    if (
        detail is None
        and isinstance(body, str)
        and "html" not in response.headers.get("content-type", "")
    ):
        detail = " ".join(body.split())[:200] or None
    if detail:
        message = f"{message}: {detail}"
    cls = status_error_class(status)
    detached = _detached_response(response, content, request)
    if cls is RateLimitError:
        return RateLimitError(message, response=detached, body=body, retry_after=retry_after)
    return cls(message, response=detached, body=body)


def _connection_error(
    exc: BaseException, method: str, path: str, request: httpx.Request
) -> APIConnectionError:
    redacted = _redacted_request(request)
    if isinstance(exc, _DeadlineExceededError | httpx.TimeoutException):
        kind = (
            "timed out"
            if isinstance(exc, _DeadlineExceededError)
            else f"timed out ({type(exc).__name__})"
        )
        return APITimeoutError(f"{method} {path} {kind}", request=redacted)
    reason = str(exc) or type(exc).__name__
    return APIConnectionError(f"{method} {path} failed: {reason}", request=redacted)


def _decode(
    response: httpx.Response,
    content: bytes,
    parse: Callable[[Any], T],
    method: str,
    path: str,
    request: httpx.Request,
) -> T:
    try:
        data = json.loads(content)
    except ValueError as exc:
        body = content.decode("utf-8", errors="replace")
        raise APIResponseValidationError(
            f"{method} {path} returned {response.status_code} with a body that is not JSON: {exc}",
            response=_detached_response(response, content, request),
            body=body,
        ) from None
    try:
        return parse(data)
    except ShapeError as exc:
        raise APIResponseValidationError(
            f"{method} {path} returned an unexpected body: {exc}",
            response=_detached_response(response, content, request),
            body=data,
        ) from None


# -- option checks -----------------------------------------------------------------------


def _check_token(token: object) -> None:
    if not isinstance(token, str):
        raise TypeError(f"api_token must be a str, got {type(token).__name__}")
    # Never echo the token: say what is wrong with it, not what it is.
    if token != token.strip() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in token):
        raise ValueError("api_token contains whitespace or control characters")


def _check_base_url(base_url: object) -> str:
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {type(base_url).__name__}")
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"base_url is not a valid URL: {exc}") from None
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
    if url.query or url.fragment:
        raise ValueError(f"base_url must not have a query or fragment, got {base_url!r}")
    return base_url.rstrip("/")


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_timeout(timeout: object) -> tuple[httpx.Timeout, float | None]:
    """Return the per-phase timeouts and the per-attempt deadline (``None``: no deadline)."""
    if isinstance(timeout, httpx.Timeout):
        return timeout, None
    seconds = _check_seconds("timeout", timeout)
    if seconds == 0:
        raise ValueError("timeout must be > 0")
    return httpx.Timeout(seconds, connect=min(seconds, DEFAULT_CONNECT_TIMEOUT)), seconds


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_backoff(backoff: object) -> Backoff:
    if backoff is None:
        return Backoff()
    if not isinstance(backoff, Backoff):
        raise TypeError(f"backoff must be a Backoff, got {type(backoff).__name__}")
    return backoff

"""The default sender: aiohttp's HTTP/1.1 connection pool, through aiohttp's public API.

Why aiohttp: with many requests in flight, httpx's own pool (httpcore) costs many times
the CPU per request of aiohttp's, because it rescans every connection for every waiter
(the figures are in docs/performance.md).

What this module adds to aiohttp, and why:

- **Failures as facts.** Every aiohttp failure becomes one ``TransportFailure`` whose
  kind says whether the request may have reached the server: only a connection that
  was never made (refused, timed out, its TLS handshake failed) proves it did not.
  TLS failures keep the ``ssl`` error as their cause, so the retry policy can see that
  a certificate problem is final. A server that answers in HTTP/2 only (no HTTP/1.1)
  fails at once with a failure that says so.
- **No credential in a cause.** aiohttp keeps the request's headers (the token,
  ``Proxy-Authorization``) and the proxy's URL (with its password) in some of its
  exceptions: those lose them before they are chained (``_clean_cause``).
- **Stale keep-alive connections.** App servers close idle connections after a few
  seconds (uvicorn and hypercorn after 5, gunicorn after 2); the pool closes its own
  idle ones sooner (``DEFAULT_KEEPALIVE_EXPIRY``), and aiohttp drops one whose close
  it has read before reusing it. When a server closes one just as a GET goes out
  anyway, aiohttp itself sends the GET again once, at once, on another connection, as
  RFC 9112 allows for idempotent requests (and Go's ``net/http`` and urllib3 do): no
  backoff, no attempt counted. So a GET whose connection drops before any answer
  reaches the server at most twice per attempt. (Stopping that re-send and doing it
  only for reused connections took a client middleware and a trace signal on every
  request: a quarter more CPU per lookup, measured with ``python -m
  benchmarks.methods``.)
- **A request that must not repeat (a create) goes on a connection of its own**,
  opened for it and closed after it: it never meets a kept-alive connection the server
  is closing (idle, or shutting down for a deploy), so a failure after the connection
  was made may really have reached the server, and says so. That costs each create a
  connection (a TCP, and over TLS a TLS, handshake); a batch is created once, and its
  lookups, many, share the pool. (A kept-alive connection could only be trusted with a
  proof that the server had not read the request, which needs TCP's counters read at
  the moment the server closes: aiohttp has no public way to get them.)
- **Timeouts.** Each phase of the attempt's ``Timeouts`` (``timeouts_for``).
- **Downloads** (``open``) go through the pool like any GET; their body is read in
  pieces of at most ``PIECE_BYTES`` (aiohttp's reader stops reading from the socket
  while its buffer is full, so memory stays bounded), and the connection goes back to
  the pool only when the body was read to its end.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import httpx
import multidict
import yarl

from .._body import decode_limited
from .._constants import MAX_RESPONSE_BYTES
from .._http2 import HTTP2_ONLY, speaks_only_http2
from .._wire import PIECE_BYTES, Opened, Reply, TransportFailure
from ._respx import respx_is_mocking

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncGenerator

    from .._wire import Request, Sender, Timeouts

__all__ = ["AiohttpSender", "timeouts_for"]

logger: Final = logging.getLogger("inkit_async")

_REDACTED: Final = "[redacted]"


#: The request headers an aiohttp exception may keep as they are: the SDK's own, none secret.
_SHOWN_HEADERS: Final = frozenset(
    {"accept", "accept-encoding", "content-type", "content-length", "host", "user-agent"}
)


def _mask(headers: Any) -> multidict.CIMultiDictProxy[str]:  # noqa: ANN401 - aiohttp's types
    """What aiohttp's exceptions keep of the request's headers: all but the SDK's masked.

    The token and any default header a caller set (whose values may be credentials).
    """
    masked = multidict.CIMultiDict[str](
        (name, value if name.lower() in _SHOWN_HEADERS else _REDACTED)
        for name, value in headers.items()
    )
    return multidict.CIMultiDictProxy(masked)


def _anonymous(url: yarl.URL) -> yarl.URL:
    """*url* without user info (a proxy's user name and password)."""
    return url.with_user(None) if url.user is not None else url


def _clean_cause(exc: BaseException) -> BaseException:
    """What to chain for an aiohttp failure: it, or a part of it that holds no credential.

    A response error (a malformed answer, a proxy's refusal) keeps the request's URL and
    headers in its public ``request_info``: replaced by a copy without credentials, the
    answer's headers dropped (a proxy may echo what it was sent). A connection error
    keeps the connection's key, proxy and password included, where nothing public can
    change it: its ``os_error`` (or TLS error) is chained instead, and the key's host
    and port are in the failure's text.
    """
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return exc.certificate_error
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.os_error
    if isinstance(exc, aiohttp.ClientResponseError):
        info = exc.request_info
        exc.request_info = aiohttp.RequestInfo(
            _anonymous(info.url), info.method, _mask(info.headers), _anonymous(info.real_url)
        )
        exc.history = ()
        exc.headers = None
        exc.args = (exc.request_info, ())
    return exc


def _refusal(error: OSError) -> str:
    """An OS error of a connect in words: asyncio's refusal reads "Connect call failed"."""
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (nothing accepts connections there)"
    return str(error)


def _kind_of(exc: BaseException) -> tuple[str, str]:  # noqa: PLR0911 - one return per kind
    """The failure's kind (an httpx exception's name) and text, for an aiohttp (or OS) error."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # connecting, or waiting for the pool
        return "ConnectTimeout", str(exc) or "connect timed out"
    if isinstance(exc, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError):
        return "ReadTimeout", str(exc) or "read timed out"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = getattr(exc.certificate_error, "verify_message", None) or exc.certificate_error
        return "ConnectError", (
            f"TLS certificate verification failed for {exc.host}: {reason}. To trust a "
            "private CA, pass verify=<CA bundle path> or set SSL_CERT_FILE"
        )
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return "ConnectError", f"cannot connect to the proxy: {_refusal(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientConnectorError):  # the request was never sent
        return "ConnectError", f"cannot connect to {exc.host}:{exc.port}: {_refusal(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientHttpProxyError):  # the proxy refused the tunnel
        return "ProxyError", f"the proxy refused the connection: {exc.status} {exc.message}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "RemoteProtocolError", str(exc) or "server disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "RemoteProtocolError", str(exc) or "incomplete response body"
    if isinstance(exc, aiohttp.ClientResponseError):  # a malformed status line or headers
        return "RemoteProtocolError", str(exc)
    if isinstance(exc, aiohttp.InvalidURL):
        return "UnsupportedProtocol", str(exc)
    if isinstance(exc, aiohttp.ClientConnectionError | ConnectionError):
        return "ReadError", str(exc) or type(exc).__name__
    return "TransportError", str(exc) or type(exc).__name__


def _failure(exc: BaseException) -> tuple[TransportFailure, BaseException]:
    """The failure for an aiohttp error (or the SDK decoder's), and what to chain as its cause."""
    if isinstance(exc, httpx.DecodingError):  # the SDK's own decoder: a bad compressed body
        return TransportFailure("DecodingError", str(exc)), exc
    if speaks_only_http2(exc):
        # Refused in the TLS handshake (alert 120): no connection was made, so the request
        # was never sent. Answered in HTTP/2 frames: the request went out, read as a bad
        # HTTP/2 preface. Neither is retried: a ConnectError whose cause is a TLS error is
        # final, and so is an UnsupportedProtocol.
        not_sent = isinstance(exc, aiohttp.ClientConnectorError)
        kind, text = "ConnectError" if not_sent else "UnsupportedProtocol", HTTP2_ONLY
    else:
        kind, text = _kind_of(exc)
    # A TLS failure chains the ssl error itself: the retry policy reads it.
    return TransportFailure(kind, text), _clean_cause(exc)


def timeouts_for(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    """The aiohttp timeouts for the attempt's phases (*write*: see ``_write_bound``).

    aiohttp's ``connect`` includes waiting for a pooled connection (httpx's *pool*);
    ``sock_connect`` is opening one and ``sock_read`` the wait between two reads.
    """
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeouts.pool,
        sock_connect=timeouts.connect,
        sock_read=timeouts.read,
    )


_WRITE_TIMED_OUT: Final = "timed out writing the request or waiting for its answer"


def _write_bound(timeouts: Timeouts) -> float:
    """How long a request with a body may take until its answer's headers arrive.

    aiohttp has no write timeout, and starts its read timer only once the body is
    written: a server that stops reading could hold a request forever. So a request
    with a body gets *write* plus *read* seconds (each phase at most as long as given,
    together never longer) until its answer begins; a request without one is handed to
    the kernel without waiting, and needs no write timer.
    """
    assert timeouts.write is not None  # noqa: S101 - checked by the caller
    return timeouts.write + (timeouts.read or 0.0)


#: Bodies from this size on go to aiohttp as a file object, which it writes in pieces
#: (it warns that a bytes body this large is written in one step).
_LARGE_BODY: Final = 1 << 20


def _payload(body: bytes | None) -> bytes | io.BytesIO | None:
    return io.BytesIO(body) if body is not None and len(body) > _LARGE_BODY else body


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


async def _reply(response: aiohttp.ClientResponse) -> Reply:
    """The answer read whole (within the body limit), its connection back to the pool."""
    try:
        content = await _read_limited(response)
    except BaseException:
        response.close()  # not read to its end: the connection cannot carry another
        raise
    response.release()
    return Reply(response.status, response.reason or "", response.raw_headers, content)


async def _read_limited(response: aiohttp.ClientResponse) -> bytes | None:
    """Read and decode the body; ``None`` once it is over ``MAX_RESPONSE_BYTES``."""
    length = response.content_length
    if length is not None and length > MAX_RESPONSE_BYTES:
        return None
    encoding = response.headers.get("Content-Encoding")
    if length is not None and encoding is None:
        return await response.read()  # the common case: one read of a known length
    return await decode_limited(response.content.iter_any(), encoding)


class _AiohttpBody:
    """A download's body, read from aiohttp's response in pieces."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def pieces(self) -> AsyncGenerator[bytes]:
        """The raw body, each piece at most ``PIECE_BYTES``."""
        read = self._response.content.read
        while True:
            try:
                piece = await read(PIECE_BYTES)
            except (aiohttp.ClientError, ConnectionError) as exc:
                failure, cause = _failure(exc)
            else:
                if not piece:
                    return
                yield piece
                continue
            # Raised outside the handler: aiohttp's error must not ride along as context.
            raise failure from cause

    async def aclose(self) -> None:
        """Back to the pool if read to its end; else the connection cannot carry another."""
        response = self._response
        if response.content.is_eof():
            response.release()
        else:
            response.close()


class AiohttpSender:
    """Sends through aiohttp's pool; made on first use, inside the running event loop.

    With *proxy*, every request goes through that HTTP proxy (forwarded for
    ``http://``, tunnelled with CONNECT for ``https://``).
    """

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float,
        verify: ssl.SSLContext | bool,
        proxy: str | None,
        lane: Any,  # noqa: ANN401 - a callable making the Sender used under respx
    ) -> None:
        """Pool at most *max_connections*; idle ones close after *keepalive_expiry* s."""
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl: ssl.SSLContext | bool = verify
        self._proxy = yarl.URL(proxy) if proxy else None
        self._pooled: aiohttp.ClientSession | None = None
        self._single: aiohttp.ClientSession | None = None
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}
        self._make_lane = lane
        self._lane: Sender | None = None
        self._forgotten: list[aiohttp.BaseConnector] = []  # see forget()

    def __repr__(self) -> str:
        """Say whether it goes through a proxy (never its credentials)."""
        proxy = f" proxy={self._proxy.with_user(None)}" if self._proxy else ""
        return f"<AiohttpSender{proxy}>"

    def _session(self, *, single: bool) -> aiohttp.ClientSession:
        """The pool for GETs, or the session whose connections carry one request each."""
        session = self._single if single else self._pooled
        if session is not None:
            return session
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=None if single else self._keepalive_expiry,
            force_close=single,
            ssl=self._ssl,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # the SDK decodes, so it can bound the decoded size
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,  # the proxy was chosen when the client was made
        )
        if single:
            self._single = session
        else:
            self._pooled = session
        return session

    def _timeout(self, timeouts: Timeouts) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(timeouts)
        if timeout is None:
            timeout = self._timeouts[timeouts] = timeouts_for(timeouts)
        return timeout

    async def send(self, request: Request) -> Reply:
        """Send *request* and read the answer whole (within the body limit)."""
        if respx_is_mocking():
            lane = self._lane
            if lane is None:
                lane = self._lane = self._make_lane()
            return await lane.send(request)
        if request.method == "GET" and request.body is None:
            return await self._get(request)
        return await self._send_once(request)

    async def _get(self, request: Request) -> Reply:
        """A GET through the pool (aiohttp sends it again once if its connection drops)."""
        session = self._pooled or self._session(single=False)
        try:
            response = await session.get(
                yarl.URL(request.url, encoded=True),  # encoded already: never quoted again
                headers=request.headers,
                allow_redirects=False,
                timeout=self._timeouts.get(request.timeouts) or self._timeout(request.timeouts),
                proxy=self._proxy,
            )
            return await _reply(response)
        except (aiohttp.ClientError, ConnectionError, httpx.DecodingError) as exc:
            failure, cause = _failure(exc)
        # Raised outside the handler: aiohttp's error must not ride along as context.
        raise failure from cause

    async def open(self, request: Request) -> Opened:
        """Send *request* (a download's GET) through the pool; return at its answer's head."""
        if respx_is_mocking():
            lane = self._lane
            if lane is None:
                lane = self._lane = self._make_lane()
            return await lane.open(request)
        session = self._pooled or self._session(single=False)
        try:
            response = await session.request(
                request.method,
                yarl.URL(request.url, encoded=True),  # encoded already: never quoted again
                headers=request.headers,
                allow_redirects=False,
                timeout=self._timeouts.get(request.timeouts) or self._timeout(request.timeouts),
                proxy=self._proxy,
            )
        except (aiohttp.ClientError, ConnectionError) as exc:
            failure, cause = _failure(exc)
        else:
            reason = response.reason or ""
            return Opened(response.status, reason, response.raw_headers, _AiohttpBody(response))
        raise failure from cause

    async def _send_once(self, request: Request) -> Reply:
        """Anything but a GET (a create): sent once, on a connection of its own.

        Within the write phase's bound (``_write_bound``) when the request has a body.
        """
        session = self._single or self._session(single=True)
        writing = asyncio.timeout(None)
        try:
            async with writing:
                if request.body is not None and request.timeouts.write is not None:
                    writing.reschedule(_loop_time() + _write_bound(request.timeouts))
                response = await session.request(
                    request.method,
                    yarl.URL(request.url, encoded=True),
                    headers=request.headers,
                    data=_payload(request.body),
                    allow_redirects=False,
                    compress=False,
                    timeout=self._timeout(request.timeouts),
                    proxy=self._proxy,
                )
            return await _reply(response)
        except (aiohttp.ClientError, ConnectionError, httpx.DecodingError) as exc:
            failure, cause = _failure(exc)
        except TimeoutError as exc:
            if not writing.expired():
                raise  # the caller's own deadline
            failure, cause = TransportFailure("WriteTimeout", _WRITE_TIMED_OUT), exc
        raise failure from cause

    def forget(self) -> None:
        """In a forked child: leave the parent's connections alone, for good.

        Each session is detached (closed for aiohttp, its connections untouched) and its
        connector marked closed and kept here, so that no finalizer closes a socket the
        parent still uses (that would send on it, or unregister it from the epoll
        instance parent and child share). Private: ``_closed`` (docs/architecture.md).
        """
        for name in ("_pooled", "_single"):
            session: aiohttp.ClientSession | None = getattr(self, name)
            if session is not None and session.connector is not None:
                connector = session.connector
                session.detach()
                connector._closed = True  # noqa: SLF001  # pyright: ignore[reportPrivateUsage] - see above
                self._forgotten.append(connector)

    async def aclose(self) -> None:
        """Close the pools and every connection in them."""
        for session in (self._pooled, self._single):
            if session is not None:
                await session.close()
        if self._lane is not None:
            await self._lane.aclose()

    def __del__(self) -> None:
        # Collected with a pool open: the client that owned it was never closed, and has
        # said so in one ResourceWarning that names AsyncInkit and the cure. Close the
        # sockets now, so aiohttp does not add two warnings of its own about objects the
        # user never made. Its connector's synchronous close is private (listed in
        # docs/architecture.md); `close()` would return an awaitable nobody can await here.
        for name in ("_pooled", "_single"):
            session = getattr(self, name, None)  # None: __init__ failed before setting it
            if session is not None and not session.closed:
                close = getattr(session.connector, "_close", None)
                if close is not None:
                    close()

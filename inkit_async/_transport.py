"""The default transport: httpx's interface over aiohttp's HTTP/1.1 connection pool.

Why: with many requests in flight, httpx's own pool (httpcore) costs many times the CPU
per request of aiohttp's, because it rescans every connection for every waiter.
Keeping httpx's ``AsyncClient`` in front keeps its API, its event hooks and respx
mocking; only the bytes move through aiohttp. The figures behind the choice are in
docs/performance.md.

What this module adds to aiohttp, and why:

- **Error mapping.** Every aiohttp failure maps to the httpx exception that says whether
  the request may have reached the server: the SDK retries a create only after
  ``httpx.ConnectError``/``ConnectTimeout``, so a dropped connection is reported as one
  only when it provably never carried the request (below). TLS failures keep the
  ``ssl`` error as their cause, so the retry policy can see that a certificate problem
  is final. aiohttp exceptions lose the credentials they carry (the token and
  ``Proxy-Authorization`` headers, the proxy's user name and password in its URL and
  connection key) before they are chained.
- **Stale keep-alive connections.** App servers close idle connections after a few
  seconds (uvicorn and hypercorn after 5, gunicorn after 2). A pooled connection is
  checked for a pending close (or stray bytes) before it is reused. The server may
  still close it just as the request goes out; a request that then fails on a reused
  connection is sent again at once on another, with no backoff and no attempt counted,
  when that is safe: a GET always (as Go's ``net/http`` and urllib3 do), a create only
  when it provably did not reach the server (``_Watch``). aiohttp's own silent re-send
  is switched off, so one attempt is one request otherwise.
- **Whether a create reached the server**, from TCP's own facts, never from error
  texts. Before a create goes out, the transport notes how many bytes of the
  connection the server's TCP has acknowledged; when the connection fails, it looks
  again. Every segment a TCP sends acknowledges every byte it has received, so a
  server whose closing FIN acknowledges no byte of the request had closed the
  connection before any of it arrived, and an HTTP server does not act on a request
  that arrives on a connection it has closed (it could never answer). Nor can the
  server have a request of which no segment left this machine. Either way the failure
  is raised as ``httpx.ConnectError`` (request not sent), so the retry policy may send
  a create again. Any other failure may have reached the server, a reset without a FIN
  too: a server that read the request and then reset the connection looks the same.
  The counters are Linux's ``TCP_INFO``; elsewhere every failure after sending may
  have reached the server.
- **Proxies and trust** (``build_http_client``): the environment's proxy variables as
  httpx reads them, an explicit ``proxy=``, and one trust policy (see
  ``ssl_context_for``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import select
import socket
import ssl
import struct
import sys
from typing import TYPE_CHECKING, Any, Final, NamedTuple, NoReturn, cast
from urllib.request import getproxies

import aiohttp
import httpx
import multidict
import yarl
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ConnectionKey

from ._body import decode_limited
from ._constants import DEFAULT_KEEPALIVE_EXPIRY, MAX_RESPONSE_BYTES
from ._exceptions import CREDENTIAL_HEADERS, exception_chain

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator, Generator, Mapping

    from ._config import ClientOptions

__all__ = [
    "AiohttpTransport",
    "Wire",
    "build_http_client",
    "environment_proxies",
    "proxy_mounts",
    "ssl_context_for",
]

logger: Final = logging.getLogger("inkit_async")

_HTTP_11: Final = b"HTTP/1.1"
_REDACTED: Final = "[redacted]"
#: Times one request is sent again after failing on a stale reused connection.
_RESENDS: Final = 3
#: Reused connections checked and dropped before a request gives up looking.
_STALE_CHECKS: Final = 8

#: Linux's ``struct tcp_info`` (``TCP_INFO``): its first 160 bytes (kernel 4.6 and
#: later) hold ``tcpi_bytes_acked`` (a u64 at byte 120: bytes of ours the peer's TCP has
#: acknowledged, plus one for the SYN) and ``tcpi_data_segs_out`` (a u32 at byte 156:
#: segments carrying data this side has sent, retransmissions included).
_TCP_INFO: Final[int | None] = (
    getattr(socket, "TCP_INFO", None) if sys.platform == "linux" else None
)
_TCP_INFO_SIZE: Final = 160
_TCP_COUNTERS: Final = struct.Struct("=Q28xI")
_TCP_COUNTERS_AT: Final = 120

# What the transport knows of the current request's connection (set by _Connector).
_sent: contextvars.ContextVar[_Watch | None] = contextvars.ContextVar("inkit_sent", default=None)


def _mask(headers: Any) -> multidict.CIMultiDictProxy[str]:  # noqa: ANN401 - aiohttp's types
    masked = multidict.CIMultiDict[str](headers)
    for name in CREDENTIAL_HEADERS:  # what aiohttp's exceptions keep of the request
        if name in masked:
            masked[name] = _REDACTED
    return multidict.CIMultiDictProxy(masked)


def _anonymous(url: yarl.URL) -> yarl.URL:
    """*url* without user info (a proxy's user name and password)."""
    return url.with_user(None) if url.user is not None else url


def _scrubbed(exc: BaseException) -> BaseException:
    """*exc* with the credentials aiohttp keeps in its exceptions taken out, along its chain.

    aiohttp keeps the request's headers (the token, and ``Proxy-Authorization`` on a
    forwarded request) and the proxy's URL, user name and password included, in the
    ``request_info`` of a response error (the URL is in its text too), and the proxy's
    URL and ``BasicAuth`` in the connection key of a connection error. Each is replaced
    by a copy without them, in ``args`` too; the headers of a proxy's refusal are
    dropped (a proxy may echo what it was sent). The texts left are masked by value
    where the error is built (``_exceptions.scrub_failure``).
    """
    for error in exception_chain(exc):
        if isinstance(error, aiohttp.ClientResponseError):
            info = error.request_info
            error.request_info = aiohttp.RequestInfo(
                _anonymous(info.url), info.method, _mask(info.headers), _anonymous(info.real_url)
            )
            error.history = ()
            error.headers = None  # the answer's (a proxy's refusal may echo what it got)
            error.args = (error.request_info, ())
        key = getattr(error, "_conn_key", None)
        if isinstance(key, ConnectionKey):
            proxy = None if key.proxy is None else _anonymous(key.proxy)
            clean = key._replace(proxy=proxy, proxy_auth=None)
            error._conn_key = clean  # type: ignore[attr-defined]  # noqa: SLF001 - aiohttp's, see above
            error.args = tuple(clean if arg is key else arg for arg in error.args)
    return exc


def _mapped(exc: BaseException) -> httpx.TransportError:  # noqa: PLR0911 - one return per kind
    """The httpx exception that means the same as an aiohttp (or OS) failure."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # connecting, or waiting for the pool
        return httpx.ConnectTimeout(str(exc) or "connect timed out")
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return httpx.ReadTimeout(str(exc) or "read timed out")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(str(exc) or "timed out")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = getattr(exc.certificate_error, "verify_message", None) or exc.certificate_error
        return httpx.ConnectError(
            f"TLS certificate verification failed for {exc.host}: {reason}. To trust a "
            "private CA, pass verify=<CA bundle path> or set SSL_CERT_FILE"
        )
    if isinstance(exc, aiohttp.ClientConnectorError):  # the request was never sent
        return httpx.ConnectError(str(exc))
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(str(exc) or "server disconnected")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(str(exc) or "incomplete response body")
    if isinstance(exc, aiohttp.ClientResponseError):  # a malformed status line or headers
        return httpx.RemoteProtocolError(str(exc))
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(str(exc))
    if isinstance(exc, aiohttp.ClientConnectionError | ConnectionError):
        return httpx.ReadError(str(exc) or type(exc).__name__)
    return httpx.TransportError(str(exc) or type(exc).__name__)


def _raise_mapped(exc: BaseException) -> NoReturn:
    cause = _scrubbed(exc)
    if isinstance(exc, aiohttp.ClientSSLError):
        # Chain the ssl error itself: the retry policy reads it to see a final failure.
        # (aiohttp's error stays reachable as its context: scrubbed above.)
        cause = getattr(exc, "certificate_error", None) or exc.os_error
    # Mapped after the scrub: the text quotes the URL, now without user info.
    raise _mapped(exc) from cause


@contextlib.contextmanager
def _map_errors() -> Generator[None]:
    """Re-raise aiohttp's failures as the httpx exception that means the same."""
    try:
        yield
    except (aiohttp.ClientError, ConnectionError) as exc:
        _raise_mapped(exc)


def _tcp_counters(transport: asyncio.BaseTransport | None) -> tuple[int, int] | None:
    """``(bytes the peer acknowledged, data segments sent)`` of a TCP connection, if known.

    ``None`` off Linux, without a socket, or once the socket is closed.
    """
    sock = transport.get_extra_info("socket") if transport is not None else None
    if _TCP_INFO is None or sock is None:
        return None
    try:
        info: bytes = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_SIZE)
    except (OSError, ValueError):  # closed already (uvloop's socket: ValueError)
        return None
    if len(info) < _TCP_INFO_SIZE:  # pragma: no cover - a kernel older than 4.6 (2016)
        return None
    return cast("tuple[int, int]", _TCP_COUNTERS.unpack_from(info, _TCP_COUNTERS_AT))


class _Watch:
    """One request's connection: reused or not, and TCP's counters around its failure.

    ``before`` is read when the connection is handed to the request, before any byte of
    it is written; ``at_fin`` when the server's FIN (end of stream) arrives, and
    ``at_loss`` when the connection is lost, both while the socket is still open.
    """

    __slots__ = ("at_fin", "at_loss", "before", "reused")

    def __init__(self, *, reused: bool, before: tuple[int, int] | None = None) -> None:
        self.reused = reused
        self.before = before
        self.at_fin: tuple[int, int] | None = None
        self.at_loss: tuple[int, int] | None = None

    def undelivered(self, exc: BaseException) -> bool:
        """Whether the request provably never reached the server, so it is safe to send again.

        True when the server's TCP acknowledged no byte of the request, and either its
        FIN arrived (a FIN acknowledges every byte received before it: the server closed
        the connection before the request reached it) or no segment of the request left
        this machine. A timeout is never proof: the peer may just be slow to answer.
        """
        before = self.before
        if before is None or isinstance(exc, aiohttp.ServerTimeoutError):
            return False
        seen = [counters for counters in (self.at_fin, self.at_loss) if counters is not None]
        if not seen or any(acked != before[0] for acked, _ in seen):
            return False
        if self.at_fin is not None:
            return True
        return seen[-1][1] == before[1]


# The watches of every GET: nothing to note, so one of each kind, never changed.
_REUSED: Final = _Watch(reused=True)
_FRESH: Final = _Watch(reused=False)


class _Handler(ResponseHandler):
    """aiohttp's connection protocol, noting TCP's counters as the server closes it."""

    inkit_watch: _Watch | None = None
    """The watch of the request under way on this connection, or of the last one."""

    def eof_received(self) -> None:
        """The server's FIN: note the counters (the socket is still open), then as aiohttp."""
        watch = self.inkit_watch
        if watch is not None and watch.before is not None and watch.at_fin is None:
            watch.at_fin = _tcp_counters(self.transport)
        super().eof_received()

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection ended: note the counters (the socket is still open), then as aiohttp."""
        watch = self.inkit_watch
        if watch is not None and watch.before is not None and watch.at_loss is None:
            watch.at_loss = _tcp_counters(self.transport)
        super().connection_lost(exc)


def _has_pending_input(protocol: Any) -> bool:  # noqa: ANN401 - aiohttp's ResponseHandler
    """Whether an idle connection has something to read: a close, or bytes nobody asked for."""
    fd = getattr(protocol, "_inkit_fd", None)
    if fd is None:
        transport = protocol.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None:
            return False
        fd = protocol._inkit_fd = sock.fileno()  # noqa: SLF001 - our own mark, see _Connector
    try:
        readable, _, _ = select.select((fd,), (), (), 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class _Connector(aiohttp.TCPConnector):
    """A connector that marks reused connections, drops stale ones and watches creates."""

    def __init__(self, *, limit: int, keepalive_timeout: float, ssl: ssl.SSLContext | bool) -> None:
        super().__init__(  # pyright: ignore[reportUnknownMemberType] - aiohttp leaves socket_factory's type partly unknown
            limit=limit, limit_per_host=0, keepalive_timeout=keepalive_timeout, ssl=ssl
        )
        # Connections speak through _Handler. aiohttp has no public way to choose the
        # protocol; should it stop reading this attribute, connections are its own
        # ResponseHandler, unwatched, and every failure of a create may have reached the
        # server (as before this watch existed).
        handler = functools.partial(_Handler, loop=self._loop)
        self._factory = cast("functools.partial[ResponseHandler]", handler)

    async def connect(self, req: Any, traces: Any, timeout: Any) -> aiohttp.connector.Connection:  # noqa: ANN401 - aiohttp's internal types
        """Get a connection as aiohttp does, skipping reused ones the server has closed."""
        checks = 0
        while True:
            connection = await super().connect(req, traces, timeout)
            protocol: Any = connection.protocol
            # A mark on the protocol object says it carried a request before: cheaper
            # than a weak set, and it goes away with the connection.
            reused = getattr(protocol, "_inkit_used", False)
            checks += 1
            stale = reused and (
                protocol is None or protocol.should_close or _has_pending_input(protocol)
            )
            if not stale or checks >= _STALE_CHECKS:
                break
            connection.close()  # closed by the server, or out of step with it: drop it
        if protocol is not None and not reused:
            protocol._inkit_used = True  # noqa: SLF001 - our own mark, see above
        if req.method == "GET":  # sent again whatever happened: it needs no proof
            watch = _REUSED if reused else _FRESH
        else:
            watch = _Watch(
                reused=reused, before=_tcp_counters(getattr(protocol, "transport", None))
            )
        if isinstance(protocol, _Handler):  # pragma: no branch - always, see __init__
            protocol.inkit_watch = watch
        _sent.set(watch)
        return connection


class Wire(NamedTuple):
    """An answer as the lean path reads it: status, headers and the decoded body."""

    status: int
    reason: str | None
    raw_headers: tuple[tuple[bytes, bytes], ...]
    content: bytes | None
    """The decoded body; ``None`` when it is over ``MAX_RESPONSE_BYTES`` (not read)."""


async def _read_limited(response: aiohttp.ClientResponse) -> bytes | None:
    """Read and decode the body; ``None`` once it is over ``MAX_RESPONSE_BYTES``."""
    length = response.content_length
    if length is not None and length > MAX_RESPONSE_BYTES:
        return None
    encoding = response.headers.get("Content-Encoding")
    if length is not None and encoding is None:
        return await response.read()  # the common case: one read of a known length
    return await decode_limited(response.content.iter_any(), encoding)


class _ResponseStream(httpx.AsyncByteStream):
    """The body of an aiohttp response as an httpx byte stream (raw, not decoded)."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _map_errors():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # Back to the pool when the body was read in full; closed otherwise.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` that sends through one ``aiohttp.ClientSession``.

    The session is created on first use, inside the running event loop. HTTP/1.1 only.
    With *proxy*, every request goes through that HTTP proxy (forwarded for ``http://``,
    tunnelled with CONNECT for ``https://``).
    """

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float,
        verify: ssl.SSLContext | bool = True,
        proxy: str | None = None,
    ) -> None:
        """Pool at most *max_connections*; idle ones close after *keepalive_expiry* s."""
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl: ssl.SSLContext | bool = verify
        self._proxy = yarl.URL(proxy) if proxy else None
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        """Say whether it goes through a proxy (never its credentials)."""
        proxy = f" proxy={self._proxy.with_user(None)}" if self._proxy else ""
        return f"<AiohttpTransport{proxy}>"

    def _open_session(self) -> aiohttp.ClientSession:
        connector = _Connector(
            limit=self._max_connections, keepalive_timeout=self._keepalive_expiry, ssl=self._ssl
        )
        session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # the SDK decodes, so it can bound the decoded size
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,  # proxies are chosen by build_http_client, as httpx does
        )
        # aiohttp silently re-sends a GET once when the server drops the connection,
        # reused or not. This transport re-sends only what is safe (see the module
        # docstring), and otherwise one attempt is one request. aiohttp's own test
        # client turns its re-send off the same way; there is no public switch.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False  # noqa: SLF001  # pyright: ignore[reportPrivateUsage] - see above
        self._session = session
        return session

    @staticmethod
    def timeout_for(timeouts: dict[str, float | None]) -> aiohttp.ClientTimeout:
        """The aiohttp timeouts for httpx's per-phase ones (``httpx.Timeout.as_dict()``)."""
        return aiohttp.ClientTimeout(
            total=None,
            # aiohttp's `connect` includes waiting for a pooled connection.
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )

    async def _send(
        self,
        method: str,
        url: yarl.URL,
        headers: Any,  # noqa: ANN401 - whatever aiohttp takes as headers
        content: bytes | None,
        timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        """Send through the pool; re-send at once what failed on a stale reused connection."""
        session = self._session or self._open_session()
        resends = 0
        while True:
            _sent.set(None)
            try:
                return await session.request(
                    method,
                    url,
                    headers=headers,
                    data=content,
                    allow_redirects=False,
                    compress=False,
                    timeout=timeout,
                    proxy=self._proxy,
                )
            except (aiohttp.ClientError, ConnectionError) as exc:
                watch = _sent.get()  # None: no connection was handed over
                undelivered = watch is not None and watch.undelivered(exc)
                if (
                    resends < _RESENDS
                    and watch is not None
                    and watch.reused
                    and (undelivered or method == "GET")
                ):
                    resends += 1
                    logger.debug(
                        "%s %s failed on a reused connection before an answer (%s): "
                        "sending it again on another",
                        method,
                        url.path,
                        type(exc).__name__,
                    )
                    continue
                if undelivered:
                    # Not sent, as a refused connection is not: the policy may try again.
                    raise httpx.ConnectError(
                        "the server had closed the connection before any byte of the request "
                        f"reached it ({type(exc).__name__})"
                    ) from _scrubbed(exc)
                _raise_mapped(exc)

    async def fetch(
        self,
        url: yarl.URL,
        headers: Mapping[str, str],
        timeout: aiohttp.ClientTimeout,
    ) -> Wire:
        """GET *url* and read the answer whole, within the body limit: the SDK's lean path.

        No httpx object is made: the engine builds those only for an answer it cannot
        use (the errors carry them). *url* must be encoded already.
        """
        response = await self._send("GET", url, headers, None, timeout)
        try:
            with _map_errors():
                content = await _read_limited(response)
        except BaseException:
            response.close()
            raise
        response.release()
        return Wire(response.status, response.reason, response.raw_headers, content)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send *request* through aiohttp and wrap the answer as a streaming httpx response."""
        # Already encoded by httpx: yarl must not re-quote it (it would turn an id's
        # `%3D` back into `=`).
        response = await self._send(
            request.method,
            yarl.URL(str(request.url), encoded=True),
            request.headers.multi_items(),
            request.content or None,  # the SDK only sends bodies it has built in memory
            self.timeout_for(request.extensions.get("timeout", {})),
        )
        extensions: dict[str, object] = {"http_version": _HTTP_11}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("ascii", "replace")
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        """Close the pool and every connection in it."""
        if self._session is not None:
            await self._session.close()

    def __del__(self) -> None:
        # Collected with its pool open: the client that owned it was never closed, and
        # has said so in one ResourceWarning that names AsyncInkit and the cure. Close the
        # sockets now, so aiohttp does not add two warnings of its own about objects the
        # user never made. Its connector's synchronous close is private; `close()` would
        # return an awaitable nobody can await here.
        session = getattr(self, "_session", None)  # None: __init__ failed before setting it
        if session is not None and not session.closed:
            close = getattr(session.connector, "_close", None)
            if close is not None:
                close()


# -- proxies and trust -------------------------------------------------------------------


def environment_proxies() -> dict[str, str | None]:
    """The proxy mounts httpx derives from the environment, by its rules.

    ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` (either case; lower case wins, as
    urllib reads them) map ``http://``, ``https://`` and ``all://`` to a proxy URL;
    ``NO_PROXY`` entries map hosts to ``None`` (no proxy): ``*`` turns proxies off,
    ``.example.com`` covers its subdomains, ``example.com`` the domain and its
    subdomains, IP addresses and ``localhost`` themselves.
    """
    found = getproxies()
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        if found.get(scheme):
            url = found[scheme]
            mounts[f"{scheme}://"] = _checked_proxy(
                f"{scheme.upper()}_PROXY", url if "://" in url else f"http://{url}"
            )
    for host in (entry.strip() for entry in found.get("no", "").split(",")):
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            mounts[host] = None
        elif host.lower() == "localhost" or _is_ip(host):
            mounts[f"all://{_bracketed(host)}"] = None
        else:
            mounts[f"all://*{host}"] = None
    return mounts


def _checked_proxy(variable: str, url: str) -> str:
    """*url* from the environment variable *variable*, if a proxy URL; never echoed."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in {"http", "https"} or not parsed.host:
        # Neither the URL nor the parser's message: either may hold the password.
        raise ValueError(
            f"{variable} (or its lower-case form) is not an http:// or https:// proxy URL "
            "with a host (percent-encode any of : / ? # @ in its user name and password)"
        )
    return url


def _is_ip(host: str) -> bool:
    import ipaddress  # noqa: PLC0415 - rarely needed

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def ssl_context_for(verify: bool | str | ssl.SSLContext, *, trust_env: bool) -> ssl.SSLContext:  # noqa: FBT001 - verify= is the option as users pass it
    """The TLS context for ``verify=``, by the SDK's one trust policy.

    - ``True`` (the default): if ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` is set (and
      *trust_env*), exactly the CAs they name; otherwise the operating system's trust
      store, through ``truststore`` (as pip does): a corporate CA that IT installed
      on the machine is trusted on Linux, macOS and Windows alike.
    - A path: the CA bundle file (or directory of hashed certificates) it names.
    - ``False``: no verification at all (for tests against self-signed servers only).
    - An ``ssl.SSLContext``: used as it is.

    The variables are read each time a client is created, never cached; with
    *trust_env* false they are not read at all (on Linux the system's CA files are
    then named explicitly, since OpenSSL would read the variables itself).
    """
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        if os.path.isdir(verify):  # noqa: PTH112 - a plain check, as ssl's own API takes str
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return _default_trust(trust_env=trust_env)


def _default_trust(*, trust_env: bool) -> ssl.SSLContext:
    cafile = os.environ.get("SSL_CERT_FILE") if trust_env else None
    capath = os.environ.get("SSL_CERT_DIR") if trust_env else None
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile or None, capath=capath or None)
    if not trust_env and sys.platform == "linux":
        # OpenSSL reads SSL_CERT_FILE/SSL_CERT_DIR itself when it loads the system
        # store; name the system's own files instead, so the variables stay unread.
        paths = ssl.get_default_verify_paths()
        return ssl.create_default_context(
            cafile=_existing(paths.openssl_cafile), capath=_existing(paths.openssl_capath)
        )
    import truststore  # noqa: PLC0415 - only clients that verify need it

    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _existing(path: str | None) -> str | None:
    return path if path and os.path.exists(path) else None  # noqa: PTH110 - str paths for ssl


def proxy_mounts(options: ClientOptions) -> dict[str, str | None]:
    """The proxy for each httpx mount pattern: ``proxy=`` for all, else the environment's."""
    if options.proxy is not None:
        return {"all://": str(options.proxy)}
    return environment_proxies() if options.trust_env else {}


def build_http_client(
    options: ClientOptions, proxies: Mapping[str, str | None]
) -> httpx.AsyncClient:
    """The SDK's own ``httpx.AsyncClient``: aiohttp transports, proxies, trust, no redirects.

    *proxies* are ``proxy_mounts(options)``, read once by the caller, who also masks the
    credentials in them.

    The pool holds one connection per concurrency slot, so a request that holds a slot
    never queues for a connection and the pool timeout only measures a real stall.
    Requests to a proxy go through a transport (and a pool) of its own, chosen per URL
    by httpx's mount patterns, exactly as httpx would choose.
    """
    if options.transport is not None:
        return httpx.AsyncClient(transport=options.transport, follow_redirects=False)

    # TLS to the API, or to an https:// proxy, goes by the one trust policy.
    needs_tls = options.root.startswith("https:") or any(
        (url or "").startswith("https:") for url in proxies.values()
    )
    context: ssl.SSLContext | bool = (
        ssl_context_for(options.verify, trust_env=options.trust_env) if needs_tls else True
    )

    def transport(proxy: str | None = None) -> AiohttpTransport:
        return AiohttpTransport(
            max_connections=options.max_concurrency,
            keepalive_expiry=DEFAULT_KEEPALIVE_EXPIRY,
            verify=context,
            proxy=proxy,
        )

    mounts = {pattern: None if url is None else transport(url) for pattern, url in proxies.items()}
    return httpx.AsyncClient(
        transport=transport(), mounts=mounts, follow_redirects=False, trust_env=False
    )

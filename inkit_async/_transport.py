"""The default transport: httpx's interface over aiohttp's HTTP/1.1 connection pool.

Why: on loopback with 100 concurrent lookups, stock httpx spends about 1.5 ms of CPU
per request (httpcore's pool rescans every connection for every waiter), while
aiohttp's pool costs about 0.1 ms. Keeping httpx's ``AsyncClient`` in front keeps
its API, its event hooks and respx mocking; only the bytes move through aiohttp.
The figures behind the choice are in docs/performance.md.

Unlike the third-party ``httpx-aiohttp`` package, every aiohttp failure maps to the
httpx exception that says whether the request may have reached the server: the
SDK retries a create only after ``httpx.ConnectError``/``ConnectTimeout``, so a
dropped connection must never be reported as one.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final

import aiohttp
import httpx
import yarl

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator, Generator

__all__ = ["AiohttpTransport"]

_HTTP_11: Final = b"HTTP/1.1"


@contextlib.contextmanager
def _map_errors() -> Generator[None]:
    """Re-raise aiohttp's failures as the httpx exception that means the same."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:  # connecting, or waiting for the pool
        raise httpx.ConnectTimeout(str(exc) or "connect timed out") from exc
    except aiohttp.SocketTimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "read timed out") from exc
    except aiohttp.ServerTimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "timed out") from exc
    except aiohttp.ClientConnectorError as exc:  # the request was never sent
        raise httpx.ConnectError(str(exc)) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise httpx.RemoteProtocolError(str(exc) or "server disconnected") from exc
    except aiohttp.ClientPayloadError as exc:
        raise httpx.RemoteProtocolError(str(exc) or "incomplete response body") from exc
    except aiohttp.ClientResponseError as exc:  # a malformed status line or headers
        raise httpx.RemoteProtocolError(str(exc)) from exc
    except aiohttp.InvalidURL as exc:
        raise httpx.UnsupportedProtocol(str(exc)) from exc
    except (aiohttp.ClientConnectionError, ConnectionError) as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
    except aiohttp.ClientError as exc:
        raise httpx.TransportError(str(exc) or type(exc).__name__) from exc


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

    The session is created on first use, inside the running event loop. HTTP/1.1 only;
    no proxies (use your own ``http_client`` if you need them).
    """

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """Pool at most *max_connections*; idle ones close after *keepalive_expiry* s."""
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl: ssl.SSLContext | bool = verify
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_expiry,
            ssl=self._ssl,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # the SDK decodes, so it can bound the decoded size
            timeout=aiohttp.ClientTimeout(total=None),
        )
        # aiohttp silently re-sends a GET once when the server drops the connection. The
        # SDK retries on its own terms (logged, counted against max_retries, with
        # backoff), so one SDK attempt must be exactly one request. aiohttp's own test
        # client turns the retry off the same way; it has no public switch.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False  # noqa: SLF001  # pyright: ignore[reportPrivateUsage]
        self._session = session
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send *request* through aiohttp and wrap the answer as a streaming httpx response."""
        session = self._session or self._open_session()
        timeouts = request.extensions.get("timeout", {})
        content = request.content  # the SDK only sends bodies it has built in memory
        with _map_errors():
            response = await session.request(
                request.method,
                # Already encoded by httpx: yarl must not re-quote it (it would turn
                # an id's `%3D` back into `=`).
                yarl.URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=content or None,
                allow_redirects=False,
                compress=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    # aiohttp's `connect` includes waiting for a pooled connection.
                    connect=timeouts.get("pool"),
                    sock_connect=timeouts.get("connect"),
                    sock_read=timeouts.get("read"),
                ),
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

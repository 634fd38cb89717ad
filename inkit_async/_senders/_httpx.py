"""The sender for any httpx-API client or transport: httpx's or httpx2's, public API only.

A caller's ``http_client`` sends as the caller configured it (its pool, proxies, hooks,
default headers), with two exceptions the SDK insists on: redirects are never
followed (the token and body would go wherever a ``Location`` says), and each phase of
the attempt's timeouts is passed as that library's ``Timeout``. A ``transport=`` gets
a client of its own library, which the sender owns and closes.

Which library an object belongs to is read from the modules already imported: an
``httpx2`` object can only exist once ``httpx2`` is, so neither library is imported
here on the other's behalf.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import httpx

from .._body import read_limited
from .._constants import HTTPX_LIBRARIES, TOKEN_HEADER
from .._exceptions import SECRETS_EXTENSION
from .._wire import PIECE_BYTES, TRANSPORT_KINDS, Opened, Reply, TransportFailure

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from types import ModuleType

    from .._wire import Request, Timeouts

__all__ = ["HttpxSender", "library_of"]


def library_of(value: object, kind: str) -> ModuleType | None:
    """The httpx-API module whose *kind* (``AsyncClient``, ``AsyncBaseTransport``) *value* is."""
    for name in HTTPX_LIBRARIES:
        module = sys.modules.get(name)
        cls = getattr(module, kind, None) if module is not None else None
        if isinstance(cls, type) and isinstance(value, cls):
            return module
    return None


class HttpxSender:
    """Sends through an httpx-API ``AsyncClient`` with its public ``build_request``/``send``."""

    __slots__ = ("_client", "_library", "_owned", "_timeouts")

    def __init__(self, client: Any, library: ModuleType, *, owned: bool) -> None:  # noqa: ANN401 - an httpx or httpx2 AsyncClient
        """Send through *client* (of *library*); close it with the sender if *owned*."""
        self._client = client
        self._library = library
        self._owned = owned
        self._timeouts: dict[Timeouts, Any] = {}

    @classmethod
    def over_transport(cls, transport: Any, library: ModuleType) -> HttpxSender:  # noqa: ANN401 - an httpx or httpx2 transport
        """A sender over a client of *library* that sends through *transport* (and owns both)."""
        client = library.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)
        return cls(client, library, owned=True)

    def _timeout(self, timeouts: Timeouts) -> Any:  # noqa: ANN401 - the library's Timeout
        timeout = self._timeouts.get(timeouts)
        if timeout is None:
            connect, read, write, pool = timeouts
            timeout = self._library.Timeout(
                None, connect=connect, read=read, write=write, pool=pool
            )
            self._timeouts[timeouts] = timeout
        return timeout

    def _build(self, request: Request) -> Any:  # noqa: ANN401 - the library's Request
        return self._client.build_request(
            request.method,
            request.url,
            headers=request.headers,
            content=request.body,
            timeout=self._timeout(request.timeouts),
            extensions={SECRETS_EXTENSION: request.secrets},
        )

    async def open(self, request: Request) -> Opened:
        """Send *request* (a download) and return at its answer's head; the body streams."""
        library = self._library
        built = self._build(request)
        try:
            response = await self._client.send(built, stream=True, follow_redirects=False)
        except library.HTTPError as exc:
            raise _failure(exc) from exc
        headers = tuple(response.headers.raw)
        if response.is_stream_consumed:
            # Built in memory, as mock transports do: httpx has decoded it already.
            decoded = {b"content-encoding", b"content-length"}
            headers = tuple((name, value) for name, value in headers if name.lower() not in decoded)
        sent = response.request.headers.get(TOKEN_HEADER)
        return Opened(
            response.status_code,
            response.reason_phrase,
            headers,
            _HttpxBody(response, library),
            sent if sent != request.headers.get(TOKEN_HEADER) else None,
        )

    async def send(self, request: Request) -> Reply:
        """Send *request* and read the answer whole (within the body limit)."""
        library = self._library
        built = self._build(request)
        try:
            response = await self._client.send(built, stream=True, follow_redirects=False)
            try:
                content = await read_limited(response)
            finally:
                await response.aclose()
        except (library.HTTPError, httpx.DecodingError) as exc:  # the second: the SDK's decoder
            raise _failure(exc) from exc
        # A caller's request hook may have swapped the token: the answer may echo that one.
        sent = response.request.headers.get(TOKEN_HEADER)
        return Reply(
            response.status_code,
            response.reason_phrase,
            tuple(response.headers.raw),
            content,
            sent if sent != request.headers.get(TOKEN_HEADER) else None,
        )

    async def aclose(self) -> None:
        """Close the client, if the sender made it (a caller's own stays open)."""
        if self._owned:
            await self._client.aclose()


class _HttpxBody:
    """A download's body, read from an httpx-API response in pieces."""

    __slots__ = ("_library", "_response")

    def __init__(self, response: Any, library: ModuleType) -> None:  # noqa: ANN401 - an httpx or httpx2 Response
        self._response = response
        self._library = library

    async def pieces(self) -> AsyncGenerator[bytes]:
        """The raw body, each piece at most ``PIECE_BYTES``."""
        response = self._response
        if response.is_stream_consumed:  # built in memory (see ``HttpxSender.open``)
            content: bytes = response.content
            for start in range(0, len(content), PIECE_BYTES):
                yield content[start : start + PIECE_BYTES]
            return
        try:
            async for piece in response.aiter_raw(PIECE_BYTES):
                yield piece
        except self._library.HTTPError as exc:
            raise _failure(exc) from exc

    async def aclose(self) -> None:
        """Close the response (httpx keeps the connection only if the body was read whole)."""
        await self._response.aclose()


def _failure(exc: BaseException) -> TransportFailure:
    """The failure an httpx-API exception means: its class, or the nearest one httpx names."""
    for cls in type(exc).__mro__:
        if cls.__name__ in TRANSPORT_KINDS:
            return TransportFailure(cls.__name__, str(exc) or cls.__name__)
    return TransportFailure("TransportError", str(exc) or type(exc).__name__)

"""The in-process sender: a request handed to a handler in the same process, no socket.

``FakeInkit.client()`` sends through it, so a test's client runs every line of the
engine a production client runs (slots, throttle, coalescing, cache, decoding, errors);
only the bytes never leave the process. The answer is decoded and bounded exactly as
one read from a socket.
"""

from __future__ import annotations

import asyncio
import http
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from .._body import decode_limited
from .._wire import PIECE_BYTES, Opened, Reply, TransportFailure

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Mapping

    from .._wire import Request

__all__ = ["InProcessTransport", "LocalSender"]


class InProcessTransport(httpx.AsyncBaseTransport):
    """A transport that answers in process; the SDK sends to it through ``LocalSender``.

    Subclasses implement ``answer``. As an httpx transport it serves any
    ``httpx.AsyncClient`` too.
    """

    async def answer(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer one request (*target*: path and query as sent; *headers* lower-cased)."""
        raise NotImplementedError

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer an httpx request through ``answer``."""
        status, headers, payload = await self.answer(
            request.method,
            request.url.raw_path.decode("ascii"),
            {name.lower(): value for name, value in request.headers.items()},
            await request.aread(),
        )
        return httpx.Response(status, headers=headers, content=payload, request=request)


class LocalSender:
    """Sends to an ``InProcessTransport`` in process."""

    __slots__ = ("_transport",)

    def __init__(self, transport: InProcessTransport) -> None:
        """Send to *transport*; closing the sender closes it."""
        self._transport = transport

    async def open(self, request: Request) -> Opened:
        """Hand *request* over; its answer's body streams in pieces, as a socket's would."""
        status, headers, payload = await self._answer(request)
        raw = tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers)
        return Opened(status, _reason(status), raw, _InMemoryBody(payload))

    async def send(self, request: Request) -> Reply:
        """Hand *request* over and decode the answer as a socket's would be."""
        status, headers, payload = await self._answer(request)
        encoding = next((v for k, v in headers if k.lower() == "content-encoding"), None)
        try:
            content = await decode_limited(_once(payload), encoding)
        except httpx.DecodingError as exc:
            raise TransportFailure("DecodingError", str(exc)) from exc
        raw = tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers)
        return Reply(status, _reason(status), raw, content)

    async def _answer(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        # One turn of the event loop, as a request over a socket takes at least: other
        # tasks run between the send and the answer, as they would in production.
        await asyncio.sleep(0)
        url = urlsplit(request.url)
        target = f"{url.path}?{url.query}" if url.query else url.path
        # The read timeout bounds the wait for the answer, as it bounds the wait for the
        # first bytes on a socket: an answer that is slow (or never comes) ends the same.
        waiting = asyncio.timeout(request.timeouts.read)
        try:
            async with waiting:
                status, headers, payload = await self._transport.answer(
                    request.method,
                    target,
                    {name.lower(): value for name, value in request.headers.items()},
                    request.body or b"",
                )
        except TimeoutError:
            if not waiting.expired():
                raise
            raise TransportFailure("ReadTimeout", "read timed out") from None
        return status, headers, payload

    async def aclose(self) -> None:
        """Close the transport."""
        await self._transport.aclose()


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


async def _once(payload: bytes) -> AsyncIterator[bytes]:
    yield payload


class _InMemoryBody:
    """An in-process answer's body, handed over in pieces as a socket would."""

    __slots__ = ("_payload",)

    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    async def pieces(self) -> AsyncGenerator[bytes]:
        """The body, each piece at most ``PIECE_BYTES``, one loop turn apart."""
        view = memoryview(self._payload)
        for start in range(0, len(view), PIECE_BYTES):
            await asyncio.sleep(0)  # as a socket's reads are: other tasks run between
            yield bytes(view[start : start + PIECE_BYTES])

    async def aclose(self) -> None:
        """Drop the payload."""
        self._payload = b""

"""What the SDK needs of an httpx-API client, transport or timeout: httpx's or httpx2's.

Public parameters take these protocols rather than one library's classes, so an
``httpx.AsyncClient`` and an ``httpx2.AsyncClient`` both type-check without a cast,
and an app that has only one of the two installed needs nothing of the other. At run
time the SDK accepts objects of either library only (``_senders/_httpx.py``), since
it relies on their documented behaviour, not just on these method names.
"""

# ruff: noqa: ANN401 - the libraries take and return their own types; Any matches both

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["AsyncHTTPClient", "AsyncHTTPTransport", "HTTPTimeout"]


class AsyncHTTPClient(Protocol):
    """An ``httpx.AsyncClient`` or ``httpx2.AsyncClient``."""

    def build_request(
        self,
        method: str,
        url: Any,
        *,
        content: Any = ...,
        headers: Any = ...,
        timeout: Any = ...,
        extensions: Any = ...,
    ) -> Any:
        """Build a request, merging the client's defaults (its headers, its base URL)."""
        ...

    async def send(self, request: Any, *, stream: bool = ..., follow_redirects: bool = ...) -> Any:
        """Send a request and return its response (the body streamed, with ``stream``)."""
        ...

    async def aclose(self) -> None:
        """Close the client's connections."""
        ...


class AsyncHTTPTransport(Protocol):
    """An ``httpx.AsyncBaseTransport`` or ``httpx2.AsyncBaseTransport`` (``MockTransport`` too)."""

    async def handle_async_request(self, request: Any) -> Any:
        """Send one request and return its response."""
        ...

    async def aclose(self) -> None:
        """Close what the transport holds open."""
        ...


class HTTPTimeout(Protocol):
    """An ``httpx.Timeout`` or ``httpx2.Timeout``: per-phase timeouts."""

    def as_dict(self) -> dict[str, float | None]:
        """The phases as seconds: ``connect``, ``read``, ``write`` and ``pool``."""
        ...

"""Recognising a server that speaks only HTTP/2 (a placeholder until the classifier lands)."""

from __future__ import annotations

from typing import Final

__all__ = ["HTTP2_ONLY", "speaks_only_http2"]

HTTP2_ONLY: Final = (
    "the server speaks only HTTP/2, and inkit-async sends HTTP/1.1: use an endpoint or proxy "
    "that also speaks HTTP/1.1, or pass http_client=httpx.AsyncClient(http2=True)"
)


def speaks_only_http2(exc: BaseException) -> bool:  # noqa: ARG001 - see the module docstring
    """Whether *exc* shows an HTTP/2-only server."""
    return False

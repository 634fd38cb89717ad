"""Senders: the only code that touches a network library (see ``_wire.py`` for the seam).

``sender_for`` picks a client's sender once, when the client is built, from what it
was given: a caller's ``http_client`` (httpx or httpx2), a ``transport`` (``FakeInkit``'s
in process, or any httpx or httpx2 transport), or else the SDK's own, on aiohttp, with
the proxy and trust the options and the environment say.
"""

from __future__ import annotations

import enum
import re
from typing import TYPE_CHECKING

from .._config import client_secrets
from .._constants import DEFAULT_KEEPALIVE_EXPIRY
from .._transport import proxy_mounts, ssl_context_for
from ._deferred import sender_maker
from ._httpx import HttpxSender, library_of
from ._local import InProcessTransport, LocalSender

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Mapping

    from .._config import ClientOptions
    from .._exceptions import Secrets
    from .._wire import Sender

__all__ = ["InProcessTransport", "Reach", "proxy_for", "sender_for"]


class Reach(enum.Enum):
    """Which event loops a client's sender serves."""

    PER_LOOP = "per loop"
    """The SDK's own pool: a new sender for each loop, closed when that loop ends."""
    ANY = "any"
    """One sender for every loop: nothing of it belongs to a loop (``FakeInkit``'s, an
    httpx ``MockTransport``); closed with the client."""
    ONE = "one"
    """One sender for the first loop only: a caller's ``http_client``, or a transport
    whose connections belong to the loop that opened them."""


def sender_for(options: ClientOptions) -> tuple[Secrets, Callable[[], Sender], Reach]:
    """The client's credentials (for its errors to mask), how to make its sender, its reach.

    The sender is made when a loop first uses the client (``EngineState.local``): once
    per loop for ``Reach.PER_LOOP``, once in all for the others.
    """
    if options.http_client is not None:
        library = library_of(options.http_client, "AsyncClient")
        assert library is not None  # noqa: S101 - checked by ClientOptions
        http = HttpxSender(options.http_client, library, owned=False)
        return client_secrets(options), lambda: http, Reach.ONE
    transport = options.transport
    if isinstance(transport, InProcessTransport):
        local = LocalSender(transport)
        return client_secrets(options), lambda: local, Reach.ANY
    if transport is not None:  # a caller's transport: its proxies are its own
        library = library_of(transport, "AsyncBaseTransport")
        assert library is not None  # noqa: S101 - checked by ClientOptions
        sender = HttpxSender.over_transport(transport, library)
        # A MockTransport holds no connection; any other may (AsyncHTTPTransport's pool).
        reach = Reach.ANY if isinstance(transport, library.MockTransport) else Reach.ONE
        return client_secrets(options), lambda: sender, reach

    mounts = proxy_mounts(options)
    proxy = proxy_for(options.root, mounts)
    # TLS to the API, or to an https:// proxy, goes by the one trust policy.
    needs_tls = options.root.startswith("https:") or (proxy or "").startswith("https:")
    context: ssl.SSLContext | bool = (
        ssl_context_for(options.verify, trust_env=options.trust_env) if needs_tls else True
    )

    def lane() -> Sender:
        """An httpx client with the same proxy and trust, for respx to intercept."""
        import httpx  # noqa: PLC0415 - imported already, by the SDK itself

        client = httpx.AsyncClient(
            verify=context, proxy=proxy, trust_env=False, follow_redirects=False
        )
        return HttpxSender(client, httpx, owned=True)

    make = sender_maker(
        max_connections=options.max_concurrency,
        keepalive_expiry=DEFAULT_KEEPALIVE_EXPIRY,
        verify=context,
        proxy=proxy,
        lane=lane,
    )
    return client_secrets(options, mounts.values()), make, Reach.PER_LOOP


def proxy_for(url: str, mounts: Mapping[str, str | None]) -> str | None:
    """The proxy *url* goes through, by httpx's rules for mount patterns.

    A pattern is ``scheme://host:port``: scheme ``all`` matches any; host empty or
    ``*`` matches any, ``*.example.com`` its subdomains, ``*example.com`` the domain
    and its subdomains; no port matches any. Of the patterns that match, the one with
    a port wins, then the longest host, then the longest scheme, as httpx orders them.
    All of a client's requests go to one host, so this is decided once per client.
    """
    import httpx  # noqa: PLC0415 - imported already, by the SDK itself

    target = httpx.URL(url)
    best: tuple[tuple[bool, int, int], str | None] | None = None
    for pattern, proxy in mounts.items():
        parsed = httpx.URL(pattern)
        scheme = "" if parsed.scheme == "all" else parsed.scheme
        host = "" if parsed.host == "*" else parsed.host
        if scheme and scheme != target.scheme:
            continue
        if host and not _host_matches(host, target.host):
            continue
        if parsed.port is not None and parsed.port != target.port:
            continue
        rank = (parsed.port is not None, len(host), len(scheme))
        if best is None or rank > best[0]:
            best = (rank, proxy)
    return None if best is None else best[1]


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return re.fullmatch(r".+\." + re.escape(pattern[2:]), host) is not None
    if pattern.startswith("*"):
        return re.fullmatch(r"(.+\.)?" + re.escape(pattern[1:]), host) is not None
    return host == pattern

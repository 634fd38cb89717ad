"""Knowing a server that speaks only HTTP/2 when the default sender's HTTP/1.1 fails on it.

The default sender speaks HTTP/1.1 (aiohttp). A server that speaks only HTTP/2 makes it
fail in one of two ways, measured against nginx 1.22 (``listen ... http2``), granian 2.8
(``--http 2``) and ``openssl s_server -alpn h2``:

- **It answers in HTTP/2.** Over cleartext (HTTP/2 with prior knowledge), or over TLS when
  the handshake agreed on no protocol, the server's first bytes are an HTTP/2 frame: the
  SETTINGS frame that opens every HTTP/2 connection (RFC 9113, 3.4), often followed by a
  GOAWAY. aiohttp's parser fails on the first byte: ``ClientResponseError`` (status 400)
  caused by an ``HttpProcessingError`` caused by a ``BadStatusLine``. Its C parser (the
  usual one) leaves ``.line`` empty and quotes the bytes it received, as a Python bytes
  literal, in ``.message``; its pure-Python parser puts the line in ``.line`` (decoded as
  UTF-8 with ``surrogateescape``), but sees a line only once a CRLF arrives, which an
  HTTP/2 preface seldom holds: there the server's close is all that comes back.
- **It refuses HTTP/1.1 in the TLS handshake.** A client that offers ALPN ``http/1.1`` (the
  SDK's own contexts do: ``http11_alpn``) gets alert 120, ``no_application_protocol``,
  from a server that enforces ALPN (rustls, Go, OpenSSL's own): an ``ssl.SSLError``.
  CPython (3.10 to 3.13, OpenSSL 3.0) gives it no ``.reason``, only OpenSSL's text for the
  alert; a build that knows the code names it ``TLSV1_ALERT_NO_APPLICATION_PROTOCOL``.

``speaks_only_http2`` tells both apart from any other failure by what the server sent (the
bytes, the alert), never by aiohttp's English: a status line that is merely malformed, or
another TLS alert, is not HTTP/2. Read the failure as aiohttp raised it, before any
scrubbing replaces an exception in its chain.
"""

from __future__ import annotations

import ast
import re
import ssl
from typing import TYPE_CHECKING, Final

from ._exceptions import exception_chain

if TYPE_CHECKING:
    from aiohttp.http_exceptions import BadStatusLine

__all__ = ["HTTP2_ONLY", "http11_alpn", "speaks_only_http2"]

#: What the SDK says when the server speaks only HTTP/2.
HTTP2_ONLY: Final = (
    "the server speaks only HTTP/2 and the default sender speaks HTTP/1.1: "
    "use a server or proxy that also speaks HTTP/1.1, or pass "
    "http_client=httpx.AsyncClient(http2=True) (pip install 'httpx[http2]')"
)

#: The one protocol the default sender speaks, as ALPN names it.
_HTTP11: Final = "http/1.1"

#: The line an HTTP/2 client opens its connection with (RFC 9113, 3.4), up to its first
#: CRLF: all of it a parser that reads lines shows.
_CLIENT_PREFACE: Final = b"PRI * HTTP/2.0"

#: A frame header: 24-bit length, 8-bit type, 8-bit flags, reserved bit and 31-bit stream.
_FRAME_HEADER: Final = 9
_SETTINGS: Final = 0x4
_GOAWAY: Final = 0x7
#: A SETTINGS frame is 6 bytes a setting; GOAWAY holds a last stream id and an error code.
_SETTING_SIZE: Final = 6
_GOAWAY_MIN: Final = 8
#: The largest frame a peer may send before the settings raise it (RFC 9113, 6.5.2).
_MAX_FIRST_FRAME: Final = 16_384

#: How aiohttp's C parser quotes what it received: ``"<reason>:\n\n  <bytes repr>\n  ^"``.
#: A bytes repr escapes its quote character and every byte outside printable ASCII, so a
#: server cannot end the literal early, and the first one after the blank line is it. Only
#: the escapes a repr writes are taken: what matches is a literal Python reads back as is.
_ESCAPE: Final = r"""\\(?:x[0-9a-f]{2}|[\\'"tnr])"""
_QUOTED_BYTES: Final = re.compile(
    rf"""\n\n  (b'(?:[ -&(-\[\]-~]|{_ESCAPE})*'|b"(?:[ !#-\[\]-~]|{_ESCAPE})*")\n"""
)

#: OpenSSL's reason text for alert 120, as CPython shows it when it has no name for the
#: code: ``[SSL] tlsv1 alert no application protocol (_ssl.c:1006)``.
_NO_APPLICATION_PROTOCOL: Final = re.compile(r"\[SSL\] tlsv1 alert no application protocol \(")
_NO_APPLICATION_PROTOCOL_REASON: Final = "TLSV1_ALERT_NO_APPLICATION_PROTOCOL"


def speaks_only_http2(error: BaseException) -> bool:
    """Whether *error*, or an exception down its chain, shows a server speaking only HTTP/2.

    Either the response's status line is the start of an HTTP/2 frame a server opens its
    connection with (SETTINGS, or GOAWAY) or the HTTP/2 client preface, or the TLS
    handshake ended in alert 120, ``no_application_protocol``: the server refused the
    ``http/1.1`` the client offered.

    Args:
        error: A failure of a request, as the HTTP library raised it; its ``__cause__``,
            ``__context__`` and exception group members are read too.
    """
    # Imported here: only the aiohttp sender asks, once aiohttp is imported (so this
    # costs a look-up), and the package itself must not import aiohttp (see _senders).
    from aiohttp.http_exceptions import BadStatusLine  # noqa: PLC0415

    for link in exception_chain(error):
        if isinstance(link, BadStatusLine) and _is_http2_start(_received(link)):
            return True
        if isinstance(link, ssl.SSLError) and _refused_http11(link):
            return True
    return False


def http11_alpn(context: ssl.SSLContext) -> ssl.SSLContext:
    """Offer ALPN ``http/1.1`` only, on *context*; return it.

    As aiohttp's own default contexts do: a server that speaks HTTP/2 and HTTP/1.1 then
    picks HTTP/1.1, and one that speaks only HTTP/2 and enforces ALPN refuses in the
    handshake, before a byte of the request is sent, with an alert ``speaks_only_http2``
    knows. Call it only on a context the SDK made itself: a context the user passed in is
    theirs, may be shared with other clients (an httpx client with ``http2=True`` sets its
    own ALPN on it), and may offer what they chose on purpose, so it is used as it is.
    """
    context.set_alpn_protocols([_HTTP11])
    return context


def _received(error: BadStatusLine) -> bytes:
    """The bytes of the status line *error* is about, as far as aiohttp kept them."""
    if error.line:
        # The pure-Python parser decoded the line as UTF-8 with surrogateescape: undone.
        return error.line.encode("utf-8", "surrogateescape")
    quoted = _QUOTED_BYTES.search(error.message)
    if quoted is None:
        return b""
    received = ast.literal_eval(quoted.group(1))
    return received if isinstance(received, bytes) else b""


def _is_http2_start(data: bytes) -> bool:
    """Whether *data* starts as an HTTP/2 connection does: a server's frame, or a client's."""
    if data.startswith(_CLIENT_PREFACE):
        return True
    if len(data) < _FRAME_HEADER:
        return False
    length = int.from_bytes(data[:3], "big")
    kind, flags, stream = data[3], data[4], int.from_bytes(data[5:9], "big")
    if flags or stream or length > _MAX_FIRST_FRAME:
        # Both frames belong to the connection (stream 0) and a server's first SETTINGS
        # is no acknowledgement (the only flag SETTINGS has); GOAWAY has no flags.
        return False
    if kind == _SETTINGS:
        return length % _SETTING_SIZE == 0
    return kind == _GOAWAY and length >= _GOAWAY_MIN


def _refused_http11(error: ssl.SSLError) -> bool:
    """Whether *error* is the TLS alert 120 (``no_application_protocol``) from the peer."""
    reason = getattr(error, "reason", None)
    if reason is not None:
        return bool(reason == _NO_APPLICATION_PROTOCOL_REASON)
    # aiohttp's ClientConnectorSSLError is an ssl.SSLError too, with neither attribute set
    # by the ssl module: only the error it wraps (its __cause__) is read for the alert.
    return getattr(error, "library", None) == "SSL" and bool(
        _NO_APPLICATION_PROTOCOL.match(str(error))
    )

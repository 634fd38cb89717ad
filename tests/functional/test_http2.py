"""Servers that speak only HTTP/2: what aiohttp raises on them, and ``speaks_only_http2``.

Each failure here is aiohttp's own, from a real request (``GET /v1/batch/x`` over HTTP/1.1,
through aiohttp directly, not the SDK) to a real server on 127.0.0.1: nginx speaking only
HTTP/2 in cleartext, a TLS server answering in HTTP/2 frames after agreeing on no protocol,
and ``openssl s_server -alpn h2`` refusing ``http/1.1`` in the handshake. The hostile cases
are failures of the same parser on answers that are malformed but not HTTP/2, and TLS
failures that are not the ALPN alert: none of them may read as "speaks only HTTP/2".
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
import truststore
from aiohttp.http_exceptions import BadHttpMessage, BadStatusLine
from aiohttp.http_parser import HttpResponseParserPy

from inkit_async._exceptions import exception_chain
from inkit_async._http2 import HTTP2_ONLY, http11_alpn, speaks_only_http2
from tests.support.h2_server import (
    CLIENT_PREFACE,
    GOAWAY,
    SETTINGS,
    STOP_WITHIN,
    running_nginx,
    running_openssl_h2,
)
from tests.support.markers import starts

#: What a test waits for one request at most: a regression fails instead of hanging.
REQUEST_WITHIN = 30.0


@pytest.fixture
def client_tls(ca) -> ssl.SSLContext:
    """A client context that trusts the test CA and offers ``http/1.1`` by ALPN, as the SDK's."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return http11_alpn(context)


async def failure_of(url: str, tls: ssl.SSLContext | None = None) -> BaseException:
    """What aiohttp raises for ``GET {url}/v1/batch/x`` (HTTP/1.1), with *tls* if given."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(REQUEST_WITHIN):
        try:
            async with session.get(f"{url}/v1/batch/x", ssl=tls or True) as response:
                pytest.fail(f"{url} answered {response.status}: {await response.read()!r}")
        except aiohttp.ClientError as error:
            return error
    raise AssertionError  # pragma: no cover - pytest.fail raised


def bad_status_line(error: BaseException) -> BadStatusLine:
    """The parser's own error down *error*'s chain."""
    found = [link for link in exception_chain(error) if isinstance(link, BadStatusLine)]
    assert found, f"no BadStatusLine under {error!r}"
    return found[0]


# -- Real servers that speak only HTTP/2 ---------------------------------------------------


@pytest.mark.nginx
async def test_nginx_speaking_only_http2_answers_with_a_settings_frame():
    """An nginx `listen ... http2` (cleartext): a 400 from the parser on the SETTINGS frame.

    The shape, with aiohttp's C parser: ClientResponseError (status 400) caused by an
    HttpProcessingError caused by a BadStatusLine whose ``.line`` is empty and whose
    ``.message`` quotes the frames received as a bytes literal.
    """
    with running_nginx() as nginx:
        error = await failure_of(nginx.url)
        assert "invalid connection preface" in nginx.errors()  # nginx read it as HTTP/2
    assert isinstance(error, aiohttp.ClientResponseError)
    assert error.status == 400
    line = bad_status_line(error)
    assert line.line == ""
    assert repr(SETTINGS[:4]).strip("b'") in line.message
    assert speaks_only_http2(error)


async def test_a_tls_server_that_agrees_on_no_protocol_answers_in_http2_too(h2_tls, client_tls):
    """The handshake offering only http/1.1 passes (no protocol agreed); then HTTP/2 frames."""
    error = await failure_of(h2_tls.url, client_tls)
    assert h2_tls.alpn == [None]
    assert h2_tls.received[0].startswith(b"GET /v1/batch/x HTTP/1.1")
    assert isinstance(error, aiohttp.ClientResponseError)
    assert error.status == 400
    assert speaks_only_http2(error)


@pytest.mark.openssl
@pytest.mark.tls
async def test_a_server_that_enforces_alpn_refuses_http11_in_the_handshake(
    certificate, client_tls, ca
):
    """`openssl s_server -alpn h2`: alert 120 before a byte of the request is sent.

    The shape: ClientConnectorSSLError (an ssl.SSLError itself, without ``reason`` or
    ``library``) caused by the ssl module's SSLError: errno 1, library "SSL", reason None
    (CPython has no name for the code), text "[SSL] tlsv1 alert no application protocol".
    """
    with running_openssl_h2(certificate) as port:
        error = await failure_of(f"https://127.0.0.1:{port}", client_tls)
        # The same server agrees on h2 with a client that offers it: it speaks HTTP/2 only.
        h2 = ssl.create_default_context()
        ca.configure_trust(h2)
        h2.set_alpn_protocols(["h2"])
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=h2)
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
        writer.close()
    assert isinstance(error, aiohttp.ClientConnectorSSLError)
    cause = error.__cause__
    assert isinstance(cause, ssl.SSLError)
    assert (cause.library, cause.reason) == ("SSL", None)
    assert str(cause).startswith("[SSL] tlsv1 alert no application protocol (")
    assert speaks_only_http2(error)
    assert speaks_only_http2(cause)


@pytest.mark.openssl
@pytest.mark.tls
async def test_http11_alpn_offers_http11_alone_on_truststore_contexts_too(certificate):
    """The SDK's default context is truststore's: it offers only http/1.1 too."""
    context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test CA is not in the system's store
    assert http11_alpn(context) is context
    with running_openssl_h2(certificate) as port, pytest.raises(ssl.SSLError) as info:
        async with asyncio.timeout(REQUEST_WITHIN):
            await asyncio.open_connection("127.0.0.1", port, ssl=context)
    assert speaks_only_http2(info.value)


@pytest.mark.nginx
@pytest.mark.tls
async def test_nginx_over_tls_serves_the_sdks_http11(certificate, client_tls):
    """An nginx 1.22 `listen ... ssl http2` cannot refuse HTTP/1.1: ALPN http/1.1 is served."""
    with running_nginx(tls=certificate) as nginx:
        async with (
            aiohttp.ClientSession() as session,
            asyncio.timeout(REQUEST_WITHIN),
            session.get(f"{nginx.url}/ok", ssl=client_tls) as response,
        ):
            assert (response.status, await response.read()) == (200, b"ok\n")
            assert response.version == aiohttp.HttpVersion11
        _, writer = await asyncio.open_connection("127.0.0.1", nginx.port, ssl=client_tls)
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
        writer.close()


def test_the_message_says_what_to_do():
    """Short, names both protocols and both ways out."""
    assert "HTTP/2" in HTTP2_ONLY
    assert "HTTP/1.1" in HTTP2_ONLY
    assert "http2=True" in HTTP2_ONLY
    assert len(HTTP2_ONLY) < 200


# -- Answers the parser fails on, HTTP/2 or not --------------------------------------------


@pytest.fixture
@starts("loopback")
async def answering() -> AsyncIterator[Callable[[bytes], Awaitable[BaseException]]]:
    """A server that answers what the test gives it, and aiohttp's failure on that answer.

    ``await answering(data)`` starts one that reads the request, sends *data* and closes
    once the client has, and returns what aiohttp raised.
    """
    servers: list[asyncio.Server] = []

    async def failure(data: bytes) -> BaseException:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                async with asyncio.timeout(STOP_WITHIN):
                    await reader.readuntil(b"\r\n\r\n")
                    writer.write(data)
                    await writer.drain()
                    while await reader.read(4096):
                        pass
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(server)
        return await failure_of(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")

    yield failure
    for server in servers:
        server.close()
        await server.wait_closed()


def frame(kind: int, flags: int = 0, stream: int = 0, payload: bytes = b"") -> bytes:
    """An HTTP/2 frame."""
    return (
        len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload
    )


HTTP2_STARTS = {
    "settings then goaway": SETTINGS + GOAWAY,
    "settings alone": SETTINGS,
    "empty settings": frame(4),
    # 0x24 is "$" and the payload holds both quotes: the bytes literal escapes them.
    "settings with quotes": frame(
        4, payload=b"\x00\x03\x00\x00\x00\x27" * 5 + b'\x00\x03""\x00\x00'
    ),
    "goaway at once": GOAWAY,
    "goaway with debug data": frame(7, payload=b"\x00" * 8 + b"bye"),
    "a client's preface": CLIENT_PREFACE,
}


@pytest.mark.parametrize("data", HTTP2_STARTS.values(), ids=HTTP2_STARTS.keys())
async def test_an_answer_in_http2_is_known(answering, data):
    """Whatever the frame's bytes, as the parser quotes them: HTTP/2."""
    error = await answering(data)
    assert bad_status_line(error)
    assert speaks_only_http2(error)


NOT_HTTP2 = {
    "a malformed status line": b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
    "a status line in lower case": b"http/1.1 200 OK\r\n\r\n",
    "a TLS alert (an HTTPS port)": b"\x15\x03\x03\x00\x02\x02\x46",
    "nul bytes": b"\x00" * 32,
    "a frame header cut short": SETTINGS[:8],
    "settings of 5 bytes": frame(4, payload=b"\x00" * 5),
    "a settings acknowledgement": frame(4, flags=1),
    "settings on a stream": frame(4, stream=1, payload=b"\x00" * 6),
    "settings longer than a first frame may be": b"\x00\x40\x02\x04\x00\x00\x00\x00\x00",
    "goaway too short": frame(7, payload=b"\x00" * 4),
    "goaway with flags": frame(7, flags=1, payload=b"\x00" * 8),
    "a data frame": frame(0, payload=b"\x00" * 6),
    "a headers frame": frame(1, flags=4, stream=1, payload=b"\x00" * 6),
    "a preface that is not": b"PRI * HTTP/1.1\r\n\r\n",
}


@pytest.mark.parametrize("data", NOT_HTTP2.values(), ids=NOT_HTTP2.keys())
async def test_a_malformed_answer_is_not_http2(answering, data):
    """A bad status line that is no HTTP/2 frame is not taken for one."""
    error = await answering(data)
    # The parser's error: BadStatusLine since aiohttp 3.14, BadHttpMessage (its base) before.
    assert any(isinstance(link, BadHttpMessage) for link in exception_chain(error))
    assert not speaks_only_http2(error)


async def test_http2_frames_after_an_http11_status_line_are_not_http2(answering):
    """Only the status line counts: frames in a header line fail as a header does."""
    error = await answering(b"HTTP/1.1 200 OK\r\n" + SETTINGS + GOAWAY)
    assert any(isinstance(link, BadHttpMessage) for link in exception_chain(error))
    assert not any(isinstance(link, BadStatusLine) for link in exception_chain(error))
    assert not speaks_only_http2(error)


# -- aiohttp's pure-Python parser: the line in .line ---------------------------------------


def python_parser_failure(data: bytes) -> BadStatusLine:
    """What aiohttp's pure-Python response parser raises on *data*."""
    parser = HttpResponseParserPy(None, asyncio.new_event_loop(), 2**16)
    try:
        with pytest.raises(BadStatusLine) as info:
            parser.feed_data(data)
    finally:
        parser.loop.close()
    return info.value


def test_the_python_parsers_line_is_read_as_the_bytes_it_was():
    """A line it decoded (surrogateescape: 0xff is no UTF-8) is read back as bytes."""
    # It parses the status line once a blank line ends the head: a CRLF CRLF in the frames
    # (an initial window of 0x0d0a, and a setting 0x0d0a, unknown, which peers ignore).
    settings = SETTINGS + frame(4, payload=b"\x00\x04\x00\x00\x0d\x0a\x0d\x0a\x00\x00\x00\x00")
    error = python_parser_failure(settings)
    assert error.line.startswith("\x00\x00\x12\x04")
    assert "\udcff" in error.line
    assert speaks_only_http2(error)


def test_a_malformed_line_from_the_python_parser_is_not_http2():
    """The same parser on a malformed status line: not HTTP/2."""
    error = python_parser_failure(b"HTTP/1.1 2OO OK\r\n\r\n")
    assert error.line == "HTTP/1.1 2OO OK"
    assert not speaks_only_http2(error)


def test_a_message_without_the_bytes_is_not_http2():
    """A BadStatusLine that quotes nothing (aiohttp before 3.14.3 on a NUL byte: b'')."""
    assert not speaks_only_http2(BadStatusLine(error="Expected HTTP/:\n\n  b''\n    ^"))
    assert not speaks_only_http2(BadStatusLine(error=f"quoted otherwise: {SETTINGS!r}"))
    # Escapes no repr writes: not read as a literal (nor evaluated with a warning).
    odd = r"b'\x00\x00\x12\x04\x00\x00\x00\x00\x00\N{NULL}'"
    assert not speaks_only_http2(BadStatusLine(error=f"Expected HTTP/:\n\n  {odd}\n    ^"))


# -- TLS failures that are not the ALPN alert ----------------------------------------------


async def test_an_untrusted_certificate_is_not_http2(h2_tls):
    """A certificate failure: the client's own check, not the server's refusal."""
    error = await failure_of(h2_tls.url, http11_alpn(ssl.create_default_context()))
    assert isinstance(error, aiohttp.ClientConnectorCertificateError)
    assert not speaks_only_http2(error)


@pytest.mark.openssl
@pytest.mark.tls
async def test_another_tls_alert_is_not_http2(certificate, client_tls):
    """Alert 70 (protocol_version) from the same server: not the ALPN refusal."""
    client_tls.maximum_version = ssl.TLSVersion.TLSv1_2
    with running_openssl_h2(certificate, "-tls1_3") as port:
        error = await failure_of(f"https://127.0.0.1:{port}", client_tls)
    cause = error.__cause__
    assert isinstance(cause, ssl.SSLError)
    assert cause.reason == "TLSV1_ALERT_PROTOCOL_VERSION"
    assert not speaks_only_http2(error)


def test_the_alert_is_read_from_the_ssl_modules_fields_not_any_text():
    """The text alone is not enough: only the ssl module's own SSLError, with its fields."""
    text = "[SSL] tlsv1 alert no application protocol (_ssl.c:1006)"
    assert not speaks_only_http2(ValueError(text))
    assert not speaks_only_http2(ssl.SSLError(1, text))  # made by hand: no library
    named = ssl.SSLError(1, f"[SSL: TLSV1_ALERT_NO_APPLICATION_PROTOCOL] {text[6:]}")
    named.library, named.reason = "SSL", "TLSV1_ALERT_NO_APPLICATION_PROTOCOL"
    assert speaks_only_http2(named)  # a Python whose table names the code
    other = ssl.SSLError(1, text)
    other.library, other.reason = "SSL", "CERTIFICATE_VERIFY_FAILED"
    assert not speaks_only_http2(other)


def test_the_chain_is_walked_through_groups_and_contexts():
    """Under an exception group, or as the context of another error: still found."""
    alert = ssl.SSLError(1, "[SSL] tlsv1 alert no application protocol (_ssl.c:1006)")
    alert.library, alert.reason = "SSL", None
    assert speaks_only_http2(ExceptionGroup("attempts", [ValueError(), alert]))
    outer = RuntimeError("while connecting")
    outer.__context__ = alert  # as raising it in an except block for the alert does
    assert speaks_only_http2(outer)

"""The SDK on servers that speak only HTTP/2, and the ALPN its own TLS contexts offer.

``tests/functional/test_http2.py`` holds what aiohttp raises on such servers and how it is
known; here is what a client does there: one attempt, over one connection, and a final error
that says the server speaks only HTTP/2 (and, when the handshake refused it, that the request
was never sent). The servers are real (nginx, ``openssl s_server``, a TLS server in the loop),
reached through a ``Relay`` that counts the connections made to them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, Any

import pytest

from inkit_async import APIConnectionError, AsyncInkit
from inkit_async._exceptions import exception_chain
from inkit_async._http2 import HTTP2_ONLY
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.events import Events, attempts
from tests.support.h2_server import Relay, running_nginx, running_openssl_h2
from tests.support.loopback import LoopbackServer, echo
from tests.support.proxy_server import running_proxy

if TYPE_CHECKING:
    import trustme

#: What a test waits for one call at most: a regression fails instead of hanging.
REQUEST_WITHIN = 60.0


CREATE = {"template_id": "tmpl_1", "renders": [{"merge_parameters": {}}]}
#: What the SDK's error for each call says after the HTTP/2 message, by whether it was sent.
NOT_CREATED = ". The request never reached the server, so no batch was created"
MAY_EXIST = ". The request may have reached the server, so the batch may exist"


async def sdk_failure(
    base_url: str, call: str, caplog: pytest.LogCaptureFixture, **options: Any
) -> tuple[APIConnectionError, Events]:
    """The error ``batch.get`` (or ``batch.create``) raises on *base_url*, and the events.

    Retries are allowed (five, without waiting) and each attempt may take 5 s, so what is
    tested is that the SDK does not retry, not that it cannot.
    """
    caplog.set_level(logging.DEBUG, logger="inkit_async")
    events = Events()
    async with (
        AsyncInkit(
            TOKEN,
            base_url=base_url,
            max_retries=5,
            backoff=NO_WAIT,
            timeout=5,
            on_event=events,
            **options,
        ) as client,
        asyncio.timeout(REQUEST_WITHIN),
    ):
        sent = client.batch.get("rb_1") if call == "get" else client.batch.create(**CREATE)
        with pytest.raises(APIConnectionError) as info:
            await sent
    return info.value, events


@pytest.fixture
def ca_bundle(ca, tmp_path) -> str:
    """The test CA's certificate, as a file to pass as ``verify=``."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return str(bundle)


@pytest.mark.parametrize("call", ["get", "create"])
@pytest.mark.nginx
@pytest.mark.loopback
async def test_the_sdk_fails_at_once_on_nginx_speaking_only_http2(call, caplog):
    """Cleartext HTTP/2 only: the request went out, the answer was HTTP/2 frames; final.

    One connection, one attempt, no retry, and an error that says what is wrong. The
    request's bytes did reach the server, so the SDK does not claim it did not.
    """
    with running_nginx() as nginx:
        async with Relay(nginx.port) as relay:
            error, events = await sdk_failure(relay.url("http", "/v1"), call, caplog)
        assert "invalid connection preface" in nginx.errors()
    assert HTTP2_ONLY in str(error)
    assert events.retries == []
    assert relay.connections == 1
    assert attempts(caplog) == [(1, "UnsupportedProtocol")]
    assert error.may_have_reached_server is True
    if call == "create":
        assert str(error).endswith(MAY_EXIST + "; it was not sent again")


@pytest.mark.parametrize("verify", ["ca-path", "SSL_CERT_FILE", "false"])
@pytest.mark.parametrize("call", ["get", "create"])
@pytest.mark.openssl
@pytest.mark.tls
@pytest.mark.loopback
async def test_the_sdk_fails_at_once_on_a_tls_server_that_enforces_alpn_h2(
    call, verify, certificate, ca_bundle, caplog, monkeypatch
):
    """`openssl s_server -alpn h2`: refused in the handshake, so never sent; final.

    Every context the SDK makes offers ALPN http/1.1 (a CA path, ``SSL_CERT_FILE`` with
    ``verify=True``, ``verify=False``), so the server refuses it with alert 120 before a
    byte of the request is sent: a connect error, one connection, no retry. Without the
    offer the handshake would pass and the request wait for an answer that never comes.
    """
    options: dict[str, Any] = {"verify": {"ca-path": ca_bundle, "false": False}.get(verify, True)}
    if verify == "SSL_CERT_FILE":
        monkeypatch.setenv("SSL_CERT_FILE", ca_bundle)
    with running_openssl_h2(certificate) as port:
        async with Relay(port) as relay:
            error, events = await sdk_failure(relay.url("https", "/v1"), call, caplog, **options)
    assert HTTP2_ONLY in str(error)
    assert events.retries == []
    assert relay.connections == 1
    assert attempts(caplog) == [(1, "ConnectError")]
    assert error.may_have_reached_server is False
    if call == "create":
        assert str(error).endswith(NOT_CREATED)
    assert any(isinstance(link, ssl.SSLError) for link in exception_chain(error))


@pytest.mark.parametrize("call", ["get", "create"])
async def test_the_sdk_fails_at_once_on_a_tls_server_answering_in_http2(
    call, h2_tls, ca_bundle, caplog
):
    """A TLS server that agrees on no protocol and answers in HTTP/2 frames: final too."""
    async with Relay(h2_tls.port) as relay:
        error, events = await sdk_failure(relay.url("https", "/v1"), call, caplog, verify=ca_bundle)
    assert HTTP2_ONLY in str(error)
    assert events.retries == []
    assert relay.connections == 1
    assert h2_tls.alpn == [None]
    assert h2_tls.received[0].startswith(b"POST " if call == "create" else b"GET ")
    assert attempts(caplog) == [(1, "UnsupportedProtocol")]
    assert error.may_have_reached_server is True


@pytest.mark.openssl
@pytest.mark.tls
@pytest.mark.proxy
async def test_the_sdk_fails_at_once_through_a_proxy_too(certificate, ca_bundle, caplog):
    """Through a CONNECT tunnel (tinyproxy) to a server that enforces ALPN h2: the same."""
    with running_openssl_h2(certificate) as port, running_proxy() as proxy:
        error, events = await sdk_failure(
            f"https://127.0.0.1:{port}/v1", "create", caplog, verify=ca_bundle, proxy=proxy.url
        )
        assert f"CONNECT 127.0.0.1:{port}" in proxy.requests()
    assert HTTP2_ONLY in str(error)
    assert events.retries == []
    assert attempts(caplog) == [(1, "ConnectError")]
    assert error.may_have_reached_server is False


async def alpn_offered(context: ssl.SSLContext, certificate: trustme.LeafCert) -> str | None:
    """What a server that speaks ``x-inkit-test`` and ``http/1.1`` agrees on with *context*."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server_context)
    server_context.set_alpn_protocols(["x-inkit-test", "http/1.1"])
    async with Relay(0, tls=server_context) as server, asyncio.timeout(REQUEST_WITHIN):
        _, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=context)
        writer.close()
        while not server.alpn:
            await asyncio.sleep(0.01)
    return server.alpn[0]


async def test_a_callers_ssl_context_is_used_as_it_is(h2_tls, ca, certificate, caplog):
    """verify=<SSLContext>: its own ALPN offer goes out, and the SDK never changes it.

    The caller's context offers a protocol of its own, which the HTTP/2-only server does
    not speak either: the handshake agrees on none and the answer is HTTP/2, known as such.
    The same context afterwards still offers only its own protocol.
    """
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.set_alpn_protocols(["x-inkit-test"])
    assert await alpn_offered(context, certificate) == "x-inkit-test"
    error, events = await sdk_failure(h2_tls.url + "/v1", "get", caplog, verify=context)
    assert HTTP2_ONLY in str(error)
    assert events.retries == []
    assert h2_tls.alpn == [None]
    assert await alpn_offered(context, certificate) == "x-inkit-test"


@pytest.mark.proxy
@pytest.mark.loopback
@pytest.mark.tls
async def test_an_https_proxy_gets_the_sdks_context_and_it_works(certificate, ca_bundle):
    """An https:// proxy (TLS to the proxy, then CONNECT inside it) to an https:// API.

    Both handshakes go by the SDK's one context: ALPN http/1.1 is offered to the proxy and
    to the API (which would pick h2 first if it were offered), and the request is answered.
    """

    def server_tls(*protocols: str) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(context)
        context.set_alpn_protocols(list(protocols))
        return context

    with running_proxy() as proxy:
        async with (
            LoopbackServer() as api,
            Relay(api.port, tls=server_tls("h2", "http/1.1")) as api_tls,
            Relay(proxy.port, tls=server_tls("http/1.1")) as proxy_tls,
            AsyncInkit(
                TOKEN,
                base_url=api_tls.url("https", "/v1"),
                proxy=proxy_tls.url("https"),
                verify=ca_bundle,
            ) as client,
            asyncio.timeout(REQUEST_WITHIN),
        ):
            api.handler = echo
            assert (await client.batch.get("rb_1")).id == "rb_1"
        assert f"CONNECT 127.0.0.1:{api_tls.port}" in proxy.requests()
    assert proxy_tls.alpn == ["http/1.1"]
    assert api_tls.alpn == ["http/1.1"]

"""Networks users have: proxies, TLS trust, stale keep-alive connections, redirects."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import ssl
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from inkit_async import APIConnectionError, APIStatusError, AsyncInkit, InkitError
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.events import Events
from tests.support.http_library import library_error
from tests.support.loopback import (
    BATCH_JSON,
    Drop,
    LoopbackServer,
    Raw,
    Respond,
    answer_bytes,
    closed_port,
    echo,
    run_cli,
)
from tests.support.markers import starts
from tests.support.proxy_server import PROXY_PASSWORD, PROXY_USER, Proxy, running_proxy
from tests.support.secrets import assert_hidden, chain

CREATE = {"template_id": "tmpl_1", "renders": [{"merge_parameters": {}}]}


def created(request):
    """Answer a create with a new id, and a get like echo."""
    if request.method == "POST":
        return Respond(201, {"id": f"rb_new_{request.connection}"})
    return echo(request)


# -- stale keep-alive connections --------------------------------------------------------


async def test_connections_the_server_closed_while_idle_are_not_failures(server):
    """After the server closes every idle connection, gets and creates all succeed at once."""
    server.handler = created
    events = Events()
    async with AsyncInkit(TOKEN, base_url=server.url, on_event=events) as client:
        for _ in range(3):
            await asyncio.gather(
                *(client.batch.get(f"rb_{number}") for number in range(20)),
                *(client.batch.create(**CREATE) for _ in range(20)),
            )
            # As uvicorn does after 5 s idle, with the next burst already on its way.
            await server.close_idle_connections(settle=False)
    assert events.retries == []
    posts = [request for request in server.requests if request.method == "POST"]
    assert len(posts) == 60  # no create was sent twice


async def test_a_server_that_closes_after_every_answer_costs_no_retries(server):
    """Closing after each answer without saying so: back-to-back calls never back off."""
    server.handler = lambda request: Respond(
        **(
            {"status": 201, "body": {"id": "rb_new"}}
            if request.method == "POST"
            else {"body": {**BATCH_JSON, "id": request.last_segment}}
        ),
        silent_close=True,
    )
    events = Events()
    async with AsyncInkit(TOKEN, base_url=server.url, on_event=events) as client:
        for number in range(30):
            assert (await client.batch.get(f"rb_{number}")).id == f"rb_{number}"
            assert (await client.batch.create(**CREATE)).id == "rb_new"
    assert events.retries == []
    assert sum(request.method == "POST" for request in server.requests) == 30


async def test_bytes_nobody_asked_for_never_answer_the_next_request(server):
    """A stray answer on an idle connection is dropped with it; the next get is answered right."""
    stray = Respond(body={"id": "rb_someone_else"}).encode()
    first = Respond(body={**BATCH_JSON, "id": "rb_first"}).encode()
    server.script(Raw(first + stray, close=False))
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        await client.batch.get("rb_first")
        await asyncio.sleep(0.05)
        batch = await client.batch.get("rb_second")
    assert batch.id == "rb_second"


# -- redirects ----------------------------------------------------------------------------


@pytest.mark.parametrize("own_client", [False, True], ids=["default", "callers-client"])
async def test_redirects_are_never_followed(server, http_library, own_client):
    """A 307 elsewhere is an APIStatusError; the other host sees neither token nor body."""
    async with LoopbackServer() as elsewhere:
        location = f"{elsewhere.url}/batch"
        server.handler = lambda request: Respond(307, "", {"Location": location})
        http = http_library.AsyncClient(follow_redirects=True) if own_client else None
        try:
            async with AsyncInkit(TOKEN, base_url=server.url, http_client=http) as client:
                with pytest.raises(APIStatusError) as info:
                    await client.batch.create(**CREATE)
        finally:
            if http is not None:
                await http.aclose()
        assert info.value.status_code == 307
        assert elsewhere.requests == []


# -- TLS trust -----------------------------------------------------------------------------


@pytest.fixture
@starts("loopback", "tls")
async def tls_server(ca) -> Iterator[LoopbackServer]:
    """An HTTPS loopback server whose certificate the test CA issued for 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    async with LoopbackServer(tls=context) as server:
        yield server


async def test_a_private_ca_is_trusted_through_verify(tls_server, ca, tmp_path):
    """verify=<CA bundle path> and verify=<SSLContext> both reach the private-CA server."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    context = ssl.create_default_context(cafile=str(bundle))
    for verify in (str(bundle), context):
        async with AsyncInkit(TOKEN, base_url=tls_server.url, verify=verify) as client:
            assert (await client.batch.get("rb_1")).id == "rb_1"


async def test_ssl_cert_file_is_read_when_each_client_is_made(
    tls_server, ca, tmp_path, monkeypatch
):
    """SSL_CERT_FILE set after a first client was made still applies to the next one."""
    events = Events()
    async with AsyncInkit(TOKEN, base_url=tls_server.url, on_event=events) as first:
        with pytest.raises(APIConnectionError, match="certificate verif"):
            await first.batch.get("rb_1")
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    async with AsyncInkit(TOKEN, base_url=tls_server.url) as second:
        assert (await second.batch.get("rb_1")).id == "rb_1"
    async with AsyncInkit(TOKEN, base_url=tls_server.url, trust_env=False) as ignoring:
        with pytest.raises(APIConnectionError, match="certificate verif"):
            await ignoring.batch.get("rb_1")


@pytest.mark.parametrize("own_client", [False, True], ids=["default", "callers-client"])
async def test_a_certificate_failure_is_final(tls_server, http_library, own_client):
    """An untrusted certificate fails at once: no retry, no backoff, one handshake."""
    events = Events()
    http = http_library.AsyncClient() if own_client else None
    try:
        async with AsyncInkit(
            TOKEN, base_url=tls_server.url, max_retries=5, on_event=events, http_client=http
        ) as client:
            with pytest.raises(APIConnectionError) as info:
                await client.batch.get("rb_1")
    finally:
        if http is not None:
            await http.aclose()
    assert events.retries == []
    assert "certificate" in str(info.value).lower()
    assert tls_server.requests == []


async def test_verify_false_skips_the_checks(tls_server):
    """verify=False reaches a server no CA vouches for (tests only)."""
    async with AsyncInkit(TOKEN, base_url=tls_server.url, verify=False) as client:
        assert (await client.batch.get("rb_1")).id == "rb_1"


# -- proxies ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
@starts("proxy")
def proxy() -> Iterator[Proxy]:
    """A real forward proxy (tinyproxy) on 127.0.0.1 for this module."""
    with running_proxy() as running:
        yield running


@pytest.fixture
def clean_proxy_env(monkeypatch) -> None:
    """No proxy variable from the developer's shell."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
async def test_proxy_variables_are_honoured(server, proxy, clean_proxy_env, monkeypatch, variable):
    """HTTP_PROXY/ALL_PROXY (either case) send requests through the proxy."""
    monkeypatch.setenv(variable, proxy.url)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        await client.batch.get_many([f"rb_{number}" for number in range(5)])
    assert len(server.requests) == 5
    # The proxy's mark: tinyproxy adds a Via header naming it (ViaProxyName).
    assert all("inkit-tests" in request.headers.get("via", "") for request in server.requests)
    assert f"GET {server.url}/batch/rb_0" in proxy.requests()


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "localhost,127.0.0.1"])
async def test_no_proxy_goes_direct(server, proxy, clean_proxy_env, monkeypatch, no_proxy):
    """NO_PROXY naming the host (or *) bypasses the proxy, as httpx does."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        await client.batch.get("rb_1")
    assert "via" not in server.requests[0].headers


async def test_the_proxy_option_and_trust_env(server, proxy, clean_proxy_env, monkeypatch):
    """proxy= sends through it without any variable; trust_env=False ignores the variables."""
    async with AsyncInkit(TOKEN, base_url=server.url, proxy=proxy.url) as client:
        await client.batch.get("rb_1")
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with AsyncInkit(TOKEN, base_url=server.url, trust_env=False) as client:
        await client.batch.get("rb_2")
    first, second = server.requests
    assert "via" in first.headers
    assert "via" not in second.headers


async def test_https_goes_through_the_proxy_by_connect(tls_server, proxy, ca, tmp_path):
    """An https:// API through an HTTP proxy: a CONNECT tunnel, TLS end to end."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    async with AsyncInkit(
        TOKEN, base_url=tls_server.url, proxy=proxy.url, verify=str(bundle)
    ) as client:
        batches = await client.batch.get_many([f"rb_{number}" for number in range(5)])
    assert [batch.id for batch in batches] == [f"rb_{number}" for number in range(5)]
    assert f"CONNECT 127.0.0.1:{tls_server.port}" in proxy.requests()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"proxy": "socks5://127.0.0.1:1080"}, ValueError),
        ({"proxy": 3128}, TypeError),
        ({"verify": "/no/such/ca.pem"}, ValueError),
        ({"verify": 1}, TypeError),
        ({"trust_env": "yes"}, TypeError),
        ({"proxy": "http://127.0.0.1:3128", "http_client": "a caller's"}, ValueError),
        ({"verify": False, "transport": "a caller's"}, ValueError),
    ],
)
async def test_bad_network_options_are_refused(http_library, options, error):
    """proxy=, verify= and trust_env= are checked when the client is made."""
    async with http_library.AsyncClient() as http:
        made = {"http_client": http, "transport": http_library.MockTransport(lambda request: None)}
        options = {name: made.get(name, value) for name, value in options.items()}
        with pytest.raises(error):
            AsyncInkit(TOKEN, **options)


def test_a_refused_proxy_url_is_not_echoed():
    """A proxy URL often holds a password: the error never repeats it."""
    with pytest.raises(ValueError, match="proxy") as info:
        AsyncInkit(TOKEN, proxy="ftp://user:s3cret@proxy:21")
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 200 OK\r\nNo Colon Here\r\n\r\n", b"HTTP/9 what\r\n\r\n", b"\x00\x01garbage"],
    ids=["bad-header", "bad-status-line", "garbage"],
)
async def test_no_exception_in_the_chain_shows_the_token(server, answer):
    """A malformed answer: the token is in no repr or str anywhere down the cause chain."""
    server.handler = lambda request: Raw(answer)
    async with AsyncInkit(TOKEN, base_url=server.url, max_retries=0) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    causes = chain(info.value)
    assert len(causes) >= 2
    for cause in causes:
        assert TOKEN not in repr(cause)
        assert TOKEN not in str(cause)
        assert TOKEN not in repr(vars(cause)) if hasattr(cause, "__dict__") else True


# -- proxy credentials are never shown ------------------------------------------------------

#: A proxy password that needs percent-encoding in a URL.
PROXY_SECRET = "Pr0xy/Pa55:w@rd"
WRONG_PASSWORD = "wr0ng-Pa55word"


def proxy_spellings(user: str, password: str) -> list[str]:
    """Every form of a proxy password that must never be shown."""
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [password, quote(password, safe=""), basic]


def assert_nothing_shows(error: BaseException, caplog, events: Events, *secrets: str) -> None:
    """No secret in the error and its chain, in any log record, nor in any event."""
    assert_hidden(error, TOKEN, *secrets)
    formatter = logging.Formatter()
    for record in caplog.records:
        text = formatter.format(record) + repr(vars(record))
        assert not any(secret in text for secret in (TOKEN, *secrets))
    assert not any(secret in repr(event) for event in events for secret in secrets)


@pytest.fixture(scope="module")
@starts("proxy")
def guarded_proxy() -> Iterator[Proxy]:
    """A real proxy that admits only PROXY_USER with PROXY_PASSWORD (refuses anyone else)."""
    with running_proxy(auth=True) as running:
        yield running


@pytest.fixture
def ca_bundle(ca, tmp_path) -> str:
    """The test CA's certificate as a bundle file, for verify= or SSL_CERT_FILE."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return str(bundle)


@pytest.mark.parametrize("given", ["proxy=", "HTTPS_PROXY", "ALL_PROXY"])
async def test_a_real_proxy_refusing_the_password_never_shows_it(
    tls_server, guarded_proxy, ca_bundle, clean_proxy_env, monkeypatch, caplog, given
):
    """The proxy refuses the CONNECT (407): the password is in no error, cause, pickle or log."""
    url = guarded_proxy.url_with(PROXY_USER, WRONG_PASSWORD)
    options: dict[str, str] = {"proxy": url} if given == "proxy=" else {}
    if given != "proxy=":
        monkeypatch.setenv(given, url)
    caplog.set_level(logging.DEBUG)
    events = Events()
    async with AsyncInkit(
        TOKEN,
        base_url=tls_server.url,
        verify=ca_bundle,
        backoff=NO_WAIT,
        on_event=events,
        **options,  # type: ignore[arg-type]
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    assert str(guarded_proxy.refusal) in str(info.value)
    assert f"CONNECT 127.0.0.1:{tls_server.port}" in guarded_proxy.requests()
    assert tls_server.requests == []
    assert_nothing_shows(info.value, caplog, events, *proxy_spellings(PROXY_USER, WRONG_PASSWORD))


async def test_a_real_proxy_that_cannot_connect_never_shows_the_password(
    guarded_proxy, clean_proxy_env, caplog
):
    """The right password, a CONNECT the proxy cannot carry out (500): no password anywhere."""
    url = guarded_proxy.url_with(PROXY_USER, PROXY_PASSWORD)
    caplog.set_level(logging.DEBUG)
    events = Events()
    base_url = f"https://127.0.0.1:{closed_port()}/v1"
    async with AsyncInkit(
        TOKEN, base_url=base_url, proxy=url, backoff=NO_WAIT, on_event=events
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    assert "500" in str(info.value)
    assert_nothing_shows(info.value, caplog, events, *proxy_spellings(PROXY_USER, PROXY_PASSWORD))


async def test_a_certificate_failure_through_a_proxy_never_shows_the_password(
    tls_server, guarded_proxy, clean_proxy_env, caplog
):
    """An untrusted certificate behind the proxy: aiohttp's error keeps the proxy's login."""
    url = guarded_proxy.url_with(PROXY_USER, PROXY_PASSWORD)
    caplog.set_level(logging.DEBUG)
    events = Events()
    async with AsyncInkit(TOKEN, base_url=tls_server.url, proxy=url, on_event=events) as client:
        with pytest.raises(APIConnectionError, match="certificate verif") as info:
            await client.batch.get("rb_1")
    assert_nothing_shows(info.value, caplog, events, *proxy_spellings(PROXY_USER, PROXY_PASSWORD))


@pytest.mark.parametrize("password", [PROXY_PASSWORD, WRONG_PASSWORD], ids=["503", "refused"])
async def test_a_real_proxy_failing_a_forwarded_request_never_shows_the_password(
    server, guarded_proxy, clean_proxy_env, caplog, password
):
    """http:// through the proxy: its error page quotes the request; the password stays hidden.

    With the right password the server's answer stops inside its headers (the proxy answers
    503); with a wrong one the proxy refuses it (407, or 401 from tinyproxy before 1.11.3).
    """
    server.handler = lambda request: Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
    status = 503 if password == PROXY_PASSWORD else guarded_proxy.refusal
    caplog.set_level(logging.DEBUG)
    events = Events()
    url = guarded_proxy.url_with(PROXY_USER, password)
    async with AsyncInkit(
        TOKEN, base_url=server.url, proxy=url, max_retries=0, on_event=events
    ) as client:
        with pytest.raises(APIStatusError) as info:
            await client.batch.get("rb_1")
    assert info.value.status_code == status
    assert_nothing_shows(info.value, caplog, events, *proxy_spellings(PROXY_USER, password))


def echoing_proxy(request) -> Raw:
    """A proxy that refuses, echoing the credentials it got everywhere it can (decoded too)."""
    sent = request.headers["proxy-authorization"]
    decoded = base64.b64decode(sent.removeprefix("Basic ")).decode()
    body = f"denied {sent} ({decoded}); {request.method} {request.target}".encode()
    return Raw(
        answer_bytes(
            407,
            body,
            reason=f"Denied {decoded}",
            headers={"content-type": "text/plain", "x-echo": sent, "x-user": decoded},
        )
    )


FAKE_PROXIES = {
    "407": Raw(answer_bytes(407, headers={"proxy-authenticate": 'Basic realm="x"'})),
    "502": Raw(answer_bytes(502, b"upstream failed", headers={"content-type": "text/plain"})),
    "garbage": Raw(b"\x00\x01garbage\r\n\r\n"),
    "bad-header": Raw(b"HTTP/1.1 200 OK\r\nNo Colon Here\r\n\r\n"),
    "drop": Drop(),
    "echo": echoing_proxy,
}


@pytest.mark.parametrize("given", ["proxy=", "environment"])
@pytest.mark.parametrize("scheme", ["https", "http"], ids=["connect", "forwarded"])
@pytest.mark.parametrize("answer", list(FAKE_PROXIES.values()), ids=list(FAKE_PROXIES))
@pytest.mark.loopback
async def test_a_failing_proxy_never_shows_its_credentials(
    clean_proxy_env, monkeypatch, caplog, answer, scheme, given
):
    """CONNECT (https) or a forwarded request (http) that the proxy fails: nothing shows."""
    async with LoopbackServer() as proxy:
        proxy.handler = answer if callable(answer) else lambda request: answer
        url = f"http://{PROXY_USER}:{quote(PROXY_SECRET, safe='')}@127.0.0.1:{proxy.port}"
        options = {"proxy": url} if given == "proxy=" else {}
        if given == "environment":
            monkeypatch.setenv(f"{scheme.upper()}_PROXY", url)
        caplog.set_level(logging.DEBUG)
        events = Events()
        base_url = f"{scheme}://127.0.0.1:{closed_port()}/v1"
        async with AsyncInkit(
            TOKEN, base_url=base_url, backoff=NO_WAIT, on_event=events, **options
        ) as client:
            with pytest.raises(InkitError) as info:
                await client.batch.get("rb_1")
        assert proxy.requests
        assert all(request.headers["proxy-authorization"] for request in proxy.requests)
        assert proxy.requests[0].method == ("CONNECT" if scheme == "https" else "GET")
    assert_nothing_shows(info.value, caplog, events, *proxy_spellings(PROXY_USER, PROXY_SECRET))


async def test_a_proxy_that_refuses_connections_never_shows_its_credentials(
    clean_proxy_env, caplog
):
    """Nothing listens where the proxy should be: aiohttp's error keeps the proxy's login."""
    url = f"http://{PROXY_USER}:{quote(PROXY_SECRET, safe='')}@127.0.0.1:{closed_port()}"
    caplog.set_level(logging.DEBUG)
    events = Events()
    async with AsyncInkit(
        TOKEN, base_url="https://127.0.0.1:9/v1", proxy=url, backoff=NO_WAIT, on_event=events
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    assert_nothing_shows(info.value, caplog, events, *proxy_spellings(PROXY_USER, PROXY_SECRET))


@pytest.mark.parametrize("trust_env", [True, False])
@pytest.mark.loopback
async def test_a_callers_client_through_a_proxy_never_shows_its_credentials(
    clean_proxy_env, monkeypatch, caplog, http_library, trust_env
):
    """A caller's client reads HTTPS_PROXY itself; its ProxyError quotes the echo: masked."""
    async with LoopbackServer() as proxy:
        proxy.handler = echoing_proxy
        url = f"http://{PROXY_USER}:{quote(PROXY_SECRET, safe='')}@127.0.0.1:{proxy.port}"
        monkeypatch.setenv("HTTPS_PROXY", url)
        # The SDK's own records (httpcore's DEBUG trace is the caller's client's own).
        caplog.set_level(logging.DEBUG, logger="inkit_async")
        events = Events()
        async with (
            http_library.AsyncClient() as http,
            AsyncInkit(
                TOKEN,
                base_url=f"https://127.0.0.1:{closed_port()}/v1",
                http_client=http,
                trust_env=trust_env,
                backoff=NO_WAIT,
                on_event=events,
            ) as client,
        ):
            with pytest.raises(APIConnectionError) as info:
                await client.batch.get("rb_1")
        assert proxy.requests[0].method == "CONNECT"
    assert "407 Denied [redacted]" in str(info.value)
    assert isinstance(library_error(info.value, http_library), http_library.ProxyError)
    assert_nothing_shows(info.value, caplog, events, *proxy_spellings(PROXY_USER, PROXY_SECRET))


def test_the_client_options_never_show_the_proxy_password():
    """The options record's repr (what a debugger shows) leaves the proxy's user info out."""
    client = AsyncInkit(
        TOKEN, proxy=f"http://{PROXY_USER}:{quote(PROXY_SECRET, safe='')}@proxy:3128"
    )
    shown = repr(client._engine.options)  # noqa: SLF001 - the record behind the client
    assert "proxy='http://[redacted]@proxy:3128'" in shown
    assert not any(secret in shown for secret in proxy_spellings(PROXY_USER, PROXY_SECRET))
    assert "proxy=None" in repr(AsyncInkit(TOKEN)._engine.options)  # noqa: SLF001 - see above
    plain = AsyncInkit(TOKEN, proxy="http://proxy:3128/")._engine.options  # noqa: SLF001
    assert "proxy='http://proxy:3128/'" in repr(plain)


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
@pytest.mark.subprocess
async def test_the_cli_never_prints_proxy_credentials(
    tls_server, guarded_proxy, ca_bundle, variable
):
    """`inkit-async batch get` through a proxy that refuses the password: stderr hides it."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("INKIT_") and not name.lower().endswith("_proxy")
    }
    env |= {
        "INKIT_API_TOKEN": TOKEN,
        "INKIT_BASE_URL": tls_server.url,
        "SSL_CERT_FILE": ca_bundle,
        variable: guarded_proxy.url_with(PROXY_USER, WRONG_PASSWORD),
    }
    run = await run_cli("batch", "get", "rb_1", env=env)
    assert run.code == 1
    assert run.err.startswith(
        f"inkit-async: rb_1: GET /batch/rb_1 failed: the proxy refused the connection: "
        f"{guarded_proxy.refusal}"
    )
    shown = run.out + run.err
    assert not any(
        secret in shown for secret in (TOKEN, *proxy_spellings(PROXY_USER, WRONG_PASSWORD))
    )
    assert tls_server.requests == []


@pytest.mark.parametrize("password", ["sEc#r3t9xq", "sEc/r3t9xq", "sEc?r:3t9xq"])
@pytest.mark.parametrize("where", ["argument", "HTTPS_PROXY", "all_proxy"])
def test_a_proxy_url_that_does_not_parse_is_refused_without_its_password(
    clean_proxy_env, monkeypatch, recwarn, password, where
):
    """A `#`, `/` or `?` left unencoded in a password: a ValueError that shows none of it.

    (The parser's own message quoted the password's start: "Invalid port: 'pass'"; from the
    environment it did not say which variable was wrong.)
    """
    url = f"http://user:{password}@127.0.0.1:3128"
    if where == "argument":
        options = {"proxy": url}
    else:
        monkeypatch.setenv(where, url)
        options = {}
    with pytest.raises(ValueError, match=r"(?i)proxy") as info:
        AsyncInkit(TOKEN, **options)
    if where != "argument":
        assert where.upper() in str(info.value)
    for text in (str(info.value), repr(info.value)):
        assert "sEc" not in text, text
        assert "t9xq" not in text, text
    assert not [warning for warning in recwarn if "__del__" in str(warning.message)]

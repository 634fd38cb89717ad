"""Networks users have: proxies, TLS trust, stale keep-alive connections, redirects."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator

import httpx
import pytest
import trustme

from inkit_async import APIConnectionError, APIStatusError, AsyncInkit

from .conftest import TOKEN, Events
from .loopback import BATCH_JSON, LoopbackServer, Raw, Respond, echo, wait_until
from .proxy_server import Squid, running_squid

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
async def test_redirects_are_never_followed(server, own_client):
    """A 307 elsewhere is an APIStatusError; the other host sees neither token nor body."""
    async with LoopbackServer() as elsewhere:
        location = f"{elsewhere.url}/batch"
        server.handler = lambda request: Respond(307, "", {"Location": location})
        http = httpx.AsyncClient(follow_redirects=True) if own_client else None
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


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority made for this test run, trusted by nothing on the machine."""
    return trustme.CA()


@pytest.fixture
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
async def test_a_certificate_failure_is_final(tls_server, own_client):
    """An untrusted certificate fails at once: no retry, no backoff, one handshake."""
    events = Events()
    http = httpx.AsyncClient() if own_client else None
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
def squid() -> Iterator[Squid]:
    """A real squid forward proxy on 127.0.0.1 for this module."""
    with running_squid() as proxy:
        yield proxy


@pytest.fixture
def clean_proxy_env(monkeypatch) -> None:
    """No proxy variable from the developer's shell."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
async def test_proxy_variables_are_honoured(server, squid, clean_proxy_env, monkeypatch, variable):
    """HTTP_PROXY/ALL_PROXY (either case) send requests through the proxy."""
    monkeypatch.setenv(variable, squid.url)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        await client.batch.get_many([f"rb_{number}" for number in range(5)])
    assert len(server.requests) == 5
    assert all("via" in request.headers for request in server.requests)  # squid's mark
    # Squid logs a request once it is over, which can be after the client has its answer.
    logged = f"GET {server.url}/batch/rb_0"
    await wait_until(lambda: logged in squid.requests(), 10, f"squid to log {logged}")


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "localhost,127.0.0.1"])
async def test_no_proxy_goes_direct(server, squid, clean_proxy_env, monkeypatch, no_proxy):
    """NO_PROXY naming the host (or *) bypasses the proxy, as httpx does."""
    monkeypatch.setenv("HTTP_PROXY", squid.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        await client.batch.get("rb_1")
    assert "via" not in server.requests[0].headers


async def test_the_proxy_option_and_trust_env(server, squid, clean_proxy_env, monkeypatch):
    """proxy= sends through it without any variable; trust_env=False ignores the variables."""
    async with AsyncInkit(TOKEN, base_url=server.url, proxy=squid.url) as client:
        await client.batch.get("rb_1")
    monkeypatch.setenv("HTTP_PROXY", squid.url)
    async with AsyncInkit(TOKEN, base_url=server.url, trust_env=False) as client:
        await client.batch.get("rb_2")
    first, second = server.requests
    assert "via" in first.headers
    assert "via" not in second.headers


async def test_https_goes_through_the_proxy_by_connect(tls_server, squid, ca, tmp_path):
    """An https:// API through an HTTP proxy: a CONNECT tunnel, TLS end to end."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    async with AsyncInkit(
        TOKEN, base_url=tls_server.url, proxy=squid.url, verify=str(bundle)
    ) as client:
        batches = await client.batch.get_many([f"rb_{number}" for number in range(5)])
    assert [batch.id for batch in batches] == [f"rb_{number}" for number in range(5)]
    # Squid logs a tunnel once it is closed, which can be after the client has closed.
    logged = f"CONNECT 127.0.0.1:{tls_server.port}"
    await wait_until(lambda: logged in squid.requests(), 10, f"squid to log {logged}")


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"proxy": "socks5://127.0.0.1:1080"}, ValueError),
        ({"proxy": 3128}, TypeError),
        ({"verify": "/no/such/ca.pem"}, ValueError),
        ({"verify": 1}, TypeError),
        ({"trust_env": "yes"}, TypeError),
        ({"proxy": "http://127.0.0.1:3128", "http_client": httpx.AsyncClient()}, ValueError),
    ],
)
def test_bad_network_options_are_refused(options, error):
    """proxy=, verify= and trust_env= are checked when the client is made."""
    with pytest.raises(error):
        AsyncInkit(TOKEN, **options)


def test_a_refused_proxy_url_is_not_echoed():
    """A proxy URL often holds a password: the error never repeats it."""
    with pytest.raises(ValueError, match="proxy") as info:
        AsyncInkit(TOKEN, proxy="ftp://user:s3cret@proxy:21")
    assert "s3cret" not in str(info.value)


def chain(error: BaseException) -> list[BaseException]:
    """*error* and every exception it was raised from or during."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        pending += [current.__cause__, current.__context__]
    return seen


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

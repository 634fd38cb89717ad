"""AsyncInkit construction, options, lifecycle and the headers every request carries."""

from __future__ import annotations

import pytest
import respx

import inkit_async
from inkit_async import AsyncInkit, Backoff, InkitError
from tests.support.constants import TOKEN
from tests.support.loopback import BATCH_JSON


async def test_token_from_argument_is_sent(api):
    """An explicit token goes out in X-Inkit-API-Token."""
    route = api.get("/batch/rb_1").respond(json={**BATCH_JSON, "id": "rb_1"})
    async with AsyncInkit(TOKEN) as client:
        await client.batch.get("rb_1")
    assert route.calls.last.request.headers["X-Inkit-API-Token"] == TOKEN


async def test_token_falls_back_to_environment(api, monkeypatch):
    """Without an argument, INKIT_API_TOKEN is used."""
    monkeypatch.setenv("INKIT_API_TOKEN", "tok_from_env")
    route = api.get("/batch/rb_1").respond(json={**BATCH_JSON, "id": "rb_1"})
    async with AsyncInkit() as client:
        await client.batch.get("rb_1")
    assert route.calls.last.request.headers["X-Inkit-API-Token"] == "tok_from_env"


@pytest.mark.parametrize("env", [None, ""])
def test_missing_token_raises_inkit_error_naming_the_variable(monkeypatch, env):
    """No token anywhere raises InkitError at construction, naming INKIT_API_TOKEN."""
    if env is not None:
        monkeypatch.setenv("INKIT_API_TOKEN", env)
    with pytest.raises(InkitError, match="INKIT_API_TOKEN"):
        AsyncInkit()


def test_bad_tokens_are_rejected_without_echoing_them():
    """A token of the wrong type or with control characters fails; the message omits it."""
    with pytest.raises(TypeError):
        AsyncInkit(b"bytes-token")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="visible ASCII") as info:
        AsyncInkit("tok_abc\r\nX-Evil: 1")
    assert "tok_abc" not in str(info.value)


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.inkit.com/v1", "https://api.inkit.com/v1/batch/rb_1"),
        ("https://api.inkit.com/v1/", "https://api.inkit.com/v1/batch/rb_1"),
        ("http://127.0.0.1:8080/proxy/inkit/v1", "http://127.0.0.1:8080/proxy/inkit/v1/batch/rb_1"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/batch/rb_1"),
    ],
)
async def test_base_url_path_is_kept(base_url, expected):
    """Requests go to <base_url>/batch/<id>, with or without a trailing slash."""
    with respx.mock(using="httpx") as router:
        route = router.get(expected).respond(json={**BATCH_JSON, "id": "rb_1"})
        async with AsyncInkit(TOKEN, base_url=base_url) as client:
            await client.batch.get("rb_1")
    assert route.call_count == 1
    assert str(route.calls.last.request.url) == expected


async def test_default_base_url_keeps_v1(api):
    """The default base URL is https://api.inkit.com/v1 (the official SDK drops /v1)."""
    route = api.get("https://api.inkit.com/v1/batch/rb_1").respond(
        json={**BATCH_JSON, "id": "rb_1"}
    )
    async with AsyncInkit(TOKEN) as client:
        assert client.base_url == "https://api.inkit.com/v1"
        await client.batch.get("rb_1")
    assert route.called


async def test_base_url_falls_back_to_environment(monkeypatch):
    """INKIT_BASE_URL is used when base_url is not passed; an argument beats it."""
    monkeypatch.setenv("INKIT_BASE_URL", "http://127.0.0.1:9/env/v1/")
    assert AsyncInkit(TOKEN).base_url == "http://127.0.0.1:9/env/v1"
    assert AsyncInkit(TOKEN, base_url="http://127.0.0.1:9/arg").base_url == "http://127.0.0.1:9/arg"


@pytest.mark.parametrize(
    "base_url",
    ["api.inkit.com/v1", "ftp://api.inkit.com", "https://", "http://h/v1?x=1", "http://h/#f"],
)
def test_bad_base_url_is_rejected(base_url):
    """A base URL that is not http(s) with a host, or has a query or fragment, fails early."""
    with pytest.raises(ValueError, match="base_url"):
        AsyncInkit(TOKEN, base_url=base_url)


async def test_every_request_sends_identity_headers(api):
    """Token, Accept: application/json and an inkit-async User-Agent go on every request."""
    route = api.get("/batch/rb_1").respond(json={**BATCH_JSON, "id": "rb_1"})
    async with AsyncInkit(TOKEN) as client:
        await client.batch.get("rb_1")
        await client.batch.get("rb_1")
    for call in route.calls:
        headers = call.request.headers
        assert headers["X-Inkit-API-Token"] == TOKEN
        assert headers["Accept"] == "application/json"
        assert headers["User-Agent"].startswith(f"inkit-async/{inkit_async.__version__} ")


@pytest.mark.parametrize(
    ("timeout", "sent"),
    [
        # Seconds bound the whole attempt (the deadline): only connecting has a limit of
        # its own, at most 5 s.
        (None, {"connect": 5.0, "read": None, "write": None, "pool": None}),
        (2, {"connect": 2.0, "read": None, "write": None, "pool": None}),
        ("Timeout(1.0, read=7.0)", {"connect": 1.0, "read": 7.0, "write": 1.0, "pool": 1.0}),
    ],
)
async def test_timeout_forms_reach_the_request(api, http_library, timeout, sent):
    """Default: 30 s end to end with a 5 s connect; a number; a library's Timeout as given."""
    route = api.get("/batch/rb_1").respond(json={**BATCH_JSON, "id": "rb_1"})
    if isinstance(timeout, str):
        timeout = http_library.Timeout(1.0, read=7.0)
    options = {} if timeout is None else {"timeout": timeout}
    async with AsyncInkit(TOKEN, **options) as client:
        assert client.timeout == (30.0 if timeout is None else timeout)
        await client.batch.get("rb_1")
    assert route.calls.last.request.extensions["timeout"] == sent


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"timeout": "30"}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"timeout": -1.0}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"max_retries": -1}, ValueError),
        ({"max_retries": 1.5}, TypeError),
        ({"max_retries": True}, TypeError),
        ({"max_concurrency": 0}, ValueError),
        ({"max_retry_after": -5}, ValueError),
        ({"backoff": 0.5}, TypeError),
        ({"http_client": object()}, TypeError),
        ({"base_url": 5}, TypeError),
    ],
)
def test_bad_options_raise_before_anything_is_sent(options, error):
    """Impossible option values raise ValueError, wrong types TypeError."""
    with pytest.raises(error):
        AsyncInkit(TOKEN, **options)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"initial": -1}, ValueError),
        ({"maximum": float("inf")}, ValueError),
        ({"jitter": 2}, ValueError),
        ({"initial": "1"}, TypeError),
        ({"jitter": True}, TypeError),
    ],
)
def test_bad_backoff_is_rejected(options, error):
    """Backoff checks its numbers when it is built: ValueError for values, TypeError for types."""
    with pytest.raises(error):
        Backoff(**options)


def test_repr_never_shows_the_token():
    """repr(client) names the base URL and options, never the token."""
    client = AsyncInkit(TOKEN)
    text = repr(client)
    assert TOKEN not in text
    assert "https://api.inkit.com/v1" in text
    assert "max_retries=2" in text


async def test_context_manager_returns_client_and_closes_it():
    """`async with` yields the client itself and closes it on exit."""
    client = AsyncInkit(TOKEN)
    async with client as entered:
        assert entered is client
        assert not client.is_closed
    assert client.is_closed
    assert "closed" in repr(client)


async def test_aclose_is_idempotent_and_calls_after_it_raise_inkit_error():
    """aclose() twice is fine; a call on a closed client raises InkitError, not httpx's error."""
    client = AsyncInkit(TOKEN)
    await client.aclose()
    await client.aclose()
    with pytest.raises(InkitError, match="closed"):
        await client.batch.get("rb_1")


async def test_mock_transport_http_client_needs_no_patching(http_library):
    """An http_client with a MockTransport serves the SDK without any global patching."""
    seen = []

    def handler(request):
        seen.append(request.url.path)
        return http_library.Response(200, json=BATCH_JSON)

    async with (
        http_library.AsyncClient(transport=http_library.MockTransport(handler)) as http,
        AsyncInkit(TOKEN, http_client=http) as client,
    ):
        batch = await client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")
    assert seen == ["/v1/batch/rb_6WtDgF7RGqdS5Uzea9neZJ"]
    assert batch.id == "rb_6WtDgF7RGqdS5Uzea9neZJ"


async def test_transport_option_sends_through_it_and_is_closed_with_the_client(http_library):
    """transport=: a client of the transport's library sends through it; closing closes it."""
    seen: list[str] = []

    class Transport(http_library.MockTransport):
        closed = False

        async def aclose(self) -> None:
            self.closed = True

    def handler(request):
        seen.append(request.url.path)
        return http_library.Response(200, json={**BATCH_JSON, "id": "rb_1"})

    transport = Transport(handler)
    async with AsyncInkit(TOKEN, transport=transport) as client:
        batch = await client.batch.get("rb_1")
        assert not transport.closed
    assert transport.closed
    assert seen == ["/v1/batch/rb_1"]
    assert batch.id == "rb_1"


async def test_http_client_and_transport_together_are_refused(http_library):
    """Two ways of sending at once raise ValueError; a transport of the wrong type TypeError."""
    transport = http_library.MockTransport(
        lambda request: http_library.Response(200, json=BATCH_JSON)
    )
    async with http_library.AsyncClient() as http:
        with pytest.raises(ValueError, match="pass http_client or transport, not both"):
            AsyncInkit(TOKEN, http_client=http, transport=transport)
    with pytest.raises(TypeError, match=r"transport must be an httpx\.AsyncBaseTransport"):
        AsyncInkit(TOKEN, transport=object())  # type: ignore[arg-type]


# -- event loops ----------------------------------------------------------------------

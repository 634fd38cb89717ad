"""httpx2, pydantic's fork of httpx: a caller's httpx2 client, transport and Timeout.

These hold whatever ``INKIT_TEST_HTTPX`` says (the suite's client, transport, proxy, TLS
and error tests run with either library through the ``http_library`` fixture): each
builds httpx2's objects itself. The last one runs an app in a fresh interpreter that
can import nothing but the standard library, the SDK's own dependencies and httpx2.
"""

from __future__ import annotations

import httpx
import httpx2
import pytest

from inkit_async import APIConnectionError, AsyncInkit, NotFoundError
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.events import Events
from tests.support.loopback import BATCH_JSON
from tests.support.secrets import assert_secret


def answering(seen: list[httpx2.Request] | None = None) -> httpx2.MockTransport:
    """An httpx2 transport that answers every lookup with a batch (and keeps each request)."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        if seen is not None:
            seen.append(request)
        return httpx2.Response(200, json={**BATCH_JSON, "id": request.url.path.rsplit("/")[-1]})

    return httpx2.MockTransport(handler)


async def test_an_httpx2_client_sends_and_stays_open():
    """http_client=httpx2.AsyncClient: its transport gets httpx2 requests; aclose leaves it open."""
    seen: list[httpx2.Request] = []
    async with httpx2.AsyncClient(transport=answering(seen), headers={"X-Trace": "t1"}) as http:
        async with AsyncInkit(TOKEN, http_client=http) as client:
            assert (await client.batch.get("rb_1")).id == "rb_1"
        assert client.is_closed
        assert not http.is_closed  # the caller's own client: the caller closes it
        assert (await http.get("https://api.inkit.com/v1/batch/rb_2")).status_code == 200
    (request,) = seen[:1]
    assert type(request) is httpx2.Request
    assert str(request.url) == "https://api.inkit.com/v1/batch/rb_1"
    assert request.headers["X-Inkit-API-Token"] == TOKEN
    assert request.headers["X-Trace"] == "t1"  # the client's own defaults are kept


async def test_an_httpx2_transport_is_used_and_closed_with_the_client():
    """transport=httpx2.MockTransport: an httpx2 client of the SDK's sends through it, closes it."""

    class Transport(httpx2.MockTransport):
        closed = 0

        async def aclose(self) -> None:
            self.closed += 1

    seen: list[httpx2.Request] = []
    transport = Transport(answering(seen).handler)
    async with AsyncInkit(TOKEN, transport=transport) as client:
        assert (await client.batch.get("rb_7")).id == "rb_7"
        assert transport.closed == 0
    assert transport.closed == 1
    assert [type(request) for request in seen] == [httpx2.Request]


async def test_an_httpx2_timeout_reaches_the_request_phase_by_phase():
    """timeout=httpx2.Timeout, and with_options(timeout=...): each phase as given."""
    seen: list[httpx2.Request] = []
    timeout = httpx2.Timeout(1.0, read=7.0, pool=0.5)
    async with AsyncInkit(TOKEN, transport=answering(seen), timeout=timeout) as client:
        assert client.timeout is timeout
        await client.batch.get("rb_1")
        other = client.with_options(timeout=httpx2.Timeout(2.0, connect=0.25))
        assert isinstance(other.timeout, httpx2.Timeout)
        await other.batch.get("rb_2")
    assert [request.extensions["timeout"] for request in seen] == [
        {"connect": 1.0, "read": 7.0, "write": 1.0, "pool": 0.5},
        {"connect": 0.25, "read": 2.0, "write": 2.0, "pool": 2.0},
    ]


async def test_an_httpx2_connect_error_is_a_connection_error_never_sent_and_retried():
    """A transport's httpx2.ConnectError: APIConnectionError, not sent, retried; httpx2's below."""
    raised: list[httpx2.ConnectError] = []

    def refuse(request: httpx2.Request) -> httpx2.Response:
        raised.append(httpx2.ConnectError(f"refused {request.url}", request=request))
        raise raised[-1]

    events = Events()
    async with AsyncInkit(
        TOKEN, transport=httpx2.MockTransport(refuse), backoff=NO_WAIT, on_event=events
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.create(template_id="t", renders=[{"merge_parameters": {}}])
    error = info.value
    assert type(error) is APIConnectionError
    assert error.may_have_reached_server is False  # so even a create was sent again
    assert len(raised) == 3
    assert [(event.attempt, event.exception) for event in events.retries] == [
        (1, "ConnectError"),
        (2, "ConnectError"),
    ]
    cause = error.__cause__
    assert type(cause) is httpx.ConnectError  # the SDK's errors speak httpx
    assert cause.__cause__ is raised[-1]
    assert error.request is not None
    assert type(error.request) is httpx.Request
    assert error.request.headers["X-Inkit-API-Token"] == "[redacted]"


async def test_an_httpx2_status_error_from_a_hook_shows_no_token():
    """A response hook's httpx2.HTTPStatusError echoing the token: masked httpx2 copies."""

    async def strict(response: httpx2.Response) -> None:
        await response.aread()
        response.raise_for_status()

    def echo(request: httpx2.Request) -> httpx2.Response:
        token = request.headers["X-Inkit-API-Token"]
        return httpx2.Response(404, json={"error": f"no {token}"}, headers={"x-echo": token})

    transport = httpx2.MockTransport(echo)
    async with (
        httpx2.AsyncClient(transport=transport, event_hooks={"response": [strict]}) as http,
        AsyncInkit(TOKEN, http_client=http, max_retries=0) as client,
    ):
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    status_error = info.value.__cause__.__cause__
    assert type(info.value.__cause__) is httpx.TransportError
    assert type(status_error) is httpx2.HTTPStatusError
    assert type(status_error.response) is httpx2.Response
    assert status_error.response.json() == {"error": "no [redacted]"}
    assert status_error.response.headers["x-echo"] == "[redacted]"
    assert_secret(info.value)


async def test_an_answer_through_httpx2_is_an_error_of_httpx_objects():
    """A 404 through an httpx2 client: the error carries the SDK's httpx request and response."""
    transport = httpx2.MockTransport(lambda request: httpx2.Response(404, json={"error": "gone"}))
    async with AsyncInkit(TOKEN, transport=transport) as client:
        with pytest.raises(NotFoundError) as info:
            await client.batch.get("rb_gone")
    assert type(info.value.response) is httpx.Response
    assert type(info.value.response.request) is httpx.Request
    assert info.value.body == {"error": "gone"}


class _LooksLikeAClient:
    """Has the methods of an AsyncClient, but belongs to neither library."""

    def build_request(self, *_: object, **__: object) -> object:
        return object()

    async def send(self, *_: object, **__: object) -> object:
        return object()

    async def handle_async_request(self, _: object) -> object:
        return object()

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize(
    ("option", "kind"),
    [("http_client", "AsyncClient"), ("transport", "AsyncBaseTransport")],
)
def test_an_object_of_neither_library_is_refused_naming_both(option, kind):
    """Duck-typed look-alikes are refused: the SDK relies on the libraries' documented behaviour."""
    with pytest.raises(TypeError) as info:
        AsyncInkit(TOKEN, **{option: _LooksLikeAClient()})
    assert str(info.value) == (
        f"{option} must be an httpx.{kind} or httpx2.{kind}"
        f"{' (such as MockTransport)' if option == 'transport' else ''}, "
        f"got {__name__}._LooksLikeAClient"
    )


def test_a_timeout_of_neither_library_is_refused_naming_both():
    """A look-alike with as_dict(), or a str: the TypeError says which Timeouts are taken."""

    class Timeout:
        def as_dict(self) -> dict[str, float | None]:
            return {"connect": 1.0, "read": 1.0, "write": 1.0, "pool": 1.0}

    with pytest.raises(TypeError) as info:
        AsyncInkit(TOKEN, timeout=Timeout())
    assert str(info.value) == (
        "timeout must be a number of seconds, an httpx.Timeout or an httpx2.Timeout, got "
        f"{__name__}.test_a_timeout_of_neither_library_is_refused_naming_both.<locals>.Timeout"
    )
    client = AsyncInkit(TOKEN)
    with pytest.raises(TypeError, match=r"httpx2\.Timeout, got builtins\.str"):
        client.with_options(timeout="30")  # type: ignore[arg-type]


def test_clients_of_the_two_libraries_are_not_interchangeable():
    """An httpx2 transport is not an httpx client, nor an httpx2 client a transport."""
    with pytest.raises(TypeError, match=r"http_client must be an httpx\.AsyncClient or httpx2"):
        AsyncInkit(TOKEN, http_client=answering())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"transport must be an httpx\.AsyncBaseTransport or"):
        AsyncInkit(TOKEN, transport=httpx2.AsyncClient())  # type: ignore[arg-type]


# -- an app with httpx2 and the SDK's own dependencies, nothing else ------------------------

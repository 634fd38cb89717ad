"""``default_headers=`` over real sockets: every sender sends them, no error shows them."""

from __future__ import annotations

import logging
import pickle

import pytest

from inkit_async import APIConnectionError, AsyncInkit, AuthenticationError, InkitError
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.loopback import Raw, Respond, answer_bytes
from tests.support.secrets import assert_hidden

#: A gateway's key, sent as a default header: it must reach the server and nothing else.
SECRET = "gw_key_0123456789abcdef"
#: A short value (under the 8 characters text masking needs): masked by name all the same.
SHORT = "t1"
#: Another, under a name the SDK knows nothing of.
KEY = "gk_fedcba9876543210"
HEADERS = {"Authorization": f"Bearer {SECRET}", "X-Gateway-Key": KEY, "X-Tenant": SHORT}
REDACTED = "[redacted]"


def _client(server, http_library=None, **options):  # type: ignore[no-untyped-def]
    """A client of *server*, through the default sender or a client of *http_library*."""
    if http_library is not None:
        options["http_client"] = http_library.AsyncClient()
    return AsyncInkit(TOKEN, base_url=server.url, default_headers=HEADERS, **options)


@pytest.mark.parametrize("sender", ["aiohttp", "http_client"])
async def test_every_sender_sends_them_with_the_sdks_own(server, http_library, sender):
    """The server reads each default header once, beside the token and the SDK's headers."""
    library = http_library if sender == "http_client" else None
    async with _client(server, library) as client:
        await client.batch.get("rb_1")
        await client.with_options(default_headers={"X-Trace": "7"}).batch.get("rb_1")
    first, second = server.requests
    assert first.headers["authorization"] == f"Bearer {SECRET}"
    assert first.headers["x-tenant"] == SHORT
    assert first.headers["x-gateway-key"] == KEY
    assert first.headers["x-inkit-api-token"] == TOKEN
    assert first.headers["user-agent"].startswith("inkit-async/")
    assert "x-trace" not in first.headers
    assert (second.headers["x-trace"], second.headers["x-tenant"]) == ("7", SHORT)
    if library is not None:
        await client._engine.options.http_client.aclose()  # noqa: SLF001


ECHOES = {
    "body": Respond(401, {"error": f"bad key Bearer {SECRET} for tenant {SHORT}"}),
    "headers": Respond(401, {"error": "no"}, {"x-echo": SECRET, "www-authenticate": SECRET}),
    "reason": Raw(answer_bytes(401, b"{}", reason=f"Bad {SECRET}")),
}


@pytest.mark.parametrize("answer", list(ECHOES.values()), ids=list(ECHOES))
@pytest.mark.parametrize("sender", ["aiohttp", "http_client"])
async def test_an_error_never_holds_a_default_header_value(server, http_library, sender, answer):
    """Echoed in a body, a header, a reason phrase: masked; the kept request: by name."""
    server.script(answer)
    library = http_library if sender == "http_client" else None
    async with _client(server, library, max_retries=0) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.batch.get("rb_1")
    error = info.value
    kept = error.response.request.headers
    assert {kept["authorization"], kept["x-gateway-key"], kept["x-tenant"]} == {REDACTED}
    assert_hidden(error, SECRET, KEY)
    copied = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own
    assert SHORT not in copied.response.request.headers.values()
    if library is not None:
        await client._engine.options.http_client.aclose()  # noqa: SLF001


@pytest.mark.parametrize(
    "answer",
    [
        Raw(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n"),
        Raw(b"NOT HTTP AT ALL\r\n\r\n"),
    ],
    ids=["bad-header", "bad-status-line"],
)
async def test_a_malformed_answer_keeps_no_default_header_in_its_cause(server, answer):
    """Aiohttp keeps the request's headers in its exception: the SDK's only, the rest masked."""
    server.script(answer, answer, answer)
    async with _client(server, max_retries=0, backoff=NO_WAIT) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    assert_hidden(info.value, SECRET, KEY)


async def test_log_records_never_show_them(server, caplog):
    """Attempts at DEBUG, retries at INFO, the final error: no record holds a value."""
    echo = Respond(503, {"error": f"busy {SECRET}"}, {"x-echo": SECRET})
    server.script(echo, echo, Respond(401, {"error": SECRET}))
    caplog.set_level(logging.DEBUG, logger="inkit_async")
    async with _client(server, backoff=NO_WAIT) as client:
        with pytest.raises(InkitError):
            await client.batch.get("rb_1")
    assert caplog.records
    for record in caplog.records:
        for value in (SECRET, KEY):
            assert value not in record.getMessage()
            assert value not in repr(record.__dict__)

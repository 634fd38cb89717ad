"""response_of(record) over real sockets: the aiohttp sender and a caller's httpx client.

What the unit tests (tests/unit/test_responses.py) check in process, here through each
sender's own reading of a real answer: its status, its headers as that library hands
them over, the request id, the masking of an echoed token, and Set-Cookie left out.
"""

from __future__ import annotations

import pytest

from inkit_async import AsyncInkit, response_of
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.loopback import BATCH_JSON, Respond

HEADERS = {
    "x-request-id": "req_sock_1",
    "x-echo": f"token {TOKEN}",
    "set-cookie": "session=abc123; HttpOnly",
    "X-RateLimit-Remaining": "99",
}


def _client(server, http_library=None):  # type: ignore[no-untyped-def]
    """A client of *server* that keeps responses: the default sender, or an httpx client."""
    options = {} if http_library is None else {"http_client": http_library.AsyncClient()}
    return AsyncInkit(TOKEN, base_url=server.url, keep_responses=True, backoff=NO_WAIT, **options)


@pytest.mark.parametrize("sender", ["aiohttp", "http_client"])
async def test_each_sender_hands_over_the_answer(server, http_library, sender):
    """Status, headers in any case, request id; the echoed token masked, the cookie gone."""
    library = http_library if sender == "http_client" else None
    server.script(Respond(503, {"error": "busy"}), Respond(200, dict(BATCH_JSON), HEADERS))
    async with _client(server, library) as client:
        batch = await client.batch.get(BATCH_JSON["id"])
        if library is not None:
            await client._engine.options.http_client.aclose()  # noqa: SLF001
    info = response_of(batch)
    assert info is not None
    assert (info.status, info.request_id, info.attempts) == (200, "req_sock_1", 2)
    assert info.headers["X-Ratelimit-Remaining"] == "99"
    assert info.headers["content-type"] == "application/json"
    assert info.headers["x-echo"] == "token [redacted]"
    assert "set-cookie" not in info.headers
    assert TOKEN not in repr(info)
    assert "abc123" not in repr(info)
    assert info.elapsed > 0


@pytest.mark.parametrize("sender", ["aiohttp", "http_client"])
async def test_a_fan_out_over_sockets_keeps_each_answer(server, http_library, sender):
    """get_many's lookups, sent concurrently on pooled connections: each record its own."""
    library = http_library if sender == "http_client" else None

    def answer(request):  # type: ignore[no-untyped-def]
        batch_id = request.last_segment
        return Respond(200, {**BATCH_JSON, "id": batch_id}, {"x-request-id": f"req-{batch_id}"})

    server.handler = answer
    ids = [f"rb_{n}" for n in range(40)]
    async with _client(server, library) as client:
        batches = await client.batch.get_many(ids)
        if library is not None:
            await client._engine.options.http_client.aclose()  # noqa: SLF001
    assert [response_of(b).request_id for b in batches] == [f"req-{i}" for i in ids]  # type: ignore[union-attr]

"""Testing with respx instead: run with `pytest docs/examples/testing_with_respx.py`."""

import httpx
import httpx2
import respx

from inkit_async import AsyncInkit

BATCH = {
    "id": "rb_6WtDgF7RGqdS5Uzea9neZJ",
    "name": "test",
    "status": "Completed",
    "total": 1,
    "created_at": "2023-08-14T14:32:48.872931Z",
    "destinations": {"inkit_storage": {"count": 1, "completed": 1, "failed": 0, "in_progress": 0}},
}


async def test_with_respx_mock() -> None:
    # The usual respx.mock: while it is on, the SDK sends through httpx, which respx patches.
    with respx.mock(base_url="https://api.inkit.com/v1") as api:
        route = api.get("/batch/rb_6WtDgF7RGqdS5Uzea9neZJ").respond(json=BATCH)
        async with AsyncInkit("test-token", base_url="https://api.inkit.com/v1") as client:
            batch = await client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")
    assert batch.is_finished
    assert route.calls.last.request.headers["X-Inkit-API-Token"] == "test-token"


async def test_with_your_own_mock_transport() -> None:
    # Or hand the SDK an httpx client whose transport is the mock: no patching at all.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**BATCH, "id": request.url.path.rsplit("/", 1)[-1]})

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        AsyncInkit("test-token", http_client=http) as client,
    ):
        batch = await client.batch.get("rb_any")
    assert batch.id == "rb_any"


async def test_with_an_httpx2_mock_transport() -> None:
    # httpx2 (respx does not patch it): its MockTransport, passed as transport=.
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={**BATCH, "id": request.url.path.rsplit("/", 1)[-1]})

    async with AsyncInkit("test-token", transport=httpx2.MockTransport(handler)) as client:
        batch = await client.batch.get("rb_any")
    assert batch.id == "rb_any"

"""Testing with respx instead: run with `pytest docs/examples/testing_with_respx.py`."""

import httpx
import httpx2
import respx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

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


def answer_for(request: httpx.Request, batch_id: str) -> httpx.Response:  # noqa: ARG001
    # Trap 2: the SDK checks that an answer is for the batch it asked for, so a route that
    # matches many ids must answer each with its own id, not one fixed body.
    return httpx.Response(200, json={**BATCH, "id": batch_id})


async def status(request: Request) -> JSONResponse:
    # The app under test: a route that looks a batch up with its own client.
    async with AsyncInkit("test-token", base_url="https://api.inkit.com/v1") as client:
        batch = await client.batch.get(request.path_params["batch_id"])
    return JSONResponse({"id": batch.id, "finished": batch.is_finished})


app = Starlette(routes=[Route("/status/{batch_id}", status)])


async def test_an_app_under_respx() -> None:
    with respx.mock(base_url="https://api.inkit.com/v1", using="httpx") as api:
        # Trap 1: respx.mock(using="httpx") patches every httpx client, the test's own
        # client of the app too; without this route it answers "not mocked".
        api.route(host="app").pass_through()
        api.get(path__regex=r"/batch/(?P<batch_id>[^/]+)").mock(side_effect=answer_for)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            first = await http.get("/status/rb_first")
            second = await http.get("/status/rb_second")
    assert first.json() == {"id": "rb_first", "finished": True}
    assert second.json() == {"id": "rb_second", "finished": True}


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

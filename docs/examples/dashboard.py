"""A dashboard route over 100 batches, loaded by 50 browsers: the requests it costs."""

import asyncio
from collections.abc import Mapping

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from inkit_async import AsyncInkit, BatchCache, InkitError
from inkit_async.testing import FakeInkit


class DistantFake(FakeInkit):
    """The fake, 10 ms away: every answer takes a round trip, as the real API's do."""

    async def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer as the fake does, 10 ms later."""
        await asyncio.sleep(0.01)
        return await super().handle(method, path, query, headers, body)


async def dashboard(request: Request) -> JSONResponse:
    client: AsyncInkit = request.app.state.inkit
    batch_ids: list[str] = request.app.state.batch_ids  # in your app: from your database
    results = await client.batch.get_many(batch_ids, return_exceptions=True)
    rows: list[dict[str, object]] = []
    for batch_id, result in zip(batch_ids, results, strict=True):
        if isinstance(result, InkitError):
            rows.append({"id": batch_id, "error": type(result).__name__})
        else:
            progress = result.progress
            done = progress.completed + progress.failed
            rows.append({"id": batch_id, "status": str(result.status), "done": done})
    return JSONResponse({"batches": rows})


def dashboard_app(client: AsyncInkit, batch_ids: list[str]) -> Starlette:
    # A real app makes its client in the lifespan, as in webapp.py.
    app = Starlette(routes=[Route("/dashboard", dashboard)])
    app.state.inkit = client
    app.state.batch_ids = batch_ids
    return app


async def load(app: Starlette, browsers: int = 50, *, at_once: bool = True) -> None:
    """*browsers* load the dashboard: all at the same moment, or one after another."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as http:
        if at_once:
            pages = await asyncio.gather(*(http.get("/dashboard") for _ in range(browsers)))
        else:
            pages = [await http.get("/dashboard") for _ in range(browsers)]
    assert all(page.status_code == 200 for page in pages)


async def main() -> None:
    fake = DistantFake(docs_per_poll=0, seed=5)  # batches stay in progress until completed
    batch_ids = [fake.add_batch(destinations={"inkit_storage": 500}) for _ in range(100)]

    for label, coalesce, at_once in (
        ("defaults (coalesce=True), 50 browsers at once", True, True),
        ("coalesce=False, 50 browsers at once", False, True),
        ("defaults, 50 browsers one after another", True, False),
    ):
        fake.requests.clear()
        async with fake.client(coalesce=coalesce) as client:
            await load(dashboard_app(client, batch_ids), at_once=at_once)
        print(f"{label}: {len(fake.requests)} requests")

    for batch_id in batch_ids:
        fake.complete(batch_id)  # finished: now the cache may keep them
    cache = BatchCache(ttl=300, max_size=10_000)
    async with fake.client(cache=cache) as client:
        app = dashboard_app(client, batch_ids)
        for load_number in (1, 2):
            fake.requests.clear()
            await load(app)
            print(
                f"BatchCache, finished batches, load {load_number}: {len(fake.requests)} requests"
            )
    print(cache.stats)


asyncio.run(main())

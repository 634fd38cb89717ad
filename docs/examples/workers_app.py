"""A web app served by several worker processes: `uvicorn workers_app:app --workers 4`."""

import asyncio
import os
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from inkit_async import AsyncInkit, NotFoundError
from inkit_async.redis import RedisThrottle

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncGenerator[None]:
    # Every worker process runs this once: a client of its own (its own connections),
    # and a throttle that keeps the token's limits together with the other workers'.
    async with (
        RedisThrottle.from_url(REDIS_URL, namespace="billing-web") as throttle,
        AsyncInkit(throttle=throttle) as client,
    ):
        app.state.inkit = client
        yield


async def batch_status(request: Request) -> JSONResponse:
    client: AsyncInkit = request.app.state.inkit
    try:
        batch = await client.batch.get(request.path_params["batch_id"])
    except NotFoundError:
        return JSONResponse({"error": "no such batch"}, status_code=404)
    return JSONResponse({"id": batch.id, "finished": batch.is_finished})


app = Starlette(routes=[Route("/batches/{batch_id}", batch_status)], lifespan=lifespan)


async def smoke_test() -> None:
    # `python workers_app.py`: one request through the app, in process, no server.
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            response = await http.get("/batches/rb_6WtDgF7RGqdS5Uzea9neZJ")
            print(response.status_code, response.json())


if __name__ == "__main__":
    asyncio.run(smoke_test())

"""One AsyncInkit for the app's lifetime, shared by every request (Starlette/FastAPI)."""

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from inkit_async import AsyncInkit, NotFoundError


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncGenerator[None]:
    # Created once at start-up and closed at shutdown: one connection pool, one
    # concurrency limit and one throttle for every request the app serves.
    async with AsyncInkit() as client:
        app.state.inkit = client
        yield


async def batch_status(request: Request) -> JSONResponse:
    client: AsyncInkit = request.app.state.inkit
    batch = await client.batch.get(request.path_params["batch_id"])
    progress = batch.progress
    return JSONResponse(
        {
            "id": batch.id,
            "status": str(batch.status),
            "finished": batch.is_finished,
            "done": progress.completed + progress.failed,
            "of": progress.count,
        }
    )


async def batch_record(request: Request) -> JSONResponse:
    client: AsyncInkit = request.app.state.inkit
    batch = await client.batch.get(request.path_params["batch_id"])
    # The whole record as plain data, in the API's JSON shape. With FastAPI, annotate
    # the route `-> dict[str, Any]` and `return batch.to_dict()`.
    return JSONResponse(batch.to_dict())


async def not_found(_request: Request, _exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "no such batch"}, status_code=404)


app = Starlette(
    routes=[
        Route("/batches/{batch_id}", batch_status),
        Route("/batches/{batch_id}/record", batch_record),
    ],
    exception_handlers={NotFoundError: not_found},
    lifespan=lifespan,
)

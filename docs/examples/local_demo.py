"""Run the SDK end to end against an in-process stand-in for Inkit: no token, no network.

Run it with ``python docs/examples/local_demo.py``.
"""

from __future__ import annotations

import asyncio

import httpx

from inkit_async import AsyncInkit, NotFoundError


def stand_in(request: httpx.Request) -> httpx.Response:
    """Answer GET /v1/batch/<id> like Inkit does; ids starting with 'missing' are 404."""
    batch_id = request.url.path.rsplit("/", 1)[-1]
    if batch_id.startswith("missing"):
        return httpx.Response(404, json={"error": "Batch not found"})
    return httpx.Response(
        200,
        json={
            "id": batch_id,
            "name": "demo",
            "status": "Completed",
            "total": 3,
            "created_at": "2023-08-14T14:32:48.872931Z",
            "destinations": {
                "inkit_storage": {"count": 3, "completed": 2, "failed": 1, "in_progress": 0}
            },
        },
    )


async def main() -> None:
    """Fan out 200 lookups and show one batch and one typed error."""
    transport = httpx.MockTransport(stand_in)
    async with (
        httpx.AsyncClient(transport=transport) as http,
        AsyncInkit("demo-token", http_client=http) as client,
    ):
        ids = [f"rb_{n:04d}" for n in range(200)]
        batches = await asyncio.gather(*(client.batch.get(i) for i in ids))
        first = batches[0]
        print(f"fetched {len(batches)} batches; {first.id}: {first.status}")
        print(f"finished: {first.is_finished}")
        print(f"progress: {first.progress}")
        try:
            await client.batch.get("missing_1")
        except NotFoundError as error:
            print(f"typed error: {type(error).__name__}: {error}")


if __name__ == "__main__":
    asyncio.run(main())

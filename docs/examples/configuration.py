"""Every option of AsyncInkit, with its default."""

import asyncio
import os

import httpx

from inkit_async import AsyncInkit, Backoff


async def main() -> None:
    client = AsyncInkit(
        os.environ["INKIT_API_TOKEN"],  # default: the INKIT_API_TOKEN variable
        base_url=os.environ.get("INKIT_BASE_URL", "https://api.inkit.com/v1"),
        timeout=30.0,  # seconds per attempt, end to end; at most 5 of them to connect
        max_retries=2,  # retries after the first attempt
        max_concurrency=100,  # requests in flight at once, across every caller
        max_retry_after=60.0,  # a longer Retry-After raises at once instead of sleeping
        backoff=Backoff(initial=0.5, maximum=8.0, jitter=0.25),
    )
    async with client:
        print(client)
        print(await client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ"))

    # httpx's per-phase timeouts, exactly as given (no end-to-end deadline):
    async with AsyncInkit(timeout=httpx.Timeout(10.0, connect=2.0, read=20.0)) as client:
        print(client.timeout)

    # Your own httpx client (proxies, certificates, event hooks); you close it.
    async with (
        httpx.AsyncClient(headers={"X-Team": "billing"}) as http,
        AsyncInkit(http_client=http) as client,
    ):
        print((await client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")).status)


asyncio.run(main())

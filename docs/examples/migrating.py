"""The official SDK's calls, in inkit-async (see the Migrating page for the side-by-side)."""

import asyncio
import os

from inkit_async import AsyncInkit, InkitError


async def main() -> None:
    # inkit.api_token = "..."  ->  one client, the token passed or from the environment
    async with AsyncInkit(os.environ["INKIT_API_TOKEN"]) as client:
        # inkit.Batch.get("rb_...")  ->  a typed, frozen record
        batch = await client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")
        print(batch.id, batch.status, batch.created_at.isoformat())

        # inkit.Batch.list(page=1)  ->  every page, lazily
        first_five: list[str] = []
        async for listed in client.batch.list():
            first_five.append(listed.id)
            if len(first_five) == 5:
                break
        print(first_five)

        # except inkit.exceptions.InkitResponseException  ->  one class per failure
        try:
            await client.batch.get("rb_missing")
        except InkitError as error:
            print(type(error).__name__, error)


asyncio.run(main())

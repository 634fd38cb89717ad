"""Fan-out: thousands of lookups from one client, with gather or with get_many."""

import asyncio

from inkit_async import AsyncInkit, InkitError


async def main() -> None:
    # One client per process; max_concurrency caps requests in flight across every task.
    async with AsyncInkit(max_concurrency=100) as client:
        ids = [batch.id async for batch in client.batch.list(page_size=1000)]  # or your own

        # get_many: results in input order, duplicates fetched once, 100 worker tasks
        # instead of one task per id, and each failure kept in its place.
        results = await client.batch.get_many(ids, return_exceptions=True)
        failed = [r for r in results if isinstance(r, InkitError)]
        print(f"{len(results) - len(failed)} found, {len(failed)} failed")

        # A plain gather works too: callers beyond the limit wait inside the client,
        # where waiting never counts against a timeout.
        found = await asyncio.gather(
            *(client.batch.get(i) for i in ids[:100]), return_exceptions=True
        )
        print(len(found), "looked up with gather")

        # A variant with other per-call options shares the pool, the limit and the
        # throttle of its parent.
        impatient = client.with_options(timeout=2.0, max_retries=0)
        batch = await impatient.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")
        print(batch.id, batch.status)


asyncio.run(main())

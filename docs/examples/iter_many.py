"""iter_many: act on each lookup as it finishes, with failures in their place."""

import asyncio
import contextlib

from inkit_async import AsyncInkit, InkitError, NotFoundError


async def main() -> None:
    ids = [
        "rb_6WtDgF7RGqdS5Uzea9neZJ",
        "rb_2KmPqR8sTuVwXyZaBcDeFg",
        "rb_missing",
        "rb_6WtDgF7RGqdS5Uzea9neZJ",  # a duplicate: fetched once, yielded once
    ]
    async with AsyncInkit() as client:
        # Each result as it arrives, in completion order: a Batch, or the InkitError
        # that lookup ended with. A failure does not stop the other lookups.
        async for batch_id, result in client.batch.iter_many(ids):
            if isinstance(result, NotFoundError):
                print(batch_id, "does not exist")
            elif isinstance(result, InkitError):
                print(batch_id, "failed:", result)
            else:
                print(batch_id, result.status)

        # Stop at the first batch found. aclosing() closes the iterator when the block
        # ends: the lookups still under way are cancelled, and no more are started.
        async with contextlib.aclosing(client.batch.iter_many(ids)) as results:
            async for batch_id, result in results:
                if not isinstance(result, InkitError):
                    print("first found:", batch_id)
                    break


asyncio.run(main())

import asyncio

from inkit_async import AsyncInkit, InkitError, NotFoundError


async def main() -> None:
    async with AsyncInkit() as client:  # the token comes from INKIT_API_TOKEN
        batch = await client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")
        print(batch.name, batch.status, f"{batch.progress.completed}/{batch.total} done")

        # Fan out: one client, many lookups at once (at most 100 in flight).
        ids = ["rb_6WtDgF7RGqdS5Uzea9neZJ", "rb_2KmPqR8sTuVwXyZaBcDeFg", "rb_missing"]
        results = await client.batch.get_many(ids, return_exceptions=True)
        for batch_id, result in zip(ids, results, strict=True):
            if isinstance(result, NotFoundError):
                print(batch_id, "does not exist")
            elif isinstance(result, InkitError):
                raise result
            else:
                print(batch_id, "finished" if result.is_finished else "in progress")


asyncio.run(main())

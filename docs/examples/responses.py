"""The answer behind a record: status, headers, request id (keep_responses=True)."""

import asyncio

from inkit_async import AsyncInkit, response_of


async def main() -> None:
    async with AsyncInkit(keep_responses=True) as client:
        batch = await client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")
        info = response_of(batch)
        assert info is not None  # None only for a record the client did not keep
        print(batch.status, "->", info.status, info.headers.get("Content-Type"))
        print("request id:", info.request_id)  # for a support ticket; None if not sent
        print(f"attempts: {info.attempts}, last one took {info.elapsed * 1000:.1f} ms")

        # A listing's answers come with its pages.
        async for page in client.batch.list(page_size=10).pages():
            page_info = response_of(page)
            assert page_info is not None
            print(f"page {page.page}: {len(page.items)} batches, HTTP {page_info.status}")

        # Lookups that share one request share its record, and so its answer.
        first, second = await asyncio.gather(
            client.batch.get("rb_2KmPqR8sTuVwXyZaBcDeFg"),
            client.batch.get("rb_2KmPqR8sTuVwXyZaBcDeFg"),
        )
        print("one request for both:", first is second, response_of(first) == response_of(second))


asyncio.run(main())

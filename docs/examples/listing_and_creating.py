"""Listing batches across pages, and creating one."""

import asyncio

from inkit_async import AsyncInkit, RenderSpec


async def main() -> None:
    async with AsyncInkit() as client:
        # Every batch, newest first; pages are fetched lazily as the loop reaches them.
        async for batch in client.batch.list(sort="-created_at", page_size=100):
            print(batch.id, batch.name, batch.status)

        # Only batches with failed deliveries to Inkit storage.
        failing = client.batch.list(destination_name="inkit_storage", destination_status="failed")
        print([batch.id async for batch in failing])

        # Whole pages, with the pagination numbers.
        async for page in client.batch.list(page_size=2).pages():
            print(f"page {page.page} of {page.page_count}: {len(page.items)} batches")

        # Create: RenderSpec records or plain dicts with the API's keys.
        created = await client.batch.create(
            template_id="tmpl_invoice",
            name="Welcome letters",
            renders=[
                RenderSpec(
                    merge_parameters={"first_name": "Ada"},
                    destinations={"inkit_storage": {"name": "ada-welcome"}},
                ),
                {"merge_parameters": {"first_name": "Grace"}, "name": "grace-welcome"},
            ],
        )
        print("created", created.id)

        # Flow batches have the same reads under client.flow_batch.
        flow = await client.flow_batch.get("fb_4GhJkLmNpQrStVwXyZaBcD")
        print(flow.id, dict(flow.destinations))


asyncio.run(main())

"""Renders: make one document from a template, follow it, list and delete renders."""

import asyncio

from inkit_async import AsyncInkit


async def main() -> None:
    async with AsyncInkit() as client:
        created = await client.render.create(
            template_id="tmpl_invoice",
            merge_parameters={"Name": "John"},
            destinations={"inkit_storage": {"name": "Invoice for John"}},
        )
        print("render", created.id, "document", created.document_id)

        # The render is made in the background: poll until it is Completed.
        async with asyncio.timeout(60):
            render = await client.render.get(created.id)
            while not render.is_completed:
                await asyncio.sleep(1)
                render = await client.render.get(created.id)
        print(render.id, render.status, render.template_id)

        # Every render, newest first; only those with a completed Salesforce delivery.
        async for each in client.render.list(sort="-created_at", page_size=100):
            print(each.id, each.name, each.status)
        salesforce = client.render.list(
            destination_name="salesforce", destination_status="completed"
        )
        print([each.id async for each in salesforce])

        # A hard delete: the render cannot be recovered.
        await client.render.delete(created.id)


asyncio.run(main())

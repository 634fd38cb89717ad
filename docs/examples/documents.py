"""Documents in Inkit Storage: find the documents of renders, read and delete one."""

import asyncio

from inkit_async import AsyncInkit, NotFoundError


async def main() -> None:
    async with AsyncInkit() as client:
        created = await client.render.create(template_id="tmpl_invoice", merge_parameters={})

        # The documents of given renders (data_id: one render id, or several).
        async for document in client.document.list(data_id=[created.id]):
            print(document.id, document.name, document.status, document.render_id)

        if created.document_id is not None:
            document = await client.document.get(created.document_id)
            print(document.id, "in folder", document.folder_id, "made", document.created_at)
            await client.document.delete(document.id)
            try:
                await client.document.get(document.id)
            except NotFoundError:
                print("deleted", document.id)


asyncio.run(main())

"""Folders and flows: list folders, launch a flow, list its launches."""

import asyncio

from inkit_async import AsyncInkit


async def main() -> None:
    async with AsyncInkit() as client:
        async for folder in client.folder.list(sort="name"):
            print("folder", folder.id, folder.name)

        launched = await client.flow.invoke(
            flow_id="flow_n4ir7mMl3AgXEkmucqYjq",
            name="welcome John",
            merge_parameters={"Name": "John"},
        )
        print("launched", launched.id, "document", launched.document_id)

        async for invocation in client.flow.list_invocations(data_id=launched.id):
            print(invocation.id, invocation.flow_id, invocation.status)


asyncio.run(main())

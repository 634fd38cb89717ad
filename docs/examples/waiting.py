"""Waiting for a batch: wait() for the result, watch() for the progress."""

import asyncio

from inkit_async import AsyncInkit, RenderSpec, WaitTimeoutError


async def main() -> None:
    async with AsyncInkit() as client:
        created = await client.batch.create(
            template_id="tmpl_invoice",
            name="March invoices",
            renders=[RenderSpec(merge_parameters={"customer": name}) for name in ("Ada", "Grace")],
        )

        # Follow the progress: the first snapshot, then each change, until finished.
        async for snapshot in client.batch.watch(created.id, poll_interval=1.0):
            progress = snapshot.progress
            print(f"{snapshot.status}: {progress.completed + progress.failed}/{progress.count}")

        # Or just wait for the end, with a limit.
        try:
            batch = await client.batch.wait(created.id, poll_interval=1.0, timeout=300)
        except WaitTimeoutError as error:
            print("still running; last seen:", error.batch)
        else:
            print(batch.id, "finished with", batch.progress.failed, "failed documents")


asyncio.run(main())

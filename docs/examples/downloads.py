"""Downloads: a render's PDF to a file, a document's file as a stream, many at once."""

import asyncio
import tempfile
from pathlib import Path

from inkit_async import AsyncInkit, InkitError


async def main() -> None:
    folder = Path(tempfile.mkdtemp())  # your own directory, in a real program
    async with AsyncInkit() as client:
        created = await client.render.create(
            template_id="tmpl_invoice", merge_parameters={"Name": "John"}
        )

        # The PDF, atomically: whole at `path`, or nothing there. A render still in
        # progress answers 404: download waits for it (every 2 s, up to 30 s), and the
        # deadline bounds the whole call.
        path = await client.render.download(created.id, folder / "invoice.pdf", deadline=120)
        print(path.name, path.read_bytes()[:8])
        await client.render.download(created.id, folder / "page-1.pdf", page=1)

        # The document it delivered to Inkit Storage, piped on as it arrives.
        if created.document_id is not None:
            size = 0
            async with client.document.stream(created.document_id) as stream:
                async for chunk in stream:
                    size += len(chunk)  # write it to a socket, a bucket, a hash...
            print("streamed", size, "bytes of", stream.content_type)

        # Many at once into a directory, one file per id (`<id>.pdf`), resumable: run it
        # again after an interruption and only the missing files are fetched.
        ids = [created.id, "rend_not_there"]
        results = await client.render.download_many(
            ids, folder / "renders", return_exceptions=True, deadline=3
        )
        for render_id, result in zip(ids, results, strict=True):
            if isinstance(result, InkitError):
                print(render_id, "failed:", type(result).__name__)
            else:
                print(render_id, "->", result.name)


asyncio.run(main())

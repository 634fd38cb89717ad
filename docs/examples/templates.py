"""Templates: create one from an HTML file, read it back, list templates."""

import asyncio
import tempfile
from pathlib import Path

from inkit_async import AsyncInkit


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "invoice.html"
        source.write_text("<html><body>Invoice for {{Name}}</body></html>")
        async with AsyncInkit() as client:
            # A path, bytes or a binary file object; sent base64-encoded, as the SDKs do.
            template = await client.template.create(
                name="Invoice",
                source="html",
                file=source,
                width=8.5,
                height=11,
                unit="in",
            )
            print("created", template.id, template.source, template.width, template.unit)

            again = await client.template.get(template.id)
            print(again.name, "version", again.version)

            async for each in client.template.list(source="html", sort="name"):
                print(each.id, each.name)


asyncio.run(main())

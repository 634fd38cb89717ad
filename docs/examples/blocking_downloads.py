"""Downloads from synchronous code: BlockingInkit's download, stream and download_many."""

import tempfile
from pathlib import Path

from inkit_async import BlockingInkit

folder = Path(tempfile.mkdtemp())  # your own directory, in a real program
with BlockingInkit() as client:
    created = client.render.create(template_id="tmpl_invoice", merge_parameters={"Name": "Ann"})
    path = client.render.download(created.id, folder / "invoice.pdf", deadline=120)
    print(path.name, path.stat().st_size, "bytes")

    if created.document_id is not None:
        with (
            client.document.stream(created.document_id) as stream,
            (folder / "copy.pdf").open("wb") as sink,
        ):
            for chunk in stream:  # a plain iterator: one round trip to the client's loop each
                sink.write(chunk)

    paths = client.render.download_many([created.id], folder / "renders")
    print([p.name for p in paths])

"""What importing the package loads, seen from a fresh interpreter."""

from __future__ import annotations

import pytest


@pytest.mark.subprocess
def test_importing_the_package_does_not_import_the_fake():
    """`import inkit_async` stays light: the testing fake loads only when asked for."""
    import subprocess
    import sys

    code = "import sys, inkit_async; print('inkit_async.testing' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


#: Run in a fresh interpreter: import the package, then, inside the running loop, make
#: the default clients (plain HTTP and TLS) and send their first requests, while a finder
#: records every module imported on the loop's thread; print those, and whether aiohttp
#: was imported at all (off the loop).
FIRST_CALL = """
import asyncio, json, sys, threading
from inkit_async import AsyncInkit

on_the_loop = []

class Recorder:
    def find_spec(self, name, path=None, target=None):
        if threading.current_thread() is threading.main_thread():
            on_the_loop.append(name)
        return None

async def main(root):
    sys.meta_path.insert(0, Recorder())
    async with AsyncInkit("tok_imports_0123456789", base_url=root, max_retries=0) as client:
        tls = AsyncInkit("tok_imports_0123456789", base_url="https://127.0.0.1:9/v1")
        await asyncio.gather(*(client.batch.get(f"rb_{n}") for n in range(3)))
        await client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")
        await tls.aclose()
    print(json.dumps({"on_the_loop": on_the_loop, "aiohttp": "aiohttp" in sys.modules}))

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.subprocess
async def test_a_client_made_in_the_running_loop_imports_nothing_on_the_loop(server):
    """The first calls import aiohttp in a thread; the constructor imports nothing at all.

    An app makes its client in its lifespan or in ``main()``, inside the running loop: an
    import on the loop's thread (100-300 ms for aiohttp) would stall every other task that
    long. Three calls at once wait for the one import, then every call goes straight to
    aiohttp's sender.
    """
    import asyncio
    import json
    import sys

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FIRST_CALL,
        server.url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert json.loads(out) == {"on_the_loop": [], "aiohttp": True}
    assert len(server.requests) == 4

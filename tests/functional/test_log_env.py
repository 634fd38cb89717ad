"""``INKIT_LOG=debug`` in a fresh interpreter: each attempt on stderr once, no credential."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from tests.support.constants import TOKEN
from tests.support.loopback import Respond

GATEWAY_KEY = "gw_key_0123456789abcdef"

#: Two clients, a retried lookup: the lines go to stderr through one handler.
APP = f"""
import asyncio, sys
from inkit_async import AsyncInkit, Backoff

async def main(root):
    options = dict(base_url=root, backoff=Backoff(initial=0.01, maximum=0.01, jitter=0))
    headers = {{"Authorization": "Bearer {GATEWAY_KEY}"}}
    async with AsyncInkit({TOKEN!r}, default_headers=headers, **options) as client:
        await client.batch.get("rb_1")
    async with AsyncInkit({TOKEN!r}, **options) as other:
        await other.batch.get("rb_2")

asyncio.run(main(sys.argv[1]))
"""


async def _run(server, value: str) -> str:  # type: ignore[no-untyped-def]
    """The app's stderr, run with ``INKIT_LOG=value``."""
    env = {**os.environ, "INKIT_LOG": value}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        APP,
        server.url,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return err.decode()


@pytest.mark.subprocess
async def test_debug_writes_each_attempt_and_retry_to_stderr_once(server):
    """A 503, its retry, a 200, another client's 200: four attempts, one retry, once each."""
    server.script(Respond(503, {"error": f"busy {TOKEN} {GATEWAY_KEY}"}, {"x-echo": TOKEN}))
    err = await _run(server, "debug")
    lines = err.splitlines()
    attempts = [line for line in lines if " DEBUG inkit_async: GET /batch/" in line]
    assert [line.split(": ", 1)[1].split(" (")[0] for line in attempts] == [
        "GET /batch/rb_1 -> 503",
        "GET /batch/rb_1 -> 200",
        "GET /batch/rb_2 -> 200",
    ]
    assert sum(" INFO inkit_async: Retrying GET /batch/rb_1" in line for line in lines) == 1
    assert TOKEN not in err
    assert GATEWAY_KEY not in err


@pytest.mark.subprocess
async def test_an_unknown_value_warns_and_logs_nothing(server):
    """INKIT_LOG=loud: one RuntimeWarning, no log line."""
    err = await _run(server, "loud")
    assert "RuntimeWarning: INKIT_LOG is set to 'loud'" in err
    assert "inkit_async: GET" not in err

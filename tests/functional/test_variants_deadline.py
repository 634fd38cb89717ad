"""client.with_options over a real socket: a variant keeps its parent's end-to-end deadline."""

from __future__ import annotations

import httpx
import pytest

from inkit_async import APITimeoutError, AsyncInkit
from tests.support.constants import TOKEN
from tests.support.loopback import Trickle


async def test_with_options_of_the_clients_own_timeout_keeps_the_deadline(server):
    """timeout=client.timeout stays an end-to-end deadline: a body trickling past it fails."""
    server.handler = lambda request: Trickle(pieces=10, interval=0.05)  # 0.45 s in all
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=0.3, max_retries=0) as client:
        same = client.with_options(timeout=client.timeout)
        with pytest.raises(APITimeoutError) as info:
            await same.batch.get("rb_1")
        # The deadline, not a per-phase timeout: every gap is far below 0.3 s.
        assert str(info.value) == "GET /batch/rb_1 timed out"
        # Per-phase timeouts of the same length let the same trickle through.
        per_phase = client.with_options(timeout=httpx.Timeout(0.3))
        assert (await per_phase.batch.get("rb_2")).id == "rb_2"

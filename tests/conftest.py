"""Fixtures shared by the test suite: a respx router on the default base URL, clients."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
import respx

from inkit_async import AsyncInkit, Backoff

from .loopback import LoopbackServer

BASE_URL = "https://api.inkit.com/v1"
#: AsyncInkit's documented default max_concurrency: requests in flight per client.
DEFAULT_WIDTH = 100
TOKEN = "tok_live_S3cr3tValue42"
#: Retries without sleeping, so retry tests run in microseconds.
NO_WAIT = Backoff(initial=0, maximum=0)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own Inkit settings out of every test."""
    monkeypatch.delenv("INKIT_API_TOKEN", raising=False)
    monkeypatch.delenv("INKIT_BASE_URL", raising=False)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """A respx router for the default base URL; unmatched requests fail the test."""
    # `using="httpx"` intercepts at the client, whatever transport the SDK picked.
    with respx.mock(base_url=BASE_URL, using="httpx", assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client() -> AsyncIterator[AsyncInkit]:
    """A client on the default base URL that retries without waiting."""
    async with AsyncInkit(TOKEN, backoff=NO_WAIT) as client:
        yield client


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    """A fresh loopback server on 127.0.0.1 for one test (modules may override it)."""
    async with LoopbackServer() as server:
        yield server


def attempts(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The SDK's per-attempt DEBUG messages, in order."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "inkit_async" and r.levelno == logging.DEBUG
    ]

"""Fixtures shared by the test suite: respx, clients, servers, and retries read as data."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
import respx
import trustme

from inkit_async import AsyncInkit
from tests.support import http_library as _http_library
from tests.support.constants import BASE_URL, NO_WAIT, TOKEN
from tests.support.events import Events
from tests.support.h2_server import H2TLSServer
from tests.support.loopback import LoopbackServer, uvicorn_serving


def pytest_asyncio_loop_factories(
    config, item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Run every async test on asyncio's loop, or on uvloop with INKIT_TEST_LOOP=uvloop."""
    if os.environ.get("INKIT_TEST_LOOP") == "uvloop":
        import uvloop

        return {"uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


def pytest_report_header(config) -> list[str]:
    """Say which event loop the run uses, and which library a caller's client is made of."""
    return [
        f"event loop: {os.environ.get('INKIT_TEST_LOOP') or 'asyncio'}",
        f"caller's http library: {_http_library.selected().__name__}",
    ]


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items) -> None:
    """Mark the tests that use the ``http_library`` fixture: ``-m http_library`` runs them."""
    for item in items:
        if "http_library" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.http_library)


@pytest.fixture(scope="session")
def http_library() -> ModuleType:
    """httpx, or httpx2 with INKIT_TEST_HTTPX=httpx2: what a caller's client is made of.

    Tests that hand AsyncInkit a client, transport or Timeout build it from this module,
    and find the library's own exception with ``tests.http_library.library_error``.
    """
    return _http_library.selected()


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


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority made for this test run, trusted by nothing on the machine."""
    return trustme.CA()


@pytest.fixture
def certificate(ca: trustme.CA) -> trustme.LeafCert:
    """A certificate for 127.0.0.1 from the test CA."""
    return ca.issue_cert("127.0.0.1")


@pytest.fixture
async def h2_tls(certificate: trustme.LeafCert) -> AsyncIterator[H2TLSServer]:
    """A TLS server offering only ``h2`` that answers in HTTP/2 frames."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    async with H2TLSServer(context) as server:
        yield server


@pytest.fixture
async def uvicorn_server() -> AsyncIterator[Callable[[Any], Awaitable[str]]]:
    """Serve ASGI apps with uvicorn on 127.0.0.1, each until the test ends.

    ``url = await uvicorn_server(fake.app)`` gives the API root to pass as ``base_url``.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def serve(app: Any) -> str:
            return await stack.enter_async_context(uvicorn_serving(app))

        yield serve


@pytest.fixture
def events() -> Events:
    """An ``on_event`` callback that records what the client reports."""
    return Events()

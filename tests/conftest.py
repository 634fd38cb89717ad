"""Fixtures and hooks for every test, unit and functional: respx, clients, fakes, markers.

Values and helpers the tests import live in tests/support/; the fixtures that start servers
in tests/functional/conftest.py; the refusal of sockets and processes in tests/unit/conftest.py.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType

import pytest
import respx

from inkit_async import AsyncInkit
from inkit_async.testing import FakeInkit
from tests.support import http_library as _http_library
from tests.support.constants import BASE_URL, NO_WAIT, TOKEN
from tests.support.events import Events
from tests.support.markers import markers_of, running


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
    """Mark each test by the fixtures it uses, so that ``-m`` selects by them.

    ``http_library``: it uses that fixture. A server marker (``redis``, ``proxy``, ...;
    tests/support/markers.py): a fixture it uses, directly or not, starts that server.
    """
    for item in items:
        if "http_library" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.http_library)
        for marker in sorted(markers_of(item)):
            item.add_marker(getattr(pytest.mark, marker))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem) -> Iterator[None]:
    """Let the server helpers know which test they start a server for (its markers)."""
    with running(item):
        return (yield)


@pytest.fixture(scope="session")
def http_library() -> ModuleType:
    """httpx, or httpx2 with INKIT_TEST_HTTPX=httpx2: what a caller's client is made of.

    Tests that hand AsyncInkit a client, transport or Timeout build it from this module,
    and find the library's own exception with ``tests.support.http_library.library_error``.
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
def events() -> Events:
    """An ``on_event`` callback that records what the client reports."""
    return Events()


@pytest.fixture
def fake() -> FakeInkit:
    """A fake with reproducible ids."""
    return FakeInkit(seed=7)

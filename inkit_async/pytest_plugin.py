"""pytest fixtures for code that uses inkit-async: a fake API, a client of it, and a server.

Installing the package registers this module with pytest (the ``pytest11`` entry point
``inkit_async.pytest_plugin``), so a project's tests use the fixtures with no set-up:

```python
async def test_report(inkit_client, inkit_fake):
    batch_id = inkit_fake.add_batch(destinations={"inkit_storage": 2})
    batch = await inkit_client.batch.wait(batch_id, poll_interval=0.01)
    assert batch.progress.completed == 2
```

- ``inkit_fake``: a fresh ``FakeInkit`` for the test.
- ``inkit_client``: ``inkit_fake.client()``, an ``AsyncInkit`` on the production path,
  closed after the test.
- ``inkit_server``: ``inkit_fake`` served by uvicorn on 127.0.0.1 (a ``FakeServer``),
  with ``INKIT_BASE_URL`` and ``INKIT_API_TOKEN`` pointing at it for the test, so that
  the code's own ``AsyncInkit()`` reaches it.

Every fixture is a plain (not async) fixture: they work under pytest-asyncio in strict
and in auto mode, under anyio's plugin, and in tests that are not async at all. The
client needs no event loop until it is used, and the server runs its own in a thread.
Without autoloading (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``), ``-p inkit_async.pytest_plugin``
loads it; ``-p no:inkit_async.pytest_plugin`` turns it off.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from .testing import FakeInkit, FakeServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ._client import AsyncInkit

__all__ = ["inkit_client", "inkit_fake", "inkit_server"]


@pytest.fixture
def inkit_fake() -> FakeInkit:
    """A fresh ``FakeInkit`` for the test; ``inkit_client`` and ``inkit_server`` use it."""
    return FakeInkit()


@pytest.fixture
def inkit_client(inkit_fake: FakeInkit) -> Iterator[AsyncInkit]:
    """``inkit_fake.client()``: an ``AsyncInkit`` wired to the fake in process, no sockets.

    It runs every line of a production client but the socket. A test that wants other
    options makes its own: ``inkit_fake.client(max_retries=0)``. Closed after the test
    (closing it in the test as well is fine).
    """
    client = inkit_fake.client()
    try:
        yield client
    finally:
        _close(client)


@pytest.fixture(scope="session")
def _inkit_fake_server() -> Iterator[FakeServer]:
    """One uvicorn server for the session; ``inkit_server`` gives it each test's fake.

    Starting and stopping uvicorn costs about 0.2 s; a fake costs nothing. So the server
    lives as long as the session, and each test swaps in its own fresh fake.
    """
    server = FakeServer(FakeInkit())
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"inkit_server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def inkit_server(
    inkit_fake: FakeInkit, _inkit_fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeServer]:
    """``inkit_fake`` served over a real socket on 127.0.0.1 (``.url``, ``.fake``, ``.token``).

    For the test, ``INKIT_BASE_URL`` is the server's URL and ``INKIT_API_TOKEN`` the
    fake's token, so ``AsyncInkit()`` built by the code under test (or a child process
    it starts) reaches the fake. The server answers from a thread of its own: async
    tests on any event loop and plain tests alike. Needs uvicorn
    (``pip install 'inkit-async[testing]'``); without it, the test fails saying so.
    """
    server = _inkit_fake_server
    idle = server.fake
    server.fake = inkit_fake
    monkeypatch.setenv("INKIT_BASE_URL", server.url)
    monkeypatch.setenv("INKIT_API_TOKEN", inkit_fake.token)
    try:
        yield server
    finally:
        server.fake = idle  # a request after the test ends meets a fake of no test's


def _close(client: AsyncInkit) -> None:
    """Close *client* from a plain fixture's teardown, where no event loop runs.

    In a loop of its own: a client works in any loop, and the fake's in-process sender
    belongs to none (each loop that used it drops its part when it ends).
    """
    if client.is_closed:
        return
    loop = asyncio.new_event_loop()  # not made the thread's current loop: nothing to undo
    try:
        loop.run_until_complete(client.aclose())
    finally:
        loop.close()

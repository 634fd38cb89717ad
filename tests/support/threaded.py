"""Servers on an event loop of their own thread, for tests whose main thread blocks.

A ``BlockingInkit`` refuses a thread where an event loop runs, so its tests are plain
functions; the servers they talk to (a ``LoopbackServer``, uvicorn serving a fake) run on
a loop in a thread of their own. ``ServerThread.run`` runs a coroutine there, bounded.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Self, TypeVar

from tests.support.loopback import wait_until

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine
    from contextlib import AbstractAsyncContextManager

T = TypeVar("T")


class ServerThread:
    """Serve what *enter* opens (an async context manager) on a loop in a daemon thread.

    ``with ServerThread(LoopbackServer()) as (thread, server):`` ...; the value of the
    context manager is available as ``thread.value``.
    """

    def __init__(self, opened: AbstractAsyncContextManager[Any]) -> None:
        self._opened = opened
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="test-server", daemon=True
        )
        self.value: Any = None

    def run(self, coroutine: Coroutine[Any, Any, T], within: float = 30.0) -> T:
        """Run *coroutine* on the server's loop; fail after *within* seconds."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(within)

    def call(self, function: Callable[[], T]) -> T:
        """Call *function* on the server's loop thread (to read the server's state)."""

        async def now() -> T:
            return function()

        return self.run(now())

    def wait_until(self, condition: Callable[[], bool], within: float, what: str) -> None:
        """Poll *condition* on the server's loop until it holds; fail after *within* s."""
        self.run(wait_until(condition, within, what), within + 5)

    def __enter__(self) -> Self:
        """Start the loop and open the server on it."""
        self._thread.start()
        self.value = self.run(self._opened.__aenter__())
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the server, stop the loop and end the thread."""
        try:
            self.run(_exited(self._opened.__aexit__(None, None, None)))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


async def _exited(awaitable: Awaitable[object]) -> None:
    await awaitable

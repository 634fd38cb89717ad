"""The default sender's module, imported off the event loop: a client never stalls its loop.

aiohttp takes 100-300 ms to import. The package does not import it (an app that sends
through its own httpx or httpx2 client never does), and a client is often made inside
the running loop (an app's lifespan, ``async with AsyncInkit()`` in ``main()``): an
import there, or at the first call, would stall every task of the loop that long.

So a client made before aiohttp is imported gets a ``DeferredSender`` in each loop. Its
first ``send`` (or ``open``, a download) starts the import in a thread of its own and
waits for it without blocking the loop (every request that comes meanwhile waits on the
same import); then it makes the ``AiohttpSender`` and binds its ``send`` and ``open``
in place of its own, so that later requests reach aiohttp's sender directly, at no
cost. Once the module is imported (by an earlier client, or by the app),
``sender_maker`` makes the ``AiohttpSender`` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
import threading
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._wire import Opened, Reply, Request, Sender

__all__ = ["MODULE", "DeferredSender", "sender_maker"]

#: The default sender's module.
MODULE: Final = "inkit_async._senders._aiohttp"


def sender_maker(**arguments: Any) -> Callable[[], Sender]:  # noqa: ANN401 - AiohttpSender's
    """How to make a loop's sender: ``AiohttpSender(**arguments)``, imported off the loop."""

    def make() -> Sender:
        module = sys.modules.get(MODULE)
        if module is not None:
            return module.AiohttpSender(**arguments)  # type: ignore[no-any-return]
        return DeferredSender(arguments)

    return make


class DeferredSender:
    """Imports the default sender's module in a thread, then sends through that sender."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        """Make an ``AiohttpSender(**arguments)`` once its module is imported."""
        self._arguments = arguments
        self._sender: Sender | None = None
        self._loading: asyncio.Future[Any] | None = None

    def __repr__(self) -> str:
        """The sender it stands for, or that the import is under way."""
        return f"<DeferredSender of {self._sender!r}>" if self._sender else "<DeferredSender>"

    async def send(self, request: Request) -> Reply:
        """Send through the default sender, once its module is imported (off the loop)."""
        sender = self._sender or await self._made()
        return await sender.send(request)

    async def open(self, request: Request) -> Opened:
        """Open a download through the default sender, once its module is imported."""
        sender = self._sender or await self._made()
        return await sender.open(request)

    async def ready(self) -> None:
        """Return once the default sender is made (its module imported off the loop)."""
        if self._sender is None:
            await self._made()

    async def _made(self) -> Sender:
        """The default sender, made once its module is imported in a thread."""
        if self._loading is None:
            self._loading = _import_in_a_thread(asyncio.get_running_loop())
        # Shielded: a caller cancelled while waiting must not cancel the others' wait.
        module = await asyncio.shield(self._loading)
        sender = self._sender
        if sender is None:
            sender = self._sender = module.AiohttpSender(**self._arguments)
            # Later calls go to it directly.
            self.send = sender.send  # type: ignore[method-assign]
            self.open = sender.open  # type: ignore[method-assign]
        return sender

    def forget(self) -> None:
        """In a forked child: leave the parent's connections alone (see ``AiohttpSender``)."""
        forget = getattr(self._sender, "forget", None)
        if forget is not None:
            forget()

    async def aclose(self) -> None:
        """Close the sender, if it was made."""
        if self._sender is not None:
            await self._sender.aclose()


def _import_in_a_thread(loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
    """A future of the module, imported in a new daemon thread; *loop* runs on meanwhile."""
    future: asyncio.Future[Any] = loop.create_future()

    def settle(module: object, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(module)

    def run() -> None:
        try:
            module: object = importlib.import_module(MODULE)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            result: tuple[object, BaseException | None] = (None, exc)
        else:
            result = (module, None)
        with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
            loop.call_soon_threadsafe(settle, *result)

    threading.Thread(target=run, name="inkit-async import", daemon=True).start()
    return future

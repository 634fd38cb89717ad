"""The SDK runs on asyncio only: a call awaited under another async library says so.

Every call of a client reaches the engine first (``Engine.request``, ``end_of`` and
``aclose``), and the engine asks here for the running loop. A coroutine that runs with
no asyncio loop running is being driven by something else (trio, or anyio's trio
backend), where asyncio's ``RuntimeError: no running event loop`` would be the first
word; ``AsyncioRequiredError`` says what is wrong and what to do instead.
"""

from __future__ import annotations

import asyncio
import sys

from ._exceptions import AsyncioRequiredError

__all__ = ["running_loop"]


def running_loop() -> asyncio.AbstractEventLoop:
    """The running asyncio loop.

    Raises:
        AsyncioRequiredError: No asyncio loop runs: the call was awaited under another
            async library (named when sniffio, which trio and anyio use, can tell).
    """
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise AsyncioRequiredError(_message()) from None


def _message() -> str:
    library = _library()
    under = f"under {library}" if library else "outside an asyncio event loop"
    return (
        f"inkit-async runs on asyncio only, and this call was awaited {under}. Run it in "
        "asyncio (asyncio.run(), or anyio with its asyncio backend); from trio, host it "
        "with trio-asyncio, or give it a thread of its own with BlockingInkit."
    )


def _library() -> str | None:
    """The async library running the caller, if sniffio is loaded and can tell."""
    sniffio = sys.modules.get("sniffio")  # loaded by trio and anyio; never imported here
    if sniffio is None:
        return None
    try:
        name = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return None
    return name if isinstance(name, str) and name.isidentifier() else None

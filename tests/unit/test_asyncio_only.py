"""The SDK runs on asyncio only: under trio, a call says so with a typed error.

trio runs its own loop in the test's thread (no socket: trio wakes itself with a pipe or
a socketpair it made, which the unit tests' guard lets through; nothing is sent anyway).
"""

from __future__ import annotations

import asyncio

import pytest
import trio

from inkit_async import AsyncInkit, AsyncioRequiredError, InkitError
from inkit_async._asyncio_only import running_loop
from inkit_async.testing import FakeInkit

MESSAGE = "inkit-async runs on asyncio only, and this call was awaited under trio"


def test_a_call_under_trio_raises_asyncio_required_naming_trio():
    """get, get with a deadline, and aclose under trio: AsyncioRequiredError, nothing sent."""
    fake = FakeInkit()
    client = fake.client()
    caught: list[BaseException] = []

    async def main() -> None:
        for call in (
            lambda: client.batch.get("rb_1"),
            lambda: client.batch.get("rb_1", deadline=5),
            client.aclose,
        ):
            with pytest.raises(AsyncioRequiredError) as info:
                await call()
            caught.append(info.value)

    trio.run(main)
    assert len(caught) == 3
    for error in caught:
        assert str(error).startswith(MESSAGE)
        assert isinstance(error, InkitError)
        assert isinstance(error, RuntimeError)  # what asyncio raised there before
        assert error.__cause__ is None
    assert fake.requests == []
    asyncio.run(client.aclose())  # still usable, and closable, from asyncio


def test_async_with_under_trio_raises_asyncio_required():
    """`async with AsyncInkit(...)` under trio: a typed error, not asyncio's RuntimeError."""

    async def main() -> None:
        async with AsyncInkit("token-1234567890", base_url="http://127.0.0.1:9/v1") as client:
            await client.batch.get("rb_1")

    with pytest.raises(AsyncioRequiredError, match="under trio"):
        trio.run(main)


def test_outside_any_async_library_the_error_says_so():
    """A coroutine driven by hand (no library at all): 'outside an asyncio event loop'."""

    async def call() -> None:
        running_loop()

    coroutine = call()
    with pytest.raises(AsyncioRequiredError, match="awaited outside an asyncio event loop"):
        coroutine.send(None)


async def test_under_asyncio_the_running_loop_is_returned():
    """In asyncio: the running loop, as asyncio.get_running_loop gives it."""
    assert running_loop() is asyncio.get_running_loop()


def test_without_sniffio_loaded_the_library_is_not_named(monkeypatch):
    """Sniffio not imported by anyone: the message says 'outside an asyncio event loop'."""
    import sys

    monkeypatch.delitem(sys.modules, "sniffio")

    async def call() -> None:
        running_loop()

    coroutine = call()
    with pytest.raises(AsyncioRequiredError, match="outside an asyncio event loop"):
        coroutine.send(None)

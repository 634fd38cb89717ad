"""BlockingInkit without a socket: its surface is AsyncInkit's, and misuse fails early.

Its signatures are derived from AsyncInkit's (``_arguments_of``, the adapters) wherever
typing allows; the few spelled twice (``get_many``'s overloads, the option properties)
are held to the async ones here, so they cannot drift.
"""

from __future__ import annotations

import inspect
import threading
import typing

import pytest

from inkit_async import (
    AsyncInkit,
    BatchResource,
    BlockingInkit,
    DocumentBatchResource,
    InkitError,
    Throttle,
)
from inkit_async._blocking import (
    BlockingBatchList,
    BlockingBatchResource,
    BlockingDocumentBatchResource,
    _blocking,
)
from tests.support.constants import TOKEN


def public_methods(cls: type) -> set[str]:
    """The public methods a class defines or inherits (below ``object``)."""
    return {
        name
        for name, value in inspect.getmembers(cls)
        if not name.startswith("_")
        and (callable(value) or hasattr(value, "__get__"))
        and not isinstance(value, property)
    }


def public_properties(cls: type) -> set[str]:
    """The public properties of a class."""
    return {name for name, value in inspect.getmembers(cls) if isinstance(value, property)}


def loop_threads() -> list[threading.Thread]:
    """The BlockingInkit loop threads alive now."""
    return [t for t in threading.enumerate() if t.name.startswith("inkit-blocking-")]


def test_it_takes_async_inkits_arguments():
    """BlockingInkit(...) and with_options(...) show exactly AsyncInkit's parameters."""
    assert inspect.signature(BlockingInkit) == inspect.signature(AsyncInkit)
    assert inspect.signature(BlockingInkit.with_options) == inspect.signature(
        AsyncInkit.with_options
    )


def test_it_has_every_option_property_of_async_inkit():
    """An option AsyncInkit shows as a property, BlockingInkit shows too, with its value."""
    assert public_properties(BlockingInkit) == public_properties(AsyncInkit)
    throttle = Throttle(rate_limit=50)
    blocking = BlockingInkit(TOKEN, timeout=7, max_retries=1, throttle=throttle)
    asynchronous = AsyncInkit(TOKEN, timeout=7, max_retries=1, throttle=throttle)
    for name in public_properties(AsyncInkit):
        assert getattr(blocking, name) == getattr(asynchronous, name), name
    assert blocking.throttle is throttle


def test_every_resource_method_has_a_blocking_one():
    """The blocking resources have exactly the async resources' methods."""
    assert public_methods(BlockingBatchResource) - {"asynchronous", "runner_for_call"} == (
        public_methods(BatchResource)
    )
    assert public_methods(BlockingDocumentBatchResource) - {
        "asynchronous",
        "runner_for_call",
    } == public_methods(DocumentBatchResource)
    assert public_methods(BlockingBatchList) == public_methods_of_listing()


def public_methods_of_listing() -> set[str]:
    """``BatchList``'s public methods (``pages``)."""
    from inkit_async import BatchList

    return public_methods(BatchList)


def test_get_many_overloads_are_the_async_ones():
    """get_many's overloads, spelled twice for typing, agree in parameters and results."""
    blocking = typing.get_overloads(BlockingBatchResource.get_many)
    asynchronous = typing.get_overloads(BatchResource.get_many)
    assert len(blocking) == len(asynchronous) == 2
    for mine, theirs in zip(blocking, asynchronous, strict=True):
        assert inspect.signature(mine) == inspect.signature(theirs)


def test_an_adapter_must_bear_its_methods_name():
    """The async method is found by name: an adapter under another name is refused."""
    # Python 3.11 wraps the error of __set_name__ in a RuntimeError; 3.12 does not.
    with pytest.raises((TypeError, RuntimeError)) as info:

        class Wrong(BlockingBatchResource):
            fetch = _blocking(BatchResource.get)

    error = info.value if isinstance(info.value, TypeError) else info.value.__cause__
    assert str(error) == "Wrong.fetch adapts get, not fetch"


def test_bad_arguments_raise_here_and_start_nothing():
    """AsyncInkit's checks run in the caller's thread; no loop thread is started."""
    with pytest.raises(InkitError, match="token"):
        BlockingInkit()
    with pytest.raises(ValueError, match="max_retries"):
        BlockingInkit(TOKEN, max_retries=-1)
    client = BlockingInkit(TOKEN)
    with pytest.raises(TypeError):
        client.with_options(timeout=None)  # type: ignore[arg-type]
    assert not loop_threads()
    client.close()  # never used: nothing to stop
    assert client.is_closed
    assert not loop_threads()


def test_the_repr_shows_no_token():
    """The repr names the API root and the limits, never the token."""
    client = BlockingInkit(TOKEN, max_concurrency=3)
    assert TOKEN not in repr(client)
    assert repr(client) == (
        "<BlockingInkit base_url='https://api.inkit.com/v1' max_retries=2 max_concurrency=3>"
    )
    assert TOKEN not in repr(client.batch)
    client.close()
    assert repr(client).endswith(" closed>")


async def test_async_code_is_told_to_use_async_inkit():
    """From a thread where an event loop runs, every entry point refuses, naming AsyncInkit."""
    client = BlockingInkit(TOKEN)
    with pytest.raises(InkitError, match="Use AsyncInkit there"):
        client.batch.get("rb_1")
    with pytest.raises(InkitError, match="Use AsyncInkit there"):
        client.batch.iter_many(["rb_1"])
    with pytest.raises(InkitError, match="Use AsyncInkit there"):
        client.__enter__()
    with pytest.raises(InkitError, match="Use AsyncInkit there"):
        client.close()
    assert not loop_threads()

"""In-flight coalescing: identical lookups under way at the same moment share one request.

As Go's ``singleflight``: the first caller of a key starts the request in a task of
its own; callers of the same key that come while it runs wait for that task instead
of sending again, and each gets its result (the same frozen record) or an error of
the same type (a copy each, so tracebacks do not mix). A caller that is cancelled
leaves the others waiting undisturbed; when the last one has gone, the request is
cancelled, which frees its concurrency slot and its connection, before that last
caller's cancellation goes on. A request that has
finished is never reused: the next caller of the key sends a new one.
"""

from __future__ import annotations

import asyncio
import copy
import sys
from typing import TYPE_CHECKING, Any, TypeVar

from ._exceptions import InkitError

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Hashable

__all__ = ["Coalescer"]

T = TypeVar("T")


class _Flight:
    """One request under way, and a future for each caller waiting for it."""

    __slots__ = ("task", "waiters")

    def __init__(self) -> None:
        self.waiters: list[asyncio.Future[Any]] = []
        self.task: asyncio.Task[None] | None = None


class Coalescer:
    """The requests under way, by key; shared by a client and its variants."""

    __slots__ = ("_flights",)

    def __init__(self) -> None:
        """Start with nothing under way."""
        self._flights: dict[Hashable, _Flight] = {}

    def __len__(self) -> int:
        """How many requests are under way."""
        return len(self._flights)

    async def run(self, key: Hashable, start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Join the request under way for *key*, or start one with *start*."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        flight = self._flights.get(key)
        if flight is None:
            flight = self._flights[key] = _Flight()
            flight.waiters.append(waiter)  # first: an eager start may finish at once
            flight.task = _start_task(loop, self._lead(key, flight, start()))
        else:
            flight.waiters.append(waiter)
        try:
            return await waiter
        except InkitError as error:
            # The same exception object raised in many tasks would collect all their
            # tracebacks: each caller raises a copy of its own.
            raise copy.copy(error) from error.__cause__
        except asyncio.CancelledError:
            if waiter in flight.waiters:
                flight.waiters.remove(waiter)
            if not flight.waiters and flight.task is not None and not flight.task.done():
                # Everyone has gone: stop the request (freeing its slot and connection),
                # and let the next caller of the key start anew.
                if self._flights.get(key) is flight:
                    del self._flights[key]
                flight.task.cancel()
                # Wait for it to end, so that nothing it held outlives this caller.
                await asyncio.wait((flight.task,))
            raise

    async def _lead(
        self, key: Hashable, flight: _Flight, request: Coroutine[Any, Any, Any]
    ) -> None:
        """Run the request; hand its result, or its error, to everyone waiting then."""
        try:
            result = await request
        except BaseException as error:
            self._land(key, flight)
            for waiter in flight.waiters:
                if waiter.done():
                    continue
                if isinstance(error, asyncio.CancelledError):
                    waiter.cancel()  # stopped from outside (the loop is shutting down)
                else:
                    waiter.set_exception(error)
            if not isinstance(error, Exception):
                raise
        else:
            self._land(key, flight)
            for waiter in flight.waiters:
                if not waiter.done():
                    waiter.set_result(result)

    def _land(self, key: Hashable, flight: _Flight) -> None:
        # Finished: a caller who comes now sends a new request.
        if self._flights.get(key) is flight:
            del self._flights[key]


def _start_task(
    loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, None]
) -> asyncio.Task[None]:
    """Start *coroutine* in a task; on Python 3.12+ its first step runs at once (eagerly)."""
    if _EAGER:
        return asyncio.Task(coroutine, loop=loop, eager_start=True)  # type: ignore[call-arg]
    return loop.create_task(coroutine)


_EAGER = sys.version_info >= (3, 12)

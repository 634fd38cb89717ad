"""In-flight coalescing: identical lookups under way at the same moment share one request.

As Go's ``singleflight``: callers of a key that come while a request for it is under
way wait for that request instead of sending again, and each gets its result (the same
frozen record) or an error of the same type: a copy of its own, whose ``.body``,
``.response`` and ``.request`` are its own copies too, so tracebacks do not mix and one
caller changing its error changes no other's. A request that has finished is never
reused: the next caller of the key sends a new one. A caller who joined a request that
then failed without a usable answer (``APIConnectionError``) runs the lookup again, once:
that request's attempts and timeouts ran on its starter's clock, not on the joiner's.

Who may share: a ``Coalescer`` belongs to one client (its ``EngineState``), so every
caller of it sends to the same API root with the same token; those cannot differ
between a client and its ``with_options`` variants. Within a client, the engine keeps
one ``Coalescer`` per distinct set of per-call options (timeout, retries, backoff,
``max_retry_after``, ``on_event``), so a shared request is always sent with options
equal to each of its callers' own: no caller's options decide another's outcome.

Two ways to run the shared request, chosen per key:

- **In the first caller's own task**, for a key nobody else has asked for lately: the
  only thing made for it is one small record of the request under way, so lookups of
  distinct ids cost next to nothing extra. (A task per lookup, with its future, context
  and callbacks, tripled the garbage collector's passes during a 10,000-id
  ``get_many``, and made a 10,000-way ``gather`` stall the event loop twice as long
  while its tasks started.) Should that first caller be cancelled while others wait,
  its request goes with it, and the others' lookup is sent again for them at once, in
  a task of its own: one request more.
- **In a task of its own**, for a key that was shared recently (a dashboard's batches,
  a ``wait`` that many handlers follow): every caller waits for the task, so a caller's
  cancellation leaves the others waiting undisturbed; when the last one has gone, the
  request is cancelled, which frees its concurrency slot and its connection, before
  that last caller's cancellation goes on.

Deadlines (``deadline=``, ``_deadline.py``) may differ between the callers of one
request, and no caller's deadline cuts it short for the others. A lookup with a
deadline always runs in a task of its own, under a ``CallDeadline`` that every caller
who joins extends to its own end (one without a deadline lifts it): the request runs
until the latest caller's end. Each caller waits until its own end, then leaves with a
``DeadlineExceededError`` naming what the request was waiting for; one whose end comes
before a backoff or ``Retry-After`` of the request is over fails at once. The last
caller to leave stops the request, as a cancelled one does. A caller with a deadline
who joins a lookup started without one waits for it until its end (``.wait`` is then
``"shared"``). A deadline error is never a reason to run the lookup again: the caller's
own deadline is what ran out.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import sys
from typing import TYPE_CHECKING, Any, Final, TypeVar, TypeVarTuple, Unpack

import httpx

from ._exceptions import (
    APIConnectionError,
    DeadlineExceededError,
    InkitError,
    redacted_request,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Hashable

    from ._deadline import CallDeadline

__all__ = ["Coalescer"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

#: Keys remembered as recently shared, so their requests run in a task of their own.
_HOT_KEYS: Final = 4096


class _Flight:
    """One request under way: the callers waiting for it, its task and its deadline."""

    __slots__ = ("deadline", "task", "waiters")

    def __init__(self, deadline: CallDeadline | None = None) -> None:
        self.waiters: list[asyncio.Future[Any]] | None = None  # made when one comes
        self.task: asyncio.Task[None] | None = None  # None: its first caller runs it
        self.deadline = deadline  # the request's: its callers' latest end

    def wait(self) -> asyncio.Future[Any]:
        """A new caller's place among the waiters."""
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.waiters is None:
            self.waiters = [waiter]
        else:
            self.waiters.append(waiter)
        return waiter

    def settle(self, *, result: object = None, error: BaseException | None = None) -> None:
        """Hand an outcome to every caller still waiting."""
        for waiter in self.waiters or ():
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(result)
            elif isinstance(error, asyncio.CancelledError):
                waiter.cancel()  # stopped from outside (the loop is shutting down)
            else:
                waiter.set_exception(error)


class Coalescer:
    """The requests under way, by key; shared by the engines of one client with equal options.

    The engine holds it; it lives as long as an engine (or a request under way) does.
    """

    __slots__ = ("__weakref__", "_flights", "_hot")

    def __init__(self) -> None:
        """Start with nothing under way."""
        self._flights: dict[Hashable, _Flight] = {}
        self._hot: collections.OrderedDict[Hashable, None] = collections.OrderedDict()

    def __len__(self) -> int:
        """How many requests are under way."""
        return len(self._flights)

    async def run(
        self,
        key: Hashable,
        deadline: CallDeadline | None,
        send: Callable[[CallDeadline | None, Unpack[Ts]], Coroutine[Any, Any, T]],
        *args: *Ts,
    ) -> T:
        """Join the request under way for *key*, or start one: ``await send(deadline, *args)``.

        *deadline* is this caller's (``None``: none); see the module docstring.

        A caller who joined a request that then failed for want of a usable response
        (``APIConnectionError``: refused, dropped, timed out; never an answer such as a
        404, nor a body that does not fit) runs the lookup again, once: that request was
        under way before this caller came, so its attempts and their timeouts ran on its
        starter's clock, not this caller's. Joining a request that has not failed, or one
        that is sent for it now, gives the caller attempts that all start after it came.
        """
        end = None if deadline is None else deadline.end  # this caller's own end
        flight = self._flights.get(key)
        if flight is None:
            return await self._start(key, deadline, send, *args)
        try:
            shared: T = await self._join(key, flight, deadline, end)
        except DeadlineExceededError:
            raise  # this caller's own deadline: a new request could not meet it either
        except APIConnectionError:
            pass  # outside the handler: the new attempt's error must not chain this one
        else:
            return shared
        # Once only: what is under way now (or starts here) began after this caller came.
        flight = self._flights.get(key)
        if flight is None:
            return await self._start(key, deadline, send, *args)
        again: T = await self._join(key, flight, deadline, end)
        return again

    async def _join(
        self, key: Hashable, flight: _Flight, mine: CallDeadline | None, end: float | None
    ) -> Any:  # noqa: ANN401 - the flight's result
        """Wait for the request under way for *key* with the others (until *end*, if any)."""
        if flight.task is None:
            self._heat(key)  # shared: from now on its requests get a task of their own
        waiter = flight.wait()
        if flight.deadline is not None:
            flight.deadline.extend(end)  # the request runs until this caller's end too
            if end is not None:
                flight.deadline.watch(end, waiter)
        return await self._wait(key, flight, waiter, mine, end)

    async def _start(
        self,
        key: Hashable,
        deadline: CallDeadline | None,
        send: Callable[[CallDeadline | None, Unpack[Ts]], Coroutine[Any, Any, T]],
        *args: *Ts,
    ) -> T:
        """Start the request for *key*, for this caller and any who join it."""
        flights = self._flights
        if key in self._hot or deadline is not None:
            # A task of its own: every caller, this one too, can leave at its own end.
            flight = flights[key] = _Flight(deadline)
            waiter = flight.wait()  # first: an eager start may finish at once
            end = None if deadline is None else deadline.end
            if deadline is not None and end is not None:
                deadline.watch(end, waiter)
            flight.task = _start_task(self._lead(key, flight, send(deadline, *args)))
            return await self._wait(key, flight, waiter, deadline, end)
        # Nobody shared this key lately: run the request here, in the caller's task.
        flight = flights[key] = _Flight()
        try:
            result = await send(None, *args)
        except asyncio.CancelledError:
            self._land(key, flight)
            if any(not waiter.done() for waiter in flight.waiters or ()):
                # The request went with this caller; send it again for those still waiting.
                again = flights[key] = _Flight()
                again.waiters = flight.waiters
                again.task = _start_task(self._lead(key, again, send(None, *args)))
            raise
        except BaseException as error:
            self._land(key, flight)
            flight.settle(error=error)
            raise
        self._land(key, flight)
        if flight.waiters:
            flight.settle(result=result)
        return result

    async def _wait(
        self,
        key: Hashable,
        flight: _Flight,
        waiter: asyncio.Future[T],
        mine: CallDeadline | None,
        end: float | None,
    ) -> T:
        """Wait on *waiter* for *flight*'s outcome until *end*; leave it if cancelled or late.

        *mine* is this caller's deadline (``None`` with no *end*), for its error.
        """
        timer = asyncio.timeout_at(end)
        try:
            async with timer:
                return await waiter
        except InkitError as error:
            if flight.task is not None and not flight.task.done():
                await self._leave(key, flight, waiter)  # failed early: its end came first
            # The same exception object raised in many tasks would collect all their
            # tracebacks, and one caller's change to its body would show in every other:
            # each caller raises a copy of its own.
            raise owned_copy(error) from error.__cause__
        except TimeoutError:
            if mine is None or not timer.expired():
                raise
            await self._leave(key, flight, waiter)
            # What the request was waiting for when this caller's end came, if it knows.
            request = flight.deadline
            raise (
                mine.error("shared") if request is None else request.error(request.wait)
            ) from None
        except asyncio.CancelledError:
            await self._leave(key, flight, waiter)
            raise

    async def _leave(self, key: Hashable, flight: _Flight, waiter: asyncio.Future[Any]) -> None:
        """Stop waiting for *flight*; the last caller to leave stops its task."""
        waiter.cancel()  # nothing is handed to it any more
        waiters = flight.waiters or []
        if waiter in waiters:
            waiters.remove(waiter)
        task = flight.task
        if task is not None and not task.done() and not waiters:
            # Everyone has gone: stop the request (freeing its slot and connection),
            # and let the next caller of the key start anew.
            self._land(key, flight)
            task.cancel()
            # Wait for it to end, so that nothing it held outlives this caller.
            await asyncio.wait((task,))

    async def _lead(
        self, key: Hashable, flight: _Flight, request: Coroutine[Any, Any, Any]
    ) -> None:
        """Run the request in its own task; hand its outcome to everyone waiting then."""
        try:
            result = await request
        except BaseException as error:
            self._land(key, flight)
            flight.settle(error=error)
            if not isinstance(error, Exception):
                raise
        else:
            self._land(key, flight)
            flight.settle(result=result)

    def _land(self, key: Hashable, flight: _Flight) -> None:
        # Finished: a caller who comes now sends a new request.
        if self._flights.get(key) is flight:
            del self._flights[key]

    def _heat(self, key: Hashable) -> None:
        hot = self._hot
        hot[key] = None
        hot.move_to_end(key)
        if len(hot) > _HOT_KEYS:
            hot.popitem(last=False)


def owned_copy(error: InkitError) -> InkitError:
    """A copy of *error* that shares nothing mutable with it.

    ``copy.copy`` keeps the attributes themselves: the body's dicts and lists, the
    ``httpx`` response and request with their headers. Here each httpx object is
    rebuilt from its (already masked) parts and every other attribute deep-copied;
    ``deepcopy`` hands immutable values (the message, the status, a body's text, the
    body bytes of a response) back as they are, so only what can change is copied.
    """
    duplicate = copy.copy(error)
    fields = duplicate.__dict__
    memo: dict[int, object] = {}
    for name, value in fields.items():
        if isinstance(value, httpx.Response):
            fields[name] = _response_copy(value)
        elif isinstance(value, httpx.Request):
            fields[name] = redacted_request(value)
        else:
            fields[name] = copy.deepcopy(value, memo)
    return duplicate


def _response_copy(response: httpx.Response) -> httpx.Response:
    """A new response with *response*'s status, headers, body, extensions and request."""
    try:
        request: httpx.Request | None = redacted_request(response.request)
    except RuntimeError:  # none attached
        request = None
    return httpx.Response(
        response.status_code,
        headers=list(response.headers.raw),
        content=response.content,
        request=request,
        extensions=dict(response.extensions),
    )


def _start_task(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Start *coroutine* in a task; on Python 3.12+ its first step runs at once (eagerly)."""
    loop = asyncio.get_running_loop()
    if _EAGER:
        return asyncio.Task(coroutine, loop=loop, eager_start=True)  # type: ignore[call-arg]
    return loop.create_task(coroutine)


_EAGER = sys.version_info >= (3, 12)

"""Fan-out: one call's many lookups, queued client-wide, taken as they finish.

``get_many`` and ``iter_many`` run no lookups of their own. Each id goes into the
client's ``LookupQueue`` of the running event loop (``Coalescer.enqueue``, through
``Engine.enqueue``), which starts lookups first come, first started, at most
``max_concurrency`` at once, each in a task of its own; a lookup of the same id queued
or under way for any caller of the client (with equal per-call options) is joined, not
sent again. So callers that fan out over overlapping ids share requests as a ``gather``
of ``get`` calls does, and each caller's ids wait behind those of the callers who came
before it instead of taking turns with them.

``Lookups`` is one call's side of it: it hands its ids in (as many as its window holds,
a chunk per loop iteration for ``get_many``), takes
their outcomes in the order they finish, ends the ones not done at the call's deadline,
and leaves what it no longer waits for (``aclose``): a lookup nobody else waits for is
dropped from the queue unsent, or cancelled and awaited if under way; one another
caller waits for goes on.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import itertools
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, cast

from ._coalesce import Ticket, owned_copy
from ._deadline import CallDeadline
from ._exceptions import APIConnectionError, DeadlineExceededError, InkitError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence

    from ._coalesce import Coalescer, LookupQueue
    from ._observe import Observer

__all__ = ["Enqueuer", "Lookups", "gather_lookups"]

K = TypeVar("K")
V = TypeVar("V")

#: Ids a fan-out without a window hands in per loop iteration: queuing one costs a few
#: microseconds, so 10,000 at once would block the loop for tens of milliseconds.
CHUNK: Final = 500
#: How many times ``max_concurrency`` keys a ``get_many`` holds handed in at once.
AHEAD: Final = 10


class Lookups(Generic[K, V]):
    """One fan-out call's lookups: ``async for key, outcome in lookups`` as they finish.

    Each outcome is the lookup's value or the ``InkitError`` it ended with (a copy of
    the caller's own when another caller shared the lookup); any other exception
    propagates. A caller who joined a lookup already under way and saw it fail for
    want of an answer (``APIConnectionError``) has it run again, once, as a plain
    caller does (``Coalescer.run``).

    Args:
        keys: The keys (distinct), in the order their lookups are to be queued.
        submit: Queues the lookup of a key and returns its ``Ticket``, or returns the
            value itself when it needs no lookup (a cache hit). An ``InkitError`` it
            raises (the client is closed) is that key's outcome.
        end: The call's deadline on the loop's clock (``None``: none). Lookups not done
            by then end with their ``DeadlineExceededError``; keys not queued by then
            with theirs at once, nothing sent.
        window: At most this many keys handed in and not yet taken by the consumer,
            so a consumer that stops after *n* outcomes has queued at most
            ``n + window`` lookups however late it closes this (``iter_many``: the
            client's ``max_concurrency``). ``get_many`` takes each outcome as it comes
            and hands in ten times that: its keys queue long before their turn (for
            others to join, and to wait behind the callers who came before), while
            what it holds at once stays bounded, so a list of 100,000 ids does not
            keep 100,000 lookups' records alive for the garbage collector to walk.
        chunked: At most ``CHUNK`` keys handed in per loop iteration (``get_many``),
            so queuing thousands never blocks the loop.
        stop_on_error: No key is handed in, and every queued lookup of this call is
            dropped, once one fails (``get_many`` without ``return_exceptions``).
    """

    __slots__ = (
        "_again",
        "_chunked",
        "_closed",
        "_done",
        "_fed",
        "_keys",
        "_late",
        "_pending",
        "_ready",
        "_stop_on_error",
        "_stopped",
        "_submit",
        "_timer",
        "_unsent",
        "_wake",
        "_window",
    )

    def __init__(
        self,
        keys: Sequence[K],
        submit: Callable[[K], Ticket | V],
        *,
        end: float | None,
        window: int,
        chunked: bool = False,
        stop_on_error: bool = False,
    ) -> None:
        """Hand nothing in yet: the first step of the iteration starts the lookups."""
        self._keys = iter(keys)
        self._unsent = len(keys)
        self._submit = submit
        self._window = window
        self._chunked = chunked
        self._stop_on_error = stop_on_error
        self._pending: dict[Ticket, K] = {}  # handed in, outcome not taken yet
        self._done: collections.deque[Ticket] = collections.deque()  # outcome here, untaken
        self._ready: collections.deque[tuple[K, V | InkitError]] = collections.deque()
        self._again: set[K] = set()  # run again once already
        self._wake: asyncio.Future[None] | None = None
        self._fed = False  # a chunk was handed in this loop iteration
        self._late = False  # the deadline has passed
        self._stopped = False
        self._closed = False
        loop = asyncio.get_running_loop()
        self._timer = None if end is None else loop.call_at(end, self._time_up)

    def __aiter__(self) -> Lookups[K, V]:
        """The lookups are their own iterator."""
        return self

    async def __anext__(self) -> tuple[K, V | InkitError]:
        """The next outcome to finish: ``(key, value or InkitError)``.

        Raises:
            StopAsyncIteration: Every key's outcome has been taken (or dropped after
                the first failure, with *stop_on_error*), or the lookups are closed.
        """
        while not self._closed:
            self._feed()
            if self._ready:
                return self._taken(self._ready.popleft())
            if self._done:
                outcome = await self._outcome(self._done.popleft())
                if outcome is not None:
                    return self._taken(outcome)
                continue
            if self._late and self._pending:
                await self._expire()
                continue
            if not self._pending and (self._unsent == 0 or self._stopped):
                break
            await self._sleep()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Leave every lookup not taken yet; the ones nobody else waits for stop.

        Queued ones are dropped unsent; ones under way in a task of their own are
        cancelled and awaited. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        tickets = list(self._pending)  # the ones in _done too: not taken yet
        self._pending.clear()
        self._done.clear()
        self._ready.clear()
        self._unsent = 0
        by_coalescer: dict[Coalescer, list[Ticket]] = {}
        for ticket in tickets:
            by_coalescer.setdefault(ticket.coalescer, []).append(ticket)
        for coalescer, mine in by_coalescer.items():
            await coalescer.leave(mine)

    def _feed(self) -> None:
        """Hand keys in, up to the window (and, chunked, a chunk per loop iteration)."""
        if self._unsent == 0 or self._stopped:
            return
        room = self._window - len(self._pending) - len(self._ready)  # _pending holds _done
        if room <= 0:
            return
        if self._chunked:
            if self._fed:
                return
            room = min(room, CHUNK)
            self._fed = True
            asyncio.get_running_loop().call_soon(self._next_chunk)
        for key in itertools.islice(self._keys, room):
            self._unsent -= 1
            self._add(key)

    def _next_chunk(self) -> None:
        self._fed = False
        self._wakeup()

    def _add(self, key: K) -> None:
        """Hand *key* in; its outcome comes to ``_done`` (or ``_ready`` if known now)."""
        try:
            ticket = self._submit(key)
        except InkitError as error:  # the client is closed: this key's outcome
            self._ready.append((key, error))
            return
        if not isinstance(ticket, Ticket):
            self._ready.append((key, ticket))  # known without a lookup
            return
        waiter = ticket.waiter
        if ticket.flight is None:  # its deadline had passed: not queued, its error set
            self._ready.append((key, cast("InkitError", waiter.exception())))
            return
        self._pending[ticket] = key
        ticket.listen(self)

    def arrived(self, ticket: Ticket) -> None:
        """*ticket*'s outcome is here (a done-callback: before the queue starts the next)."""
        if ticket not in self._pending:
            return  # left already
        self._done.append(ticket)
        if self._stop_on_error and not self._stopped and not self._runs_again(ticket):
            waiter = ticket.waiter
            if waiter.cancelled() or waiter.exception() is not None:
                self._stop()
        self._wakeup()

    def _stop(self) -> None:
        """The first failure: hand nothing more in, drop this call's queued lookups now."""
        self._stopped = True
        for ticket in list(self._pending):
            if ticket.coalescer.drop_queued(ticket):
                del self._pending[ticket]

    def _runs_again(self, ticket: Ticket) -> bool:
        """Whether *ticket*'s failure is one this caller runs the lookup again for."""
        waiter = ticket.waiter
        if not ticket.joined or waiter.cancelled() or self._pending.get(ticket) in self._again:
            return False
        error = waiter.exception()
        return isinstance(error, APIConnectionError) and not isinstance(
            error, DeadlineExceededError
        )

    async def _outcome(self, ticket: Ticket) -> tuple[K, V | InkitError] | None:
        """The outcome of *ticket*, taken; ``None`` when its lookup runs again."""
        again = self._runs_again(ticket)
        key = self._pending.pop(ticket)
        waiter = ticket.waiter
        if waiter.cancelled():
            # The lookup was cancelled from outside (the loop is shutting down).
            raise asyncio.CancelledError
        error = waiter.exception()
        if error is None:
            value: V = waiter.result()
            return key, value
        if not isinstance(error, InkitError):
            raise error
        if again:
            # Under way before this caller came, on its starter's clock: once more, now.
            self._again.add(key)
            self._add(key)
            return None
        if ticket.running():
            # Failed early (the request sleeps past this caller's end): leave it.
            await ticket.coalescer.leave([ticket])
        if not ticket.shared():
            return key, error
        # Each caller gets a copy of its own: tracebacks do not mix, changes do not show.
        mine = owned_copy(error)
        mine.__cause__ = error.__cause__
        mine.__suppress_context__ = True
        return key, mine

    async def _expire(self) -> None:
        """The deadline has passed: each lookup not done ends with its error; leave them."""
        tickets = list(self._pending)
        for ticket in tickets:
            # Named before leaving: what the lookup was waiting for at the end.
            self._ready.append((self._pending.pop(ticket), ticket.expired()))
        by_coalescer: dict[Coalescer, list[Ticket]] = {}
        for ticket in tickets:
            by_coalescer.setdefault(ticket.coalescer, []).append(ticket)
        for coalescer, mine in by_coalescer.items():
            await coalescer.leave(mine)

    def _taken(self, outcome: tuple[K, V | InkitError]) -> tuple[K, V | InkitError]:
        """*outcome* goes to the consumer: its place in the window frees for the next key."""
        self._feed()
        return outcome

    def _time_up(self) -> None:
        self._late = True
        self._wakeup()

    async def _sleep(self) -> None:
        """Until an outcome arrives, the deadline passes or the next chunk may go in."""
        wake = self._wake = asyncio.get_running_loop().create_future()
        try:
            await wake
        finally:
            self._wake = None

    def _wakeup(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)


async def gather_lookups(
    keys: Sequence[K],
    submit: Callable[[K], Ticket | V],
    *,
    end: float | None,
    width: int,
    return_exceptions: bool,
) -> dict[K, V | InkitError]:
    """Every key's outcome (``get_many``): see ``Lookups``; *width*: ``max_concurrency``.

    With *return_exceptions*, an ``InkitError`` is that key's outcome; otherwise the
    first failure is raised, no further key is queued, and this call's lookups that
    nobody else waits for are dropped or cancelled (and awaited).
    """
    results: dict[K, V | InkitError] = {}
    lookups = Lookups(
        keys,
        submit,
        end=end,
        window=AHEAD * width,
        chunked=True,
        stop_on_error=not return_exceptions,
    )
    try:
        async for key, outcome in lookups:
            if isinstance(outcome, InkitError) and not return_exceptions:
                raise outcome
            results[key] = outcome
    finally:
        await lookups.aclose()
    return results


class Enqueuer:
    """Queues the lookups of one fan-out call (``Engine.fan_out``): shared GETs, by path."""

    __slots__ = ("_coalescer", "_context", "_queue", "_send", "_tracers")

    def __init__(
        self,
        coalescer: Coalescer,
        queue: LookupQueue,
        tracers: tuple[Observer, ...],
        send: Callable[..., Coroutine[Any, Any, Any]],
    ) -> None:
        """Join or queue in *coalescer*, wait in *queue*, send with the engine's *send*."""
        self._coalescer = coalescer
        self._queue = queue
        self._tracers = tracers
        self._send = send
        # The call's context, made here, inside its span: its lookups run in copies of it.
        self._context = contextvars.copy_context()

    def enqueue(
        self,
        path: str,
        cast: Callable[[Any], V],
        *,
        operation: str,
        attributes: Mapping[str, str | int],
        end: float | None,
    ) -> Ticket:
        """Queue (or join) the GET of *path*, cast by *cast*, for a caller whose end is *end*.

        *operation* and *attributes* name the lookup's span (``batch.get``), if traced.
        """
        deadline = CallDeadline.of(end, "GET", path)
        send: Any = _spanned(self._tracers, operation, attributes, self._send)
        # The engine's ``_send(deadline, method, path, cast, params, body, may_repeat)``.
        args = ("GET", path, cast, None, None, True)
        return self._coalescer.enqueue(
            path, deadline, self._queue, send, *args, context=self._context
        )


def _spanned(
    tracers: tuple[Observer, ...],
    operation: str,
    attributes: Mapping[str, str | int],
    send: Callable[..., Coroutine[Any, Any, V]],
) -> Callable[..., Coroutine[Any, Any, V]]:
    """*send*, inside the span of one lookup (``inkit batch.get``) if any observer traces.

    A queued lookup runs in a task of its own, in the context of the caller who queued
    it: its span is a child of that caller's (``inkit batch.get_many``). Callers who
    join it have no span of their own for it.
    """
    if not tracers:
        return send

    async def in_span(*args: Any) -> V:  # noqa: ANN401 - send's own arguments
        work: Awaitable[V] = send(*args)
        for observer in tracers:
            work = observer.traced(operation, attributes, work)
        return await work

    return in_span

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

Fan-outs (``get_many``, ``iter_many``: ``_fanout.py``) do not start their lookups; they
queue them (``enqueue``) in the client's ``LookupQueue`` of the event loop, which starts
them first come, first started, at most ``max_concurrency`` at once, each in a task of
its own. A lookup is a flight from the moment it is queued, so any caller of its key
joins it while it waits for its turn as well as while it runs: 16 callers fanning out
over the same ids send each id once, and a caller's ids wait behind those of the callers
who came before, not in turn with them. A plain ``get`` of a queued key does not wait for
that turn: it starts the lookup at once, and the fan-outs' callers share it. A queued
lookup that every caller has left is dropped from the queue, unsent.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import copy
import sys
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, TypeVarTuple, Unpack

import httpx

from ._exceptions import (
    APIConnectionError,
    DeadlineExceededError,
    InkitError,
    redacted_request,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Hashable, Iterable

    from ._deadline import CallDeadline

__all__ = ["Coalescer", "LookupQueue", "Ticket"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

#: Keys remembered as recently shared, so their requests run in a task of their own.
_HOT_KEYS: Final = 4096


class _Queued:
    """What starts a queued flight when its turn comes: its request, context and queue."""

    __slots__ = ("args", "context", "queue", "send")

    def __init__(
        self,
        queue: LookupQueue,
        send: Callable[..., Coroutine[Any, Any, Any]],
        args: tuple[Any, ...],
        context: contextvars.Context,
    ) -> None:
        self.queue = queue
        self.send = send
        self.args = args
        # The queuing call's context (its span is the parent of the lookup's), shared by
        # its lookups: each task gets a copy of its own when it starts (Context.copy()).
        self.context = context


class _Flight:
    """One request under way (or queued): the callers waiting for it, its task, its deadline."""

    __slots__ = ("deadline", "queued", "shared", "task", "waiters")

    def __init__(self, deadline: CallDeadline | None = None) -> None:
        self.waiters: list[asyncio.Future[Any]] | None = None  # made when one comes
        self.task: asyncio.Task[None] | None = None  # None: its first caller runs it
        self.deadline = deadline  # the request's: its callers' latest end
        self.queued: _Queued | None = None  # set while it waits in a LookupQueue
        self.shared = False  # whether a second caller ever waited for it

    def wait(self) -> asyncio.Future[Any]:
        """A new caller's place among the waiters."""
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.waiters is None:
            self.waiters = [waiter]
        else:
            self.waiters.append(waiter)
            self.shared = True
        return waiter

    def running(self) -> bool:
        """Whether its request runs in a task of its own that has not ended."""
        return self.task is not None and not self.task.done()

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
        """How many requests are under way or queued."""
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
        """Wait for the request under way (or queued) for *key* with the others (until *end*)."""
        waiter = flight.wait()  # first: a queued request started now may finish at once
        if flight.deadline is not None:
            flight.deadline.extend(end)  # the request runs until this caller's end too
            if end is not None:
                flight.deadline.watch(end, waiter)
        if flight.queued is not None:
            # Queued by a fan-out: a plain call does not wait for the fan-out's turn.
            queue = flight.queued.queue
            self.launch(key, flight)
            queue.dropped()  # its place in the queue is empty now
        elif flight.task is None:
            self._heat(key)  # shared: from now on its requests get a task of their own
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
            flight.task = _start_task(self._lead(key, flight, send, deadline, *args))
            return await self._wait(key, flight, waiter, deadline, end)
        # Nobody shared this key lately: run the request here, in the caller's task.
        flight = flights[key] = _Flight()
        try:
            result = await send(None, *args)
        except asyncio.CancelledError:
            if any(not waiter.done() for waiter in flight.waiters or ()):
                # The request went with this caller; send it again for those still waiting,
                # as the same flight: whoever holds it (a fan-out's ticket) can still
                # leave it, and the last to leave stops this new request.
                flight.task = _start_task(self._lead(key, flight, send, None, *args))
            else:
                self._land(key, flight)
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

    def enqueue(
        self,
        key: Hashable,
        deadline: CallDeadline | None,
        queue: LookupQueue,
        send: Callable[[CallDeadline | None, Unpack[Ts]], Coroutine[Any, Any, T]],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> Ticket:
        """A fan-out's lookup of *key*: join the one queued or under way, or queue one.

        Nothing is awaited: the caller collects the outcome from the ticket's waiter
        (``_fanout.py``) and leaves with ``leave``. *deadline* is this caller's, as in
        ``run``; one that has passed already gets its error at once, nothing queued.
        *context*: the caller's, in which its lookup is to run (default: a copy of the
        current one); one call's lookups share it, each task runs in a copy of it.
        """
        end = None if deadline is None else deadline.end
        if deadline is not None and end is not None and asyncio.get_running_loop().time() >= end:
            # Out of time before its turn could even be asked for: nothing is sent.
            failed = Ticket(self, key, None, deadline, joined=False)
            failed.waiter.set_exception(deadline.error("slot"))
            return failed
        flight = self._flights.get(key)
        if flight is None:
            flight = self._flights[key] = _Flight(deadline)
            context = contextvars.copy_context() if context is None else context
            flight.queued = _Queued(queue, send, args, context)
            ticket = Ticket(self, key, flight, deadline, joined=False)
            if deadline is not None and end is not None:
                deadline.watch(end, ticket.waiter)
            queue.push(self, key, flight)
            return ticket
        # Under way already (not only queued): its attempts began before this caller came.
        ticket = Ticket(self, key, flight, deadline, joined=flight.queued is None)
        if flight.deadline is not None:
            flight.deadline.extend(end)
            if end is not None:
                flight.deadline.watch(end, ticket.waiter)
        if flight.queued is None and flight.task is None:
            self._heat(key)  # runs in its first caller's task: next time, in one of its own
        return ticket

    def launch(self, key: Hashable, flight: _Flight) -> None:
        """Start the queued *flight* now, in a task of its own (its turn, or a plain call)."""
        queued = flight.queued
        if queued is None:  # pragma: no cover - only queued flights are launched
            raise RuntimeError("launch() of a flight that is not queued")
        flight.queued = None
        queue = queued.queue
        queue.running += 1
        lead = self._lead(key, flight, queued.send, flight.deadline, *queued.args)
        task = _start_task(lead, queued.context.copy())
        flight.task = task
        task.add_done_callback(queue.finished)

    def drop_queued(self, ticket: Ticket) -> bool:
        """Leave *ticket*'s lookup now if it is still queued (no await needed); whether it was."""
        flight = ticket.flight
        if flight is None or flight.queued is None:
            return False
        self._forget(ticket)
        return True

    async def leave(self, tickets: Iterable[Ticket]) -> None:
        """Stop waiting for these lookups: one nobody waits for any more is stopped.

        A queued one is dropped from its queue, unsent; one under way in a task of its
        own is cancelled, which frees its slot and connection, and awaited, so that
        nothing it held outlives the caller. A lookup others still wait for goes on.
        """
        stopped = [task for ticket in tickets if (task := self._forget(ticket)) is not None]
        if stopped:
            await asyncio.wait(stopped)

    def _forget(self, ticket: Ticket) -> asyncio.Task[None] | None:
        """Take *ticket* off its lookup; the lookup's task if it must now be stopped."""
        flight = ticket.flight
        waiter = ticket.waiter
        # Nothing is handed to it any more; an outcome it has, untaken, counts as read
        # (else asyncio would log it as "never retrieved").
        if not waiter.cancel() and not waiter.cancelled():
            waiter.exception()
        if flight is None:
            return None
        ticket.flight = None
        waiters = flight.waiters or []
        waiters.remove(waiter)  # each ticket's waiter is among its flight's, once
        if waiters:
            return None  # others still wait for it
        if flight.queued is not None:
            queue = flight.queued.queue
            flight.queued = None
            self._land(ticket.key, flight)
            queue.dropped()
            return None
        task = flight.task
        if task is None or task.done():
            return None  # it runs in its first caller's task, or has ended
        self._land(ticket.key, flight)
        task.cancel()
        return task

    async def _lead(
        self,
        key: Hashable,
        flight: _Flight,
        send: Callable[..., Coroutine[Any, Any, Any]],
        *args: Any,  # noqa: ANN401 - send's own
    ) -> None:
        """Run the request in its own task; hand its outcome to everyone waiting then.

        The request's coroutine is made here, in the task: a task cancelled before its
        first step leaves no coroutine behind that was never awaited.
        """
        try:
            result = await send(*args)
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


class Sink(Protocol):
    """Who hears that a ticket's outcome is here (``Lookups``)."""

    def arrived(self, ticket: Ticket) -> None:
        """*ticket*'s waiter is done."""


class Ticket:
    """One fan-out caller's place in the lookup of one key (``Coalescer.enqueue``).

    ``waiter`` gets the lookup's outcome; ``flight`` is the lookup, until the caller
    leaves it; ``mine`` is the caller's deadline for it (``None``: none); ``joined``:
    the lookup was under way before this caller came (not merely queued).
    """

    __slots__ = ("coalescer", "flight", "joined", "key", "mine", "sink", "waiter")

    def __init__(
        self,
        coalescer: Coalescer,
        key: Hashable,
        flight: _Flight | None,
        mine: CallDeadline | None,
        *,
        joined: bool,
    ) -> None:
        self.coalescer = coalescer
        self.key = key
        self.flight = flight
        self.mine = mine
        self.joined = joined
        self.waiter: asyncio.Future[Any] = (
            asyncio.get_running_loop().create_future() if flight is None else flight.wait()
        )
        self.sink: Sink | None = None  # told when the outcome is here (``listen``)

    def listen(self, sink: Sink) -> None:
        """Tell *sink* (``sink.arrived(ticket)``) when the outcome is here.

        The ticket itself is the waiter's done-callback: no object more per lookup.
        """
        self.sink = sink
        self.waiter.add_done_callback(self)

    def __call__(self, _waiter: asyncio.Future[Any]) -> None:
        """The waiter's done-callback: pass the news on to the sink."""
        sink = self.sink
        if sink is not None:
            sink.arrived(self)

    def running(self) -> bool:
        """Whether the lookup is still under way in a task of its own."""
        return self.flight is not None and self.flight.running()

    def shared(self) -> bool:
        """Whether another caller waited for this lookup too (its error must be copied)."""
        return self.flight is not None and self.flight.shared

    def expired(self) -> DeadlineExceededError:
        """The error for this caller when its end comes before the lookup's outcome.

        It names what the lookup was waiting for: its turn in the queue (``"slot"``),
        or what its request waits for (the request's own deadline knows); a lookup
        started without a deadline says ``"shared"``, as a plain caller who joined it.
        """
        flight = self.flight
        request = None if flight is None else flight.deadline
        if request is not None:
            return request.error(request.wait)
        mine = self.mine
        if mine is None:  # pragma: no cover - only a caller with an end expires
            raise RuntimeError("expired() of a lookup without a deadline")
        return mine.error("slot" if flight is not None and flight.queued is not None else "shared")


class LookupQueue:
    """A client's fan-out lookups in one event loop, waiting for their turn.

    First come, first started: the lookups of a fan-out that came first start before
    those of one that came after, whatever order their callers step in. At most *width*
    (the client's ``max_concurrency``) started from here are under way at once; as one
    ends, the next one starts, after its callers have heard of the end (so a caller
    that stops at its first failure has dropped the rest of its lookups by then).
    While filling up, it starts one lookup per loop iteration, so that a fan-out's first
    requests (and new connections) do not all land in one iteration and come back as
    one burst that blocks the loop; the callers read results meanwhile.
    """

    __slots__ = ("_entries", "_filling", "_stale", "running", "width")

    def __init__(self, width: int) -> None:
        """At most *width* lookups under way at once."""
        self.width = width
        self.running = 0  # started from here (or taken out of it by a plain call), not ended
        self._entries: collections.deque[tuple[Coalescer, Hashable, _Flight]] = collections.deque()
        self._filling = False  # whether a fill step is scheduled
        self._stale = 0  # entries whose lookup was dropped or started by a plain call

    def __len__(self) -> int:
        """How many lookups wait for their turn."""
        return len(self._entries) - self._stale

    def push(self, coalescer: Coalescer, key: Hashable, flight: _Flight) -> None:
        """Queue *flight*, the lookup of *key* in *coalescer*; it starts in its turn."""
        self._entries.append((coalescer, key, flight))
        if not self._filling and self.running < self.width:
            self._filling = True
            asyncio.get_running_loop().call_soon(self._fill)

    def finished(self, _task: asyncio.Task[None]) -> None:
        """A lookup started from here has ended: the next one's turn."""
        self.running -= 1
        if self.running < self.width:
            self._start_next()

    def dropped(self) -> None:
        """A queued lookup was dropped (or started by a plain call): its entry is empty."""
        self._stale += 1
        entries = self._entries
        if self._stale > _COMPACT_AFTER and 2 * self._stale > len(entries):
            # Mostly empty entries (a big fan-out left early): drop them at once.
            self._entries = collections.deque(e for e in entries if e[2].queued is not None)
            self._stale = 0

    def _fill(self) -> None:
        """Start one lookup; again next iteration while there is room and a lookup waits."""
        self._filling = False
        started = self.running < self.width and self._start_next()
        if started and self.running < self.width and len(self):
            self._filling = True
            asyncio.get_running_loop().call_soon(self._fill)

    def _start_next(self) -> bool:
        """Start the first lookup still waiting, if any; whether one started."""
        entries = self._entries
        while entries:
            coalescer, key, flight = entries.popleft()
            if flight.queued is None:
                self._stale -= 1
                continue
            coalescer.launch(key, flight)
            return True
        return False


#: Empty entries a LookupQueue keeps before it may sweep them out.
_COMPACT_AFTER: Final = 256


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


def _start_task(
    coroutine: Coroutine[Any, Any, None], context: contextvars.Context | None = None
) -> asyncio.Task[None]:
    """Start *coroutine* in a task (in *context*, if given); on 3.12+ its first step runs now."""
    loop = asyncio.get_running_loop()
    if _EAGER:
        return asyncio.Task(  # type: ignore[call-arg]
            coroutine,
            loop=loop,
            eager_start=True,  # pyright: ignore[reportCallIssue] - Python 3.12+
            context=context,
        )
    return loop.create_task(coroutine, context=context)


_EAGER = sys.version_info >= (3, 12)

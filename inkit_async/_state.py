"""What a client shares with its ``with_options`` variants, and what each event loop gets.

``EngineState`` holds what belongs to the client, whatever loop or thread uses it: the
options' credentials (``secrets``), the flow control, the cache and the shared
observers. What belongs to one event loop (connections, futures, a semaphore's waiters)
lives in a ``LoopState``, made the first time a loop uses the client (``local``): the
sender with its connection pool, the concurrency slots and the requests under way that
callers may share. So one client serves successive ``asyncio.run`` calls, a loop per
test, and loops in several threads at once, each with its own pool.

A loop's state ends with the loop: ``local`` starts a small async generator in the loop
(``_keep``), and the loop's ``shutdown_asyncgens()`` (which ``asyncio.run``,
``asyncio.Runner`` and pytest-asyncio call before closing it) closes it, which closes
that loop's pool there. After ``os.fork()`` the child drops every loop state it inherited,
without closing any (that would touch the parent's sockets), and makes its own.

Each ``Engine`` over an ``EngineState`` (the client's, and one per variant) has its own
options and its own observers (``observers_for``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import warnings
import weakref
from typing import TYPE_CHECKING, Final, cast

from ._cache import CacheScope
from ._coalesce import Coalescer, LookupQueue
from ._config import VariantArguments
from ._exceptions import InkitError, Secrets
from ._log import LogObserver
from ._observe import EventCallbackObserver
from ._senders import Reach, sender_for
from ._senders._deferred import DeferredSender
from ._throttle import Throttle, Unthrottled, regulator_of

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Hashable

    from ._config import ClientOptions
    from ._headers import DefaultHeaders
    from ._observe import Observer
    from ._throttle import FlowControl
    from ._wire import Sender

__all__ = ["EngineState", "LoopState", "Sharing", "observers_for", "sharing_key"]

_UNCLOSED: Final = (
    "An AsyncInkit client was garbage-collected without being closed, leaving its "
    "connections open: close it with `await client.aclose()`, or use "
    "`async with AsyncInkit(...) as client:`"
)
_ONE_LOOP: Final = (
    "This AsyncInkit client sends through an http_client or transport of your own, which "
    "belongs to the event loop the client was first used in; this is another one. Create "
    "that HTTP client and the AsyncInkit in the loop that uses them, or leave out "
    "http_client/transport: the client's own pool works in every loop."
)


def _no_loop() -> None:
    """What ``EngineState._last`` holds before any loop: a dead reference."""


#: Every client state of this process, for the fork handler to reset.
_STATES: Final[weakref.WeakSet[EngineState]] = weakref.WeakSet()
#: A forked child's copies of its parent's loop states: never used, never closed (closing
#: would send on the parent's sockets, or unregister them from the epoll they share),
#: never dropped (their pools would warn when collected).
_LEFT_BY_FORK: Final[list[LoopState]] = []


class LoopState:
    """What one client has in one event loop: its sender, slots, lookup queue, shared requests."""

    __slots__ = (
        "__weakref__",
        "keeper",
        "loading",
        "lookups",
        "loop",
        "owns_sender",
        "pid",
        "sender",
        "slots",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sender: Sender,
        max_concurrency: int,
        *,
        owns_sender: bool,
    ) -> None:
        """*sender* for the running *loop*; closed with the loop if *owns_sender*."""
        self.loop = weakref.ref(loop)  # never the loop itself: a dropped loop may go
        self.sender = sender
        # A sender whose module is still to be imported (off the loop), or None.
        self.loading = sender if isinstance(sender, DeferredSender) else None
        self.slots = asyncio.Semaphore(max_concurrency)
        # The fan-outs' lookups waiting for their turn, first come first started (_fanout.py).
        self.lookups = LookupQueue(max_concurrency)
        self.owns_sender = owns_sender
        self.pid = os.getpid()
        self.keeper: AsyncGenerator[None] | None = None

    async def load(self) -> None:
        """Wait until the sender is ready to send (its module imported, off the loop).

        Calls wait here before they ask for a slot or the throttle's permit: a permit
        is leave to send at once, and one spent waiting for an import would go out
        late, bunched with the others that waited (a fleet's pacing, broken).
        """
        loading = self.loading
        if loading is not None:
            await loading.ready()
            self.loading = None

    def forget(self) -> None:
        """In a forked child: never use or close this (the parent's) sender again."""
        forget = getattr(self.sender, "forget", None)
        if forget is not None:
            forget()
        _LEFT_BY_FORK.append(self)


async def _keep(state: weakref.ref[EngineState], local: LoopState) -> AsyncGenerator[None]:
    """Suspended for the loop's life; the loop's ``shutdown_asyncgens`` closes its pool here.

    Also closed when the client is collected first: the loop then closes it in a task.
    """
    try:
        yield
    finally:
        owner = state()
        if owner is not None:
            owner.drop(local)
        # A forked child's copy of a loop never closes its parent's connections.
        if local.owns_sender and local.pid == os.getpid():
            await local.sender.aclose()


class Sharing:
    """One set of per-call options of a client: its requests under way, per event loop.

    An engine holds the ``Sharing`` of its options (``EngineState.sharing_for``); the
    ``Coalescer`` of a loop is found by that loop's ``LoopState``, the last one kept at
    hand (futures belong to one loop, so each loop shares among its own callers).
    """

    __slots__ = ("__weakref__", "_by_loop", "_last")

    def __init__(self) -> None:
        """No loop yet."""
        self._by_loop: weakref.WeakKeyDictionary[LoopState, Coalescer] = weakref.WeakKeyDictionary()
        self._last: tuple[Callable[[], object], Coalescer | None] = (_no_loop, None)

    def coalescer(self, local: LoopState) -> Coalescer:
        """The requests under way in *local*'s loop that these callers may join."""
        last, coalescer = self._last
        if last() is local and coalescer is not None:
            return coalescer
        coalescer = self._by_loop.get(local)
        if coalescer is None:
            coalescer = self._by_loop[local] = Coalescer()
        self._last = (weakref.ref(local), coalescer)
        return coalescer


class EngineState:
    """What a client shares with its ``with_options`` variants, in every loop and thread."""

    __slots__ = (
        "__weakref__",
        "_first",
        "_last",
        "_lock",
        "_loops",
        "_make",
        "_max_concurrency",
        "_owner_of_cache",
        "_reach",
        "_scopes",
        "_sender",
        "cache",
        "closed",
        "flow",
        "max_wait",
        "observers",
        "owns_http",
        "secrets",
        "sharings",
        "throttle",
        "used",
    )

    def __init__(self, options: ClientOptions) -> None:
        """Pick the sender (once, here), set up the throttle, coalescing and cache."""
        self.owns_http = options.http_client is None
        # Every credential of the client, for its errors to mask; its requests carry it.
        self.secrets: Secrets
        self.secrets, self._make, self._reach = sender_for(options)
        # The one sender of a client that sends through the same one in every loop
        # (Reach.ANY) or in its first loop only (Reach.ONE); None: one per loop.
        self._sender: Sender | None = None if self._reach is Reach.PER_LOOP else self._make()
        self._max_concurrency = options.max_concurrency
        throttle = options.throttle
        self.throttle: Throttle | None = (
            throttle if isinstance(throttle, Throttle) else Throttle() if throttle else None
        )
        self.flow: FlowControl
        if self.throttle is None:
            self.flow = Unthrottled()
        else:
            regulator = regulator_of(self.throttle)
            regulator.bind(options.api_token)  # a RedisThrottle names its keys by it
            self.flow = regulator
        # Longest a call waits for permits, all its attempts together (None: no throttle).
        self.max_wait = None if self.throttle is None else self.throttle.max_wait
        # One Sharing per set of per-call options, alive while an engine with those
        # options is: see `sharing_for`. None: coalesce=False.
        self.sharings: weakref.WeakValueDictionary[Hashable, Sharing] | None = (
            weakref.WeakValueDictionary() if options.coalesce else None
        )
        # The client's part of a shared cache, its owner digest made once, here: a
        # client's root, token and HTTP client cannot change (variants change per-call
        # options only).
        self.cache = (
            CacheScope(
                options.cache,
                options.root,
                options.api_token,
                route=options.http_client or options.transport,
                headers=options.default_headers.folded(),
            )
            if options.cache is not None
            else None
        )
        # The scopes of variants that send other default headers (see `cache_for`).
        self._scopes: dict[tuple[tuple[str, str], ...], CacheScope] = {}
        self._owner_of_cache = (
            options.root,
            options.api_token,
            options.http_client or options.transport,
        )
        # The observers every engine of the client shares (OpenTelemetry's, if installed).
        self.observers = shared_observers(options.root)
        self.closed = False
        # The loops that use the client, each with its state; the last one at hand, so
        # that finding it is one identity check (`local`). The lock guards making one.
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._last: tuple[Callable[[], object], LoopState | None] = (_no_loop, None)
        self._lock = threading.Lock()
        self._first: weakref.ref[asyncio.AbstractEventLoop] | None = None  # Reach.ONE's loop
        self.used = False  # set last: __del__ reads it, and __init__ may fail before
        _STATES.add(self)

    def __del__(self) -> None:
        # As the stdlib does for files: a client dropped without being closed while a
        # loop still holds its pool gets one ResourceWarning (shown with `python -X dev`
        # or `-W default`); that loop then closes the pool in the background (`_keep`).
        if getattr(self, "used", False) and self.owns_http and not self.closed:
            open_pools = self._reach is not Reach.PER_LOOP or any(
                local.pid == os.getpid() and not _ended(local) for local in self._loops.values()
            )
            if open_pools:
                warnings.warn(_UNCLOSED, ResourceWarning, stacklevel=1, source=self)

    def cache_for(self, headers: DefaultHeaders) -> CacheScope | None:
        """The client's part of its cache for calls that send *headers* (``None``: no cache).

        A variant (``with_options(default_headers=...)``) that sends other headers than
        the client gets a part of its own: its entries never answer the client's calls,
        nor the client's its own. Made once per set of headers, under the lock.
        """
        scope = self.cache
        if scope is None:
            return None
        folded = headers.folded()
        if folded == scope.headers:
            return scope
        with self._lock:
            other = self._scopes.get(folded)
            if other is None:
                other = self._scopes[folded] = CacheScope(
                    scope.cache, *self._owner_of_cache, headers=folded
                )
            return other

    def local(self) -> LoopState:
        """What the client has in the running event loop, made on its first use there.

        Raises:
            InkitError: A client that sends through one loop's HTTP client or transport,
                used in another loop.
        """
        loop = asyncio.get_running_loop()
        last, local = self._last
        if last() is loop:
            return cast("LoopState", local)
        return self._local_in(loop)

    def _local_in(self, loop: asyncio.AbstractEventLoop) -> LoopState:
        """``local``, when the running loop is not the last one that used the client."""
        local = self._loops.get(loop)
        if local is None:
            with self._lock:
                local = self._loops.get(loop)
                if local is None:
                    local = self._make_local(loop)
        self._last = (local.loop, local)
        return local

    def _make_local(self, loop: asyncio.AbstractEventLoop) -> LoopState:
        """A new loop's state (under the lock): its sender, and what closes it with the loop."""
        if self._reach is Reach.ONE:
            first = self._first
            if first is not None and first() is not loop:
                raise InkitError(_ONE_LOOP)
            self._first = weakref.ref(loop)
        # Loops that ended without shutdown_asyncgens(): their pools are dropped here (a
        # closed loop's connections cannot be closed any more, only forgotten).
        for ended in [key for key, other in self._loops.items() if _ended(other)]:
            del self._loops[ended]
        sender = self._sender if self._sender is not None else self._make()
        local = LoopState(
            loop, sender, self._max_concurrency, owns_sender=self._reach is Reach.PER_LOOP
        )
        if local.owns_sender:
            # Started here, in the loop's thread: the loop's first-iteration hook adds it
            # to what the loop's shutdown_asyncgens() closes. Held by the state: the loop
            # holds it weakly.
            keeper = _keep(weakref.ref(self), local)
            with contextlib.suppress(StopIteration):  # it stopped at its `yield`
                keeper.asend(None).send(None)
            local.keeper = keeper
        self._loops[loop] = local
        self.used = True
        return local

    def drop(self, local: LoopState) -> None:
        """Forget *local* (its loop is ending); its keeper closes its sender."""
        loop = local.loop()
        with self._lock:
            if loop is not None and self._loops.get(loop) is local:
                del self._loops[loop]
            if self._last[1] is local:
                self._last = (_no_loop, None)

    async def aclose(self) -> None:
        """Close the running loop's pool (and a shared sender); other loops close theirs.

        A pool of another loop that still runs is closed when that loop ends (its
        ``shutdown_asyncgens``); one of a loop that ended without it is dropped.

        Raises:
            InkitError: A client bound to one loop (``Reach.ONE``), closed from another
                while that loop still runs.
        """
        loop = asyncio.get_running_loop()
        if self._reach is Reach.ONE and self.owns_http and self._first is not None:
            first = self._first()
            if first is not None and first is not loop and not first.is_closed():
                raise InkitError(
                    "aclose() was called from another event loop than the one this client "
                    "runs in; its connections belong to that loop, so close it there."
                )
        self.closed = True
        local = self._loops.get(loop)
        if local is not None:
            self.drop(local)
            keeper = local.keeper
            if keeper is not None:
                local.keeper = None
                await keeper.aclose()  # closes the sender, in this loop
        if self._sender is not None:
            await self._sender.aclose()  # a caller's own client stays open

    def after_fork_in_child(self) -> None:
        """Drop every loop's state inherited from the parent, unused and unclosed."""
        self._lock = threading.Lock()  # another thread may have held it at the fork
        for local in list(self._loops.values()):
            local.forget()
        self._loops = weakref.WeakKeyDictionary()
        self._last = (_no_loop, None)

    def sharing_for(self, options: ClientOptions) -> Sharing | None:
        """The requests under way that a caller with *options* may join; ``None``: none.

        Only callers whose per-call options are all equal share a request, so a shared
        request is sent with each one's own timeout, retries, backoff, ``max_retry_after``
        and ``on_event``: no caller's options decide another's outcome. Deadlines may
        differ: each caller stops waiting at its own, and the request runs until the
        latest of them (``CallDeadline.extend``). Called once per
        engine (a client or a variant), never per lookup.
        """
        sharings = self.sharings
        if sharings is None:
            return None
        key = sharing_key(options)
        sharing = sharings.get(key)
        if sharing is None:
            sharing = sharings[key] = Sharing()
        return sharing


def _ended(local: LoopState) -> bool:
    """Whether *local*'s loop is gone or closed (its pool can hold nothing open)."""
    loop = local.loop()
    return loop is None or loop.is_closed()


def _after_fork_in_child() -> None:  # run in a forked child (tests/functional/test_loops.py)
    for state in list(_STATES):
        state.after_fork_in_child()


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


#: The options a variant may change (``with_options``), sorted: what ``sharing_key`` reads.
#: Every other option is the same for a client and all its variants by construction. The
#: deadline is left out: it bounds each caller's own wait, not the shared request, so
#: callers with different deadlines share one (see ``_deadline.py``).
_PER_CALL_OPTIONS: Final = tuple(sorted(VariantArguments.__optional_keys__ - {"deadline"}))


def sharing_key(options: ClientOptions) -> Hashable:
    """What must be equal for two callers of one client to share a request.

    Each per-call option, by value: a ``Timeout`` (httpx's or httpx2's) by its phases, anything else
    that cannot be hashed (an ``on_event`` callable object that is a list, say) by
    identity, which is stable while an engine holding it lives.
    """
    parts: list[object] = []
    for name in _PER_CALL_OPTIONS:
        value: object = getattr(options, name)
        as_dict = getattr(value, "as_dict", None)  # an httpx or httpx2 Timeout
        if callable(as_dict):
            phases = cast("dict[str, float | None]", as_dict())
            value = ("Timeout", tuple(sorted(phases.items())))
        else:
            try:
                hash(value)
            except TypeError:
                value = ("id", id(value))
        parts.append(value)
    return tuple(parts)


def shared_observers(root: str) -> tuple[Observer, ...]:
    """The observers every engine of a client shares: OpenTelemetry, if it is installed."""
    try:
        from ._tracing import Telemetry  # noqa: PLC0415 - only with opentelemetry-api
    except ImportError:
        return ()
    return (Telemetry(root),)


def observers_for(options: ClientOptions, shared: tuple[Observer, ...]) -> tuple[Observer, ...]:
    """An engine's observers, in the order each hears of a thing: the log, the shared, the callback.

    Args:
        options: The engine's options (``max_retries`` for the log lines, ``on_event``).
        shared: Its client's ``EngineState.observers``.
    """
    callback = options.on_event
    mine = () if callback is None else (EventCallbackObserver(callback),)
    return (LogObserver(options.max_retries), *shared, *mine)

"""What a client shares with its ``with_options`` variants, and what each engine derives.

``EngineState`` holds the sender, the concurrency slots, the flow control, the
coalescers, the cache, the shared observers and the event loop a client is bound to;
each ``Engine`` over it (the client's, and one per variant) has its own options and its
own observers (``observers_for``).
"""

from __future__ import annotations

import asyncio
import warnings
import weakref
from typing import TYPE_CHECKING, Final, cast

from ._cache import CacheScope
from ._coalesce import Coalescer
from ._config import VariantArguments
from ._exceptions import InkitError, Secrets
from ._log import LogObserver
from ._observe import EventCallbackObserver
from ._senders import sender_for
from ._throttle import Throttle, Unthrottled, regulator_of

if TYPE_CHECKING:
    from collections.abc import Hashable

    from ._config import ClientOptions
    from ._observe import Observer
    from ._throttle import FlowControl
    from ._wire import Sender

__all__ = ["EngineState", "observers_for", "sharing_key"]

_UNCLOSED: Final = (
    "An AsyncInkit client was garbage-collected without being closed, leaving its "
    "connections open: close it with `await client.aclose()`, or use "
    "`async with AsyncInkit(...) as client:`"
)


class EngineState:
    """What a client shares with its ``with_options`` variants."""

    __slots__ = (
        "cache",
        "closed",
        "coalescers",
        "flow",
        "loop",
        "max_wait",
        "observers",
        "owns_http",
        "secrets",
        "sender",
        "slots",
        "throttle",
    )

    def __init__(self, options: ClientOptions) -> None:
        """Pick the sender (once, here), set up the slots, throttle, coalescing and cache."""
        self.owns_http = options.http_client is None
        # Every credential of the client, for its errors to mask; its requests carry it.
        self.secrets: Secrets
        self.sender: Sender
        self.secrets, self.sender = sender_for(options)
        self.slots = asyncio.Semaphore(options.max_concurrency)
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
        # One Coalescer per set of per-call options, alive while an engine with those
        # options (or a request under way) is: see `coalescer_for`.
        self.coalescers: weakref.WeakValueDictionary[Hashable, Coalescer] | None = (
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
            )
            if options.cache is not None
            else None
        )
        # The observers every engine of the client shares (OpenTelemetry's, if installed).
        self.observers = shared_observers(options.root)
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None

    def __del__(self) -> None:
        # As the stdlib does for files: a client that was used and is dropped without being
        # closed gets one ResourceWarning (shown with `python -X dev` or `-W default`).
        # `loop` is set last in __init__, which may have failed before (a bad proxy variable).
        if getattr(self, "loop", None) is not None and self.owns_http and not self.closed:
            warnings.warn(_UNCLOSED, ResourceWarning, stacklevel=1, source=self)

    def bind(self) -> None:
        """Tie the state to the running event loop on first use; refuse any other loop."""
        loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = loop
        elif self.loop is not loop:
            raise InkitError(
                "This AsyncInkit client was first used in another event loop; its connections "
                "belong to that loop. Create one client per event loop (for example, inside "
                "the coroutine you pass to asyncio.run)."
            )

    def coalescer_for(self, options: ClientOptions) -> Coalescer | None:
        """The requests under way that a caller with *options* may join; ``None``: none.

        Only callers whose per-call options are all equal share a request, so a shared
        request is sent with each one's own timeout, retries, backoff, ``max_retry_after``
        and ``on_event``: no caller's options decide another's outcome. Deadlines may
        differ: each caller stops waiting at its own, and the request runs until the
        latest of them (``CallDeadline.extend``). Called once per
        engine (a client or a variant), never per lookup.
        """
        coalescers = self.coalescers
        if coalescers is None:
            return None
        key = sharing_key(options)
        coalescer = coalescers.get(key)
        if coalescer is None:
            coalescer = coalescers[key] = Coalescer()
        return coalescer


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

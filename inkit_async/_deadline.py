"""A call's deadline (``deadline=``): one end, on the event loop's clock, for all its waits.

A call with a deadline carries a ``CallDeadline``: the moment it must be done by (on
``loop.time()``), what it is waiting for now, and its last error. The engine runs each
wait of the call under it (``CallDeadline.within``: a concurrency slot, the throttle, an
attempt) and asks it before each sleep (``CallDeadline.before_sleep``): a backoff or a
``Retry-After`` that would end at or after the deadline fails the call at once, rather
than after sleeping; so does a throttle paused until after it (``before_pause``: another
call's ``Retry-After``). Whether to fail now or sleep is ``overrun``, a pure function of
plain numbers.

A shared lookup (``_coalesce.py``) has one ``CallDeadline`` for its request and any
number of callers, each with an end of its own. The request runs until the latest of
them (``extend``: a caller without a deadline lifts it), so no caller's early end cuts
it short for the others; each caller stops waiting at its own end, and one whose end
comes before a sleep of the request is over fails at once (``watch``). Calls without a
deadline carry no ``CallDeadline``: the hot path pays nothing for it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from ._exceptions import DeadlineExceededError, deadline_error

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from ._exceptions import DeadlineWait, InkitError

__all__ = ["CallDeadline", "overrun"]

T = TypeVar("T")


def overrun(
    now: float, end: float | None, delay: float, *, retry_after: bool
) -> DeadlineWait | None:
    """Which wait a deadline at *end* rules out before a retry *delay* seconds away, if any.

    Args:
        now: The time (the event loop's clock) the call decides at.
        end: The deadline on the same clock; ``None``: no deadline.
        delay: Seconds the call would sleep before its retry.
        retry_after: Whether the server asked for *delay* (``Retry-After``), or it is
            the backoff.

    Returns:
        ``None``: sleep, then retry. ``"attempt"``: the deadline has passed already
        (the attempt just made ran up to it). ``"retry_after"`` or ``"backoff"``: the
        sleep would end at or after the deadline, leaving no time to send: fail now.
    """
    if end is None:
        return None
    if now >= end:
        return "attempt"
    if now + delay >= end:
        return "retry_after" if retry_after else "backoff"
    return None


class CallDeadline:
    """One call's deadline: its end, what it waits for, its last error (see the module)."""

    __slots__ = ("_timer", "_watchers", "create", "end", "last_error", "sent", "wait", "what")

    def __init__(self, end: float | None, what: str, *, create: bool = False) -> None:
        """A deadline at *end* (``loop.time()``) for the call *what* (``GET /batch/rb_1``).

        *create*: the call must not reach the server twice (its error says whether the
        batch may exist).
        """
        self.end = end
        self.what = what
        self.create = create
        self.wait: DeadlineWait = "slot"
        """What the call waits for now: what its deadline ends, if it comes."""
        self.last_error: InkitError | None = None
        """The error of the call's last attempt: the deadline error's cause."""
        self.sent = False
        """Whether an attempt was sent (so the request may have reached the server)."""
        self._timer: asyncio.Timeout | None = None
        self._watchers: list[tuple[float, asyncio.Future[Any]]] = []

    @classmethod
    def of(
        cls, end: float | None, method: str, path: str, *, may_repeat: bool = True
    ) -> CallDeadline | None:
        """The deadline of a call to *method* *path* at *end*; ``None`` without one (no end)."""
        return None if end is None else cls(end, f"{method} {path}", create=not may_repeat)

    def error(self, wait: DeadlineWait, delay: float = 0.0) -> DeadlineExceededError:
        """The error for this call's deadline ending *wait*, its last error as the cause."""
        error = deadline_error(self.what, wait, delay=delay, reached=self.sent, create=self.create)
        error.__cause__ = self.last_error
        return error

    async def within(self, work: Coroutine[Any, Any, T], wait: DeadlineWait) -> T:
        """Await *work* (the call's *wait*) until the deadline; then raise its error.

        Raises:
            DeadlineExceededError: The deadline passed before *work* ended (it is
                cancelled), or had passed already (it is not started, and the error
                names the wait the time ran out in: the one before).
        """
        loop = asyncio.get_running_loop()
        if self.end is not None and loop.time() >= self.end:
            # Out of time before this wait began: the last one used it up (a slot got
            # at the very deadline, say). Nothing of *wait* was done, nor sent.
            work.close()
            raise self.error(self.wait)
        self.wait = wait
        if wait == "attempt":
            self.sent = True
        timer = asyncio.timeout_at(self.end)
        try:
            async with timer:
                self._timer = timer
                return await work
        except TimeoutError:
            if not timer.expired():
                raise
            raise self.error(wait) from self.last_error
        finally:
            self._timer = None

    def before_sleep(self, delay: float, *, retry_after: bool, error: InkitError) -> None:
        """Fail now if a sleep of *delay* seconds ends past the deadline; tell callers who must.

        *error* is the retry's: the call's last error from now on.

        Raises:
            DeadlineExceededError: The sleep would end at or after the deadline (or the
                deadline has passed).
        """
        self.last_error = error
        now = asyncio.get_running_loop().time()
        wait = overrun(now, self.end, delay, retry_after=retry_after)
        if wait is not None:
            raise self.error(wait, delay) from error
        # The callers of a shared request whose own end comes first stop waiting now.
        for end, waiter in self._watchers:
            caller = overrun(now, end, delay, retry_after=retry_after)
            if caller is not None and not waiter.done():
                waiter.set_exception(self.error(caller, delay))
        self.wait = "retry_after" if retry_after else "backoff"

    def before_pause(self, paused: float) -> None:
        """Fail now if the throttle's pause (*paused* seconds more) ends past the deadline.

        Raises:
            DeadlineExceededError: The pause ends at or after the deadline.
        """
        end = self.end
        if paused > 0.0 and end is not None and asyncio.get_running_loop().time() + paused >= end:
            raise self.error("pause", paused) from self.last_error

    def extend(self, end: float | None) -> None:
        """Run until *end* too (``None``: no end): a caller with a later end has joined."""
        if self.end is None:
            return
        self.end = None if end is None else max(self.end, end)
        if self._timer is not None:
            self._timer.reschedule(self.end)

    def watch(self, end: float, waiter: asyncio.Future[Any]) -> None:
        """Fail *waiter* at once when the request sleeps past *end* (``before_sleep``)."""
        self._watchers.append((end, waiter))

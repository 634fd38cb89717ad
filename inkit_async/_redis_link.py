"""The Redis side of ``RedisThrottle``: bounded script calls, liveness, the in-flight budget.

``Link`` is one throttle's connection to Redis. Every call goes through ``Link.call``,
bounded by the throttle's timeout; any failure there (or in the listener) makes the link
*lost*: ``connected`` turns false, one WARNING is logged for the outage, and the throttle
goes on with its own state until ``rejoined``. Nothing here raises to a caller.

Every reply is read through ``Link.read`` and the throttle's ``Reader`` (in
``_redis_scripts.py``): a reply that is garbage counts as a failed call, except that it
is logged as garbage, rarely (``Link.distrust``: the first, then at most one every ten
minutes, with the count of the others), not as an outage. A background task that fails
(``Link.spawn``; a bug, since none should) is logged with its traceback, rarely, and
turns the link lost too: the throttle rejoins with backoff, never in a tight loop.

``Budget`` is the process's part of the fleet's in-flight budget (``max_in_flight``):
leases taken from Redis in small batches, reused by the process's next request, given
back once idle, renewed while held.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import itertools
import logging
import math
import secrets
import time
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import _redis_scripts as scripts
from ._redis_scripts import Garbage

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Sequence

    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from ._throttle import Permit

__all__ = ["LOCAL", "Budget", "Link"]

T = TypeVar("T")

logger: Final = logging.getLogger("inkit_async")

#: After logging garbage read from Redis, or a failed background task, log the next one
#: no sooner than this many seconds later (with the count of those in between).
_QUIET: Final = 600.0

#: What a request holds when no fleet budget applies (Redis lost, or not reached yet).
LOCAL: Final = ""
#: In-flight leases: at most this many per take; while the budget is full, ask again
#: after this many seconds.
_TAKE_BATCH: Final = 16
_TAKE_POLL: Final = 0.02


class Link:
    """One throttle's connection to Redis (see the module docstring)."""

    def __init__(
        self,
        client: Redis,
        timeout: float,
        reader: scripts.Reader,
        *,
        on_lost: Callable[[], None],
        on_rejoined: Callable[[], None],
    ) -> None:
        """Talk to *client*, each call bounded by *timeout* seconds, reading with *reader*."""
        self.client = client
        self.timeout = timeout
        self.reader = reader
        self.keys = scripts.Keys(None, None)
        self.id = secrets.token_hex(6)
        """This process (this throttle) in the fleet: its heartbeat and its leases."""
        self.connected = False
        self.joining = True
        """Whether the first attempt to reach Redis is still under way."""
        self.joined = asyncio.Event()
        """Set once the first attempt has ended, either way."""
        self.closed = False
        self.outages = 0
        self.ignored = 0
        """Values read from Redis that were not used (garbage), ever."""
        self._warned = False
        # For the rare logs: what was not logged yet, and when the next may be.
        self._unlogged = collections.Counter[str]()
        self._quiet_until: dict[str, float] = {}
        self._on_lost = on_lost
        self._on_rejoined = on_rejoined
        self._tasks: set[asyncio.Task[None]] = set()
        register = client.register_script
        self.sync = register(scripts.SYNC)
        self.lease = register(scripts.LEASE)
        self.cut = register(scripts.CUT)
        self.pause = register(scripts.PAUSE)
        self.take = register(scripts.LEASES_TAKE)
        self.renew = register(scripts.LEASES_RENEW)
        self.free = register(scripts.LEASES_FREE)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run *coroutine* in the background (it must not raise), unless closed."""
        if self.closed:
            coroutine.close()
            return
        task = asyncio.get_running_loop().create_task(self._guard(coroutine))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, coroutine: Coroutine[Any, Any, None]) -> None:
        try:
            await coroutine
        except Exception:  # a bug: seen (rarely), and never respawned in a tight loop
            if self._rarely("failed"):
                logger.exception(
                    "A background task of RedisThrottle %s failed%s; the throttle goes on "
                    "with this process's own state and rejoins with backoff",
                    self.keys.prefix,
                    self._since("failed"),
                )
            self._go_local()

    async def call(
        self,
        script: AsyncScript,
        keys: Sequence[str],
        args: Sequence[object],
        *,
        always: bool = False,
    ) -> Any:  # noqa: ANN401 - whatever the Lua script returns
        """Run *script*; ``None`` when not connected (unless *always*) or when it fails."""
        if self.closed or not (self.connected or always):
            return None
        try:
            async with asyncio.timeout(self.timeout):
                return await script(keys=list(keys), args=list(args))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - no Redis failure may reach a caller
            self.lost(exc)
            return None

    def read(self, reply: object, parse: Callable[[object], T]) -> T | None:
        """*reply* (``None``: the call failed) through *parse*; garbage counts as a failure."""
        if reply is None:
            return None
        try:
            return parse(reply)
        except Garbage as exc:
            self.distrust(exc)
            self._go_local()
            return None

    def distrust(self, exc: Garbage) -> None:
        """A value read from Redis was not used: count it, and log it rarely."""
        self.ignored += 1
        if self._rarely("garbage"):
            logger.warning(
                "RedisThrottle %s ignored a value read from Redis (%s)%s; anything that can "
                "write to that Redis can write the throttle's keys, and nothing read is used "
                "unchecked",
                self.keys.prefix,
                exc,
                self._since("garbage"),
            )

    def _rarely(self, what: str) -> bool:
        """Whether to log *what* now: the first time, then at most once in ``_QUIET`` s."""
        now = time.monotonic()
        if now < self._quiet_until.get(what, -math.inf):
            self._unlogged[what] += 1
            return False
        self._quiet_until[what] = now + _QUIET
        return True

    def _since(self, what: str) -> str:
        count = self._unlogged.pop(what, 0)
        return f" ({count} more since the last such record)" if count else ""

    def lost(self, exc: BaseException) -> None:
        """Redis failed: go local, and log the outage once."""
        if self.closed:
            return
        if not self._warned:
            self._warned = True
            self.outages += 1
            logger.warning(
                "Redis is unreachable (%s: %s); RedisThrottle %s goes on with this process's "
                "own state and rejoins when Redis is back",
                type(exc).__name__,
                str(exc)[:200] or "no detail",
                self.keys.prefix,
            )
        self._go_local()

    def _go_local(self) -> None:
        if self.closed:
            return
        self.connected = False
        self._end_join()
        self._on_lost()

    def rejoined(self) -> None:
        """Redis answered again: the fleet's limits apply."""
        if self.closed:
            return
        self.connected = True
        if self._warned:
            logger.info(
                "RedisThrottle %s reached Redis again; the fleet's limits apply", self.keys.prefix
            )
        self._warned = False
        self._end_join()
        self._on_rejoined()

    def restart(self) -> None:
        """Begin again, as before the first join (the keys changed)."""
        self.connected = False
        self.joining = True
        self.joined.clear()

    async def drop_idle(self) -> None:
        """Close the pool's idle connections: after an outage they lead to the old server."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout):
                await self.client.connection_pool.disconnect(inuse_connections=False)

    def _end_join(self) -> None:
        self.joining = False
        self.joined.set()

    async def close(self, *, owns_client: bool) -> None:
        """Stop every background task; close the client if the throttle made it."""
        self.closed = True
        self.connected = False
        self._end_join()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if owns_client:
            with contextlib.suppress(Exception):  # a pool to a dead Redis
                await self.client.aclose()


class Budget:
    """The fleet's in-flight budget, as one process holds its part of it."""

    __slots__ = (
        "_by_permit",
        "_counter",
        "_fetching",
        "_idle",
        "_in_use",
        "_link",
        "_maximum",
        "_next_renew",
        "_stale",
        "_ttl",
        "_waiters",
    )

    def __init__(self, link: Link, maximum: int, ttl: float) -> None:
        """At most *maximum* leases fleet-wide, each living *ttl* seconds unless renewed."""
        self._link = link
        self._maximum = maximum
        self._ttl = ttl
        self._idle: dict[str, None] = {}  # leases held but unused, oldest first
        self._stale: set[str] = set()  # idle since the last tick: given back at the next
        self._in_use: set[str] = set()
        self._waiters: collections.deque[asyncio.Future[str]] = collections.deque()
        self._by_permit: dict[Permit, str] = {}
        self._counter = itertools.count()
        self._fetching = False
        self._next_renew = 0.0

    @property
    def held(self) -> int:
        """Leases this process holds, in use or idle."""
        return len(self._in_use) + len(self._idle)

    async def take(self) -> str:
        """A lease for one request: one held idle, or one from Redis (wait while full)."""
        link = self._link
        if link.joining:
            await link.joined.wait()
        if not link.connected:
            return LOCAL
        if self._idle:
            lease, _ = self._idle.popitem()
            self._stale.discard(lease)
            self._in_use.add(lease)
            return lease
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        if not self._fetching:
            self._fetching = True
            link.spawn(self._fetch())
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.give(future.result())
            raise

    def attach(self, permit: Permit, lease: str) -> None:
        """Note that *permit*'s request holds *lease*."""
        if lease != LOCAL:
            self._by_permit[permit] = lease

    def detach(self, permit: Permit) -> None:
        """The request of *permit* is over: free its lease."""
        lease = self._by_permit.pop(permit, None)
        if lease is not None:
            self.give(lease)

    def give(self, lease: str) -> None:
        """A request is done with *lease*: to the next waiter, or held idle for a moment."""
        if lease not in self._in_use:
            return
        self._in_use.discard(lease)
        if self._link.connected:
            self._hand(lease)
        # Else Redis drops it when it expires (or has lost it already).

    def _hand(self, lease: str) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                self._in_use.add(lease)
                future.set_result(lease)
                return
        self._idle[lease] = None

    async def _fetch(self) -> None:
        link = self._link
        try:
            while True:
                live = sum(1 for future in self._waiters if not future.done())
                if not live:
                    self._waiters.clear()
                    return
                want = min(live, _TAKE_BATCH)
                leases = [f"{link.id}:{next(self._counter)}" for _ in range(want)]
                reply = await link.call(
                    link.take, [link.keys.leases], [self._maximum, round(self._ttl * 1000), *leases]
                )
                taken = link.read(reply, functools.partial(link.reader.taken, want=want))
                if taken is None:
                    self.go_local()
                    return
                for lease in leases[:taken]:
                    self._hand(lease)
                if taken < want:
                    await asyncio.sleep(_TAKE_POLL)  # the budget is full: ask again soon
        finally:
            self._fetching = False

    async def tick(self, now: float) -> None:
        """Give back leases idle since the last tick; renew the held ones when due."""
        link = self._link
        stale = [lease for lease in self._stale if lease in self._idle]
        for lease in stale:
            del self._idle[lease]
        self._stale = set(self._idle)
        if stale:
            await link.call(link.free, [link.keys.leases], stale)
        held = [*self._in_use, *self._idle]
        if held and now >= self._next_renew:
            self._next_renew = now + self._ttl / 3
            await link.call(link.renew, [link.keys.leases], [round(self._ttl * 1000), *held])

    def go_local(self) -> None:
        """Redis is lost: every waiting request goes on without a lease."""
        self._idle.clear()
        self._stale.clear()
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(LOCAL)

    def rejoined(self) -> None:
        """Redis is back: renew (restore) the leases of requests still in flight at once."""
        self._next_renew = 0.0

    async def give_back_all(self) -> None:
        """Closing: free every lease held, in one call."""
        link = self._link
        held = [*self._in_use, *self._idle]
        self._in_use.clear()
        self._idle.clear()
        self._by_permit.clear()
        if held:
            await link.call(link.free, [link.keys.leases], held)

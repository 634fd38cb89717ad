"""Fleet-wide flow control through Redis: one API token's limits, shared by every process.

``pip install "inkit-async[redis]"``, then give every process the same throttle options::

    from inkit_async import AsyncInkit
    from inkit_async.redis import RedisThrottle

    async with (
        RedisThrottle.from_url("redis://cache:6379/0") as throttle,
        AsyncInkit(throttle=throttle) as client,
    ):
        ...

A ``RedisThrottle`` is a ``Throttle``: the same options, the same pacing, pauses, probes
and retry budget, run by the same code in each process. What it adds is that every process
using one API token shares, through Redis:

- **Pauses.** A pause (a 429's ``Retry-After``, or an outage the throttle chose) is written
  to Redis as a key whose time to live is the pause, and published on the token's channel:
  every other process pauses as soon as the message arrives, within milliseconds. Each
  process then sends its own probe when the pause ends.
- **The sending rate.** Until the first 429 the fleet sends freely and no request costs a
  Redis round trip. A cut is decided by the process that got the 429, from the fleet's
  send counts, and written to Redis by a script that applies it only if no other cut came
  since the rate that process was sending at (the fleet's epoch): one overshoot, one cut,
  fleet-wide. It is published, and every process adopts it. From then on, and from the
  start when a ``rate_limit`` is given, requests leave on slots of one GCRA that runs in
  Redis: a process leases a few consecutive slots per round trip (about 20 ms of the
  fleet's rate, at most 64), so the fleet never sends faster than the rate (but for a slot
  a busy event loop uses late, at most 0.1 s), and a request costs a fraction of a round
  trip.
- **An in-flight budget** (``max_in_flight``, off by default): each request in flight
  holds a lease, a member of a sorted set scored by when it expires. A process renews its
  leases while it lives, reuses a lease freed by its own finished request, and gives idle
  ones back within about 0.1 s; a process that dies (``kill -9``) stops renewing, and its
  leases expire within ``lease_ttl``.

Keys are named after a key derived from the API token by scrypt (never the token itself;
see ``_redis_scripts.token_key`` and the docs page for why a slow hash) and an optional
namespace: ``inkit:{<namespace>:<key>}:state``, ``...:pause``, ``...:members``,
``...:leases``, and the channel ``...:events``. Every key expires; ``state`` 10 minutes
after the last change. The layout is in ``inkit_async/_redis_scripts.py``.

**When Redis fails**, nothing fails with it. Every Redis call is bounded by ``timeout``
(0.25 s); none is awaited by a request except the leases it needs, and a failed one turns
the throttle to this process's own state: the rate it last knew, paced locally at its
share (the rate divided by the processes it last saw sending), its own pauses, no
in-flight budget. One WARNING is logged per outage. A background task rejoins with backoff
(0.1 s doubling to 2 s), logs one INFO line, and adopts the fleet's state again; a Redis
that came back empty (restarted without persistence) is seeded with this process's rate.
No redis exception escapes a call.

**Nothing read from Redis is trusted**: anyone who can write to it can write these keys
and publish on the channel. Every number read (messages, the state hash, script replies)
is checked at one boundary, ``_redis_scripts.Reader``, and the Lua scripts check what they
read from the hash the same way and write only checked values: finite, in range, a pause
no longer than ``max_wait`` (or 60 s, the default ``max_retry_after``, if that is longer),
a next send time no further ahead than a pause or one interval at the lowest rate. A
message that fails is ignored; a reply that fails counts as a failed call. Garbage is
logged once (then at most every ten minutes) and counted in ``fleet.ignored``.

The client tells the throttle its token when it starts using it (``bind``); one
``RedisThrottle`` serves one token. Close it when done (``aclose`` or ``async with``): a
throttle made by ``from_url`` closes its own connection pool then; one given a client
leaves that client open.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hashlib
import hmac
import math
import re
from typing import TYPE_CHECKING, Final, Self, cast

import attrs

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('inkit_async.redis needs redis-py: pip install "inkit-async[redis]"') from exc

from . import _redis_scripts as scripts
from ._constants import (
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_OUTAGE_RUN,
    DEFAULT_RETRY_RATIO,
    DEFAULT_RETRY_RESERVE,
)
from ._flow.curve import Curve
from ._redis_link import Budget, Link
from ._throttle import Change, Permit, Signal, Throttle, ThrottleTimeoutError
from ._validate import check_int, check_number

if TYPE_CHECKING:
    from types import TracebackType

    from redis.asyncio.client import PubSub

__all__ = ["FleetState", "RedisThrottle"]

#: Seconds each Redis call may take before the throttle counts Redis as lost.
DEFAULT_REDIS_TIMEOUT: Final = 0.25
#: Seconds an in-flight lease lives without renewal (``kill -9`` frees it within this).
DEFAULT_LEASE_TTL: Final = 10.0
#: Milliseconds the fleet's rate state outlives its last change (10 minutes).
_STATE_TTL_MS: Final = 600_000
#: Seconds between heartbeats (who is sending, and the fleet's state if a message was lost).
_BEAT: Final = 0.5
#: A process counts as sending for this many seconds after its last request (or its join).
_MEMBER_WINDOW: Final = 3.0
#: The heartbeat set expires this many milliseconds after the last heartbeat.
_MEMBERS_TTL_MS: Final = 60_000
#: How long a lease of paced slots reaches, in seconds of the fleet's rate, and at most
#: (no slot but the first is more than ``scripts.HORIZON_MS`` ahead, either).
_LEASE_SPAN: Final = 0.02
_LEASE_MAX: Final = 64
#: A leased slot this many seconds past is dropped, not used.
_LATE: Final = 0.1
#: After a cut, the fleet's next slot is at least this many seconds away: requests sent
#: on older slots, or by processes the cut has not reached yet, are still arriving.
_CUT_GUARD: Final = 0.02
#: How early (seconds) a slot may be used: timers are not finer (as in the local throttle).
_TOLERANCE: Final = 0.001
#: As in the local throttle: a stretch this short tells nothing of the server's limit ...
_MIN_ESTIMATE_SPAN: Final = 0.01
#: ... and the lowest rate it ever sets.
_MIN_RATE: Final = scripts.MIN_RATE
#: Rejoining: the first wait, and the longest it doubles to; the wait starts again from
#: the first only after the link has held this many seconds (a Redis that fails again at
#: once, or keeps answering garbage, is retried every 2 s, not in a tight loop).
_REJOIN_FIRST: Final = 0.1
_REJOIN_MAX: Final = 2.0
_STABLE: Final = 10.0
#: The listener wakes this often (seconds) to beat, and to tend the in-flight budget.
_TICK: Final = 0.05
#: Fleet send numbers kept for the estimate (the most recent ones).
_FLEET_HISTORY: Final = 4096
_NAMESPACE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@attrs.frozen(kw_only=True)
class FleetState:
    """What a ``RedisThrottle`` knows of its fleet now (``throttle.fleet``)."""

    connected: bool
    """Whether the throttle is in touch with Redis (else it runs on this process's state)."""
    processes: int
    """Processes that sent through this token's fleet lately, this one included."""
    outages: int
    """Times Redis was lost (or could not be reached at the start)."""
    leases: int
    """In-flight leases this process holds now (``max_in_flight``)."""
    key_prefix: str
    """The prefix of this token's Redis keys (it holds the token's key, not the token)."""
    ignored: int = 0
    """Values read from Redis that the throttle did not use: not numbers, not finite, or
    out of range (garbage that something else wrote to the token's keys or channel)."""


def _check_positive(name: str, value: object, minimum: float) -> float:
    return float(check_number(name, value, minimum=minimum))


def _check_namespace(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"namespace must be a str, got {type(value).__name__}")
    if not _NAMESPACE.fullmatch(value):
        raise ValueError("namespace must be 1 to 64 letters, digits or _.:- characters")
    return value


def _check_max_in_flight(value: object) -> int | None:
    return check_int("max_in_flight", value, minimum=1, allow_none=True)


class RedisThrottle(Throttle):
    """A ``Throttle`` whose pauses, rate and in-flight budget hold for every process.

    See the "Running many workers" docs page. Every process that uses one API token
    passes a ``RedisThrottle`` on the same Redis (and namespace) with the same options:
    ``AsyncInkit(throttle=RedisThrottle.from_url("redis://cache:6379/0"))``.

    Args:
        client: A ``redis.asyncio.Redis`` of yours. Its own timeouts and retries apply
            inside the throttle's ``timeout``; ``from_url`` sets them for you.
        namespace: Keeps fleets apart that share a Redis and a token but must not share
            limits (staging and production); letters, digits and ``_.:-``, at most 64.
        max_in_flight: Most requests in flight across the fleet (default: no limit).
        lease_ttl: Seconds an in-flight lease lives unless renewed (default 10): what a
            process that dies holds comes free within this.
        timeout: Seconds any Redis call may take (default 0.25) before the throttle
            falls back to this process's own state.
        rate_limit: A limit you know, in requests per second, for the whole fleet.
        max_wait: As for ``Throttle``.
        retry_ratio: As for ``Throttle`` (the retry budget stays per process).
        retry_reserve: As for ``Throttle``.
        outage_after: As for ``Throttle``; the pause it starts holds for the fleet.

    Nothing read from Redis is trusted: every number is checked before it is used (see
    the docs page), and a pause read from Redis longer than ``max_wait``, or than 60 s
    (the default ``max_retry_after``) if that is longer, is ignored, as a ``Retry-After``
    above ``max_retry_after`` is not waited on; a pause this process shares is no longer
    than that either. Every wait for a lease or a slot ends within ``max_wait``.

    Raises:
        TypeError: An option has the wrong type.
        ValueError: An option has an impossible value.
    """

    def __init__(
        self,
        client: Redis,
        *,
        namespace: str | None = None,
        max_in_flight: int | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        timeout: float = DEFAULT_REDIS_TIMEOUT,
        rate_limit: float | None = None,
        max_wait: float = DEFAULT_MAX_RETRY_AFTER,
        retry_ratio: float = DEFAULT_RETRY_RATIO,
        retry_reserve: int = DEFAULT_RETRY_RESERVE,
        outage_after: int = DEFAULT_OUTAGE_RUN,
    ) -> None:
        super().__init__(
            rate_limit=rate_limit,
            max_wait=max_wait,
            retry_ratio=retry_ratio,
            retry_reserve=retry_reserve,
            outage_after=outage_after,
        )
        if not isinstance(client, Redis):
            raise TypeError(f"client must be a redis.asyncio.Redis, got {type(client).__name__}")
        self.namespace = _check_namespace(namespace)
        """The namespace the keys are under, or ``None``."""
        self.max_in_flight = _check_max_in_flight(max_in_flight)
        """Most requests in flight across the fleet, or ``None``."""
        self.lease_ttl = _check_positive("lease_ttl", lease_ttl, 0.5)
        """Seconds an in-flight lease lives unless renewed."""
        self.timeout = _check_positive("timeout", timeout, 0.01)
        """Seconds any Redis call may take."""
        self._owns_client = False
        self._bound: bytes | None = None  # a fingerprint of the token, once bound
        # A pause read from Redis is honoured up to the longest a caller waits, or the
        # default max_retry_after if that is longer: a longer one is garbage.
        reader = scripts.Reader(max_pause=max(self.max_wait, DEFAULT_MAX_RETRY_AFTER))
        self._link = Link(
            client, self.timeout, reader, on_lost=self._on_lost, on_rejoined=self._on_rejoined
        )
        self._link.keys = scripts.Keys(self.namespace, None)
        self._runner: asyncio.Task[None] | None = None
        self._share = 1  # processes sending, as last seen
        self._joined_at = -math.inf
        self._next_sync = 0.0
        # The fleet's rate, as this process knows it.
        self._fleet_epoch = 0
        self._slots: collections.deque[tuple[float, int]] = collections.deque()  # (when, seq)
        self._leasing = False
        self._span_seq = 0  # the fleet's stretch for the estimate: first send, start, bucket
        self._span_at = math.inf
        self._span_bucket = 0.0
        self._fleet_sends: dict[int, tuple[int, float]] = {}  # local seq -> fleet seq, when
        self._fleet_order: collections.deque[int] = collections.deque()
        self._cutting = False
        self._cut_pending = False
        self._burst_report = 0.0
        self._burst_reported = False
        self._adopting = False
        self._budget = (
            None
            if self.max_in_flight is None
            else Budget(self._link, self.max_in_flight, self.lease_ttl)
        )
        with contextlib.suppress(RuntimeError):  # made outside a loop: join at first use
            asyncio.get_running_loop()
            self._start()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str | None = None,
        max_in_flight: int | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        timeout: float = DEFAULT_REDIS_TIMEOUT,
        rate_limit: float | None = None,
        max_wait: float = DEFAULT_MAX_RETRY_AFTER,
        retry_ratio: float = DEFAULT_RETRY_RATIO,
        retry_reserve: int = DEFAULT_RETRY_RESERVE,
        outage_after: int = DEFAULT_OUTAGE_RUN,
    ) -> Self:
        """A throttle on the Redis at *url* (``redis://host:6379/0``), with a pool of its own.

        The pool connects lazily, with *timeout* to connect and per command and no
        retries of redis-py's own (the throttle falls back instead); closing the throttle
        closes it. The options are those of the class.

        Raises:
            TypeError: An option has the wrong type.
            ValueError: An option has an impossible value, or *url* is not a Redis URL.
        """
        seconds = _check_positive("timeout", timeout, 0.01)
        client = Redis.from_url(  # pyright: ignore[reportUnknownMemberType]
            url,
            socket_timeout=seconds,
            socket_connect_timeout=seconds,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        throttle = cls(
            client,
            namespace=namespace,
            max_in_flight=max_in_flight,
            lease_ttl=lease_ttl,
            timeout=seconds,
            rate_limit=rate_limit,
            max_wait=max_wait,
            retry_ratio=retry_ratio,
            retry_reserve=retry_reserve,
            outage_after=outage_after,
        )
        throttle._owns_client = True
        return throttle

    def __repr__(self) -> str:
        """Show the key prefix (the token's key), the link and the rate; never the token."""
        rate = "none" if self._curve is None else f"{self._curve.rate:.1f}/s"
        link = "connected" if self._link.connected else "local"
        return (
            f"<RedisThrottle {self._link.keys.prefix} {link} rate={rate} "
            f"rate_limit={self.rate_limit} max_in_flight={self.max_in_flight}>"
        )

    async def __aenter__(self) -> Self:
        """Join the fleet now (rather than at the first request); close on the way out."""
        if self._runner is None and not self._link.closed:
            self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the throttle."""
        await self.aclose()

    # -- the public extras -------------------------------------------------------------

    def bind(self, api_token: str) -> None:
        """Name the keys after *api_token*'s key; ``AsyncInkit`` calls this with its token.

        The key is scrypt of the token (about 50 ms, computed once: see the "Running many
        workers" docs page for why a slow hash). Binding the same token again changes
        nothing and costs nothing.

        Raises:
            ValueError: The throttle serves another token, or it was used before being
                bound (one ``RedisThrottle`` serves one token).
        """
        # Compared in memory only (the key names take ~50 ms of scrypt, once).
        fingerprint = hashlib.sha256(b"inkit-async:bind:" + api_token.encode()).digest()
        if self._bound is not None:
            if not hmac.compare_digest(fingerprint, self._bound):
                raise ValueError(
                    "This RedisThrottle serves another API token; give each token its own"
                )
            return
        if self._log.sent:
            raise ValueError("A RedisThrottle must be bound to its token before its first request")
        self._link.keys = scripts.Keys(self.namespace, api_token)
        self._bound = fingerprint
        runner = self._runner
        if runner is not None and not self._link.closed:
            # It joined (or is joining) under the old names: join again under these.
            self._runner = asyncio.get_running_loop().create_task(self._rejoin(runner))

    async def _rejoin(self, runner: asyncio.Task[None]) -> None:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        self._link.restart()
        self._slots.clear()
        await self._run()

    @property
    def fleet(self) -> FleetState:
        """A snapshot of the link to Redis and of what the fleet looks like from here."""
        return FleetState(
            connected=self._link.connected,
            processes=self._share,
            outages=self._link.outages,
            leases=0 if self._budget is None else self._budget.held,
            key_prefix=self._link.keys.prefix,
            ignored=self._link.ignored,
        )

    async def aclose(self) -> None:
        """Stop talking to Redis: give back the leases held, and close the pool if it is ours.

        The throttle goes on working on this process's own state, as after losing Redis.
        Closing twice does nothing more.
        """
        link = self._link
        if link.closed:
            return
        if self._budget is not None:
            await self._budget.give_back_all()
        link.closed = True  # every loop ends at its next turn, cancelled or not
        link.connected = False
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        await link.close(owns_client=self._owns_client)
        self._slots.clear()
        if self._clock is not None:
            self._reschedule()

    # -- permits -----------------------------------------------------------------------

    async def acquire(self) -> Permit:
        """Wait for leave to send one request: an in-flight lease, then the fleet's pace.

        Raises:
            ThrottleTimeoutError: As for ``Throttle.acquire``; ``max_wait`` bounds the
                wait for the lease and the permit together.
        """
        if self._runner is None and not self._link.closed:
            self._start()
        budget = self._budget
        if budget is None:
            return await super().acquire()
        try:
            async with asyncio.timeout(self.max_wait):
                lease = await budget.take()
                try:
                    permit = await super().acquire()
                except BaseException:
                    budget.give(lease)
                    raise
        except TimeoutError:
            raise ThrottleTimeoutError from None
        budget.attach(permit, lease)
        return permit

    def release(self, permit: Permit, signal: Signal, pause: float = 0.0) -> Change | None:
        """Give back the request's lease, then take in what the server said, as ``Throttle``."""
        if self._budget is not None:
            self._budget.detach(permit)
        return super().release(permit, signal, pause)

    def cancel(self, permit: Permit) -> None:
        """Give back the request's lease and the unused permit."""
        if self._budget is not None:
            self._budget.detach(permit)
        super().cancel(permit)

    # -- pacing on the fleet's slots -----------------------------------------------------

    def _take_paced(self, now: float, rate: float) -> Permit | None:
        link = self._link
        if not link.connected:
            if link.joining:
                return None  # the first join ends within ~2 timeouts, and reschedules
            # On our own: our share of the fleet's rate, paced locally.
            # Never below the lowest rate: a share of a low rate among many processes
            # (up to scripts' bound) would push the next send days ahead.
            return super()._take_paced(now, max(rate / self._share, _MIN_RATE))
        slots = self._slots
        while slots and slots[0][0] < now - _LATE:
            slots.popleft()
        if slots and now >= slots[0][0] - _TOLERANCE:  # as _next_paced names it
            _, seq = slots.popleft()
            permit = self._grant(now)
            self._remember(permit.seq, seq, now)
            if len(slots) <= 1 and len(self._waiters) > len(slots):
                # Ask for the next ones while the last is used; no sooner, so that each
                # process holds a few slots at a time and the fleet's timeline is shared.
                self._want_slots()
            return permit
        if not slots:
            self._want_slots()
        return None

    def _next_paced(self) -> float:
        link = self._link
        if not link.connected:
            return math.inf if link.joining else super()._next_paced()
        if self._slots:
            return self._slots[0][0] - _TOLERANCE
        self._want_slots()  # its answer reschedules
        return math.inf

    def _remember(self, seq: int, fleet_seq: int, sent_at: float) -> None:
        self._fleet_sends[seq] = (fleet_seq, sent_at)
        self._fleet_order.append(seq)
        if len(self._fleet_order) > _FLEET_HISTORY:
            self._fleet_sends.pop(self._fleet_order.popleft(), None)

    def _want_slots(self) -> None:
        # While a cut of ours is on its way to Redis, slots would come at the old epoch.
        # With no rate (or one past its release point, dropped here) there is nothing to
        # lease: a task spawned for nothing would reschedule, and spawn another at once.
        if (
            not (self._leasing or self._cutting)
            and self._link.connected
            and self._rate_at(self._now()) is not None
        ):
            self._leasing = True
            self._link.spawn(self._lease_slots())

    async def _lease_slots(self) -> None:
        link = self._link
        try:
            for _ in range(3):  # after adopting the fleet's newer state, ask again
                rate = self._rate_at(self._now())  # past its release point: dropped
                if rate is None or not link.connected:
                    return
                rate = min(rate, scripts.MAX_RATE)
                span = max(1, min(_LEASE_MAX, int(rate * _LEASE_SPAN)))
                want = max(1, min(span, len(self._waiters) - len(self._slots)))
                known = self._fleet_epoch
                reply = await link.call(
                    link.lease,
                    [link.keys.state, link.keys.pause],
                    [known, repr(rate), want, _STATE_TTL_MS, link.reader.max_pause_ms],
                )
                lease = link.read(reply, functools.partial(link.reader.lease, want=want))
                if lease is None or self._fleet_epoch != known:
                    continue  # lost Redis (the loop ends), or a cut came meanwhile
                if isinstance(lease, scripts.FleetRate):
                    self._adopt_state(lease)
                    continue
                now = self._now()
                start = now + lease.delay
                self._slots.extend(
                    (start + j * lease.interval, lease.first + j) for j in range(lease.count)
                )
                self._read_span(now, lease.span)
                return
        finally:
            self._leasing = False
            self._reschedule()

    # -- cuts and pauses, shared -----------------------------------------------------------

    def _cut(self, now: float, seq: int, pause: float = 0.0) -> Change:
        if self._refused_once and not self._burst_reported:
            self._burst_reported = True
            self._burst_report += self._burst  # what this process saw accepted at first
        change = super()._cut(now, seq, pause)
        self._slots.clear()  # leased at the old rate
        if self._link.connected and not self._adopting:
            self._push_cut()
        return change

    def _estimate(self, seq: int) -> float | None:
        fleet = self._fleet_sends.get(seq)
        if fleet is None:
            # Sent unpaced: this process's own estimate, scaled to the fleet's size.
            estimate = super()._estimate(seq)
            return None if estimate is None else estimate * self._share
        # Sent on a fleet slot: the fleet's sends since its stretch began, as the local
        # throttle reads its own (the server's bucket as it was when the stretch began).
        # Or since any of this process's own fleet sends after that, when the server's
        # bucket was at best full: the fleet's numbers count every process's sends.
        refused_seq, refused_at = fleet
        if refused_seq < self._span_seq:
            return None
        best = -math.inf
        elapsed = refused_at - self._span_at
        if elapsed >= _MIN_ESTIMATE_SPAN:
            best = (refused_seq - self._span_seq + 1 - self._span_bucket) / elapsed
        for local_seq in self._fleet_order:
            fleet_seq, sent_at = self._fleet_sends[local_seq]
            elapsed = refused_at - sent_at
            if fleet_seq < self._span_seq:
                continue
            if elapsed < _MIN_ESTIMATE_SPAN:
                break
            best = max(best, (refused_seq - fleet_seq - self._burst) / elapsed)
        return best if best >= _MIN_RATE else None

    def _sending_rate(self, at: float) -> float:
        return super()._sending_rate(at) * self._share

    def _pause(self, now: float, seconds: float) -> None:
        super()._pause(now, seconds)
        if self._link.connected and not self._adopting:
            self._link.spawn(self._publish_pause(seconds))

    def _push_cut(self) -> None:
        if self._cutting:
            self._cut_pending = True
            return
        self._cutting = True
        self._link.spawn(self._publish_cuts())

    async def _publish_cuts(self) -> None:
        link = self._link
        try:
            while True:
                self._cut_pending = False
                cut = self._curve
                if cut is None:
                    return
                known = self._fleet_epoch
                burst, self._burst_report = self._burst_report, 0.0
                # Within the bounds every process reads them with (see scripts.Reader).
                rate = min(cut.rate, scripts.MAX_RATE)
                reply = await link.call(
                    link.cut,
                    [link.keys.state, link.keys.pause],
                    [
                        link.id,
                        known,
                        repr(rate),
                        repr(min(max(cut.refused, rate), scripts.MAX_RATE)),
                        int(cut.blind),
                        repr(min(burst, scripts.MAX_BURST)),
                        max(0.0, (self._now() - cut.cut_at) * 1000),
                        _STATE_TTL_MS,
                        link.keys.channel,
                        round(_CUT_GUARD * 1000),
                        link.reader.max_pause_ms,
                    ],
                )
                result = link.read(reply, link.reader.cut)
                if result is None:
                    return
                if self._fleet_epoch == known:
                    if isinstance(result, int):
                        self._fleet_epoch = result
                    else:
                        self._adopt_state(result)  # another process cut first: its rate
                if not self._cut_pending:
                    return
        finally:
            self._cutting = False
            self._reschedule()  # lease at the new rate

    async def _publish_pause(self, seconds: float) -> None:
        link = self._link
        # No longer than every process takes from Redis (a longer one is garbage there).
        ms = min(seconds, link.reader.max_pause) * 1000
        await link.call(
            link.pause,
            [link.keys.state, link.keys.pause],
            [link.id, repr(ms), 0, _STATE_TTL_MS, link.keys.channel, link.reader.max_pause_ms],
        )

    # -- adopting what the fleet decided -------------------------------------------------

    def _adopt_state(self, state: scripts.FleetRate) -> None:
        """Take the fleet's rate from a script's ``state(...)`` reply, checked already."""
        if state.burst:
            self._burst = state.burst
        if state.epoch == 0:
            # Redis holds no rate (it expired, Redis restarted empty, or what it held was
            # garbage): give it ours.
            self._fleet_epoch = 0
            if self._curve is not None and self._curve.refused:
                self._push_cut()
            return
        if state.epoch == self._fleet_epoch:
            return
        self._adopt(
            state.epoch, state.rate, state.refused, blind=state.blind, cut_age=state.cut_age
        )
        self._read_span(self._now(), state.span)

    def _adopt(
        self, epoch: int, rate: float, refused: float, *, blind: bool, cut_age: float
    ) -> None:
        now = self._now()
        self._fleet_epoch = epoch
        self._cut_pending = False
        rate = max(rate, _MIN_RATE)
        self._curve = Curve(
            rate=rate, refused=max(refused, rate), blind=blind, cut_at=now - cut_age
        )
        self._pacer.restart(now)
        self._epoch += 1  # answers to requests sent under the old rate cut nothing
        self._slots.clear()
        self._update_open()
        self._reschedule()

    def _adopt_pause(self, seconds: float) -> None:
        now = self._now()
        if seconds <= 0 or now + seconds <= self._breaker.paused_until + _TOLERANCE:
            return
        self._adopting = True
        try:
            self._pause(now, seconds)
        finally:
            self._adopting = False

    def _read_span(self, now: float, span: scripts.Span | None) -> None:
        if span is not None:
            self._span_seq = span.seq
            self._span_at = now - span.age
            self._span_bucket = span.bucket

    def _on_message(self, data: object) -> None:
        link = self._link
        try:
            message = link.reader.message(data)
        except scripts.Garbage as exc:
            link.distrust(exc)  # anyone on that Redis can publish on the channel
            return
        if message.origin == link.id:
            return
        match message:
            case scripts.Cut():
                if message.epoch != self._fleet_epoch:
                    self._adopt(
                        message.epoch,
                        message.rate,
                        message.refused,
                        blind=message.blind,
                        cut_age=0.0,
                    )
            case scripts.Pause():
                self._adopt_pause(message.seconds)
            case scripts.Members():
                self._share = message.count

    # -- the link to Redis ---------------------------------------------------------------

    def _start(self) -> None:
        self._now()  # ties the clock to the running loop, as the first acquire would
        self._runner = asyncio.get_running_loop().create_task(self._run())

    def _on_lost(self) -> None:
        self._slots.clear()
        if self._budget is not None:
            self._budget.go_local()
        if self._clock is not None:
            self._reschedule()

    def _on_rejoined(self) -> None:
        if self._budget is not None:
            self._budget.rejoined()
        self._reschedule()

    async def _run(self) -> None:
        """Join the fleet, listen to it, and rejoin after every outage, until closed."""
        link = self._link
        delay = _REJOIN_FIRST
        while not link.closed:
            pubsub = link.client.pubsub()  # pyright: ignore[reportUnknownMemberType]
            joined = math.inf
            try:
                async with asyncio.timeout(link.timeout):
                    await pubsub.subscribe(link.keys.channel)
                self._joined_at = self._now()
                if await self._sync(always=True):
                    joined = self._now()
                    link.rejoined()
                    await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - no Redis failure may reach a caller
                link.lost(exc)
            finally:
                try:
                    async with asyncio.timeout(link.timeout):
                        await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
                except Exception:  # noqa: BLE001, S110 - a pubsub on a dead connection
                    pass
            if self._now() - joined >= _STABLE:
                delay = _REJOIN_FIRST  # a new outage: rejoin fast again
            await link.drop_idle()  # connections to the Redis that failed fail again
            await asyncio.sleep(delay)
            delay = min(delay * 2, _REJOIN_MAX)

    async def _listen(self, pubsub: PubSub) -> None:
        link = self._link
        task = asyncio.current_task()
        while link.connected:
            if task is not None and task.cancelling():
                # redis-py's read timeout can swallow a cancellation as "no message".
                raise asyncio.CancelledError
            async with asyncio.timeout(_TICK + link.timeout):
                message = cast(
                    "dict[str, object] | None",
                    await pubsub.get_message(ignore_subscribe_messages=True, timeout=_TICK),
                )
            if message is not None and message.get("type") in {"message", b"message"}:
                self._on_message(message.get("data"))
            now = self._now()
            if now >= self._next_sync:
                self._next_sync = now + _BEAT
                await self._sync()
            if self._budget is not None and link.connected:
                await self._budget.tick(now)
            if self._waiters and self._timer is None and not (self._leasing or self._cutting):
                self._reschedule()  # a safety net: nothing is on its way to wake them

    async def _sync(self, *, always: bool = False) -> bool:
        """A heartbeat: say we are sending, count who else is, adopt the fleet's state."""
        link = self._link
        now = self._now()
        sent_at = self._log.last
        last = max(-math.inf if sent_at is None else sent_at, self._joined_at)
        reply = await link.call(
            link.sync,
            [link.keys.state, link.keys.pause, link.keys.members],
            [
                link.id,
                int(now - last < _MEMBER_WINDOW),
                round(_MEMBER_WINDOW * 1000),
                _MEMBERS_TTL_MS,
                link.keys.channel,
                link.reader.max_pause_ms,
            ],
            always=always,
        )
        sync = link.read(reply, link.reader.sync)
        if sync is None:
            return False
        self._share = max(1, sync.members)
        self._adopt_state(sync.state)
        if sync.pause > 0:
            self._adopt_pause(sync.pause)
        return True

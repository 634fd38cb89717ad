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

The client tells the throttle its token when it starts using it; one ``RedisThrottle``
serves one token (a client with another token raises ``ValueError`` when it starts).
Close it when done (``aclose`` or ``async with``): a throttle made by ``from_url`` closes
its own connection pool then; one given a client leaves that client open.
"""

from __future__ import annotations

import re
from typing import Final, Self, TypedDict, Unpack

import attrs

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('inkit_async.redis needs redis-py: pip install "inkit-async[redis]"') from exc

from ._closing import AsyncClosing
from ._redis_state import RedisState
from ._throttle import Throttle, regulator_of
from ._validate import check_number, check_optional_int

__all__ = ["FleetState", "RedisThrottle"]

#: Seconds each Redis call may take before the throttle counts Redis as lost.
DEFAULT_REDIS_TIMEOUT: Final = 0.25
#: Seconds an in-flight lease lives without renewal (``kill -9`` frees it within this).
DEFAULT_LEASE_TTL: Final = 10.0
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


class ThrottleArguments(TypedDict, total=False):
    """The keyword options of ``Throttle``, which ``RedisThrottle`` takes as they are.

    ``tests/test_redis_throttle.py`` holds it to ``Throttle.__init__``: the same names, in
    the same order, with the same annotations. Their defaults are ``Throttle``'s.
    """

    rate_limit: float | None
    max_wait: float
    retry_ratio: float
    retry_reserve: int
    outage_after: int


class RedisThrottleArguments(ThrottleArguments, total=False):
    """The keyword options of ``RedisThrottle``, which ``from_url`` takes as they are.

    Held to ``RedisThrottle.__init__`` by the same test; the defaults are the class's.
    """

    namespace: str | None
    max_in_flight: int | None
    lease_ttl: float
    timeout: float


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
    return check_optional_int("max_in_flight", value, minimum=1)


class RedisThrottle(AsyncClosing, Throttle):
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

    Keyword Args:
        rate_limit (float | None): A limit you know, in requests per second, for the
            whole fleet (default: none).
        max_wait (float): As for ``Throttle`` (default 60).
        retry_ratio (float): As for ``Throttle`` (default 0.2); the retry budget stays
            per process.
        retry_reserve (int): As for ``Throttle`` (default 200).
        outage_after (int): As for ``Throttle`` (default 5); the pause it starts holds
            for the fleet.

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
        lease_ttl: float = 10.0,  # literal defaults: the API reference shows them as written
        timeout: float = 0.25,
        **throttle: Unpack[ThrottleArguments],
    ) -> None:
        super().__init__(**throttle)
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
        self._fleet = RedisState(
            client,
            namespace=self.namespace,
            max_in_flight=self.max_in_flight,
            lease_ttl=self.lease_ttl,
            timeout=self.timeout,
            max_wait=self.max_wait,
        )
        # The throttle's machinery shares through Redis from now on.
        regulator_of(self).use(self._fleet)

    @classmethod
    def from_url(cls, url: str, **options: Unpack[RedisThrottleArguments]) -> Self:
        """A throttle on the Redis at *url* (``redis://host:6379/0``), with a pool of its own.

        The pool connects lazily, with *timeout* to connect and per command and no
        retries of redis-py's own (the throttle falls back instead); closing the throttle
        closes it. The options are those of the class.

        Raises:
            TypeError: An option has the wrong type.
            ValueError: An option has an impossible value, or *url* is not a Redis URL.
        """
        seconds = _check_positive("timeout", options.get("timeout", DEFAULT_REDIS_TIMEOUT), 0.01)
        options["timeout"] = seconds
        client = Redis.from_url(  # pyright: ignore[reportUnknownMemberType]
            url,
            socket_timeout=seconds,
            socket_connect_timeout=seconds,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        throttle = cls(client, **options)
        throttle._fleet.owns_client = True
        return throttle

    def __repr__(self) -> str:
        """Show the key prefix (the token's key), the link and the rate; never the token."""
        curve = regulator_of(self).curve
        rate = "none" if curve is None else f"{curve.rate:.1f}/s"
        link = self._fleet.link
        where = "connected" if link.connected else "local"
        return (
            f"<RedisThrottle {link.keys.prefix} {where} rate={rate} "
            f"rate_limit={self.rate_limit} max_in_flight={self.max_in_flight}>"
        )

    async def __aenter__(self) -> Self:
        """Join the fleet now (rather than at the first request); close on the way out."""
        self._fleet.start()
        return self

    # -- the public extras -------------------------------------------------------------

    @property
    def fleet(self) -> FleetState:
        """A snapshot of the link to Redis and of what the fleet looks like from here."""
        fleet = self._fleet
        link = fleet.link
        return FleetState(
            connected=link.connected,
            processes=fleet.share,
            outages=link.outages,
            leases=fleet.leases,
            key_prefix=link.keys.prefix,
            ignored=link.ignored,
        )

    async def aclose(self) -> None:
        """Stop talking to Redis: give back the leases held, and close the pool if it is ours.

        The throttle goes on working on this process's own state, as after losing Redis.
        Closing twice does nothing more.
        """
        await self._fleet.aclose()

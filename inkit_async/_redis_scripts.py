"""The Redis side of ``inkit_async.redis.RedisThrottle``: key names, Lua scripts, and reading.

Everything a fleet shares for one API token lives under one key prefix,
``inkit:{<namespace>:<token key>}`` (the braces are a Redis Cluster hash tag, so every
key of a token lands in one slot and a script may touch them all):

``...:state``
    A hash: the fleet's sending rate (``rate``, ``refused``, ``blind``, ``cut_at``), its
    ``epoch`` (every cut advances it), the fleet-wide GCRA (``tat``, the time the next
    paced request may leave, and ``seq``, the paced requests let go), the stretch the
    estimate of the server's limit reads (``span_seq``, ``span_at``, ``span_bucket``)
    and the server's bucket as first seen (``burst``). It expires ``state_ttl`` after
    the last write.
``...:pause``
    A string whose time to live is the pause: ``PTTL`` is how long every process holds
    back still.
``...:members``
    A sorted set of the processes that sent recently, scored by their last heartbeat;
    old entries are dropped by every heartbeat, and the key expires.
``...:leases``
    A sorted set of in-flight leases (``max_in_flight``), scored by when each expires;
    expired ones are dropped by every take, and the key expires.
``...:events`` (a pub/sub channel, not a key)
    ``c <origin> <epoch> <rate> <refused> <blind>`` for a cut, ``p <origin> <ms>
    <outage>`` for a pause, ``m <origin> <count>`` when a process joins.

All times are Redis's own clock (``TIME``, in milliseconds), and the scripts return
ages and delays, never absolute times, so the hosts' clocks never need to agree.
Floats travel as strings: Lua numbers returned to Redis lose their fraction.

**Nothing read from Redis is trusted.** Anyone who can write to that Redis can write
these keys and publish on the channel (its name is in plain sight), and so can a process
of another version. So:

- The scripts read the state hash only through ``load`` (the ``_PRELUDE``): every field is
  checked (a number, finite, in range; ``tat`` no further ahead than any process of ours
  ever sets it) and one that is not is taken as absent; a hash without a usable rate is a
  hash without a rate (epoch 0), which the next cut writes afresh. A pause key longer
  than the longest pause (or without a time to live) is no pause, and the next pause
  replaces it; heartbeats and leases scored further ahead than any process of ours
  scores them are dropped. What the scripts write is built from checked values only.
- Python reads every script reply and every message through ``Reader``, the one place
  where numbers from Redis enter the throttle, with the same bounds (the Lua reads the
  constants below). A value out of bounds raises ``Garbage``: the throttle ignores that
  message, or treats that reply as a failed Redis call (this process's own state, and a
  rejoin with backoff), and logs once.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Final, cast

import attrs

from ._flow.curve import MIN_RATE

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CUT",
    "HORIZON_MS",
    "LEASE",
    "LEASES_FREE",
    "LEASES_RENEW",
    "LEASES_TAKE",
    "MAX_BURST",
    "MAX_RATE",
    "MIN_RATE",
    "PAUSE",
    "SYNC",
    "Cut",
    "FleetRate",
    "Garbage",
    "Keys",
    "Lease",
    "Members",
    "Pause",
    "Reader",
    "Span",
    "Sync",
]

#: The highest sending rate the fleet shares: more is no limit at all (a higher rate is sent
#: as this one).
MAX_RATE: Final = 1e9
#: Epochs and send numbers are integers below this (exact in a double, and in Lua's
#: ``%.14g``); one at the limit is taken as absent, and counting starts again.
MAX_COUNT: Final = 10**12
#: The largest server bucket (requests) the fleet records.
MAX_BURST: Final = 1e9
#: The most processes a heartbeat may count.
MAX_MEMBERS: Final = 100_000
#: How far back (ms) a time in the state may lie before it is taken as absent (~3 years).
MAX_AGE_MS: Final = 1e11
#: A leased slot but the first is never more than this many milliseconds ahead.
HORIZON_MS: Final = 100
#: The longest gap (ms) between two paced slots: one interval at the lowest rate.
_SLOWEST_MS: Final = 1000 / MIN_RATE
#: Longest field, and longest message, read (characters): none of ours is longer.
_FIELD_MAX: Final = 40
_MESSAGE_MAX: Final = 200

_PRELUDE: Final = f"""
local MIN_RATE, MAX_RATE, MAX_BURST = {MIN_RATE!r}, {MAX_RATE!r}, {MAX_BURST!r}
local MAX_COUNT, MAX_AGE_MS = {MAX_COUNT}, {MAX_AGE_MS!r}
local SLOWEST_MS, HORIZON_MS = {_SLOWEST_MS!r}, {HORIZON_MS}
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local function fmt(x) return string.format('%.17g', x) end
-- A number in [lo, hi] (NaN fails both comparisons), or nil.
local function within(v, lo, hi)
  local x = tonumber(v)
  if x and x >= lo and x <= hi then return x end
  return nil
end
-- A whole number in [0, MAX_COUNT), or nil.
local function count(v)
  local x = within(v, 0, MAX_COUNT - 1)
  if x and x == math.floor(x) then return x end
  return nil
end
-- Milliseconds the pause key holds back still: 0 for none, and for a key no process of
-- ours writes (longer than the longest pause, or without a time to live).
local function pause_left(key, max_pause)
  local ms = redis.call('PTTL', key)
  if ms <= 0 or ms > max_pause then return 0 end
  return ms
end
-- The state hash, every field checked; a field that fails is absent (nil).
local function load(key, now, max_pause, left)
  local s = redis.call('HMGET', key, 'epoch', 'rate', 'refused', 'blind', 'cut_at', 'burst',
                       'span_seq', 'span_at', 'span_bucket', 'tat', 'seq')
  local earliest, latest = now - MAX_AGE_MS, now + max_pause
  local t = {{
    epoch = count(s[1]) or 0, rate = within(s[2], MIN_RATE, MAX_RATE),
    refused = within(s[3], MIN_RATE, MAX_RATE), blind = s[4] == '1',
    cut_at = within(s[5], earliest, latest), burst = within(s[6], 0, MAX_BURST) or 0,
    span_seq = count(s[7]), span_at = within(s[8], earliest, latest),
    span_bucket = within(s[9], 0, MAX_BURST), seq = count(s[11]) or 0,
  }}
  if not t.rate then t.epoch = 0 end  -- no usable rate: as if none were set
  if t.rate and (not t.refused or t.refused < t.rate) then t.refused = t.rate end
  -- The next free slot is never further ahead than a pause's end, or than one interval
  -- at the lowest rate past the lease horizon: no process of ours sets it further.
  local tat = within(s[10], earliest, math.huge)
  if tat then tat = math.min(tat, now + math.max(left, SLOWEST_MS) + HORIZON_MS) end
  t.tat = tat
  return t
end
local function opt(x)
  if x then return fmt(x) end
  return ''
end
-- The stretch the estimate reads, as replies carry it: its first send, age ms, bucket.
local function span(t, now)
  local age = ''
  if t.span_at then age = fmt(now - t.span_at) end
  return opt(t.span_seq), age, opt(t.span_bucket)
end
local function state(t, now)
  if t.epoch == 0 then return {{'0', '', '', '', '', fmt(t.burst), '', '', ''}} end
  local cut_age, blind = '', '0'
  if t.cut_at then cut_age = fmt(now - t.cut_at) end
  if t.blind then blind = '1' end
  return {{fmt(t.epoch), fmt(t.rate), fmt(t.refused), blind, cut_age, fmt(t.burst),
          span(t, now)}}
end
-- Now, and the state hash (KEYS[1]) read with the pause left (KEYS[2]) bounding its times,
-- for a script whose longest pause is max_pause ms.
local function now_and_state(max_pause)
  local now = now_ms()
  return now, load(KEYS[1], now, max_pause, pause_left(KEYS[2], max_pause))
end
local function with_state(reply, t, now)
  for _, v in ipairs(state(t, now)) do table.insert(reply, v) end
  return reply
end
"""

#: A heartbeat: note this process (when it sent lately), drop the silent ones, and
#: return ``{members, pause ms left, state...}``; a process new to the set is announced.
#: KEYS: state, pause, members. ARGV: process id, active (0/1), window ms, members TTL ms,
#: channel, longest pause ms.
SYNC: Final = (
    _PRELUDE
    + """
local now = now_ms()
local added = 0
if ARGV[2] == '1' then added = redis.call('ZADD', KEYS[3], now, ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[3]))
-- Heartbeats are scored now: one ahead of now (past a clock step) is no process of ours.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '(' .. fmt(now + tonumber(ARGV[3])), '+inf')
redis.call('PEXPIRE', KEYS[3], ARGV[4])
local members = redis.call('ZCARD', KEYS[3])
if added == 1 then redis.call('PUBLISH', ARGV[5], 'm ' .. ARGV[1] .. ' ' .. members) end
local max_pause = tonumber(ARGV[6])
local left = pause_left(KEYS[2], max_pause)
return with_state({members, left}, load(KEYS[1], now, max_pause, left), now)
"""
)

#: Lease paced sends from the fleet-wide GCRA: up to ``want`` consecutive slots, 1/rate
#: apart, from the fleet's next free one, none (but the first) beyond the horizon.
#: Returns ``{n, epoch, first slot delay ms, interval ms, seq of the first, span...}``,
#: or ``{0, state...}`` when the caller's epoch is not the fleet's (it must adopt first).
#: KEYS: state, pause. ARGV: known epoch, rate, want, state TTL ms, longest pause ms.
LEASE: Final = (
    _PRELUDE
    + """
local now, t = now_and_state(tonumber(ARGV[5]))
if t.epoch ~= tonumber(ARGV[1]) then return with_state({0}, t, now) end
local interval = 1000 / tonumber(ARGV[2])
local tat = math.max(t.tat or now, now)
local first = tat
local want = tonumber(ARGV[3])
local horizon = now + HORIZON_MS
local n = 0
repeat
  n = n + 1
  tat = tat + interval
until n >= want or tat > horizon
redis.call('HSET', KEYS[1], 'tat', fmt(tat), 'seq', fmt(t.seq + n))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {n, fmt(t.epoch), fmt(first - now), fmt(interval), t.seq + 1, span(t, now)}
"""
)

#: Cut the fleet's rate, if nobody did since the caller's epoch; publish it. The next
#: slot is no sooner than the guard: requests that left on older slots (or in processes
#: that have not heard of the cut yet) are still arriving at the server.
#: Returns ``{1, epoch}``, or ``{0, state...}`` when another cut came first.
#: KEYS: state, pause. ARGV: process id, known epoch, rate, refused, blind (0/1), burst to
#: add, cut age ms, state TTL ms, channel, guard ms, longest pause ms.
CUT: Final = (
    _PRELUDE
    + """
local now, t = now_and_state(tonumber(ARGV[11]))
if tonumber(ARGV[6]) > 0 then
  t.burst = math.min(t.burst + tonumber(ARGV[6]), MAX_BURST)
  redis.call('HSET', KEYS[1], 'burst', fmt(t.burst))
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
end
if t.epoch ~= tonumber(ARGV[2]) then return with_state({0}, t, now) end
local epoch = t.epoch + 1
redis.call('HSET', KEYS[1], 'epoch', fmt(epoch), 'rate', ARGV[3], 'refused', ARGV[4],
           'blind', ARGV[5], 'cut_at', fmt(now - tonumber(ARGV[7])),
           'tat', fmt(now + math.max(1000 / tonumber(ARGV[3]), tonumber(ARGV[10]))),
           'seq', fmt(t.seq), 'span_seq', fmt(t.seq + 1), 'span_at', fmt(now),
           'span_bucket', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('PUBLISH', ARGV[9], 'c ' .. ARGV[1] .. ' ' .. fmt(epoch) .. ' ' .. ARGV[3] .. ' '
           .. ARGV[4] .. ' ' .. ARGV[5])
return {1, epoch}
"""
)

#: Pause the fleet, unless a pause at least as long is on; publish it. The stretch the
#: estimate reads starts again when the pause ends, with the server's bucket full.
#: KEYS: state, pause. ARGV: process id, pause ms, outage (0/1), state TTL ms, channel,
#: longest pause ms.
PAUSE: Final = (
    _PRELUDE
    + """
local now = now_ms()
local ms = tonumber(ARGV[2])
local max_pause = tonumber(ARGV[6])
local left = pause_left(KEYS[2], max_pause)
if left >= ms then return 0 end
local t = load(KEYS[1], now, max_pause, left)
redis.call('SET', KEYS[2], ARGV[3], 'PX', math.max(1, math.ceil(ms)))
local ends = now + ms
redis.call('HSET', KEYS[1], 'cut_at', fmt(ends), 'seq', fmt(t.seq), 'span_seq', fmt(t.seq + 1),
           'span_at', fmt(ends), 'span_bucket', fmt(t.burst), 'burst', fmt(t.burst),
           'tat', fmt(math.max(t.tat or 0, ends)))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[5], 'p ' .. ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
return 1
"""
)

#: Take up to ``#ids`` in-flight leases, as many as the budget has free; return how many
#: (the first ones of ``ids``). Leases expire within their TTL: one scored later (past a
#: clock step of a second) is no process of ours, and is dropped.
#: KEYS: leases. ARGV: max in flight, TTL ms, ids...
LEASES_TAKE: Final = (
    _PRELUDE
    + """
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. fmt(now + tonumber(ARGV[2]) + 1000), '+inf')
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local n = 0
for i = 3, #ARGV do
  if n >= free then break end
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[i])
  n = n + 1
end
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return n
"""
)

#: Extend (or, after Redis lost them, restore) leases this process holds.
#: KEYS: leases. ARGV: TTL ms, ids...
LEASES_RENEW: Final = (
    _PRELUDE
    + """
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1]))
return #ARGV - 1
"""
)

#: Give leases back. KEYS: leases. ARGV: ids...
LEASES_FREE: Final = """
for i = 1, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
return #ARGV
"""

#: The token's key: scrypt with the parameters of an interactive login (16 MiB, about
#: 50 ms once per throttle), so that each guess at a token costs as much to check.
_KDF_SALT: Final = b"inkit-async:fleet:v2:"
_KDF_N: Final = 2**14
_KDF_R: Final = 8
_KDF_BYTES: Final = 12


def token_key(namespace: str | None, api_token: str) -> str:
    """The part of the key names that stands for *api_token* (24 hex digits).

    Every process computes the same one from the same token and namespace, with nothing
    to share but those: scrypt, with a fixed salt that names the namespace. See the
    "Running many workers" docs page for why a slow hash, and why no secret.
    """
    salt = _KDF_SALT + (namespace or "").encode()
    derived = hashlib.scrypt(
        api_token.encode(), salt=salt, n=_KDF_N, r=_KDF_R, p=1, maxmem=2**26, dklen=_KDF_BYTES
    )
    return derived.hex()


class Keys:
    """The Redis names of one token's fleet state (see the module docstring)."""

    __slots__ = ("channel", "leases", "members", "pause", "prefix", "state")

    def __init__(self, namespace: str | None, api_token: str | None) -> None:
        """Name the keys for *api_token* (by ``token_key``) under *namespace*."""
        digest = "unbound" if api_token is None else token_key(namespace, api_token)
        tag = digest if namespace is None else f"{namespace}:{digest}"
        self.prefix = f"inkit:{{{tag}}}"
        self.state = f"{self.prefix}:state"
        self.pause = f"{self.prefix}:pause"
        self.members = f"{self.prefix}:members"
        self.leases = f"{self.prefix}:leases"
        self.channel = f"{self.prefix}:events"


# -- reading what Redis says ---------------------------------------------------------------


class Garbage(Exception):  # noqa: N818 - what it is, not an error of the caller's
    """A value read from Redis that the throttle will not use; its text says which."""


@attrs.frozen
class Span:
    """The fleet's stretch the estimate of the server's limit reads."""

    seq: int
    """The fleet's number of the stretch's first send."""
    age: float
    """Seconds since it began (negative: it begins when a pause ends)."""
    bucket: float
    """The server's bucket when it began."""


@attrs.frozen
class FleetRate:
    """The fleet's rate state, as a script's ``state(...)`` reply gives it."""

    epoch: int
    """Cuts so far; 0: Redis holds no rate (the other fields but ``burst`` are unset)."""
    burst: float
    """The server's bucket as first seen, summed over the processes."""
    rate: float = 0.0
    refused: float = 0.0
    blind: bool = False
    cut_age: float = 0.0
    """Seconds since the cut (negative: the curve starts when a pause ends)."""
    span: Span | None = None


@attrs.frozen
class Lease:
    """Paced slots leased from the fleet's GCRA."""

    count: int
    delay: float
    """Seconds until the first slot."""
    interval: float
    """Seconds between slots."""
    first: int
    """The fleet's number of the first slot's send."""
    span: Span | None


@attrs.frozen
class Sync:
    """A heartbeat's answer."""

    members: int
    pause: float
    """Seconds the fleet's pause holds back still (0: none)."""
    state: FleetRate


@attrs.frozen
class Cut:
    """A cut another process announced."""

    origin: str
    epoch: int
    rate: float
    refused: float
    blind: bool


@attrs.frozen
class Pause:
    """A pause another process announced."""

    origin: str
    seconds: float


@attrs.frozen
class Members:
    """A process joined; this many send now."""

    origin: str
    count: int


class Reader:
    """The one place where what comes from Redis enters the throttle; every number is checked.

    *max_pause* (seconds) is the longest pause taken from Redis: a longer one is garbage,
    as a ``Retry-After`` above ``max_retry_after`` is not waited on.
    """

    __slots__ = ("max_pause",)

    def __init__(self, max_pause: float) -> None:
        """Read with pauses up to *max_pause* seconds."""
        self.max_pause = max_pause

    @property
    def max_pause_ms(self) -> int:
        """The longest pause in milliseconds, for the scripts."""
        return math.ceil(self.max_pause * 1000)

    def sync(self, reply: object) -> Sync:
        """A ``SYNC`` reply."""
        values = _values(reply, "heartbeat", 2 + _STATE_FIELDS)
        pause = _int("pause", values[1], -2, self.max_pause_ms)
        return Sync(
            members=_int("members", values[0], 0, MAX_MEMBERS),
            pause=max(0, pause) / 1000,
            state=self.state(values[2:]),
        )

    def lease(self, reply: object, want: int) -> Lease | FleetRate:
        """A ``LEASE`` reply for *want* slots: the slots, or the fleet's newer state."""
        values = _values(reply, "lease", 1, 1 + _STATE_FIELDS)
        count = _int("slots", values[0], 0, want)
        if count == 0:
            return self.state(_values(values[1:], "lease", _STATE_FIELDS))
        values = _values(values, "lease", 8)
        _int("epoch", values[1], 0, MAX_COUNT - 1)
        latest = self.max_pause_ms + _SLOWEST_MS + HORIZON_MS
        return Lease(
            count=count,
            delay=_number("slot delay", values[2], 0, latest) / 1000,
            interval=_number("interval", values[3], 1000 / MAX_RATE, _SLOWEST_MS) / 1000,
            first=_int("send number", values[4], 1, MAX_COUNT),
            span=self._span(values[5:8]),
        )

    def cut(self, reply: object) -> int | FleetRate:
        """A ``CUT`` reply: the new epoch, or the state of the cut that came first."""
        values = _values(reply, "cut", 2, 1 + _STATE_FIELDS)
        if _int("cut", values[0], 0, 1) == 1:
            return _int("epoch", _values(values, "cut", 2)[1], 1, MAX_COUNT - 1)
        return self.state(_values(values[1:], "cut", _STATE_FIELDS))

    def taken(self, reply: object, want: int) -> int:
        """A ``LEASES_TAKE`` reply: how many of *want* leases were taken."""
        return _int("leases taken", reply, 0, want)

    def state(self, values: Sequence[object]) -> FleetRate:
        """The ``state(...)`` part of a reply."""
        epoch = _int("epoch", values[0], 0, MAX_COUNT - 1)
        burst = _optional("burst", values[5], 0, MAX_BURST) or 0.0
        if epoch == 0:
            return FleetRate(epoch=0, burst=burst)
        rate = _number("rate", values[1], MIN_RATE, MAX_RATE)
        refused = _optional("refused rate", values[2], MIN_RATE, MAX_RATE) or rate
        cut_age = _optional("cut age", values[4], -self.max_pause_ms, MAX_AGE_MS) or 0.0
        return FleetRate(
            epoch=epoch,
            burst=burst,
            rate=rate,
            refused=max(refused, rate),
            blind=_flag("blind", values[3]),
            cut_age=cut_age / 1000,
            span=self._span(values[6:9]),
        )

    def message(self, data: object) -> Cut | Pause | Members:
        """A message on the token's channel."""
        text = _text("message", data, _MESSAGE_MAX)
        parts = text.split(" ")
        kind = parts[0]
        if kind == "c" and len(parts) == 6:
            rate = _number("rate", parts[3], MIN_RATE, MAX_RATE)
            return Cut(
                origin=parts[1],
                epoch=_int("epoch", parts[2], 1, MAX_COUNT - 1),
                rate=rate,
                refused=max(rate, _number("refused rate", parts[4], MIN_RATE, MAX_RATE)),
                blind=_flag("blind", parts[5]),
            )
        if kind == "p" and len(parts) == 4:
            ms = _number("pause", parts[2], 0, self.max_pause_ms)
            if ms <= 0:
                raise Garbage(f"pause = {parts[2][:_FIELD_MAX]!r}")
            return Pause(origin=parts[1], seconds=ms / 1000)
        if kind == "m" and len(parts) == 3:
            return Members(origin=parts[1], count=_int("members", parts[2], 1, MAX_MEMBERS))
        raise Garbage(f"message = {text[:_FIELD_MAX]!r}")

    def _span(self, values: Sequence[object]) -> Span | None:
        seq = _optional_int("stretch start", values[0], 0, MAX_COUNT - 1)
        age = _optional("stretch age", values[1], -self.max_pause_ms, MAX_AGE_MS)
        if seq is None or age is None:
            return None
        bucket = _optional("stretch bucket", values[2], 0, MAX_BURST) or 0.0
        return Span(seq=seq, age=age / 1000, bucket=bucket)


#: Fields of a ``state(...)`` reply: epoch, rate, refused, blind, cut age, burst, and the
#: stretch's start, age and bucket.
_STATE_FIELDS: Final = 9


def _values(reply: object, what: str, least: int, most: int | None = None) -> Sequence[object]:
    if not isinstance(reply, list | tuple):
        raise Garbage(f"{what} reply of type {type(reply).__name__}")
    values = cast("Sequence[object]", reply)
    if not least <= len(values) <= (most or least):
        raise Garbage(f"{what} reply of {len(values)} values")
    return values


def _text(name: str, value: object, longest: int = _FIELD_MAX) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise Garbage(f"{name} = {value[:_FIELD_MAX]!r}") from None
    if not isinstance(value, str) or len(value) > longest:
        raise Garbage(f"{name} = {str(value)[:_FIELD_MAX]!r}")
    return value


def _number(name: str, value: object, lowest: float, highest: float) -> float:
    text = _text(name, value)
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not lowest <= number <= highest:  # NaN fails both; so do the infinities
        raise Garbage(f"{name} = {text!r}")
    return number


def _int(name: str, value: object, lowest: int, highest: float) -> int:
    number = _number(name, value, lowest, highest)
    if not number.is_integer():
        raise Garbage(f"{name} = {number!r}")
    return int(number)


def _optional(name: str, value: object, lowest: float, highest: float) -> float | None:
    return None if _empty(value) else _number(name, value, lowest, highest)


def _optional_int(name: str, value: object, lowest: int, highest: float) -> int | None:
    return None if _empty(value) else _int(name, value, lowest, highest)


def _empty(value: object) -> bool:
    return isinstance(value, str | bytes) and not value


def _flag(name: str, value: object) -> bool:
    text = _text(name, value)
    if text not in {"0", "1", ""}:
        raise Garbage(f"{name} = {text!r}")
    return text == "1"

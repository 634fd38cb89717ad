"""The Lua scripts and the key names behind ``inkit_async.redis.RedisThrottle``.

Everything a fleet shares for one API token lives under one key prefix,
``inkit:{<namespace>:<token hash>}`` (the braces are a Redis Cluster hash tag, so every
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
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = [
    "CUT",
    "LEASE",
    "LEASES_FREE",
    "LEASES_RENEW",
    "LEASES_TAKE",
    "PAUSE",
    "SYNC",
    "Keys",
]

_PRELUDE: Final = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local function state(key, now)
  local s = redis.call('HMGET', key, 'epoch', 'rate', 'refused', 'blind', 'cut_at', 'burst',
                       'span_seq', 'span_at', 'span_bucket')
  local cut_age = ''
  if s[5] then cut_age = tostring(now - tonumber(s[5])) end
  local span_age = ''
  if s[8] then span_age = tostring(now - tonumber(s[8])) end
  return {s[1] or '0', s[2] or '', s[3] or '', s[4] or '', cut_age, s[6] or '0',
          s[7] or '', span_age, s[9] or ''}
end
"""

#: A heartbeat: note this process (when it sent lately), drop the silent ones, and
#: return ``{members, pause PTTL, state...}``; a process new to the set is announced.
#: KEYS: state, pause, members. ARGV: process id, active (0/1), window ms, members TTL ms,
#: channel.
SYNC: Final = (
    _PRELUDE
    + """
local now = now_ms()
local added = 0
if ARGV[2] == '1' then added = redis.call('ZADD', KEYS[3], now, ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[3], ARGV[4])
local members = redis.call('ZCARD', KEYS[3])
if added == 1 then redis.call('PUBLISH', ARGV[5], 'm ' .. ARGV[1] .. ' ' .. members) end
local reply = {members, redis.call('PTTL', KEYS[2])}
for _, v in ipairs(state(KEYS[1], now)) do table.insert(reply, v) end
return reply
"""
)

#: Lease paced sends from the fleet-wide GCRA: up to ``want`` consecutive slots, 1/rate
#: apart, from the fleet's next free one, none (but the first) beyond the horizon.
#: Returns ``{n, epoch, first slot delay ms, interval ms, seq of the first, span...}``,
#: or ``{0, state...}`` when the caller's epoch is not the fleet's (it must adopt first).
#: KEYS: state. ARGV: known epoch, rate, want, horizon ms, state TTL ms.
LEASE: Final = (
    _PRELUDE
    + """
local now = now_ms()
local s = redis.call('HMGET', KEYS[1], 'epoch', 'tat', 'seq', 'span_seq', 'span_at', 'span_bucket')
local epoch = tonumber(s[1]) or 0
if epoch ~= tonumber(ARGV[1]) then
  local reply = {0}
  for _, v in ipairs(state(KEYS[1], now)) do table.insert(reply, v) end
  return reply
end
local interval = 1000 / tonumber(ARGV[2])
local tat = math.max(tonumber(s[2]) or now, now)
local seq = tonumber(s[3]) or 0
local first = tat
local want = tonumber(ARGV[3])
local horizon = now + tonumber(ARGV[4])
local n = 0
repeat
  n = n + 1
  tat = tat + interval
until n >= want or tat > horizon
redis.call('HSET', KEYS[1], 'tat', tostring(tat), 'seq', seq + n)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local span_age = ''
if s[5] then span_age = tostring(now - tonumber(s[5])) end
return {n, tostring(epoch), tostring(first - now), tostring(interval), seq + 1,
        s[4] or '', span_age, s[6] or ''}
"""
)

#: Cut the fleet's rate, if nobody did since the caller's epoch; publish it. The next
#: slot is no sooner than the guard: requests that left on older slots (or in processes
#: that have not heard of the cut yet) are still arriving at the server.
#: Returns ``{1, epoch}``, or ``{0, state...}`` when another cut came first.
#: KEYS: state. ARGV: process id, known epoch, rate, refused, blind (0/1), burst to add,
#: cut age ms, state TTL ms, channel, guard ms.
CUT: Final = (
    _PRELUDE
    + """
local now = now_ms()
if tonumber(ARGV[6]) > 0 then
  redis.call('HINCRBYFLOAT', KEYS[1], 'burst', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
end
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch')) or 0
if epoch ~= tonumber(ARGV[2]) then
  local reply = {0}
  for _, v in ipairs(state(KEYS[1], now)) do table.insert(reply, v) end
  return reply
end
epoch = epoch + 1
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq')) or 0
redis.call('HSET', KEYS[1], 'epoch', epoch, 'rate', ARGV[3], 'refused', ARGV[4],
           'blind', ARGV[5], 'cut_at', tostring(now - tonumber(ARGV[7])),
           'tat', tostring(now + math.max(1000 / tonumber(ARGV[3]), tonumber(ARGV[10]))),
           'span_seq', seq + 1, 'span_at', tostring(now), 'span_bucket', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('PUBLISH', ARGV[9],
           'c ' .. ARGV[1] .. ' ' .. epoch .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5])
return {1, epoch}
"""
)

#: Pause the fleet, unless a pause at least as long is on; publish it. The stretch the
#: estimate reads starts again when the pause ends, with the server's bucket full.
#: KEYS: state, pause. ARGV: process id, pause ms, outage (0/1), state TTL ms, channel.
PAUSE: Final = (
    _PRELUDE
    + """
local now = now_ms()
local ms = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[2]) >= ms then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', math.max(1, math.ceil(ms)))
local s = redis.call('HMGET', KEYS[1], 'seq', 'burst', 'tat')
local ends = now + ms
redis.call('HSET', KEYS[1], 'cut_at', tostring(ends), 'span_seq', (tonumber(s[1]) or 0) + 1,
           'span_at', tostring(ends), 'span_bucket', s[2] or '0',
           'tat', tostring(math.max(tonumber(s[3]) or 0, ends)))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[5], 'p ' .. ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
return 1
"""
)

#: Take up to ``#ids`` in-flight leases, as many as the budget has free; return how many
#: (the first ones of ``ids``). KEYS: leases. ARGV: max in flight, TTL ms, ids...
LEASES_TAKE: Final = (
    _PRELUDE
    + """
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
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


class Keys:
    """The Redis names of one token's fleet state (see the module docstring)."""

    __slots__ = ("channel", "leases", "members", "pause", "prefix", "state")

    def __init__(self, namespace: str | None, api_token: str | None) -> None:
        """Name the keys for *api_token* (by its hash) under *namespace*."""
        if api_token is None:
            digest = "unbound"
        else:
            salted = b"inkit-async:fleet:" + api_token.encode()
            digest = hashlib.sha256(salted).hexdigest()[:24]
        tag = digest if namespace is None else f"{namespace}:{digest}"
        self.prefix = f"inkit:{{{tag}}}"
        self.state = f"{self.prefix}:state"
        self.pause = f"{self.prefix}:pause"
        self.members = f"{self.prefix}:members"
        self.leases = f"{self.prefix}:leases"
        self.channel = f"{self.prefix}:events"

"""The Redis state's own rules (``inkit_async/_redis_state.py``), against a scripted Redis.

No redis-server, no sockets to it, and no real time: each test runs one process's
``RedisState`` with its real ``Link`` and ``Reader`` over a Redis client whose scripts
answer what the test says, when the test says (``ScriptedRedis``), and a ``Regulator`` on
a simulated clock. The event loop runs on that clock too (``SimLoop``): a timer due in a
second fires as soon as nothing else is ready, so a wait costs no real time and every
moment is exact. The replies and messages are built as the Lua scripts build them, and
read through the real ``Reader``, so its boundary checks apply as in production.

What only Redis can show (the Lua scripts: the fleet-wide GCRA, a cut applied only at
the caller's epoch, a pause never shortened in Redis, the heartbeat set, the in-flight
leases, the checks of the state hash) is tested against a real redis-server in
``test_redis_throttle.py`` and ``test_redis_fleet.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import math
import selectors
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from inkit_async import Throttle
from inkit_async import _redis_scripts as scripts
from inkit_async._flow.curve import Curve
from inkit_async._flow.estimate import SendLog
from inkit_async._flow.regulator import Regulator
from inkit_async._redis_state import RedisState
from inkit_async._throttle import Permit, Signal
from tests.support.flow_sim import Clock

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from inkit_async._redis_link import Link

#: The throttle's Redis timeout (the default), in simulated seconds.
TIMEOUT = 0.25
#: A simulation that reaches this time (seconds) waits for something that never comes.
SIM_LIMIT = 600.0
#: ... and one that turns this many times in a row without time passing spins.
SPIN_LIMIT = 10_000
#: The fleet's state lives this long (ms) in every script call, as _redis_state sets it.
STATE_TTL_MS = 600_000
#: The longest pause (ms) read from or written to Redis, with the default max_wait (60 s).
MAX_PAUSE_MS = 60_000


# -- an event loop on the simulated clock --------------------------------------------------


class SimulationStuckError(AssertionError):
    """The simulated loop has nothing left to run, or ran past ``SIM_LIMIT``."""


class SimLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock is the simulation's: idle, it jumps to its next timer."""

    def __init__(self, clock: Clock) -> None:
        """Run on *clock*."""
        self.clock = clock
        self.idle_waiters: list[asyncio.Future[None]] = []
        self.states: list[RedisState] = []
        """The Redis states made on this loop: closed when the test ends."""
        super().__init__(_SimSelector(self))

    def time(self) -> float:
        """The simulated time."""
        return self.clock.now


class _SimSelector(selectors.DefaultSelector):
    """Polls without blocking; where the loop would block, time jumps instead."""

    def __init__(self, loop: SimLoop) -> None:
        super().__init__()
        self.loop = loop
        self.spins = 0  # turns of the loop in a row at one instant

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or timeout == 0:
            # A timer that sets itself for now again, for ever, would hang the test here.
            self.spins += 1
            if self.spins > SPIN_LIMIT:
                raise SimulationStuckError(f"the loop spins at {self.loop.clock.now} s")
            return events
        self.spins = 0
        loop = self.loop
        if loop.idle_waiters:  # nothing is ready at this instant: wake who waits for that
            waiters, loop.idle_waiters = loop.idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            return []
        if timeout is None:
            raise SimulationStuckError("nothing is scheduled and nothing can wake the loop")
        loop.clock.now += timeout
        if loop.clock.now > SIM_LIMIT:
            raise SimulationStuckError(f"the simulation ran past {SIM_LIMIT} s")
        return []


def on_the_simulated_loop(
    test: Callable[..., Coroutine[Any, Any, None]],
) -> Callable[..., None]:
    """Run the coroutine test *test* on a fresh ``SimLoop`` whose clock starts at 0."""

    def run(**kwargs: object) -> None:
        loop = SimLoop(Clock())
        try:
            loop.run_until_complete(test(**kwargs))
        finally:
            for state in loop.states:  # as RedisThrottle.aclose: nothing is spawned after
                loop.run_until_complete(state.aclose())
            tasks = asyncio.all_tasks(loop)  # callers still waiting
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks))
            loop.close()

    run.__name__ = test.__name__
    run.__qualname__ = test.__qualname__
    run.__doc__ = test.__doc__
    run.__signature__ = inspect.signature(test)  # type: ignore[attr-defined]
    return run


def sim_loop() -> SimLoop:
    """The running ``SimLoop``."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, SimLoop)
    return loop


async def settle() -> None:
    """Let everything due at this instant run; no simulated time passes."""
    loop = sim_loop()
    waiter = loop.create_future()
    loop.idle_waiters.append(waiter)
    await waiter


async def advance(seconds: float) -> None:
    """Let *seconds* of simulated time pass, running whatever falls due, then settle."""
    loop = sim_loop()
    reached = loop.create_future()
    loop.call_at(loop.clock.now + seconds, reached.set_result, None)
    await reached
    await settle()


# -- a Redis that answers the scripts as the test says -------------------------------------

_SCRIPT_NAMES = {
    scripts.SYNC: "sync",
    scripts.LEASE: "lease",
    scripts.CUT: "cut",
    scripts.PAUSE: "pause",
    scripts.LEASES_TAKE: "take",
    scripts.LEASES_RENEW: "renew",
    scripts.LEASES_FREE: "free",
}


@attrs.define
class Call:
    """One script call the state made: its arguments, and its reply once answered."""

    script: str
    keys: list[str]
    args: list[object]
    at: float
    reply: asyncio.Future[object]

    def answer(self, reply: object) -> None:
        """Reply *reply*, as the script would."""
        self.reply.set_result(reply)

    def fail(self, error: Exception) -> None:
        """Fail, as a lost connection does."""
        self.reply.set_exception(error)


class ScriptedRedis:
    """A ``redis.asyncio.Redis`` as ``Link`` uses it, whose scripts answer from the test.

    A call to a script with a standing answer gets it at once (a heartbeat, say); any
    other waits until the test answers it, or until the link's timeout ends it. Messages
    the test publishes reach the state's subscription.
    """

    def __init__(self, heartbeat: object) -> None:
        """Answer every heartbeat with *heartbeat*, and every pause."""
        self.calls: list[Call] = []
        self.standing: dict[str, object] = {"sync": heartbeat, "pause": 1}
        self.messages: asyncio.Queue[object] = asyncio.Queue()
        self.connection_pool = _Pool()

    def register_script(self, source: str) -> _Script:
        """The script with *source*."""
        return _Script(self, _SCRIPT_NAMES[source])

    def pubsub(self) -> _PubSub:
        """A subscription."""
        return _PubSub(self)

    def publish(self, data: object) -> None:
        """Publish *data* on the channel (as any client of that Redis may)."""
        self.messages.put_nowait(data)

    def called(self, script: str) -> list[Call]:
        """The calls made to *script*, oldest first."""
        return [call for call in self.calls if call.script == script]

    def pending(self, script: str) -> Call:
        """The one call to *script* that waits for its answer."""
        waiting = [call for call in self.called(script) if not call.reply.done()]
        assert len(waiting) == 1, f"{len(waiting)} calls to {script} wait"
        return waiting[0]


class _Script:
    def __init__(self, redis: ScriptedRedis, name: str) -> None:
        self.redis, self.name = redis, name

    async def __call__(self, *, keys: list[str], args: list[object]) -> object:
        loop = sim_loop()
        call = Call(self.name, list(keys), list(args), loop.clock.now, loop.create_future())
        self.redis.calls.append(call)
        if self.name in self.redis.standing:
            reply = self.redis.standing[self.name]
            if isinstance(reply, Exception):
                raise reply
            return reply
        return await call.reply


class _PubSub:
    def __init__(self, redis: ScriptedRedis) -> None:
        self.redis = redis

    async def subscribe(self, channel: str) -> None:
        pass

    async def get_message(self, *, ignore_subscribe_messages: bool, timeout: float) -> object:
        assert ignore_subscribe_messages  # none is given here
        try:
            async with asyncio.timeout(timeout):
                data = await self.redis.messages.get()
        except TimeoutError:
            return None
        return {"type": "message", "data": data}

    async def aclose(self) -> None:
        pass


class _Pool:
    async def disconnect(self, *, inuse_connections: bool) -> None:
        pass


# -- replies and messages, as the scripts write them ---------------------------------------


def fmt(number: float) -> bytes:
    """A number as the scripts' ``fmt`` writes it (a bulk string: bytes, for redis-py)."""
    return b"%.17g" % number


def span_fields(span: tuple[int, float, float] | None) -> list[object]:
    """The stretch's first send, age (ms) and bucket, or three empty fields."""
    return [b"", b"", b""] if span is None else [fmt(value) for value in span]


def state_fields(
    epoch: int = 0,
    rate: float = 0.0,
    refused: float | None = None,
    *,
    blind: bool = False,
    cut_age_ms: float = 0.0,
    burst: float = 0.0,
    span: tuple[int, float, float] | None = None,
) -> list[object]:
    """A ``state(...)`` reply part (epoch 0: Redis holds no rate)."""
    if epoch == 0:
        return [b"0", b"", b"", b"", b"", fmt(burst), b"", b"", b""]
    return [
        fmt(epoch),
        fmt(rate),
        fmt(rate if refused is None else refused),
        b"1" if blind else b"0",
        fmt(cut_age_ms),
        fmt(burst),
        *span_fields(span),
    ]


def heartbeat(members: int = 1, pause_ms: int = 0, **state: Any) -> list[object]:
    """A ``SYNC`` reply."""
    return [members, pause_ms, *state_fields(**state)]


def slots(
    count: int,
    *,
    epoch: int,
    delay_ms: float,
    rate: float,
    first: int,
    span: tuple[int, float, float] | None = None,
) -> list[object]:
    """A ``LEASE`` reply: *count* slots at *rate*, the first *delay_ms* from now."""
    return [count, fmt(epoch), fmt(delay_ms), fmt(1000 / rate), first, *span_fields(span)]


def moved(**state: Any) -> list[object]:
    """A ``LEASE`` or ``CUT`` reply when the fleet's epoch is not the caller's."""
    return [0, *state_fields(**state)]


# -- one process of a fleet ----------------------------------------------------------------


@attrs.define
class Fleet:
    """One process's part of a fleet: its regulator, its Redis state, its scripted Redis."""

    clock: Clock
    redis: ScriptedRedis
    state: RedisState
    regulator: Regulator
    granted_at: list[float] = attrs.Factory(list)

    @property
    def link(self) -> Link:
        """The state's link to Redis."""
        return self.state.link

    def callers(self, count: int) -> list[asyncio.Task[Permit]]:
        """*count* callers that ask for a permit now, each noting when it got one."""

        async def caller() -> Permit:
            permit = await self.regulator.acquire()
            self.granted_at.append(self.clock.now)
            return permit

        return [asyncio.get_running_loop().create_task(caller()) for _ in range(count)]

    def send(self, at: float) -> Permit:
        """A permit for a request leaving at *at* (the clock moves there): it must go."""
        self.clock.now = at
        permit = self.regulator.take(at)
        assert permit is not None
        return permit

    async def asked(self, script: str) -> Call:
        """The call to *script* the state makes now (it waits for its answer)."""
        await settle()
        return self.redis.pending(script)

    async def message(self, data: object) -> None:
        """Publish *data* on the channel and let the state read it."""
        self.redis.publish(data)
        await settle()


async def join(
    *,
    rate_limit: float | None = None,
    heartbeat_reply: object = None,
    wait: bool = True,
) -> Fleet:
    """A process joining a fleet whose heartbeat answers *heartbeat_reply* (a default one).

    *wait*: let the join happen before returning (else it starts at the next settle).
    """
    loop = sim_loop()
    clock = loop.clock
    options = Throttle(rate_limit=rate_limit)  # the defaults of the other options
    redis = ScriptedRedis(heartbeat() if heartbeat_reply is None else heartbeat_reply)
    state = RedisState(
        redis,  # type: ignore[arg-type]
        namespace=None,
        max_in_flight=None,
        lease_ttl=10.0,
        timeout=TIMEOUT,
        max_wait=options.max_wait,
    )
    loop.states.append(state)
    regulator = Regulator.of(options, state, clock)
    fleet = Fleet(clock, redis, state, regulator)
    if wait:
        await settle()
    return fleet


# -- pacing on the fleet's slots -----------------------------------------------------------


@on_the_simulated_loop
async def test_callers_leave_on_the_fleets_slots_each_when_it_is_due():
    """A leased slot is used at its time (a timer's tick early), never sooner.

    Two callers at a known 100/s: the state leases two slots for them (20 ms of the
    rate), 5 and 15 ms ahead, at the fleet's epoch; each caller leaves as its slot comes.
    A flat rate (a known limit, no cut) is not written to Redis.
    """
    fleet = await join(rate_limit=100.0)
    fleet.callers(2)
    await settle()
    lease = await fleet.asked("lease")
    assert lease.keys == [fleet.link.keys.state, fleet.link.keys.pause]
    assert lease.args == [0, "100.0", 2, STATE_TTL_MS, MAX_PAUSE_MS]  # epoch, rate, slots
    lease.answer(slots(2, epoch=0, delay_ms=5, rate=100.0, first=1))
    await settle()
    assert fleet.granted_at == []
    await advance(0.02)
    assert fleet.granted_at == pytest.approx([0.004, 0.014])
    assert fleet.redis.called("cut") == []


@pytest.mark.parametrize(("late_to", "leave"), [(0.145, 2), (0.155, 1)])
@on_the_simulated_loop
async def test_a_slot_more_than_0_1_s_past_is_dropped_not_used(late_to, leave):
    """A busy loop may use a slot late, by up to 0.1 s; an older one is dropped.

    Slots at 50 and 60 ms; the loop looks at the callers again only at *late_to*. At
    145 ms both slots are within 0.1 s and both callers go; at 155 ms the first is 105 ms
    past: one caller goes, on the second slot, and the other waits for new slots.
    """
    fleet = await join(rate_limit=100.0)
    fleet.callers(2)
    await settle()
    (await fleet.asked("lease")).answer(slots(2, epoch=0, delay_ms=50, rate=100.0, first=1))
    await settle()
    fleet.clock.now = late_to  # the loop was busy until then
    await settle()
    assert fleet.granted_at == [late_to] * leave
    assert len(fleet.redis.called("lease")) == 2  # the next slots are asked for


@on_the_simulated_loop
async def test_more_slots_are_asked_for_as_the_last_is_used_for_the_callers_beyond_it():
    """The next lease is asked for when one slot is left and more callers wait; no sooner.

    Six callers at 150/s: three slots (20 ms of the rate). The first slot used leaves two:
    nothing is asked (each process holds a few slots at a time, so that the fleet's
    timeline stays shared). The second leaves one for five waiting: three more are asked
    for, for the callers beyond the one slot left.
    """
    fleet = await join(rate_limit=150.0)
    fleet.callers(6)
    await settle()
    lease = await fleet.asked("lease")
    assert lease.args[2] == 3
    lease.answer(slots(3, epoch=0, delay_ms=0, rate=150.0, first=1))
    await settle()
    assert fleet.granted_at == [0.0]
    assert len(fleet.redis.called("lease")) == 1
    await advance(1 / 150)
    assert fleet.granted_at == pytest.approx([0.0, 1 / 150 - 0.001])
    assert (await fleet.asked("lease")).args[2] == 3


@pytest.mark.parametrize(("rate_limit", "members", "interval"), [(100.0, 4, 0.04), (1.0, 10, 2.0)])
@on_the_simulated_loop
async def test_without_redis_a_process_paces_its_share_of_the_rate(rate_limit, members, interval):
    """Redis lost: the rate it knew, divided among the processes it last saw, paced here.

    100/s among 4 processes: 25/s, one send per 40 ms. 1/s among 10 is 0.1/s, which would
    put the next send 10 s ahead: never below the lowest rate, 0.5/s, so 2 s. Nothing is
    asked of Redis meanwhile.
    """
    fleet = await join(rate_limit=rate_limit, heartbeat_reply=heartbeat(members=members))
    assert fleet.state.share == members
    fleet.redis.standing["sync"] = ConnectionError("Redis went away")
    await advance(0.05)  # the listener's next heartbeat fails
    assert not fleet.link.connected
    fleet.callers(3)
    await advance(2 * interval)
    assert fleet.granted_at == pytest.approx(
        [0.05, 0.05 + interval - 0.001, 0.05 + 2 * interval - 0.001]
    )
    assert fleet.redis.called("lease") == []


@pytest.mark.parametrize("outcome", ["joined", "refused", "unanswered"])
@on_the_simulated_loop
async def test_callers_wait_while_the_first_join_is_under_way(outcome):
    """Until the first heartbeat ends, a paced caller waits (nothing to time: the join wakes it).

    Joined: it leaves on a fleet slot. Refused, or unanswered within the timeout: on this
    process's own pacing, as soon as the join has failed.
    """
    fleet = await join(rate_limit=100.0, wait=False)
    del fleet.redis.standing["sync"]
    await settle()
    beat = await fleet.asked("sync")
    assert fleet.regulator.take(0.0) is None
    assert fleet.regulator.due(0.0) == math.inf
    fleet.callers(1)
    await settle()
    assert fleet.granted_at == []
    assert fleet.redis.called("lease") == []
    if outcome == "joined":
        beat.answer(heartbeat())
        await settle()
        assert fleet.link.connected
        (await fleet.asked("lease")).answer(slots(1, epoch=0, delay_ms=0, rate=100.0, first=1))
        await settle()
        assert fleet.granted_at == [0.0]
    elif outcome == "refused":
        beat.fail(ConnectionError("Connection refused"))
        await settle()
        assert fleet.granted_at == [0.0]
    else:
        await advance(TIMEOUT)
        assert fleet.granted_at == [TIMEOUT]
    assert fleet.link.connected is (outcome == "joined")


@on_the_simulated_loop
async def test_a_fleet_rate_past_its_release_point_paces_nothing():
    """A blind cut read from Redis that has doubled far past its refused rate is no rate.

    Nothing is paced by it and no slot is asked for (a lease of nothing would spin).
    """
    old_cut = heartbeat(epoch=1, rate=7.0, refused=10.0, blind=True, cut_age_ms=100_000)
    fleet = await join(heartbeat_reply=old_cut)
    assert fleet.regulator.take(0.0) is not None
    assert fleet.regulator.curve is None
    await settle()
    assert fleet.redis.called("lease") == []


@on_the_simulated_loop
async def test_a_garbage_reply_counts_as_a_failed_call():
    """A lease of more slots than asked for is garbage: counted, and the link goes local.

    The caller waiting for it goes on at once, on this process's own pacing.
    """
    fleet = await join(rate_limit=100.0)
    fleet.callers(1)
    await settle()
    lease = await fleet.asked("lease")
    assert lease.args[2] == 1
    lease.answer(slots(2, epoch=0, delay_ms=0, rate=100.0, first=1))
    await settle()
    assert fleet.link.ignored == 1
    assert not fleet.link.connected
    assert fleet.granted_at == [0.0]


# -- the estimate and the sending rate -----------------------------------------------------


@on_the_simulated_loop
async def test_a_cut_estimates_the_servers_rate_from_the_fleets_send_numbers():
    """The fleet's sends count, not this process's: 46 sends in 0.5 s is 92/s, cut to 90%.

    The fleet paces at 100/s. This process sent the fleet's sends 1 (at 0) and 46 (at
    0.5 s, refused); the 44 between were other processes'. The stretch began with send 1
    at 0, the server's bucket empty. On its own two sends it would read 4/s.
    """
    fleet = await join(heartbeat_reply=heartbeat(epoch=1, rate=100.0))
    regulator = fleet.regulator
    assert regulator.rate_at(0.0) == 100.0
    assert regulator.take(0.0) is None
    (await fleet.asked("lease")).answer(
        slots(1, epoch=1, delay_ms=0, rate=100.0, first=1, span=(1, 0, 0))
    )
    await settle()
    regulator.release(fleet.send(0.0), Signal.OK)
    await advance(0.5)
    assert regulator.take(0.5) is None
    (await fleet.asked("lease")).answer(
        slots(1, epoch=1, delay_ms=0, rate=100.0, first=46, span=(1, 500, 0))
    )
    await settle()
    change = regulator.release(fleet.send(0.5), Signal.THROTTLED)
    assert change is not None
    assert (change.rate, change.previous_rate) == (pytest.approx(0.9 * 92), 100.0)
    cut = await fleet.asked("cut")
    assert cut.args[1] == 1  # at the fleet's epoch
    assert float(cut.args[2]) == pytest.approx(0.9 * 92)
    assert float(cut.args[3]) == pytest.approx(92)  # the rate refused


@on_the_simulated_loop
async def test_a_cut_estimates_from_this_processs_own_fleet_sends_too():
    """Since any fleet send of this process, the fleet sent at most the bucket (full) plus L*t.

    The stretch began at 0 (send 1); this process sent the fleet's sends 1 at 0, 50 at 1 s
    and 100 at 1.5 s (refused); the server's bucket is 10, as the fleet measured it. Since
    send 50: (100 - 50 - 10) / 0.5 s = 80/s, tighter than the stretch's 100 / 1.5 s. The
    fleet sent at 120/s: cut to 90% of 80.
    """
    fleet = await join(heartbeat_reply=heartbeat(epoch=1, rate=120.0, burst=10.0))
    regulator = fleet.regulator
    for at, first in [(0.0, 1), (1.0, 50), (1.5, 100)]:
        await advance(at - fleet.clock.now)
        assert regulator.take(at) is None
        (await fleet.asked("lease")).answer(
            slots(1, epoch=1, delay_ms=0, rate=120.0, first=first, span=(1, at * 1000, 0))
        )
        await settle()
        permit = fleet.send(at)
        if first < 100:
            regulator.release(permit, Signal.OK)
    change = regulator.release(permit, Signal.THROTTLED)
    assert change is not None
    assert change.rate == pytest.approx(0.9 * 80)


@on_the_simulated_loop
async def test_a_refusal_sent_before_the_fleets_stretch_began_estimates_nothing():
    """A send older than the fleet's stretch (a pause restarted it) says nothing of the rate.

    Send 5 left at 0.1 s; since then the fleet's stretch restarted at send 9, when a pause
    ends. Read against the old stretch it would say 50/s; the cut keeps near the fleet's
    last estimated limit instead, 90% of the 100/s it sent at.
    """
    fleet = await join(heartbeat_reply=heartbeat(epoch=1, rate=100.0))
    regulator = fleet.regulator
    regulator.take(0.0)
    (await fleet.asked("lease")).answer(
        slots(1, epoch=1, delay_ms=100, rate=100.0, first=5, span=(1, 0, 0))
    )
    await advance(0.1)
    refused = fleet.send(0.1)
    regulator.take(0.1)
    (await fleet.asked("lease")).answer(
        slots(1, epoch=1, delay_ms=1000, rate=100.0, first=9, span=(9, -1000, 20))
    )
    await settle()
    change = regulator.release(refused, Signal.THROTTLED)
    assert change is not None
    assert change.rate == pytest.approx(90.0)


@on_the_simulated_loop
async def test_sent_unpaced_the_estimate_and_the_sending_rate_are_scaled_by_the_share():
    """Before any rate applies, this process's own figures stand for its share of the fleet.

    Four processes send; this one sent 10 requests 10 ms apart: alone that is 111/s by the
    estimate and 40/s over the 0.25 s window; for the fleet, four times each. The estimate
    (444/s) is above what was sent (160/s), so it says nothing of the limit: the cut is
    blind, to 70% of the fleet's 160/s: 112/s (alone it would have cut to 28/s).
    """
    fleet = await join(heartbeat_reply=heartbeat(members=4))
    log = SendLog()
    for i in range(10):
        log.record(i * 0.01)
    assert fleet.state.estimate(10, log, 0.0) == pytest.approx(4 * 10 / 0.09)
    assert fleet.state.sending_rate(0.09, log) == pytest.approx(4 * 40.0)

    permits = [fleet.send(i * 0.01) for i in range(10)]
    change = fleet.regulator.release(permits[-1], Signal.THROTTLED)
    assert change is not None
    assert change.rate == pytest.approx(0.7 * 160)


# -- cuts and pauses, told to the fleet ----------------------------------------------------


@on_the_simulated_loop
async def test_each_cut_is_told_to_the_fleet_once_and_the_burst_with_the_first():
    """One ``CUT`` call per cut; the server's bucket seen at first goes with the first only.

    Ten sends 1 ms apart from a quiet start; the first five accepted, the sixth refused:
    the bucket held 5. The second cut, on a fleet slot, reports no bucket again.
    """
    fleet = await join()
    regulator = fleet.regulator
    permits = [fleet.send(i * 0.001) for i in range(10)]
    for permit in permits[:5]:
        regulator.release(permit, Signal.OK)
    first = regulator.release(permits[5], Signal.THROTTLED)
    assert first is not None
    assert first.rate == pytest.approx(28.0)  # blind: 70% of the 40/s sent
    await settle()
    cut = await fleet.asked("cut")
    assert cut.args[:2] == [fleet.link.id, 0]
    assert [float(value) for value in cut.args[2:4]] == pytest.approx([28.0, 40.0])
    assert cut.args[4:] == [1, "5.0", 0.0, STATE_TTL_MS, fleet.link.keys.channel, 20, 60_000]
    assert regulator.take(0.02) is None  # no slots at the old epoch while it is on its way
    await settle()
    assert fleet.redis.called("lease") == []
    cut.answer([1, 1])  # the fleet's epoch 1
    await settle()

    # Sent 20 ms after the cut: within 10 ms, a refusal would count as sent before it.
    assert regulator.take(0.02) is None
    (await fleet.asked("lease")).answer(
        slots(1, epoch=1, delay_ms=0, rate=28.0, first=1, span=(1, 0, 0))
    )
    await settle()
    second = regulator.release(fleet.send(0.02), Signal.THROTTLED)
    assert second is not None
    await settle()
    cuts = fleet.redis.called("cut")
    assert len(cuts) == 2
    assert cuts[1].args[1] == 1
    assert cuts[1].args[5] == "0.0"


@pytest.mark.parametrize(("pause", "told"), [(2.0, "2000.0"), (90.0, "60000.0")])
@on_the_simulated_loop
async def test_a_pause_is_told_to_the_fleet_no_longer_than_every_process_takes(pause, told):
    """A ``Retry-After`` pauses every process; shared, it is capped at 60 s (max_wait here).

    This process pauses for all of it itself.
    """
    fleet = await join()
    change = fleet.regulator.release(fleet.send(0.0), Signal.THROTTLED, pause)
    assert change is not None
    assert change.pause == pause
    await settle()
    (call,) = fleet.redis.called("pause")
    link = fleet.link
    assert call.args == [link.id, told, 0, STATE_TTL_MS, link.keys.channel, MAX_PAUSE_MS]
    assert fleet.regulator.snapshot().paused_for == pause


@on_the_simulated_loop
async def test_a_pause_from_the_fleet_is_adopted_not_told_again_and_never_shortens_one():
    """Another process's pause holds here too, unless one as long is on; it is not re-sent.

    This process pauses 5 s; a 2 s pause from the fleet changes nothing, an 8 s one holds.
    """
    fleet = await join()
    fleet.regulator.release(fleet.send(0.0), Signal.THROTTLED, 5.0)
    await settle()
    await fleet.message(b"p 0a1b2c3d4e5f 2000.0 0")
    assert fleet.regulator.snapshot().paused_for == 5.0
    await fleet.message(b"p 0a1b2c3d4e5f 8000.0 0")
    assert fleet.regulator.snapshot().paused_for == 8.0
    assert len(fleet.redis.called("pause")) == 1  # this process's own only


@on_the_simulated_loop
async def test_a_process_that_joins_during_a_pause_holds_back_for_what_is_left():
    """The heartbeat carries the pause still on (the key's time to live); it is not re-sent."""
    fleet = await join(heartbeat_reply=heartbeat(pause_ms=3000))
    snapshot = fleet.regulator.snapshot()
    assert (snapshot.paused_for, snapshot.pauses) == (3.0, 1)
    assert fleet.regulator.take(0.0) is None
    assert fleet.redis.called("pause") == []


@on_the_simulated_loop
async def test_cuts_and_pauses_without_redis_stay_here_and_seed_a_redis_that_came_back_empty():
    """Lost, the process cuts and pauses alone; rejoining a Redis with no rate, it gives its cut.

    The cut goes with its age (97 ms by then), so that the fleet's curve goes on where
    this process's is, and with the server's bucket it measured meanwhile (3 requests).
    """
    fleet = await join()
    fleet.redis.standing["sync"] = ConnectionError("Redis went away")
    await advance(0.05)
    assert not fleet.link.connected
    permits = [fleet.send(0.05 + i * 0.001) for i in range(4)]
    for permit in permits[:3]:
        fleet.regulator.release(permit, Signal.OK)
    change = fleet.regulator.release(permits[3], Signal.THROTTLED, 0.01)
    assert change is not None
    await settle()
    assert fleet.redis.called("cut") == fleet.redis.called("pause") == []
    fleet.redis.standing["sync"] = heartbeat()  # back, and empty
    await advance(0.1)
    assert fleet.link.connected
    cut = await fleet.asked("cut")
    assert cut.args[1] == 0
    assert float(cut.args[2]) == pytest.approx(change.rate)
    assert float(cut.args[6]) == pytest.approx(97.0)  # ms since the cut
    assert cut.args[5] == "3.0"


@on_the_simulated_loop
async def test_slots_leased_before_redis_was_lost_are_not_used_after_it_is_back():
    """The fleet may have moved on during the outage: the slots held then are dropped."""
    fleet = await join(rate_limit=100.0)
    assert fleet.regulator.take(0.0) is None
    (await fleet.asked("lease")).answer(slots(1, epoch=0, delay_ms=90, rate=100.0, first=1))
    fleet.redis.standing["sync"] = ConnectionError("Redis went away")
    await advance(0.05)
    assert not fleet.link.connected
    fleet.redis.standing["sync"] = heartbeat()
    await advance(0.1)
    assert fleet.link.connected  # at 0.15 s: the slot at 0.09 s would still be in time
    assert fleet.regulator.take(fleet.clock.now) is None
    assert (await fleet.asked("lease")).at == fleet.clock.now  # new slots


# -- adopting what the fleet decided -------------------------------------------------------


@on_the_simulated_loop
async def test_a_cut_from_the_fleet_is_adopted_in_a_new_epoch_and_clears_the_slots():
    """A cut message: its curve here, answers to older sends cut nothing, old slots go.

    The slot leased at the old rate (50 ms ahead) is dropped: the next send asks for a new
    one at the new epoch and rate. The same cut heard again changes nothing.
    """
    fleet = await join(heartbeat_reply=heartbeat(epoch=1, rate=100.0))
    regulator = fleet.regulator
    regulator.take(0.0)
    (await fleet.asked("lease")).answer(slots(1, epoch=1, delay_ms=0, rate=100.0, first=1))
    await settle()
    sent = fleet.send(0.0)
    assert regulator.take(0.0) is None
    (await fleet.asked("lease")).answer(slots(1, epoch=1, delay_ms=50, rate=100.0, first=2))
    await settle()

    fleet.redis.standing["sync"] = heartbeat(epoch=2, rate=50.0, refused=80.0)  # Redis now
    await fleet.message(b"c 0a1b2c3d4e5f 2 50.0 80.0 0")
    assert regulator.curve == Curve(rate=50.0, refused=80.0, blind=False, cut_at=0.0)
    assert not regulator.is_current(sent)
    assert regulator.release(sent, Signal.THROTTLED) is None  # the fleet's cut answered it
    assert regulator.take(0.0) is None
    lease = await fleet.asked("lease")
    assert lease.args[0] == 2
    assert float(lease.args[1]) == pytest.approx(50.0)
    await fleet.message(b"c 0a1b2c3d4e5f 2 10.0 20.0 1")
    assert regulator.curve == Curve(rate=50.0, refused=80.0, blind=False, cut_at=0.0)
    assert fleet.redis.called("cut") == []


@on_the_simulated_loop
async def test_slots_leased_before_a_fleet_cut_came_are_not_used():
    """A lease answered after a cut was adopted is at the old rate: dropped, and asked again."""
    fleet = await join(heartbeat_reply=heartbeat(epoch=1, rate=100.0))
    regulator = fleet.regulator
    regulator.take(0.0)
    old = await fleet.asked("lease")
    fleet.redis.standing["sync"] = heartbeat(epoch=2, rate=50.0, refused=80.0)
    await fleet.message(b"c 0a1b2c3d4e5f 2 50.0 80.0 0")
    old.answer(slots(1, epoch=1, delay_ms=0, rate=100.0, first=1))
    await settle()
    assert regulator.take(0.0) is None
    again = await fleet.asked("lease")
    assert again.args[0] == 2
    assert float(again.args[1]) == pytest.approx(50.0)


@on_the_simulated_loop
async def test_a_lease_at_an_old_epoch_adopts_the_fleets_rate_and_asks_again():
    """Redis answers a lease asked at an old epoch with the fleet's state: adopt it, ask again."""
    fleet = await join(heartbeat_reply=heartbeat(epoch=1, rate=100.0))
    fleet.regulator.take(0.0)
    (await fleet.asked("lease")).answer(moved(epoch=2, rate=50.0, refused=80.0, burst=12.0))
    await settle()
    assert fleet.regulator.curve == Curve(rate=50.0, refused=80.0, blind=False, cut_at=0.0)
    again = await fleet.asked("lease")
    assert again.args[0] == 2
    assert float(again.args[1]) == pytest.approx(50.0)


@on_the_simulated_loop
async def test_a_cut_another_process_made_first_is_adopted_instead():
    """Two processes cut from one epoch: Redis keeps the first; the other adopts it."""
    fleet = await join()
    fleet.regulator.release(fleet.send(0.0), Signal.THROTTLED)
    await settle()
    theirs = moved(epoch=1, rate=60.0, refused=75.0, cut_age_ms=20.0)
    (await fleet.asked("cut")).answer(theirs)
    await settle()
    assert fleet.regulator.curve == Curve(rate=60.0, refused=75.0, blind=False, cut_at=-0.02)
    assert len(fleet.redis.called("cut")) == 1
    assert fleet.regulator.take(0.0) is None
    assert (await fleet.asked("lease")).args[0] == 1


@on_the_simulated_loop
async def test_messages_from_this_process_itself_are_ignored():
    """Its own cut, pause and join come back on the channel: they change nothing here."""
    fleet = await join()
    sent = fleet.send(0.0)
    me = fleet.link.id
    for message in (f"c {me} 1 5.0 10.0 1", f"p {me} 5000.0 0", f"m {me} 7"):
        await fleet.message(message.encode())
    assert fleet.regulator.curve is None
    assert fleet.regulator.is_current(sent)
    assert fleet.regulator.snapshot().paused_for == 0.0
    assert fleet.state.share == 1
    assert fleet.link.ignored == 0


@pytest.mark.parametrize(
    "data",
    [
        b"c 0a1b2c3d4e5f 2 nan 80 0",
        b"c 0a1b2c3d4e5f 2 50 80",
        b"c 0a1b2c3d4e5f 0 50 80 0",
        b"p 0a1b2c3d4e5f 60001 0",
        b"p 0a1b2c3d4e5f 0 0",
        b"m 0a1b2c3d4e5f 0",
        b"m 0a1b2c3d4e5f 1e12",
        b"x",
        b"\xff\xfe",
        b"p 0a1b2c3d4e5f 1000 0 " + b"x" * 300,
        12345,
        None,
    ],
)
@on_the_simulated_loop
async def test_garbage_on_the_channel_is_ignored_and_counted(data):
    """Anyone on that Redis can publish: a message that fails the checks changes nothing.

    It is counted (``fleet.ignored``), the link stays up, and the next message is read.
    """
    fleet = await join()
    sent = fleet.send(0.0)
    await advance(0.05)  # past the listener's first heartbeat: the next is 0.5 s away
    await fleet.message(data)
    assert fleet.link.ignored == 1
    assert fleet.link.connected
    assert fleet.regulator.curve is None
    assert fleet.regulator.is_current(sent)
    assert fleet.regulator.snapshot().paused_for == 0.0
    assert fleet.state.share == 1
    await fleet.message(b"m 0a1b2c3d4e5f 3")
    assert fleet.state.share == 3


@on_the_simulated_loop
async def test_the_share_is_the_processes_sending_by_the_last_word_of_the_fleet():
    """A process joining announces the count; every heartbeat counts again (at least 1)."""
    fleet = await join(heartbeat_reply=heartbeat(members=2))
    assert fleet.state.share == 2
    await advance(0.05)  # past the listener's first heartbeat: the next is 0.5 s away
    await fleet.message(b"m 0a1b2c3d4e5f 3")
    assert fleet.state.share == 3
    log = SendLog()
    log.record(0.05)
    assert fleet.state.sending_rate(0.05, log) == 3 * 4.0
    fleet.redis.standing["sync"] = heartbeat(members=0)  # this process idle, and alone
    await advance(1.0)
    assert fleet.state.share == 1


# -- the heartbeat and the link ------------------------------------------------------------


@on_the_simulated_loop
async def test_a_process_counts_as_sending_for_3_s_after_its_join_or_its_last_request():
    """Each heartbeat (every 0.5 s) says whether this process sent, or joined, in the last 3 s."""
    fleet = await join()
    await advance(3.5)
    fleet.send(3.5)
    await advance(1.0)
    beats = fleet.redis.called("sync")
    link = fleet.link
    assert beats[0].args == [link.id, 1, 3000, 60_000, link.keys.channel, MAX_PAUSE_MS]
    last_active = [3.5 if call.at > 3.5 else 0.0 for call in beats]  # the send, or the join
    active = [int(call.at - last < 3.0) for call, last in zip(beats, last_active, strict=True)]
    assert [call.args[1] for call in beats] == active
    assert active[-1] == 1
    assert 0 in active
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(beats)]
    assert max(gaps) <= 0.55 + 1e-9  # every 0.5 s, on the listener's 50 ms tick


@on_the_simulated_loop
async def test_rejoining_waits_0_1_s_doubling_to_2_s_and_from_0_1_s_again_after_10_s_up():
    """A Redis that fails again at once is not retried in a tight loop, nor slowly after a lull."""
    fleet = await join(wait=False)
    fleet.redis.standing["sync"] = ConnectionError("Connection refused")
    await advance(7.2)
    attempts = [call.at for call in fleet.redis.called("sync")]
    assert attempts == pytest.approx([0.0, 0.1, 0.3, 0.7, 1.5, 3.1, 5.1, 7.1])
    fleet.redis.standing["sync"] = heartbeat()
    await advance(2.0)
    assert fleet.link.connected  # since 9.1 s
    await advance(10.1)  # up for 10 s
    before = len(fleet.redis.called("sync"))
    fleet.redis.standing["sync"] = ConnectionError("Connection refused")
    await advance(1.0)
    assert not fleet.link.connected
    attempts = [call.at for call in fleet.redis.called("sync")[before:]]
    lost_at = attempts[0]  # the next heartbeat
    assert attempts[:3] == pytest.approx([lost_at, lost_at + 0.1, lost_at + 0.3])

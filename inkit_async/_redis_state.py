"""The fleet's state for a ``RedisThrottle``: the hooks of ``_flow/state.py``, through Redis.

The regulator decides; this state tells the fleet what it decided (cuts, pauses, the
server's bucket), paces on the fleet's slots, estimates from the fleet's send numbers,
holds the in-flight leases, and hands the fleet's decisions to the regulator
(``Regulator.adopt``, ``adopt_pause``, ``adopt_burst``). See ``inkit_async/redis.py`` for
what is shared and how, and ``_redis_link.py`` for the link that every call goes through.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hashlib
import hmac
import math
from typing import TYPE_CHECKING, Final, cast

from . import _redis_scripts as scripts
from ._constants import DEFAULT_MAX_RETRY_AFTER
from ._flow.curve import MIN_RATE, Curve
from ._flow.estimate import Stretch, estimate_rate
from ._flow.pacer import TOLERANCE
from ._flow.state import LOCAL_SLOT
from ._redis_link import Budget, Link
from ._throttle import ThrottleTimeoutError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

    from ._flow.estimate import SendLog
    from ._flow.pacer import Pacer
    from ._flow.regulator import Regulator
    from ._flow.signals import Permit

__all__ = ["RedisState"]

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


class RedisState:
    """One process's part of a fleet's flow control (see the module docstring)."""

    def __init__(
        self,
        client: Redis,
        *,
        namespace: str | None,
        max_in_flight: int | None,
        lease_ttl: float,
        timeout: float,
        max_wait: float,
    ) -> None:
        """Share through *client* under *namespace*; the options come checked."""
        self.namespace = namespace
        self.max_wait = max_wait
        self._regulator: Regulator | None = None
        self.owns_client = False
        """Whether closing closes the client's pool (``RedisThrottle.from_url``)."""
        self._bound: bytes | None = None  # a fingerprint of the token, once bound
        # A pause read from Redis is honoured up to the longest a caller waits, or the
        # default max_retry_after if that is longer: a longer one is garbage.
        reader = scripts.Reader(max_pause=max(max_wait, DEFAULT_MAX_RETRY_AFTER))
        self._link = Link(
            client, timeout, reader, on_lost=self._on_lost, on_rejoined=self._on_rejoined
        )
        self._link.keys = scripts.Keys(namespace, None)
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
        self._budget = (
            None if max_in_flight is None else Budget(self._link, max_in_flight, lease_ttl)
        )

    @property
    def regulator(self) -> Regulator:
        """The regulator this state serves."""
        assert self._regulator is not None  # noqa: S101 - attached when the throttle is made
        return self._regulator

    def attach(self, regulator: Regulator) -> None:
        """Serve *regulator*; join the fleet now if an event loop runs (else at first use)."""
        self._regulator = regulator
        with contextlib.suppress(RuntimeError):  # made outside a loop: join at first use
            asyncio.get_running_loop()
            self._start()

    @property
    def link(self) -> Link:
        """The link to Redis."""
        return self._link

    @property
    def leases(self) -> int:
        """In-flight leases held now."""
        return 0 if self._budget is None else self._budget.held

    @property
    def share(self) -> int:
        """Processes that sent through the fleet lately, as last seen (this one included)."""
        return self._share

    def start(self) -> None:
        """Join the fleet now, if not joined or closed yet."""
        if self._runner is None and not self._link.closed:
            self._start()

    def bind(self, api_token: str) -> None:
        """Name the keys after *api_token*'s key; the client calls this with its token.

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
        if self.regulator.sent:
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
        await link.close(owns_client=self.owns_client)
        self._slots.clear()
        self.regulator.wake()

    async def admit(self, acquire: Callable[[], Awaitable[Permit]]) -> Permit:
        """An in-flight lease (with ``max_in_flight``), then a permit through *acquire*.

        Raises:
            ThrottleTimeoutError: As for the regulator's ``acquire``; ``max_wait`` bounds
                the wait for the lease and the permit together.
        """
        self.start()
        budget = self._budget
        if budget is None:
            return await acquire()
        try:
            async with asyncio.timeout(self.max_wait):
                lease = await budget.take()
                try:
                    permit = await acquire()
                except BaseException:
                    budget.give(lease)
                    raise
        except TimeoutError:
            raise ThrottleTimeoutError from None
        budget.attach(permit, lease)
        return permit

    def finished(self, permit: Permit) -> None:
        """Give back the request's lease."""
        if self._budget is not None:
            self._budget.detach(permit)

    # -- pacing on the fleet's slots -----------------------------------------------------

    def take_paced(self, now: float, rate: float, pacer: Pacer) -> int | None:
        """A fleet slot due now, or, on our own, our share of the rate paced locally."""
        link = self._link
        if not link.connected:
            if link.joining:
                return None  # the first join ends within ~2 timeouts, and wakes them
            # On our own: our share of the fleet's rate, paced locally.
            # Never below the lowest rate: a share of a low rate among many processes
            # (up to scripts' bound) would push the next send days ahead.
            return LOCAL_SLOT if pacer.take(now, max(rate / self._share, MIN_RATE)) else None
        slots = self._slots
        while slots and slots[0][0] < now - _LATE:
            slots.popleft()
        if slots and now >= slots[0][0] - TOLERANCE:  # as next_paced names it
            _, seq = slots.popleft()
            if len(slots) <= 1 and self.regulator.waiting > len(slots):
                # Ask for the next ones while the last is used; no sooner, so that each
                # process holds a few slots at a time and the fleet's timeline is shared.
                self._want_slots()
            return seq
        if not slots:
            self._want_slots()
        return None

    def granted(self, seq: int, slot: int, now: float) -> None:
        """Remember which fleet slot request *seq* left on, for the fleet's estimate."""
        if slot != LOCAL_SLOT:
            self._remember(seq, slot, now)

    def next_paced(self, pacer: Pacer) -> float:
        """The next fleet slot (or the local pacer's time, on our own)."""
        link = self._link
        if not link.connected:
            return math.inf if link.joining else pacer.next_at
        if self._slots:
            return self._slots[0][0] - TOLERANCE
        self._want_slots()  # its answer wakes the waiters
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
            and self.regulator.rate_at(self.regulator.now()) is not None
        ):
            self._leasing = True
            self._link.spawn(self._lease_slots())

    async def _lease_slots(self) -> None:
        link = self._link
        try:
            for _ in range(3):  # after adopting the fleet's newer state, ask again
                rate = self.regulator.rate_at(
                    self.regulator.now()
                )  # past its release point: dropped
                if rate is None or not link.connected:
                    return
                rate = min(rate, scripts.MAX_RATE)
                span = max(1, min(_LEASE_MAX, int(rate * _LEASE_SPAN)))
                want = max(1, min(span, self.regulator.waiting - len(self._slots)))
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
                now = self.regulator.now()
                start = now + lease.delay
                self._slots.extend(
                    (start + j * lease.interval, lease.first + j) for j in range(lease.count)
                )
                self._read_span(now, lease.span)
                return
        finally:
            self._leasing = False
            self.regulator.wake()

    # -- cuts and pauses, shared -----------------------------------------------------------

    def cut_made(self, curve: Curve, burst: float | None) -> None:
        """Tell the fleet of our cut (and, once, of the server's bucket we saw at first).

        The cut itself is read back from the regulator when it is sent (*curve* is it).
        """
        del curve
        if burst is not None and not self._burst_reported:
            self._burst_reported = True
            self._burst_report += burst  # what this process saw accepted at first
        self._slots.clear()  # leased at the old rate
        if self._link.connected:
            self._push_cut()

    def estimate(self, seq: int, log: SendLog, burst: float) -> float | None:
        """The server's rate from the fleet's sends (our own, scaled, when sent unpaced)."""
        fleet = self._fleet_sends.get(seq)
        if fleet is None:
            # Sent unpaced: this process's own estimate, scaled to the fleet's size.
            estimate = log.estimate(seq, burst)
            return None if estimate is None else estimate * self._share
        # Sent on a fleet slot: the fleet's sends since its stretch began, as the local
        # throttle reads its own (the server's bucket as it was when the stretch began).
        # Or since any of this process's own fleet sends after that, when the server's
        # bucket was at best full: the fleet's numbers count every process's sends.
        refused_seq, refused_at = fleet
        if refused_seq < self._span_seq:
            return None
        stretch = Stretch(self._span_seq, self._span_at, self._span_bucket)
        sends = (self._fleet_sends[local_seq] for local_seq in self._fleet_order)
        earlier = ((fleet_seq, at) for fleet_seq, at in sends if fleet_seq >= self._span_seq)
        return estimate_rate((refused_seq, refused_at), stretch, earlier, burst)

    def sending_rate(self, at: float, log: SendLog, since: float | None = None) -> float:
        """Our own sending rate, scaled to the fleet's size."""
        return log.sending_rate(at, since) * self._share

    def paused(self, seconds: float) -> None:
        """Tell the fleet of our pause."""
        if self._link.connected:
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
                cut = self.regulator.curve
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
                        max(0.0, (self.regulator.now() - cut.cut_at) * 1000),
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
            self.regulator.wake()  # lease at the new rate

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
            self.regulator.adopt_burst(state.burst)
        if state.epoch == 0:
            # Redis holds no rate (it expired, Redis restarted empty, or what it held was
            # garbage): give it ours.
            self._fleet_epoch = 0
            curve = self.regulator.curve
            if curve is not None and curve.refused:
                self._push_cut()
            return
        if state.epoch == self._fleet_epoch:
            return
        self._adopt(
            state.epoch, state.rate, state.refused, blind=state.blind, cut_age=state.cut_age
        )
        self._read_span(self.regulator.now(), state.span)

    def _adopt(
        self, epoch: int, rate: float, refused: float, *, blind: bool, cut_age: float
    ) -> None:
        self._fleet_epoch = epoch
        self._cut_pending = False
        self._slots.clear()
        rate = max(rate, MIN_RATE)
        now = self.regulator.now()
        self.regulator.adopt(
            Curve(rate=rate, refused=max(refused, rate), blind=blind, cut_at=now - cut_age)
        )

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
                self.regulator.adopt_pause(message.seconds)
            case scripts.Members():
                self._share = message.count

    # -- the link to Redis ---------------------------------------------------------------

    def _start(self) -> None:
        self.regulator.now()  # ties the clock to the running loop, as the first acquire would
        self._runner = asyncio.get_running_loop().create_task(self._run())

    def _on_lost(self) -> None:
        self._slots.clear()
        if self._budget is not None:
            self._budget.go_local()
        self.regulator.wake()

    def _on_rejoined(self) -> None:
        if self._budget is not None:
            self._budget.rejoined()
        self.regulator.wake()

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
                self._joined_at = self.regulator.now()
                if await self._sync(always=True):
                    joined = self.regulator.now()
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
            if self.regulator.now() - joined >= _STABLE:
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
            now = self.regulator.now()
            if now >= self._next_sync:
                self._next_sync = now + _BEAT
                await self._sync()
            if self._budget is not None and link.connected:
                await self._budget.tick(now)
            if not (self._leasing or self._cutting):
                self.regulator.nudge()  # a safety net: nothing is on its way to wake them

    async def _sync(self, *, always: bool = False) -> bool:
        """A heartbeat: say we are sending, count who else is, adopt the fleet's state."""
        link = self._link
        now = self.regulator.now()
        sent_at = self.regulator.last_send
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
            self.regulator.adopt_pause(sync.pause)
        return True

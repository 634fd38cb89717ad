"""A throttle serves one running event loop at a time, and carries over to the next one.

Waiting callers are futures of one loop: a script's successive ``asyncio.run`` calls and
pytest's loop per test hand the throttle on, with its rate and pauses; a loop running in
another thread at the same time is refused with a clear error. Real event loops, no
sockets (a loop's own wake-up pair is all they open).
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from inkit_async import InkitError, Throttle
from inkit_async._flow.signals import Signal
from inkit_async._throttle import regulator_of


def test_a_throttle_carries_its_rate_and_pause_over_to_the_next_loop() -> None:
    """A pause and a cut made under one asyncio.run hold under the next, on its clock."""
    throttle = Throttle()
    regulator = regulator_of(throttle)

    async def refused() -> None:
        permit = await regulator.acquire()
        regulator.release(permit, Signal.THROTTLED, pause=0.05)

    asyncio.run(refused())
    assert throttle.state.cuts == 1
    assert throttle.state.pauses == 1

    async def next_run() -> float:
        loop = asyncio.get_running_loop()
        asked = loop.time()
        permit = await regulator.acquire()  # the probe, once the pause is over
        assert permit.probe
        regulator.release(permit, Signal.OK)
        assert regulator.now() == pytest.approx(loop.time(), abs=0.01)  # this loop's clock
        return loop.time() - asked

    waited = asyncio.run(next_run())
    assert waited < 1.0  # the pause of the first run, not a wait on its dead timer
    assert throttle.state.cuts == 1
    assert throttle.state.rate is not None  # the cut's rate carried over


def test_callers_a_loop_left_waiting_are_dropped_when_the_next_loop_comes() -> None:
    """A loop that ended with callers queued (a long pause) leaves nothing behind."""
    throttle = Throttle(max_wait=30)
    regulator = regulator_of(throttle)

    async def left_waiting() -> None:
        permit = await regulator.acquire()
        regulator.release(permit, Signal.THROTTLED, pause=0.2)
        waiter = asyncio.ensure_future(regulator.acquire())
        await asyncio.sleep(0)
        assert regulator.waiting == 1
        loop = asyncio.get_running_loop()
        loop.stop()  # ends run_until_complete below with the caller still queued
        await waiter  # never reached

    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match="stopped"):
            loop.run_until_complete(left_waiting())
    finally:
        loop.close()

    async def next_run() -> None:
        permit = await regulator.acquire()  # the probe after the pause: not behind a ghost
        assert permit.probe
        assert regulator.waiting == 0
        regulator.release(permit, Signal.OK)

    asyncio.run(asyncio.wait_for(next_run(), 5))


def test_a_loop_running_in_another_thread_is_refused_clearly() -> None:
    """Two loops at once cannot share the waiting callers: the second gets InkitError."""
    throttle = Throttle()
    regulator = regulator_of(throttle)
    started = threading.Event()
    finish = threading.Event()

    async def hold() -> None:
        permit = await regulator.acquire()
        regulator.release(permit, Signal.OK)
        started.set()
        while not finish.is_set():
            await asyncio.sleep(0.01)

    thread = threading.Thread(target=asyncio.run, args=(hold(),))
    thread.start()
    try:
        assert started.wait(10)

        async def meanwhile() -> None:
            await regulator.acquire()

        with pytest.raises(InkitError, match="another thread") as caught:
            asyncio.run(meanwhile())
        assert "BlockingInkit" in str(caught.value)
    finally:
        finish.set()
        thread.join(10)
    assert not thread.is_alive()

    async def afterwards() -> None:  # that loop has ended: this one is served
        regulator.release(await regulator.acquire(), Signal.OK)

    asyncio.run(afterwards())


def test_the_state_can_be_read_from_another_thread_while_callers_queue() -> None:
    """``throttle.state`` copies the queue before counting it (BlockingInkit reads it so)."""
    throttle = Throttle(max_wait=30)
    regulator = regulator_of(throttle)
    counts: list[int] = []

    async def queue_and_read() -> None:
        permit = await regulator.acquire()
        regulator.release(permit, Signal.THROTTLED, pause=0.2)
        waiters = [asyncio.ensure_future(regulator.acquire()) for _ in range(200)]
        reader = threading.Thread(
            target=lambda: counts.extend(throttle.state.waiting for _ in range(2000))
        )
        reader.start()
        for waiter in waiters:  # the queue changes while the other thread reads it
            waiter.cancel()
            await asyncio.sleep(0)
        await asyncio.to_thread(reader.join, 10)

    asyncio.run(queue_and_read())
    assert counts
    assert all(0 <= count <= 200 for count in counts)

"""A throttle serves every event loop that uses it: one after another, or at once in threads.

A script's successive ``asyncio.run`` calls and pytest's loop per test carry the rate and
pauses over; loops running at the same time in several threads share them, each with its
own queue of callers, woken across threads. A state kept through a store (Redis) serves
one running loop at a time, and refuses another clearly. Real event loops, no sockets (a
loop's own wake-up pair is all they open).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable

import pytest

from inkit_async import InkitError, Throttle
from inkit_async._flow.regulator import Regulator
from inkit_async._flow.signals import Signal
from inkit_async._flow.state import LocalState
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
        assert regulator.now() == pytest.approx(time.monotonic(), abs=0.01)  # no loop's
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


def _in_threads(*runs: Callable[[], Awaitable[object]]) -> list[object]:
    """Run each coroutine function under asyncio.run in a thread of its own, all at once."""
    results: list[object] = [None] * len(runs)

    def run(index: int) -> None:
        try:
            results[index] = asyncio.run(runs[index]())
        except BaseException as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(runs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_loops_running_at_once_in_threads_share_one_pause_and_wake_each_other() -> None:
    """A pause made in one loop holds callers in two others; the probe's success frees both.

    Whichever loop's caller gets the probe, the other loop's caller waits for its answer
    with no timer of its own before max_wait (30 s): only the wake that the probe's
    success sends across threads lets it go, well within the 5 s each allows.
    """
    throttle = Throttle(max_wait=30)
    regulator = regulator_of(throttle)

    async def refused() -> None:
        permit = await regulator.acquire()
        regulator.release(permit, Signal.THROTTLED, pause=0.3)

    asyncio.run(refused())
    both_waiting = threading.Barrier(2, timeout=10)

    async def caller() -> bool:
        async with asyncio.timeout(5):
            await asyncio.to_thread(both_waiting.wait)  # both queue within the pause
            permit = await regulator.acquire()
            if permit.probe:
                await asyncio.sleep(0.2)  # the other loop's caller is queued behind it
            regulator.release(permit, Signal.OK)
            return permit.probe

    results = _in_threads(caller, caller)
    assert sorted(results) == [False, True]  # type: ignore[type-var]  # both bools
    assert throttle.state.cuts == 1
    assert throttle.state.waiting == 0


def test_loops_in_threads_hammering_one_throttle_lose_no_permit() -> None:
    """4 loops, 150 calls each, answers that cut the rate now and then: every call ends."""
    throttle = Throttle(max_wait=30)
    regulator = regulator_of(throttle)

    async def calls(refuse_every: int) -> int:
        done = 0

        async def one(number: int) -> None:
            nonlocal done
            permit = await regulator.acquire()
            await asyncio.sleep(0)
            refused = number % refuse_every == 0
            regulator.release(permit, Signal.THROTTLED if refused else Signal.OK)
            done += 1

        async with asyncio.timeout(60):  # paced at the cut rate: a few seconds
            for start in range(0, 150, 50):
                await asyncio.gather(*(one(n) for n in range(start, start + 50)))
        return done

    results = _in_threads(*(functools.partial(calls, every) for every in (37, 53, 71, 89)))
    assert results == [150, 150, 150, 150]
    assert regulator.sent == 600  # every permit counted once, none lost to a race
    assert throttle.state.waiting == 0


class _StoreState(LocalState):
    """A state that is not this process's own (as a fleet's through Redis is)."""

    __slots__ = ()


def test_a_store_backed_throttle_serves_one_running_loop_at_a_time() -> None:
    """A state kept through a store runs on one loop: another running loop is refused."""
    regulator = Regulator.of(Throttle(), _StoreState())
    started = threading.Event()
    finish = threading.Event()

    async def hold() -> None:
        regulator.release(await regulator.acquire(), Signal.OK)
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

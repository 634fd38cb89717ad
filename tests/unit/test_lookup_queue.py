"""The fan-out queue: first come first started, joins, leaving, windows, deadlines.

``Coalescer.enqueue`` and ``LookupQueue`` with a stand-in ``send`` whose requests end
when the test answers them, and ``Lookups`` (``_fanout.py``) over them: no client, no
socket, plain keys and values.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from inkit_async import APIConnectionError, DeadlineExceededError, InkitError, NotFoundError
from inkit_async._coalesce import Coalescer, LookupQueue, Ticket
from inkit_async._deadline import CallDeadline
from inkit_async._fanout import Lookups, gather_lookups


class Requests:
    """A stand-in for the engine's send: each request waits until the test answers it."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.running = 0
        self.most = 0
        self._answers: dict[str, asyncio.Future[Any]] = {}

    async def send(self, deadline: CallDeadline | None, key: str) -> str:
        """The request for *key*: until answered (or cancelled)."""
        del deadline
        self.started.append(key)
        self.running += 1
        self.most = max(self.most, self.running)
        answer = self._answers.setdefault(key, asyncio.get_running_loop().create_future())
        try:
            return await answer
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        finally:
            self.running -= 1
            del self._answers[key]

    def answer(self, key: str, value: object = None, error: BaseException | None = None) -> None:
        """End the request under way for *key* with *value* (``batch <key>``) or *error*."""
        answer = self._answers[key]
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(f"batch {key}" if value is None else value)

    def under_way(self) -> list[str]:
        """The keys whose requests wait for an answer."""
        return list(self._answers)


def not_found(message: str = "no such batch") -> NotFoundError:
    """A 404's error, as the engine raises it."""
    request = httpx.Request("GET", "http://127.0.0.1:9/v1/batch/k")
    response = httpx.Response(404, json={"error": message}, request=request)
    return NotFoundError(message, response=response, body={"error": message})


async def turns(count: int = 1) -> None:
    """Let the loop run *count* iterations."""
    for _ in range(count):
        await asyncio.sleep(0)


def enqueue(
    coalescer: Coalescer,
    queue: LookupQueue,
    requests: Requests,
    key: str,
    deadline: CallDeadline | None = None,
) -> Ticket:
    """Queue (or join) the lookup of *key*."""
    return coalescer.enqueue(key, deadline, queue, requests.send, key)


async def test_lookups_start_first_come_first_started_at_most_width_at_once():
    """Two slots; a caller's 3 keys, then another's 2: started in that order, 2 at a time."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(2)
    first = [enqueue(coalescer, queue, requests, key) for key in ("a1", "a2", "a3")]
    second = [enqueue(coalescer, queue, requests, key) for key in ("b1", "b2")]
    assert len(queue) == 5
    await turns(3)
    assert requests.started == ["a1", "a2"]
    for key in ("a2", "a1", "a3", "b1", "b2"):
        requests.answer(key)
        await turns(3)
    assert requests.started == ["a1", "a2", "a3", "b1", "b2"]
    assert requests.most == 2
    assert [ticket.waiter.result() for ticket in [*first, *second]] == [
        "batch a1",
        "batch a2",
        "batch a3",
        "batch b1",
        "batch b2",
    ]
    assert len(coalescer) == len(queue) == queue.running == 0


async def test_filling_up_starts_one_lookup_per_loop_iteration():
    """Room for 5: one starts per iteration, so the first requests do not land as one burst."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(5)
    for number in range(8):
        enqueue(coalescer, queue, requests, f"k{number}")
    for started in range(1, 6):
        await turns()
        assert queue.running == started  # launched: its task made (and on 3.12+, stepped)
    await turns(3)
    assert len(requests.started) == 5  # full: the next starts when one ends
    requests.answer("k0")
    await turns(3)
    assert requests.started[-1] == "k5"


async def test_a_queued_key_is_joined_and_sent_once():
    """A second caller of a queued key waits for the same lookup; it was not under way yet."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(1)
    enqueue(coalescer, queue, requests, "busy")
    first = enqueue(coalescer, queue, requests, "k")
    second = enqueue(coalescer, queue, requests, "k")
    assert not first.joined
    assert not second.joined  # queued, not under way: its attempts all come after it
    await turns(2)
    requests.answer("busy")
    await turns(3)
    requests.answer("k")
    await turns()
    assert requests.started == ["busy", "k"]
    assert first.waiter.result() == second.waiter.result() == "batch k"
    assert second.shared()


async def test_a_key_under_way_is_joined_and_marked_so():
    """A caller who joins a lookup already under way is told so (it may run it again)."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(1)
    first = enqueue(coalescer, queue, requests, "k")
    await turns(2)
    second = enqueue(coalescer, queue, requests, "k")
    assert second.joined
    assert second.running()
    requests.answer("k")
    await turns()
    assert second.waiter.result() == "batch k"
    assert requests.started == ["k"]
    assert not first.running()


async def test_leaving_a_queued_lookup_drops_it_unless_another_waits():
    """The only caller leaves: never sent. One of two leaves: sent for the other."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(1)
    enqueue(coalescer, queue, requests, "busy")
    alone = enqueue(coalescer, queue, requests, "alone")
    shared = [enqueue(coalescer, queue, requests, "shared") for _ in range(2)]
    await coalescer.leave([alone, shared[0]])
    assert alone.waiter.cancelled()
    assert len(queue) == 2  # busy and shared
    await turns(2)
    requests.answer("busy")
    await turns(3)
    requests.answer("shared")
    await turns(2)
    assert requests.started == ["busy", "shared"]
    assert shared[1].waiter.result() == "batch shared"


async def test_the_last_caller_to_leave_a_lookup_under_way_stops_it():
    """The first to leave changes nothing for the other; the last cancels it and waits."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(1)
    tickets = [enqueue(coalescer, queue, requests, "k") for _ in range(2)]
    await turns(2)
    await coalescer.leave(tickets[:1])
    assert requests.cancelled == []
    await coalescer.leave(tickets[1:])
    assert requests.cancelled == ["k"]
    assert len(coalescer) == queue.running == 0
    assert len(asyncio.all_tasks()) == 1


async def test_a_plain_call_of_a_queued_key_starts_it_at_once_and_shares_it():
    """run() does not wait for the fan-out's turn: it starts the lookup, both get it."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(1)
    enqueue(coalescer, queue, requests, "busy")
    queued = enqueue(coalescer, queue, requests, "k")
    await turns(2)
    plain = asyncio.create_task(coalescer.run("k", None, requests.send, "k"))
    await turns(2)
    assert requests.started == ["busy", "k"]  # past the queue, and its one slot
    requests.answer("k")
    assert await plain == "batch k"
    assert queued.waiter.result() == "batch k"
    requests.answer("busy")
    await turns(2)
    assert len(queue) == queue.running == 0


async def test_a_request_sent_again_for_those_left_stops_when_they_leave():
    """A request sent again for a joined caller stops when that caller leaves too.

    The first caller of a key is cancelled: the key is sent again for the one who joined;
    when that one leaves, the new request is cancelled, not left running for nobody.
    """
    requests, coalescer = Requests(), Coalescer()
    first = asyncio.create_task(coalescer.run("k", None, requests.send, "k"))
    await turns()
    joined = asyncio.create_task(coalescer.run("k", None, requests.send, "k"))
    await turns()
    first.cancel()
    await turns(2)
    assert requests.started == ["k", "k"]
    joined.cancel()
    await asyncio.gather(first, joined, return_exceptions=True)
    assert requests.cancelled == ["k", "k"]
    assert len(coalescer) == 0
    assert len(asyncio.all_tasks()) == 1


async def test_many_dropped_lookups_are_swept_out_of_the_queue():
    """1,000 queued then left: the queue holds none of them, and serves the next at once."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(1)
    tickets = [enqueue(coalescer, queue, requests, f"k{number}") for number in range(1000)]
    await coalescer.leave(tickets[1:])
    await turns(2)
    assert len(queue) == 0
    requests.answer("k0")
    later = enqueue(coalescer, queue, requests, "later")
    await turns(3)
    assert requests.started == ["k0", "later"]
    requests.answer("later")
    await turns()
    assert later.waiter.result() == "batch later"


def submitter(coalescer: Coalescer, queue: LookupQueue, requests: Requests, end: float | None):
    """A fan-out's submit: the lookup of a key (``CallDeadline`` by *end*)."""

    def submit(key: str) -> Ticket:
        return enqueue(coalescer, queue, requests, key, CallDeadline.of(end, "GET", f"/{key}"))

    return submit


async def test_a_window_bounds_what_a_consumer_that_stops_has_started():
    """Window 10: after taking 5 outcomes, at most 15 lookups were ever queued."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(100)
    keys = [f"k{number}" for number in range(1000)]
    lookups: Lookups[str, str] = Lookups(
        keys, submitter(coalescer, queue, requests, None), end=None, window=10
    )
    taken = []
    step = asyncio.create_task(anext(lookups))
    while len(taken) < 5:
        await turns(2)
        for key in requests.under_way():
            requests.answer(key)
        await turns(2)
        if step.done():
            taken.append(step.result())
            step = asyncio.create_task(anext(lookups))
    step.cancel()
    await asyncio.gather(step, return_exceptions=True)
    await lookups.aclose()
    await lookups.aclose()  # again: nothing more to do
    assert len(requests.started) <= 15
    assert len(coalescer) == 0
    with pytest.raises(StopAsyncIteration):
        await anext(lookups)


async def test_the_first_failure_drops_the_rest_before_another_starts():
    """Two slots, a 404 among 50 keys: nothing starts after it, and it is raised."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(2)
    keys = [f"k{number}" for number in range(50)]
    call = asyncio.create_task(
        gather_lookups(
            keys,
            submitter(coalescer, queue, requests, None),
            end=None,
            width=100,
            return_exceptions=False,
        )
    )
    await turns(4)
    assert requests.started == ["k0", "k1"]
    requests.answer("k1", error=not_found())
    with pytest.raises(NotFoundError):
        await call
    assert requests.started == ["k0", "k1"]
    assert requests.cancelled == ["k0"]
    assert len(queue) == queue.running == len(coalescer) == 0


async def test_outcomes_with_return_exceptions_come_in_place():
    """Errors are outcomes; a value without a lookup and an error from submit too."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(4)
    submit = submitter(coalescer, queue, requests, None)

    def mixed(key: str) -> Ticket | str:
        if key == "cached":
            return "batch from cache"
        if key == "closed":
            raise InkitError("The AsyncInkit client is closed; create a new one.")
        return submit(key)

    call = asyncio.create_task(
        gather_lookups(
            ["a", "cached", "closed", "gone"], mixed, end=None, width=100, return_exceptions=True
        )
    )
    await turns(4)
    requests.answer("a")
    requests.answer("gone", error=not_found("gone"))
    results = await call
    assert results["a"] == "batch a"
    assert results["cached"] == "batch from cache"
    assert isinstance(results["closed"], InkitError)
    assert isinstance(results["gone"], NotFoundError)


async def test_a_shared_failure_is_a_copy_of_each_callers_own():
    """Two callers of one failed lookup: equal errors, not one object."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(4)
    submit = submitter(coalescer, queue, requests, None)
    calls = [
        asyncio.create_task(
            gather_lookups(["k"], submit, end=None, width=100, return_exceptions=True)
        )
        for _ in range(2)
    ]
    await turns(3)
    requests.answer("k", error=not_found("gone"))
    first, second = [result["k"] for result in await asyncio.gather(*calls)]
    assert isinstance(first, NotFoundError)
    assert isinstance(second, NotFoundError)
    assert first is not second
    assert requests.started == ["k"]


async def test_a_caller_who_joined_a_lookup_under_way_runs_it_again_after_a_connection_error():
    """Once: that lookup ran on its starter's clock. A caller who queued it does not."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(4)
    submit = submitter(coalescer, queue, requests, None)
    starter = asyncio.create_task(
        gather_lookups(["k"], submit, end=None, width=100, return_exceptions=True)
    )
    await turns(3)
    joiner = asyncio.create_task(
        gather_lookups(["k"], submit, end=None, width=100, return_exceptions=True)
    )
    await turns(2)
    requests.answer("k", error=APIConnectionError("refused"))
    assert isinstance((await starter)["k"], APIConnectionError)
    await turns(3)
    assert requests.started == ["k", "k"]
    requests.answer("k", error=APIConnectionError("refused again"))
    assert isinstance((await joiner)["k"], APIConnectionError)  # once only
    assert requests.started == ["k", "k"]


async def test_at_the_deadline_each_lookup_not_done_gets_its_error_and_queued_ones_go_unsent():
    """At the deadline, each lookup not done ends with its error; queued ones go unsent.

    One slot, three keys: the one under way and the queued ones end with
    DeadlineExceededError naming their wait.
    """
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(1)
    end = asyncio.get_running_loop().time() + 0.05
    keys = ["k0", "k1", "k2"]
    results = await gather_lookups(
        keys, submitter(coalescer, queue, requests, end), end=end, width=100, return_exceptions=True
    )
    assert requests.started == ["k0"]
    assert requests.cancelled == ["k0"]
    errors = [results[key] for key in keys]
    assert all(isinstance(error, DeadlineExceededError) for error in errors)
    assert [error.wait for error in errors if isinstance(error, DeadlineExceededError)] == [
        "slot",  # the stand-in send never says what it waits for
        "slot",
        "slot",
    ]
    late = await gather_lookups(
        ["k3"],
        submitter(coalescer, queue, requests, end),
        end=end,
        width=100,
        return_exceptions=True,
    )
    assert isinstance(late["k3"], DeadlineExceededError)  # past its end: not even queued
    assert requests.started == ["k0"]


async def test_a_caller_with_a_deadline_who_joined_a_lookup_without_one_leaves_at_its_end():
    """Its error says it was sharing the lookup (or waiting for its turn); the lookup goes on."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(1)
    forever = submitter(coalescer, queue, requests, None)
    enqueue(coalescer, queue, requests, "busy")
    starter = asyncio.create_task(
        gather_lookups(["k", "q"], forever, end=None, width=100, return_exceptions=True)
    )
    await turns(3)
    requests.answer("busy")
    await turns(3)
    assert requests.started == ["busy", "k"]
    end = asyncio.get_running_loop().time() + 0.05
    joined = await gather_lookups(
        ["k", "q"],
        submitter(coalescer, queue, requests, end),
        end=end,
        width=100,
        return_exceptions=True,
    )
    waits = [getattr(joined[key], "wait", None) for key in ("k", "q")]
    assert waits == ["shared", "slot"]
    requests.answer("k")
    await turns(3)
    requests.answer("q")
    assert await starter == {"k": "batch k", "q": "batch q"}


async def test_a_caller_whose_end_comes_before_the_lookups_retry_leaves_at_once():
    """A caller whose end comes before the shared lookup's retry fails at once.

    Two callers with deadlines share a lookup that runs to the later end; when it is to
    sleep past the earlier one, that caller fails at once and the lookup goes on.
    """
    loop = asyncio.get_running_loop()
    coalescer, queue = Coalescer(), LookupQueue(1)
    sleeping = loop.create_future()
    proceed = loop.create_future()

    async def send(deadline: CallDeadline | None, key: str) -> str:
        assert deadline is not None
        assert deadline.end == later  # extended by the caller who came second
        deadline.before_sleep(1.0, retry_after=True, error=APIConnectionError("503"))
        sleeping.set_result(None)
        await proceed
        return f"batch {key}"

    def submit(end: float) -> Any:
        return lambda key: coalescer.enqueue(
            key, CallDeadline.of(end, "GET", f"/{key}"), queue, send, key
        )

    sooner, later = loop.time() + 0.5, loop.time() + 5
    first = asyncio.create_task(
        gather_lookups(["k"], submit(sooner), end=sooner, width=100, return_exceptions=True)
    )
    second = asyncio.create_task(
        gather_lookups(["k"], submit(later), end=later, width=100, return_exceptions=True)
    )
    await sleeping
    early = (await first)["k"]
    assert isinstance(early, DeadlineExceededError)
    assert early.wait == "retry_after"
    assert not second.done()
    proceed.set_result(None)
    assert await second == {"k": "batch k"}


async def test_a_lookup_cancelled_from_outside_cancels_its_callers():
    """The loop's shutdown cancels every task, lookups too: their callers are cancelled."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(1)
    submit = submitter(coalescer, queue, requests, None)
    call = asyncio.create_task(
        gather_lookups(["k"], submit, end=None, width=100, return_exceptions=True)
    )
    await turns(3)
    [lookup] = [task for task in asyncio.all_tasks() if task not in {call, asyncio.current_task()}]
    lookup.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert len(coalescer) == queue.running == 0


async def test_a_get_many_holds_ten_times_its_width_handed_in_at_once():
    """1,000 keys, width 10: at most 100 queued or under way at once, a chunk per turn."""
    requests, coalescer, queue = Requests(), Coalescer(), LookupQueue(10)
    keys = [f"k{number}" for number in range(1000)]
    submit = submitter(coalescer, queue, requests, None)
    call = asyncio.create_task(
        gather_lookups(keys, submit, end=None, width=10, return_exceptions=True)
    )
    most = 0
    while not call.done():
        await turns()
        most = max(most, len(coalescer))
        for key in requests.under_way():
            requests.answer(key)
    assert len(await call) == 1000
    assert most == 100

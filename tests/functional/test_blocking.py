"""BlockingInkit over real sockets: every method, threads sharing one pool and one throttle.

The tests are plain functions: a BlockingInkit refuses a thread where an event loop runs.
The servers run on a loop in a thread of their own (tests/support/threaded.py).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import os
import signal
import sys
import textwrap
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import httpx
import pytest

from inkit_async import (
    Batch,
    BlockingInkit,
    InkitError,
    NotFoundError,
    PauseEvent,
    RenderSpec,
    RetryEvent,
)
from inkit_async.testing import FakeInkit
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.forking import in_child
from tests.support.loopback import (
    BATCH_JSON,
    Hang,
    LoopbackServer,
    Request,
    Respond,
    delayed,
    echo,
    uvicorn_serving,
)
from tests.support.markers import starts
from tests.support.threaded import ServerThread

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Every BlockingInkit loop thread is named so; none may outlive its client.
LOOP_THREAD = "inkit-blocking-"


def loop_threads() -> list[threading.Thread]:
    """The BlockingInkit loop threads alive now."""
    return [t for t in threading.enumerate() if t.name.startswith(LOOP_THREAD)]


def other_tasks(client: BlockingInkit) -> int:
    """How many tasks run on the client's loop besides the one asking."""

    async def count() -> int:
        return len(asyncio.all_tasks()) - 1

    return client._runner.call(count)  # noqa: SLF001 - what runs on the loop


@pytest.fixture
@starts("loopback")
def served() -> Iterator[ServerThread]:
    """A LoopbackServer on a loop of its own thread (``served.value`` is the server)."""
    with ServerThread(LoopbackServer()) as thread:
        yield thread


@pytest.fixture
@starts("uvicorn")
def fake_served() -> Iterator[tuple[FakeInkit, str]]:
    """A FakeInkit served by uvicorn on a loop of its own thread: the fake and its URL."""
    fake = FakeInkit(seed=3, docs_per_poll=1)
    with ServerThread(uvicorn_serving(fake.app)) as thread:
        yield fake, thread.value


@pytest.fixture(autouse=True)
def _no_loop_thread_left() -> Iterator[None]:
    """Every test closes what it opens: no loop thread outlives it."""
    yield
    assert not loop_threads()


def test_every_method_over_a_socket(fake_served):
    """get, get_many, iter_many, list, pages, create, wait and watch, as blocking calls."""
    fake, url = fake_served
    ids = [fake.add_batch(name=f"invoice {n}") for n in range(12)]
    flow_id = fake.add_batch(flow=True, destinations={"amazon_s3": 2})
    with BlockingInkit(fake.token, base_url=url) as client:
        batch = client.batch.get(ids[0])
        assert isinstance(batch, Batch)
        assert batch.id == ids[0]
        assert [b.id for b in client.batch.get_many([*ids, ids[0]])] == [*ids, ids[0]]
        mixed = client.batch.get_many([ids[1], "rb_missing"], return_exceptions=True)
        assert isinstance(mixed[0], Batch)
        assert isinstance(mixed[1], NotFoundError)
        with pytest.raises(NotFoundError):
            client.batch.get("rb_missing")
        assert {batch_id for batch_id, _ in client.batch.iter_many(ids)} == set(ids)
        listing = client.batch.list(page_size=5, sort="created_at")
        assert [b.id for b in listing] == ids  # each `for` starts again from page 1
        assert [b.id for b in listing][:5] == ids[:5]
        assert [len(page.items) for page in listing.pages()] == [5, 5, 2]
        created = client.batch.create(
            template_id="tmpl_1", renders=[RenderSpec(merge_parameters={"n": 1})], name="x"
        )
        assert created.id in fake.batch_ids()
        fake.add_batch(batch_id="rb_slow", destinations={"inkit_storage": 3})
        snapshots = list(client.batch.watch("rb_slow", poll_interval=0.01))
        assert [s.progress.completed for s in snapshots] == [0, 1, 2, 3]
        assert client.batch.wait(created.id, poll_interval=0.01, timeout=30).is_finished
        assert client.flow_batch.get(flow_id).id == flow_id
        assert [b.id for b in client.flow_batch.list()] == [flow_id]


def test_arguments_are_checked_in_the_calling_thread(fake_served):
    """A bad argument raises the async method's error, before anything is sent."""
    fake, url = fake_served
    with BlockingInkit(fake.token, base_url=url) as client:
        with pytest.raises(ValueError, match="page_size"):
            client.batch.list(page_size=0)
        with pytest.raises(TypeError, match="single string"):
            client.batch.iter_many("rb_1")
        with pytest.raises(ValueError, match="batch_id"):
            client.batch.get(" ")
        with pytest.raises(TypeError, match="unexpected keyword"):
            client.batch.get("rb_1", bogus=1)  # type: ignore[call-arg] # pyright: ignore[reportCallIssue]
    assert fake.requests == []


def test_threads_share_one_pool_one_loop_and_the_slots(served):
    """8 threads x 250 lookups through one client: no error, one pool of max_concurrency.

    With a pool per thread, 8 threads would hold at least 8 connections at once; through
    one client of width 4, the server never sees more than 4 open or in flight.
    """
    server: LoopbackServer = served.value
    threads_seen: set[str] = set()

    def on_event(event: object) -> None:
        threads_seen.add(threading.current_thread().name)

    with BlockingInkit(TOKEN, base_url=server.url, max_concurrency=4, on_event=on_event) as client:

        def work(worker: int) -> int:
            ok = 0
            for n in range(250):
                batch_id = f"rb_{worker}_{n}"
                ok += client.batch.get(batch_id).id == batch_id
            return ok

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(work, range(8)))
        assert results == [250] * 8
        assert len(server.requests) == 2000
        assert server.peak_open_connections <= 4
        assert server.peak_in_flight <= 4
        assert server.connections_opened <= 8  # reused, not one per call


def test_a_429_in_one_thread_holds_back_the_others(served):
    """One throttle for every thread: a Retry-After seen by one pauses them all."""
    server: LoopbackServer = served.value
    server.script(Respond(status=429, headers={"Retry-After": "0.5"}, body={"error": "slow"}))
    paused = threading.Event()

    def on_event(event: object) -> None:
        if isinstance(event, PauseEvent):
            paused.set()

    with BlockingInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, on_event=on_event) as client:
        with ThreadPoolExecutor(8) as pool:
            first = pool.submit(client.batch.get, "rb_first")
            assert paused.wait(10)
            others = list(pool.map(client.batch.get, [f"rb_{n}" for n in range(7)]))
            assert first.result(10).id == "rb_first"
        assert [b.id for b in others] == [f"rb_{n}" for n in range(7)]
        refused_at = server.requests[0].received_at
        # Every request after the 429 waited out its Retry-After, whichever thread sent it.
        assert all(r.received_at >= refused_at + 0.45 for r in server.requests[1:])
        state = client.throttle.state  # type: ignore[union-attr] # pyright: ignore[reportOptionalMemberAccess]
        assert state.throttled == 1
        assert state.pauses == 1
        assert client.with_options(timeout=5).throttle is client.throttle


def test_leaving_an_iterator_early_stops_it_on_the_loop(served, caplog):
    """break, close() or dropping the iterator: no task left, no request left in flight."""
    server: LoopbackServer = served.value
    server.handler = delayed(0.05)
    ids = [f"rb_{n}" for n in range(40)]
    with BlockingInkit(TOKEN, base_url=server.url, max_concurrency=8) as client:
        for _ in client.batch.iter_many(ids):
            break
        assert other_tasks(client) == 0
        results = client.batch.iter_many(ids)
        next(results)
        results.close()
        assert other_tasks(client) == 0
        results = client.batch.iter_many(ids)
        next(results)
        del results  # dropped: closed by the interpreter, at once
        assert other_tasks(client) == 0
        served.wait_until(lambda: server.in_flight == 0, 5, "no request in flight")
        assert len(server.requests) < len(ids) * 3
        # A listing left early, and a watch.
        server.handler = pages_of_two
        for _ in client.batch.list():
            break
        assert other_tasks(client) == 0
        for _ in client.batch.watch("rb_1", poll_interval=0.01):
            break
        assert other_tasks(client) == 0
    gc.collect()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and not _servers(r)]


def _servers(record: logging.LogRecord) -> bool:
    """Whether *record* is the test server's: a reset connection's error it never read.

    (Python 3.12 may log it when gc collects the server's stream before its protocol; the
    client's cancelled lookups reset those connections on purpose.)
    """
    trace = record.exc_info[2] if record.exc_info else None
    frames = traceback.extract_tb(trace) if trace is not None else []
    return any(frame.filename.endswith("tests/support/loopback.py") for frame in frames)


def pages_of_two(request: Request) -> Respond:
    """A listing of five pages of two batches (any other path: the batch asked for)."""
    if not request.path.endswith("/batch"):
        return echo(request)
    page = int(parse_qs(request.query)["page"][0])
    items = [{**BATCH_JSON, "id": f"rb_{page}_{n}"} for n in range(2)]
    return Respond(
        body={"items": items, "metadata": {"pagination": {"current_page": page, "page_count": 5}}}
    )


def test_ctrl_c_while_waiting_cancels_the_call(served):
    """SIGINT in the main thread cancels the call on the loop; nothing of it goes on."""
    server: LoopbackServer = served.value
    server.script(Hang())
    main = threading.main_thread().ident
    assert main == threading.get_ident()
    with BlockingInkit(TOKEN, base_url=server.url) as client:

        def interrupt() -> None:
            served.wait_until(lambda: server.in_flight == 1, 10, "the call in flight")
            signal.pthread_kill(main, signal.SIGINT)

        interrupter = threading.Thread(target=interrupt)
        interrupter.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                client.batch.get("rb_hang")
        finally:
            interrupter.join(20)
        assert other_tasks(client) == 0
        served.wait_until(lambda: server.open_connections == 0, 5, "the connection closed")
        assert client.batch.get("rb_after").id == "rb_after"  # the client goes on


def test_an_exception_in_another_thread_cancels_that_threads_call(served):
    """Any exception raised into a waiting caller (here: a signal handler's) cancels its call."""
    server: LoopbackServer = served.value
    server.script(Hang())

    class StopError(Exception):
        pass

    def handler(signum: int, frame: object) -> None:
        raise StopError

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        with BlockingInkit(TOKEN, base_url=server.url) as client:
            me = threading.get_ident()

            def interrupt() -> None:
                served.wait_until(lambda: server.in_flight == 1, 10, "the call in flight")
                signal.pthread_kill(me, signal.SIGUSR1)

            timer = threading.Thread(target=interrupt)
            timer.start()
            with pytest.raises(StopError):
                client.batch.get("rb_hang")
            timer.join(20)
            assert other_tasks(client) == 0
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_closing_cancels_calls_under_way_in_other_threads(served):
    """close() from one thread: a call waiting in another raises InkitError; all ends."""
    server: LoopbackServer = served.value
    server.script(Hang())
    client = BlockingInkit(TOKEN, base_url=server.url)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(client.batch.get, "rb_hang")
        served.wait_until(lambda: server.in_flight == 1, 10, "the call in flight")
        client.close()
        with pytest.raises(InkitError, match="closed while this call was under way"):
            waiting.result(10)
    assert client.is_closed
    client.close()  # idempotent
    with pytest.raises(InkitError, match="is closed"):
        client.batch.get("rb_1")
    with pytest.raises(InkitError, match="is closed"):
        client.__enter__()
    served.wait_until(lambda: server.open_connections == 0, 5, "the connections closed")


def test_a_variant_shares_the_loop_and_closes_alone(served):
    """with_options: other per-call options, the same loop and pool; closing it closes it only."""
    server: LoopbackServer = served.value
    with BlockingInkit(TOKEN, base_url=server.url, max_concurrency=2) as client:
        fast = client.with_options(timeout=5, max_retries=0)
        assert (fast.timeout, fast.max_retries, fast.max_concurrency) == (5, 0, 2)
        assert fast.batch.get("rb_1").id == "rb_1"
        assert client.batch.get("rb_2").id == "rb_2"
        assert len(loop_threads()) == 1
        fast.close()
        assert fast.is_closed
        assert not client.is_closed
        with pytest.raises(InkitError, match="is closed"):
            fast.batch.get("rb_1")
        assert client.batch.get("rb_3").id == "rb_3"
        assert server.connections_opened == 1
    assert fast.is_closed


def test_the_callers_context_goes_with_the_call(served):
    """A contextvar the calling thread set is seen by what the call runs (on_event here)."""
    server: LoopbackServer = served.value
    server.script(Respond(status=503, body={"error": "busy"}))
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
    seen: list[str] = []

    def on_event(event: object) -> None:
        if isinstance(event, RetryEvent):
            seen.append(request_id.get())

    with BlockingInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, on_event=on_event) as client:
        request_id.set("req-42")
        assert client.batch.get("rb_1").id == "rb_1"
    assert seen == ["req-42"]


def test_calls_from_the_loop_thread_itself_are_refused(served):
    """An on_event callback (it runs on the client's loop) that calls the client fails clearly."""
    server: LoopbackServer = served.value
    server.script(Respond(status=503, body={"error": "busy"}))
    errors: list[Exception] = []
    holder: list[BlockingInkit] = []

    def on_event(event: object) -> None:
        try:
            holder[0].batch.get("rb_2")
        except InkitError as exc:
            errors.append(exc)

    with BlockingInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, on_event=on_event) as client:
        holder.append(client)
        assert client.batch.get("rb_1").id == "rb_1"
    assert len(errors) == 1
    assert "Use AsyncInkit there" in str(errors[0])


def test_a_client_dropped_unclosed_warns_and_closes_itself(served):
    """Like an unclosed file: one ResourceWarning; the loop thread closes the pool and ends."""
    server: LoopbackServer = served.value
    client = BlockingInkit(TOKEN, base_url=server.url)
    assert client.batch.get("rb_1").id == "rb_1"
    (thread,) = loop_threads()
    del client
    with pytest.warns(ResourceWarning, match="without being closed"):
        gc.collect()
    thread.join(20)
    assert not thread.is_alive()
    served.wait_until(lambda: server.open_connections == 0, 5, "the connection closed")


@pytest.mark.subprocess
def test_a_client_left_open_is_closed_at_exit(served):
    """A script that never closes its client exits cleanly, warning-free, connections closed."""
    server: LoopbackServer = served.value
    script = textwrap.dedent(f"""
        import threading
        from inkit_async import BlockingInkit
        client = BlockingInkit("{TOKEN}", base_url="{server.url}")
        print(client.batch.get("rb_1").id)
        threading.Thread(target=lambda: print(client.batch.get("rb_2").id)).start()
    """)

    async def run() -> tuple[int | None, bytes]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-X",
            "dev",
            "-W",
            "error",
            "-c",
            script,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode, out

    code, out = served.run(run(), 90)
    assert code == 0, out
    assert out.decode().split() == ["rb_1", "rb_2"], out
    served.wait_until(lambda: server.open_connections == 0, 5, "the connection closed")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only: os.fork")
@pytest.mark.subprocess
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_after_a_fork(served):
    """Made before a fork: works in each process, the child on a thread and connections of its own.

    Used before the fork too: the child starts its own loop thread and opens new
    connections; the parent's thread and pooled connection go on unharmed.
    """
    server: LoopbackServer = served.value
    # With the default throttle: in the child, the parent's loop thread never runs again.
    client = BlockingInkit(TOKEN, base_url=server.url)  # not used yet

    def child_uses_it_first() -> bool:
        return client.batch.get("rb_child").id == "rb_child" and len(loop_threads()) == 1

    assert in_child(child_uses_it_first) == 0
    assert not loop_threads()
    assert client.batch.get("rb_parent").id == "rb_parent"
    [parents] = loop_threads()

    def child_uses_the_parents() -> bool:
        used = client.batch.get("rb_child2").id == "rb_child2"
        [own] = loop_threads()  # the parent's thread is not in this process
        client.close()  # its own; the parent's loop and connections are left alone
        return used and own is not parents and client.is_closed and not loop_threads()

    assert in_child(child_uses_the_parents) == 0
    assert client.batch.get("rb_parent2").id == "rb_parent2"
    client.close()
    connection = {r.last_segment: r.connection for r in server.requests}
    assert list(connection) == ["rb_child", "rb_parent", "rb_child2", "rb_parent2"]
    # The parent's pooled connection carried both its lookups, the fork in between:
    # the child neither used nor closed it.
    assert connection["rb_parent2"] == connection["rb_parent"]
    assert connection["rb_child2"] not in {connection["rb_parent"], connection["rb_child"]}


def test_an_iterator_outliving_its_client(served, caplog):
    """After close(): using an iterator raises InkitError, closing one is a no-op.

    close() closed both on the loop first, each by itself, without an error logged.
    """
    server: LoopbackServer = served.value
    server.handler = pages_of_two
    client = BlockingInkit(TOKEN, base_url=server.url)
    used = client.batch.iter_many(["rb_1", "rb_2", "rb_3"])
    closed = client.batch.list()
    next(used)
    pages = iter(closed)
    next(pages)
    client.close()  # the loop's wind-down closed both async generators
    with pytest.raises(InkitError, match="is closed"):
        next(used)
    pages.close()
    with pytest.raises(InkitError, match="is closed"):
        client.batch.iter_many(["rb_1"])
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_iterator_closed_on_an_event_loop_thread_does_not_block_it(served):
    """Closed where a loop runs (as a collection may): its clean-up is sent, not awaited."""
    server: LoopbackServer = served.value
    server.handler = delayed(0.05)
    with BlockingInkit(TOKEN, base_url=server.url, max_concurrency=4) as client:
        results = client.batch.iter_many([f"rb_{n}" for n in range(20)])
        next(results)

        async def close_it() -> None:
            results.close()

        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, close_it()).result(10)
        served.wait_until(lambda: server.in_flight == 0, 5, "no request in flight")
        assert other_tasks(client) == 0


class FailingClose(httpx.AsyncBaseTransport):
    """An httpx transport whose close fails (answers every request with the batch)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer with the batch asked for."""
        batch_id = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json={**BATCH_JSON, "id": batch_id})

    async def aclose(self) -> None:
        """Fail."""
        raise OSError("the transport could not close")


def test_close_raises_what_closing_the_client_raised():
    """The AsyncInkit's close fails: close() raises that, and the loop thread still ends."""
    client = BlockingInkit(TOKEN, base_url="http://127.0.0.1:9/v1", transport=FailingClose())
    assert client.batch.get("rb_1").id == "rb_1"
    with pytest.raises(OSError, match="could not close"):
        client.close()
    assert not loop_threads()
    client.close()  # once closed, closed

"""AsyncInkit over real sockets in every event loop that uses it, and after a fork.

Successive loops, loops in threads at once, a loop that ends, a fork; and a caller's own
client, which stays in one loop.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import sys
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvloop

from inkit_async import AsyncInkit, BlockingInkit, InkitError, Throttle
from inkit_async._flow.signals import Signal
from inkit_async._throttle import regulator_of
from tests.support.constants import TOKEN
from tests.support.forking import in_child
from tests.support.loopback import BATCH_JSON, LoopbackServer, Request, Respond, echo
from tests.support.markers import starts
from tests.support.threaded import ServerThread

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.loopback  # each test starts its own LoopbackServer

#: The event loops a client is run in: asyncio's own, and uvloop.
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}
#: Seconds the server gets to see a closed connection (closes arrive asynchronously).
SETTLE = 5.0


@pytest.fixture
@starts("loopback")
def served() -> Iterator[ServerThread]:
    """A LoopbackServer on a loop of its own thread (``served.value`` is the server)."""
    with ServerThread(LoopbackServer()) as thread:
        yield thread


def connections_of(served: ServerThread, prefix: str) -> set[int]:
    """The connections that carried the lookups whose id starts with *prefix*."""
    server: LoopbackServer = served.value
    return served.call(
        lambda: {r.connection for r in server.requests if r.last_segment.startswith(prefix)}
    )


async def looked_up(client: AsyncInkit, ids: list[str]) -> list[str]:
    """The ids of the batches *ids*, looked up at once."""
    return [b.id for b in await asyncio.gather(*(client.batch.get(i) for i in ids))]


def open_fds() -> int:
    """The file descriptors this process has open now (Linux: /proc/self/fd)."""
    return len(list(Path("/proc/self/fd").iterdir()))


def assert_no_open_connections(served: ServerThread) -> None:
    """Every connection a client opened to the server is closed (the server saw its end)."""
    server: LoopbackServer = served.value
    served.wait_until(lambda: server.open_connections == 0, SETTLE, "no open connection")


@pytest.mark.parametrize("make_loop", LOOPS.values(), ids=LOOPS.keys())
def test_one_client_made_outside_any_loop_serves_successive_loops(served, make_loop):
    """Made where no loop runs (as at import), used by three loops one after another.

    Each loop opens its own connections, and its end (the runner's shutdown_asyncgens)
    closes them there: no socket left open, no warning (warnings are errors here).
    """
    client = AsyncInkit(TOKEN, base_url=served.value.url)  # no running loop here
    fds: list[int] = []
    for run in range(3):
        with asyncio.Runner(loop_factory=make_loop) as runner:
            ids = [f"rb_{run}_{n}" for n in range(5)]
            assert runner.run(looked_up(client, ids)) == ids
        assert_no_open_connections(served)
        fds.append(open_fds())
    assert fds[0] == fds[1] == fds[2]  # nothing of a loop's pool outlives the loop
    runs = [connections_of(served, f"rb_{run}_") for run in range(3)]
    assert not runs[0] & runs[1]
    assert not runs[1] & runs[2]
    asyncio.run(client.aclose())
    assert client.is_closed


def test_loops_in_four_threads_at_once_each_have_a_pool_of_their_own(served):
    """One client, four threads each running its own loop at the same time: no error.

    Each loop sends on its own connections (none carries two loops' requests), within
    ``max_concurrency`` each; every one is closed when its loop ends.
    """
    client = AsyncInkit(TOKEN, base_url=served.value.url, max_concurrency=4, throttle=False)
    together = threading.Barrier(4)
    failures: list[BaseException] = []

    async def lookups(thread: int) -> None:
        together.wait(10)  # all four loops run before any sends
        ids = [f"rb_t{thread}_{n}" for n in range(40)]
        assert await looked_up(client, ids) == ids

    def in_thread(thread: int) -> None:
        try:
            asyncio.run(lookups(thread))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=in_thread, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    pools = [connections_of(served, f"rb_t{n}_") for n in range(4)]
    assert all(1 <= len(pool) <= 4 for pool in pools)
    assert len(set().union(*pools)) == sum(len(pool) for pool in pools)  # disjoint
    assert_no_open_connections(served)
    asyncio.run(client.aclose())


def test_a_loop_closed_without_shutdown_asyncgens_is_not_kept_alive(served):
    """A loop closed by hand (no shutdown_asyncgens): the client lets it go, without a warning.

    Its state is dropped when the client next meets a new loop. (The server closes each
    connection after answering: sockets a loop closed that way leaves open are
    asyncio's to warn about, and nobody's to close any more. No throttle: its clock is
    the first loop's, which is the throttle's to let go.)
    """
    server: LoopbackServer = served.value
    answers = [Respond(body={**BATCH_JSON, "id": f"rb_{n}"}, close=True) for n in (1, 2)]
    served.call(lambda: server.script(*answers))
    client = AsyncInkit(TOKEN, base_url=server.url, throttle=False)
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(client.batch.get("rb_1")).id == "rb_1"
    loop.close()
    gone = weakref.ref(loop)
    del loop
    assert asyncio.run(client.batch.get("rb_2")).id == "rb_2"
    gc.collect()
    assert gone() is None
    asyncio.run(client.aclose())


def test_closing_in_one_loop_closes_the_client_for_all(served):
    """aclose() from another thread's loop: the client is closed everywhere.

    The loop that still runs closes its own pool when it ends.
    """
    ready = threading.Event()
    closed = threading.Event()
    errors: list[BaseException] = []
    client = AsyncInkit(TOKEN, base_url=served.value.url)

    async def owner() -> None:
        await client.batch.get("rb_1")  # leaves a pooled connection in this loop
        ready.set()
        await asyncio.to_thread(closed.wait, 10)
        try:
            await client.batch.get("rb_2")
        except InkitError as exc:
            errors.append(exc)

    thread = threading.Thread(target=asyncio.run, args=(owner(),))
    thread.start()
    assert ready.wait(10)
    asyncio.run(client.aclose())  # another loop: closes the client, not that loop's pool
    assert client.is_closed
    closed.set()
    thread.join(10)
    assert [str(e) for e in errors] == ["The AsyncInkit client is closed; create a new one."]
    assert_no_open_connections(served)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX only: os.fork")
@pytest.mark.subprocess
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
@pytest.mark.parametrize("make_loop", LOOPS.values(), ids=LOOPS.keys())
def test_after_a_fork_the_child_opens_its_own_connections(served, make_loop):
    """Used before os.fork(), its loop still open with a pooled connection.

    The child's lookups go on new connections, and the parent's connection goes on
    serving it.
    """
    client = AsyncInkit(TOKEN, base_url=served.value.url)
    with asyncio.Runner(loop_factory=make_loop) as runner:
        assert runner.run(client.batch.get("rb_parent_1")).id == "rb_parent_1"

        def child() -> bool:
            async def lookups() -> list[str]:
                async with client:  # closes the child's own pool, never the parent's
                    return [(await client.batch.get(f"rb_child_{n}")).id for n in range(3)]

            return asyncio.run(lookups()) == ["rb_child_0", "rb_child_1", "rb_child_2"]

        assert in_child(child) == 0
        assert runner.run(client.batch.get("rb_parent_2")).id == "rb_parent_2"
        runner.run(client.aclose())
    parent = connections_of(served, "rb_parent_")
    assert len(parent) == 1  # its pooled connection, untouched by the child
    children = connections_of(served, "rb_child_")
    assert children
    assert not children & parent
    assert_no_open_connections(served)


async def test_user_supplied_http_client_is_used_and_left_open(server, http_library):
    """A passed-in AsyncClient carries the requests, its headers too, and stays open after."""
    async with http_library.AsyncClient(headers={"X-Trace": "abc"}) as http:
        async with AsyncInkit(TOKEN, base_url=server.url, http_client=http) as client:
            assert (await client.batch.get("rb_1")).id == "rb_1"
        assert not http.is_closed
        assert server.requests[0].headers["x-trace"] == "abc"
    assert http.is_closed


@pytest.mark.parametrize("given", ["http_client", "transport"])
def test_a_client_over_one_loops_http_client_refuses_another_loop(given):
    """Its own http_client or transport (a pool) belongs to the first loop: another is told so."""
    holder: list[Any] = []

    async def first() -> None:
        async with LoopbackServer() as server:
            server.script(Respond(body={**BATCH_JSON, "id": "rb_1"}, close=True))
            http = httpx.AsyncClient() if given == "http_client" else httpx.AsyncHTTPTransport()
            holder.extend([AsyncInkit(TOKEN, base_url=server.url, **{given: http}), http])
            assert (await holder[0].batch.get("rb_1")).total == 1

    async def second() -> None:
        async with LoopbackServer() as server:
            with pytest.raises(InkitError, match="belongs to the event loop") as info:
                await holder[0].batch.get("rb_2")
            assert "http_client/transport" in str(info.value)
            assert server.requests == []

    asyncio.run(first())
    asyncio.run(second())
    asyncio.run(holder[0].aclose())  # the first loop has ended: a quiet close
    asyncio.run(holder[1].aclose())


def test_aclose_of_a_one_loop_client_from_a_foreign_loop_while_it_runs_raises_inkit_error():
    """aclose() from another thread's loop while the transport's loop still runs is refused."""
    ready = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []
    holder: list[AsyncInkit] = []

    async def owner() -> None:
        async with LoopbackServer() as server:
            transport = httpx.AsyncHTTPTransport()
            async with AsyncInkit(TOKEN, base_url=server.url, transport=transport) as client:
                holder.append(client)
                await client.batch.get("rb_1")
                ready.set()
                await asyncio.to_thread(release.wait, 10)

    thread = threading.Thread(target=asyncio.run, args=(owner(),))
    thread.start()
    assert ready.wait(10)
    try:
        asyncio.run(holder[0].aclose())
    except BaseException as exc:
        errors.append(exc)
    finally:
        release.set()
        thread.join(10)
    assert len(errors) == 1
    assert isinstance(errors[0], InkitError)
    assert "another event loop" in str(errors[0])
    assert holder[0].is_closed  # the owner closed it on its own way out


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_fork_while_another_thread_decides_leaves_the_child_a_working_throttle():
    """The throttle's lock, held by another thread at the fork, is the child's to take.

    The parent's thread holds it across the fork (as a loop thread deciding on a permit
    would); the child's thread is gone, so the child must get a new lock, and a permit.
    """
    throttle = Throttle()
    regulator = regulator_of(throttle)
    holding = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with regulator._lock:  # noqa: SLF001 - what a deciding thread holds
            holding.set()
            done.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)

        def child() -> bool:
            async def permit() -> bool:
                async with asyncio.timeout(5):  # a lock held for ever would hang here
                    regulator.release(await regulator.acquire(), Signal.OK)
                return throttle.state.waiting == 0

            return asyncio.run(permit())

        assert in_child(child) == 0
    finally:
        done.set()
        thread.join(10)


@pytest.mark.slow
def test_four_loops_and_eight_blocking_threads_share_one_throttle(served):
    """The runtime target: 10,000 lookups at once from 4 loops and 8 threads, no error.

    One ``AsyncInkit`` runs in four threads, each its own loop; one ``BlockingInkit``
    serves eight threads on its loop; both clients were given the same ``Throttle``.
    Every loop has one pool (its connections carry no other loop's lookups, at most
    ``max_concurrency`` of them), and the throttle is one: a 429 seen by one loop cuts
    the rate every loop sends at, and every request of every thread took its permit.
    """
    server: LoopbackServer = served.value
    refused: list[str] = []

    def answer(request: Request) -> Respond:
        if request.last_segment == "rb_t0_7" and not refused:
            refused.append(request.last_segment)
            return Respond(429, {"error": "slow down"})
        return echo(request)

    served.call(lambda: setattr(server, "handler", answer))
    throttle = Throttle()
    client = AsyncInkit(TOKEN, base_url=server.url, max_concurrency=20, throttle=throttle)
    blocking = BlockingInkit(TOKEN, base_url=server.url, max_concurrency=20, throttle=throttle)
    together = threading.Barrier(12, timeout=30)
    failures: list[BaseException] = []

    async def on_a_loop(thread: int) -> None:
        together.wait()
        ids = [f"rb_t{thread}_{n}" for n in range(1250)]
        async with asyncio.timeout(120):
            batches = await client.batch.get_many(ids)
        assert [batch.id for batch in batches] == ids

    def through_blocking(thread: int) -> None:
        together.wait()
        ids = [f"rb_b{thread}_{n}" for n in range(625)]
        assert [batch.id for batch in blocking.batch.get_many(ids, deadline=120)] == ids

    def run(work: Callable[[], object]) -> None:
        try:
            work()
        except BaseException as exc:
            failures.append(exc)

    works: list[Callable[[], object]] = [
        *(functools.partial(asyncio.run, on_a_loop(n)) for n in range(4)),
        *(functools.partial(through_blocking, n) for n in range(8)),
    ]
    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(150)
    blocking.close()
    asyncio.run(client.aclose())
    assert failures == []
    assert refused == ["rb_t0_7"]
    requests = served.call(lambda: len(server.requests))
    assert requests == 10_001  # each lookup once, the refused one twice
    assert regulator_of(throttle).sent == requests  # every request took the one throttle's permit
    assert throttle.state.cuts == 1  # that 429 cut the rate of all 12 threads
    pools = [connections_of(served, f"rb_t{n}_") for n in range(4)]
    pools.append(connections_of(served, "rb_b"))  # BlockingInkit: one loop, one pool
    assert all(1 <= len(pool) <= 20 for pool in pools)
    assert len(set().union(*pools)) == sum(len(pool) for pool in pools)  # disjoint
    assert_no_open_connections(served)

"""In-flight coalescing over real sockets: identical lookups under way share one request."""

from __future__ import annotations

import asyncio
import pickle

import httpx
import pytest

from inkit_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncInkit,
    Batch,
    InkitError,
    NotFoundError,
)
from inkit_async._coalesce import owned_copy
from tests.support.constants import TOKEN
from tests.support.events import Events
from tests.support.loopback import (
    BATCH_JSON,
    Drop,
    Hang,
    Request,
    Respond,
    cancel_all,
    delayed,
    echo,
    held_until,
    serves_at_full_width,
)


async def test_a_thousand_gets_of_one_id_send_one_request(server):
    """1,000 concurrent gets of one id, answered after 200 ms: one request, one record."""
    server.handler = delayed(0.2)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        batches = await asyncio.gather(*(client.batch.get("rb_1") for _ in range(1000)))
    assert len(server.requests) == 1
    assert all(batch is batches[0] for batch in batches)


async def test_a_hundred_ids_with_fifty_callers_each(server):
    """100 ids, each asked for by 50 concurrent callers: one request per id."""
    server.handler = delayed(0.05)
    ids = [f"rb_{number}" for number in range(100)]
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        batches = await asyncio.gather(
            *(client.batch.get(batch_id) for batch_id in ids for _ in range(50))
        )
    assert [batch.id for batch in batches] == [batch_id for batch_id in ids for _ in range(50)]
    assert len(server.requests) == 100


async def ten_callers_one_cancelled(client, server, release, cancelled: int) -> list[object]:
    """Ten gets of rb_1 while the server holds its answer; cancel one; release; results."""
    expected = len(server.requests) + 1
    calls = []
    for _ in range(10):
        calls.append(asyncio.create_task(client.batch.get("rb_1")))
        await asyncio.sleep(0)
    await server.wait_for_requests(expected)
    await cancel_all([calls.pop(cancelled)])
    release.set()
    return await asyncio.gather(*calls)


async def test_a_cancelled_caller_leaves_the_others_their_batch(server):
    """One of ten callers cancelled (not the first): the other nine get it, one request."""
    release = asyncio.Event()
    server.handler = held_until(release)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        batches = await ten_callers_one_cancelled(client, server, release, cancelled=4)
    assert [batch.id for batch in batches] == ["rb_1"] * 9
    assert len(server.requests) == 1


async def test_the_first_caller_cancelled_costs_one_more_request_the_first_time(server):
    """A key shared for the first time: its first caller ran the request, so it is resent.

    After that the key is known to be shared: its requests run in a task of their own,
    and cancelling even the first caller costs nothing.
    """
    release = asyncio.Event()
    server.handler = held_until(release)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        first = await ten_callers_one_cancelled(client, server, release, cancelled=0)
        assert len(server.requests) == 2
        release.clear()
        again = await ten_callers_one_cancelled(client, server, release, cancelled=0)
    assert [batch.id for batch in first + again] == ["rb_1"] * 18
    assert len(server.requests) == 3


async def test_when_every_caller_is_cancelled_the_request_stops(server):
    """All callers gone: the request is cancelled; the client serves new lookups at once."""
    server.handler = lambda request: Hang()
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        calls = [asyncio.create_task(client.batch.get("rb_1")) for _ in range(10)]
        await server.wait_for_requests(1)
        await cancel_all(calls)
        await server.wait_for_open_connections(0)  # the request's connection was closed
        await serves_at_full_width(client, server, 100)
        assert (await client.batch.get("rb_1")).id == "rb_1"


async def test_a_finished_request_is_never_reused(server):
    """A get after the previous one has finished sends a new request and sees new data."""
    server.script(Respond(body={**BATCH_JSON, "id": "rb_1", "status": "In Progress"}))
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        first = await client.batch.get("rb_1")
        second = await client.batch.get("rb_1")
    assert (first.status, second.status) == ("In Progress", "Completed")
    assert len(server.requests) == 2


async def test_every_caller_gets_an_error_of_its_own(server):
    """Ten callers of a missing id: ten NotFoundErrors, distinct objects, one request."""
    server.handler = lambda request: Respond(404, {"error": "no such batch"}, delay=0.05)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        results = await asyncio.gather(
            *(client.batch.get("rb_gone") for _ in range(10)), return_exceptions=True
        )
    assert all(isinstance(result, NotFoundError) for result in results)
    assert len({id(result) for result in results}) == 10
    assert {result.status_code for result in results} == {404}
    assert len(server.requests) == 1


async def test_variants_get_many_watch_and_get_share_one_request(server):
    """A variant of equal options, get_many, watch and get of one id at once: one request."""
    server.handler = delayed(0.1)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        variant = client.with_options(max_retries=client.max_retries, timeout=client.timeout)

        async def first_snapshot() -> Batch:
            async for snapshot in client.batch.watch("rb_1"):
                return snapshot
            raise AssertionError("watch ended without a snapshot")

        results = await asyncio.gather(
            client.batch.get("rb_1"),
            variant.batch.get("rb_1"),
            client.batch.get_many(["rb_1", "rb_2"]),
            first_snapshot(),
        )
    assert results[0] is results[1] is results[2][0] is results[3]
    assert sorted(request.last_segment for request in server.requests) == ["rb_1", "rb_2"]


async def test_coalescing_can_be_switched_off(server):
    """coalesce=False: ten concurrent gets of one id send ten requests."""
    server.handler = delayed(0.05)
    async with AsyncInkit(TOKEN, base_url=server.url, coalesce=False) as client:
        await asyncio.gather(*(client.batch.get("rb_1") for _ in range(10)))
    assert len(server.requests) == 10


def test_coalesce_must_be_a_bool():
    """AsyncInkit(coalesce=...) takes True or False."""
    with pytest.raises(TypeError, match="coalesce"):
        AsyncInkit(TOKEN, coalesce="yes")  # type: ignore[arg-type]


async def test_a_joiner_is_not_failed_by_the_starters_shorter_timeout(server):
    """Issue 21 row 9: a lookup started by a timeout=0.3 variant; a default caller comes.

    The server answers in 1 s. The default caller's own 30 s timeout holds for it: it
    gets the batch (its own request), while the hurried variant times out.
    """
    server.handler = delayed(1.0)
    async with asyncio.timeout(20), AsyncInkit(TOKEN, base_url=server.url) as client:
        hurried = asyncio.create_task(client.with_options(timeout=0.3).batch.get("rb_1"))
        await server.wait_for_requests(1)
        assert (await client.batch.get("rb_1")).id == "rb_1"
        with pytest.raises(APITimeoutError):
            await hurried
    assert server.requests[1].last_segment == "rb_1"


async def test_a_joiner_stops_at_its_own_timeout(server):
    """Issue 21 row 10: a timeout=0.5, max_retries=0 variant comes to a lookup under way.

    The server answers in 3 s. The variant fails with APITimeoutError after its own
    0.5 s (well within 2.5 s), not when the shared request ends; the default caller
    still gets its batch.
    """
    server.handler = delayed(3.0)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        patient = asyncio.create_task(client.batch.get("rb_1"))
        await server.wait_for_requests(1)
        hurried = client.with_options(timeout=0.5, max_retries=0)
        async with asyncio.timeout(2.5):
            with pytest.raises(APITimeoutError, match="timed out"):
                await hurried.batch.get("rb_1")
        assert not patient.done()
        async with asyncio.timeout(10):
            assert (await patient).id == "rb_1"
    assert len(server.requests) == 2


async def test_a_late_joiner_gets_its_own_timeout_when_the_request_it_joined_times_out(server):
    """A caller who joins a lookup under way is not failed by its starter's clock.

    Both have timeout=1.2, max_retries=0. The first request is answered only after 3 s;
    the second at once. The joiner came after the first request left, so that request's
    timeout ran out before the joiner's own would have: the joiner sends the lookup again
    for itself and gets its batch, while the starter gets its APITimeoutError.
    """
    answered = 0

    async def slow_first(request: Request) -> Respond:
        nonlocal answered
        answered += 1
        if answered == 1:
            await asyncio.sleep(3.0)
        return echo(request)

    server.handler = slow_first
    async with (
        asyncio.timeout(20),
        AsyncInkit(TOKEN, base_url=server.url, timeout=1.2, max_retries=0) as client,
    ):
        starter = asyncio.create_task(client.batch.get("rb_1"))
        await server.wait_for_requests(1)
        assert (await client.batch.get("rb_1")).id == "rb_1"
        with pytest.raises(APITimeoutError):
            await starter
    assert [request.last_segment for request in server.requests] == ["rb_1", "rb_1"]


async def test_a_late_joiner_sends_again_once_only(server):
    """A joiner whose own lookup times out too gets that error: one request more, no loop."""
    server.handler = lambda request: Hang()
    async with (
        asyncio.timeout(20),
        AsyncInkit(TOKEN, base_url=server.url, timeout=0.5, max_retries=0) as client,
    ):
        starter = asyncio.create_task(client.batch.get("rb_1"))
        await server.wait_for_requests(1)
        with pytest.raises(APITimeoutError) as joined:
            await client.batch.get("rb_1")
        with pytest.raises(APITimeoutError) as started:
            await starter
    assert len(server.requests) == 2
    # The joiner's error is its own request's: the starter's is nowhere in its chain.
    chain, link = [], joined.value
    while link is not None:
        chain.append(link)
        link = link.__cause__ or link.__context__
    assert all(link is not started.value for link in chain)


async def test_only_callers_of_equal_options_share_a_request(server):
    """Variants made apart but with equal options share; other options send their own.

    Equal means by value (an ``httpx.Timeout`` by its phases, a hashable callback by
    ``==``); a callback that cannot be hashed (``Events`` is a list) by identity.
    """
    server.handler = delayed(0.2)
    events = Events()
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=httpx.Timeout(5.0)) as client:
        callers = [
            client,
            client.with_options(timeout=httpx.Timeout(5.0)),  # the client's own options
            client.with_options(max_retries=0, on_event=events),
            client.with_options(max_retries=0, on_event=events),  # another, equal variant
            client.with_options(max_retries=0, on_event=Events()),  # an equal, other list
            client.with_options(timeout=5.0),  # a deadline: not the same as the phases
        ]
        batches = await asyncio.gather(*(caller.batch.get("rb_1") for caller in callers))
    assert batches[0] is batches[1]
    assert batches[2] is batches[3]
    assert len({id(batch) for batch in batches}) == 4
    assert len(server.requests) == 4


async def test_each_callers_error_owns_its_body_and_response(server):
    """Coalesced errors share no body, response or request: changing one changes no other.

    Every copy still reads as the server answered, with the token masked, and pickles.
    """
    body = {"error": "no such batch", "details": {"ids": ["rb_gone"]}}
    server.handler = lambda request: Respond(
        404, body, headers={"x-request-id": "req_1"}, delay=0.1
    )
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        errors = await asyncio.gather(
            *(client.batch.get("rb_gone") for _ in range(4)), return_exceptions=True
        )
    assert len(server.requests) == 1
    assert all(isinstance(error, NotFoundError) for error in errors)
    for number, error in enumerate(errors):
        assert isinstance(error, NotFoundError)
        error.body["details"]["ids"].append(number)
        error.response.headers["x-mine"] = str(number)
        error.response.request.headers["x-mine"] = str(number)
    for number, error in enumerate(errors):
        assert isinstance(error, NotFoundError)
        assert error.body == {"error": "no such batch", "details": {"ids": ["rb_gone", number]}}
        assert error.response.headers["x-mine"] == str(number)
        assert error.response.request.headers["x-mine"] == str(number)
        assert error.response.json() == body
        assert error.response.reason_phrase == "Not Found"
        assert error.request_id == "req_1"
        assert error.response.request.headers["x-inkit-api-token"] == "[redacted]"
        assert TOKEN not in repr(vars(error))
        again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
        assert (type(again), again.body, str(again)) == (NotFoundError, error.body, str(error))


async def test_each_callers_connection_error_owns_its_request(server):
    """Coalesced connection errors each carry a request of their own.

    The two callers who joined the first request send the lookup once more, together
    (their own attempts, see above), and share that second request. (aiohttp sends each
    dropped GET again once by itself: two requests per attempt.)
    """
    server.handler = lambda request: Drop(delay=0.1)
    async with AsyncInkit(TOKEN, base_url=server.url, max_retries=0) as client:
        errors = await asyncio.gather(
            *(client.batch.get("rb_1") for _ in range(3)), return_exceptions=True
        )
    assert len(server.requests) == 2 * 2
    requests = []
    for number, error in enumerate(errors):
        assert isinstance(error, APIConnectionError)
        assert error.request is not None
        error.request.headers["x-mine"] = str(number)
        requests.append(error.request)
    assert [request.headers["x-mine"] for request in requests] == ["0", "1", "2"]
    assert {str(request.url) for request in requests} == {f"{server.url}/batch/rb_1"}
    assert all(isinstance(error, InkitError) and error.__cause__ for error in errors)


def test_an_owned_copy_of_an_error_whose_response_has_no_request():
    """owned_copy rebuilds a response that carries no request (one built by hand) as is."""
    error = APIStatusError(
        "418 from GET /batch/x",
        response=httpx.Response(418, json={"error": "teapot"}),
        body={"error": "teapot"},
    )
    duplicate = owned_copy(error)
    assert isinstance(duplicate, APIStatusError)
    assert (str(duplicate), duplicate.status_code, duplicate.body) == (
        str(error),
        418,
        {"error": "teapot"},
    )
    assert duplicate.body is not error.body
    assert duplicate.response is not error.response
    assert duplicate.response.json() == {"error": "teapot"}
    with pytest.raises(RuntimeError):
        _ = duplicate.response.request

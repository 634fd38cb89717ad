"""Uses the public API the way an application would; mypy --strict and pyright check it.

Never run by pytest: its job is to fail type checking when an annotation regresses.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any, assert_type

import cattrs
import httpx
import httpx2

import inkit_async
from inkit_async import (
    APIConnectionError,
    APIStatusError,
    AsyncHTTPClient,
    AsyncHTTPTransport,
    AsyncInkit,
    Backoff,
    Batch,
    BatchCache,
    BatchDestinations,
    BatchList,
    BatchResource,
    BatchStatus,
    BlockingInkit,
    CacheStats,
    ClientEvent,
    CreatedBatch,
    CreatedRender,
    Creator,
    DestinationProgress,
    Document,
    DocumentBatchResource,
    EventCallback,
    FlowInvocation,
    Folder,
    HTTPTimeout,
    InkitError,
    Listing,
    NotFoundError,
    Page,
    PauseEvent,
    RateEvent,
    RateLimitError,
    Render,
    RenderSpec,
    ResponseInfo,
    RetryEvent,
    Template,
    Throttle,
    ThrottleState,
    WaitTimeoutError,
    response_of,
    to_dict,
)
from inkit_async.redis import FleetState, RedisThrottle
from inkit_async.testing import ASGIApp, FakeInkit, FakeRequest

if TYPE_CHECKING:
    from redis.asyncio import Redis


async def lookup(batch_id: str) -> Batch | None:
    """Fetch a batch, mapping the expected failures as an app would."""
    async with AsyncInkit(
        "token",
        base_url="http://127.0.0.1:8000/v1",
        timeout=httpx.Timeout(10.0, connect=2.0),
        max_retries=3,
        max_concurrency=16,
        max_retry_after=30.0,
        backoff=Backoff(initial=0.1, maximum=2.0, jitter=0.5),
    ) as client:
        assert_type(client, AsyncInkit)
        fast = client.with_options(timeout=2.0, max_retries=0)
        assert_type(fast, AsyncInkit)
        try:
            batch = await client.batch.get(batch_id)
        except NotFoundError as error:
            assert_type(error.status_code, int)
            assert_type(error.request_id, str | None)
            return None
        except RateLimitError as error:
            assert_type(error.retry_after, float | None)
            raise
        except APIStatusError as error:
            assert_type(error.response, httpx.Response)
            assert_type(error.body, object)
            raise
        except APIConnectionError as error:
            assert_type(error.request, httpx.Request | None)
            assert_type(error.may_have_reached_server, bool)
            raise
        except InkitError as error:
            assert_type(error.message, str)
            raise
        assert_type(batch, Batch)
        assert_type(batch.id, str)
        assert_type(batch.name, str | None)
        assert_type(batch.status, BatchStatus | str)
        assert_type(batch.total, int)
        assert_type(batch.created_at, datetime)
        assert_type(batch.destinations, BatchDestinations)
        assert_type(batch.destinations.inkit_storage, DestinationProgress | None)
        assert_type(batch.destinations["custom"], DestinationProgress)
        assert_type(batch.progress.completed, int)
        assert_type(batch.is_finished, bool)
        if batch.status == BatchStatus.COMPLETED:
            print(batch.name)
        return batch


async def workflows(client: AsyncInkit) -> None:
    """Create, wait, watch and list, as an application would."""
    assert_type(client.batch, DocumentBatchResource)
    assert_type(client.flow_batch, BatchResource)
    created = await client.batch.create(
        template_id="tmpl_1",
        renders=[RenderSpec(merge_parameters={"name": "Ada"}), {"merge_parameters": {}}],
        name="demo",
    )
    assert_type(created, CreatedBatch)
    try:
        done = await client.batch.wait(created.id, poll_interval=1.0, timeout=60)
        assert_type(done, Batch)
    except WaitTimeoutError as error:
        assert_type(error.batch, Batch | None)
    async for snapshot in client.flow_batch.watch("fb_1", poll_interval=0.5):
        assert_type(snapshot, Batch)
    listing = client.batch.list(page_size=100, sort="-created_at", search="invoice")
    assert_type(listing, BatchList)
    async for batch in listing:
        assert_type(batch, Batch)
    async for page in listing.pages():
        assert_type(page, Page[Batch])
        assert_type(page.items, tuple[Batch, ...])
        assert_type(page.page_count, int | None)
    many = await client.batch.get_many(["rb_1", "rb_2"])
    assert_type(many, list[Batch])
    mixed = await client.batch.get_many(["rb_1"], return_exceptions=True)
    assert_type(mixed, list[Batch | InkitError])
    async with contextlib.aclosing(client.batch.iter_many(["rb_1", "rb_2"])) as results:
        async for batch_id, result in results:
            assert_type(batch_id, str)
            assert_type(result, Batch | InkitError)


async def with_the_cache() -> None:
    """Coalescing (on by default) and the opt-in cache of finished batches."""
    cache = BatchCache(ttl=60, max_size=100)
    async with AsyncInkit("tok", cache=cache, coalesce=True) as client:
        assert_type(client.cache, BatchCache | None)
        batch = await client.batch.get("rb_1", use_cache=False)
        assert_type(batch, Batch)
        stats = cache.stats
        assert_type(stats, CacheStats)
        assert_type(stats.hits, int)


async def with_flow_control() -> None:
    """Flow control: a known limit, its state, switching it off, its events."""
    throttle = Throttle(rate_limit=200, max_wait=30, retry_ratio=0.1, retry_reserve=50)
    async with AsyncInkit("tok", throttle=throttle) as client:
        assert_type(client.throttle, Throttle | None)
        if client.throttle is not None:
            state = client.throttle.state
            assert_type(state, ThrottleState)
            assert_type(state.rate, float | None)
            assert_type(state.pauses, int)
    async with AsyncInkit("tok", throttle=False) as client:
        assert client.throttle is None

    def on_event(event: ClientEvent) -> None:
        if isinstance(event, RateEvent):
            assert_type(event.rate, float)
            assert_type(event.previous_rate, float | None)
        elif isinstance(event, PauseEvent):
            assert_type(event.outage, bool)
            assert_type(event.status_code, int | None)

    AsyncInkit("tok", on_event=on_event)


async def with_a_fleet(client: Redis) -> None:
    """Fleet-wide flow control: every option by keyword, checked by type through to Throttle's."""
    async with RedisThrottle.from_url(
        "redis://127.0.0.1:6379/0",
        namespace="web",
        max_in_flight=50,
        lease_ttl=10,
        timeout=0.25,
        rate_limit=200,
        max_wait=30,
        retry_ratio=0.1,
        retry_reserve=50,
        outage_after=5,
    ) as throttle:
        assert_type(throttle, RedisThrottle)
        assert_type(throttle.fleet, FleetState)
        assert_type(throttle.max_wait, float)
    mine = RedisThrottle(client, namespace="web", rate_limit=200, outage_after=3)
    assert_type(mine, RedisThrottle)
    # Throttle's options keep their types, and no other keyword passes (an unused ignore
    # fails mypy --strict, so these lines hold that both stay refused).
    RedisThrottle(client, max_wait="60")  # type: ignore[arg-type]
    RedisThrottle.from_url("redis://127.0.0.1:6379/0", retry_reserve=0.5)  # type: ignore[arg-type]
    RedisThrottle.from_url("redis://127.0.0.1:6379/0", max_waits=60)  # type: ignore[call-arg]


async def with_the_fake() -> None:
    """Test code as a user writes it with the fake."""
    fake = FakeInkit(token="t", docs_per_poll=2, seed=1)
    batch_id = fake.add_batch(name="x", destinations={"inkit_storage": 3}, flow=False)
    assert_type(batch_id, str)
    fake.advance(batch_id, 1)
    fake.fail_next(2, 503, retry_after=0, body={"error": "busy"}, delay=0.0)
    fake.limit_rate(200, burst=20, retry_after=1)
    assert_type(fake.refused, int)
    async with fake.client(backoff=Backoff(initial=0, maximum=0), max_retries=3) as client:
        assert_type(client, AsyncInkit)
        await client.batch.get(batch_id)
    fake.complete(batch_id)
    fake.fail(batch_id)
    for request in fake.requests:
        assert_type(request, FakeRequest)
        assert_type(request.params, dict[str, str])
        assert_type(request.authorized, bool)
    assert_type(fake.app, ASGIApp)


async def observed() -> None:
    """Retries as data, and a mock transport, as a test or a metrics hook uses them."""
    seen: list[ClientEvent] = []

    def record(event: ClientEvent) -> None:
        if isinstance(event, RetryEvent):
            assert_type(event.delay, float)
            assert_type(event.status_code, int | None)
            assert_type(event.exception, str | None)
        elif isinstance(event, PauseEvent):
            assert_type(event.seconds, float)
        seen.append(event)

    callback: EventCallback = record
    transport = httpx.MockTransport(lambda request: httpx.Response(404))
    async with AsyncInkit("t", transport=transport, on_event=callback) as client:
        quiet = client.with_options(on_event=seen.append)
        assert_type(quiet, AsyncInkit)
        assert_type(client.timeout, float | HTTPTimeout)
        assert_type(client.backoff, Backoff)
        assert_type(client.max_retry_after, float)
        # None means what it means in AsyncInkit(...): no callback, the default backoff.
        plain = client.with_options(on_event=None, backoff=None)
        assert_type(plain, AsyncInkit)
        # ...and timeout, max_retries and max_retry_after take none (an unused ignore
        # fails mypy --strict, so these lines hold that None stays refused).
        client.with_options(timeout=None)  # type: ignore[arg-type]
        client.with_options(max_retries=None)  # type: ignore[arg-type]
        client.with_options(max_retry_after=None)  # type: ignore[arg-type]
    async with FakeInkit().client(on_event=seen.append, max_retries=0) as fake_client:
        assert_type(fake_client, AsyncInkit)


class TracedClient(AsyncInkit):
    """A subclass of the client, as an application might write one."""

    def label(self) -> str:
        """Something of its own, which its variants keep."""
        return f"traced {self.base_url}"


def subclassed(client: TracedClient) -> None:
    """A subclass's variants are of the subclass."""
    fast = client.with_options(timeout=2.0)
    assert_type(fast, TracedClient)
    assert_type(fast.label(), str)


async def through_httpx2() -> None:
    """httpx2's client, transport and Timeout where httpx's go, without a cast."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"id": request.url.path})

    transport = httpx2.MockTransport(answer)
    async with AsyncInkit("t", transport=transport, timeout=httpx2.Timeout(5.0)) as client:
        assert_type(client.timeout, float | HTTPTimeout)
        slow = client.with_options(timeout=httpx2.Timeout(30.0, connect=2.0))
        assert_type(slow, AsyncInkit)
        assert_type(slow.timeout, float | HTTPTimeout)
    async with (
        httpx2.AsyncClient(transport=transport) as http,
        AsyncInkit("t", http_client=http, timeout=httpx2.Timeout(5.0, read=10.0)) as client,
    ):
        assert_type(client, AsyncInkit)
        quick = client.with_options(timeout=1.5)
        assert_type(quick.timeout, float | HTTPTimeout)
        try:
            await client.batch.get("rb_1")
        except APIConnectionError as error:
            # The SDK's errors carry its own httpx objects, whichever library sent.
            assert_type(error.request, httpx.Request | None)
    client_of_either: AsyncHTTPClient = http
    transport_of_either: AsyncHTTPTransport = transport
    timeout_of_either: HTTPTimeout = httpx2.Timeout(1.0)
    AsyncInkit("t", http_client=client_of_either, timeout=timeout_of_either)
    AsyncInkit("t", transport=transport_of_either)


def plain_data(batch: Batch, page: Page[Batch], stats: CacheStats, event: ClientEvent) -> None:
    """Records, events and snapshots to plain data, as a web route or a logger would."""
    assert_type(batch.to_dict(), dict[str, Any])
    assert_type(page.to_dict(), dict[str, Any])
    assert_type(batch.destinations.to_dict(), dict[str, Any])
    assert_type(batch.progress.to_dict(), dict[str, Any])
    assert_type(to_dict(batch), dict[str, Any])
    assert_type(to_dict(stats), dict[str, Any])
    assert_type(to_dict(event), dict[str, Any])


async def with_responses_kept(blocking: BlockingInkit) -> None:
    """response_of types its answer, for any record: async, blocking, a page."""
    async with AsyncInkit(keep_responses=True) as client:
        assert_type(client.keep_responses, bool)
        batch = await client.batch.get("rb_1")
        info = response_of(batch)
        assert_type(info, ResponseInfo | None)
        if info is not None:
            assert_type(info.status, int)
            assert_type(info.headers.get("x-ratelimit-remaining"), str | None)
            assert_type(info.request_id, str | None)
            assert_type(info.elapsed, float)
            assert_type(info.attempts, int)
        async for page in client.render.list().pages():
            assert_type(response_of(page), ResponseInfo | None)
    assert_type(response_of(blocking.batch.get("rb_1")), ResponseInfo | None)


def from_synchronous_code(ids: list[str]) -> None:
    """BlockingInkit: AsyncInkit's arguments and methods, blocking, with their types."""
    with BlockingInkit(
        "token",
        base_url="http://127.0.0.1:8000/v1",
        timeout=httpx.Timeout(10.0, connect=2.0),
        max_retries=3,
        throttle=Throttle(rate_limit=50),
    ) as client:
        assert_type(client, BlockingInkit)
        assert_type(client.batch.get("rb_1"), Batch)
        assert_type(client.batch.get("rb_1", use_cache=False), Batch)
        assert_type(client.batch.get_many(ids), list[Batch])
        assert_type(client.batch.get_many(ids, return_exceptions=True), list[Batch | InkitError])
        for batch_id, result in client.batch.iter_many(ids):
            assert_type(batch_id, str)
            assert_type(result, Batch | InkitError)
        with contextlib.closing(client.batch.iter_many(ids)) as results:
            next(results)
        for batch in client.batch.list(page_size=100, sort="-created_at"):
            assert_type(batch, Batch)
        for page in client.batch.list().pages():
            assert_type(page, Page[Batch])
        for snapshot in client.flow_batch.watch("fb_1", poll_interval=1.0):
            assert_type(snapshot, Batch)
        assert_type(client.batch.wait("rb_1", timeout=60), Batch)
        assert_type(
            client.batch.create(template_id="tmpl_1", renders=[RenderSpec(merge_parameters={})]),
            CreatedBatch,
        )
        fast = client.with_options(timeout=2.0, max_retries=0)
        assert_type(fast, BlockingInkit)
        assert_type(fast.throttle, Throttle | None)
        assert_type(client.timeout, float | HTTPTimeout)
        assert_type(client.is_closed, bool)
        client.close()
    BlockingInkit(max_retries="3")  # type: ignore[arg-type] # pyright: ignore[reportArgumentType]
    BlockingInkit(bogus=1)  # type: ignore[call-arg] # pyright: ignore[reportCallIssue]
    client.with_options(max_concurrency=2)  # type: ignore[call-arg] # pyright: ignore[reportCallIssue]
    client.batch.get(1)  # type: ignore[arg-type] # pyright: ignore[reportArgumentType]
    client.flow_batch.create(template_id="t", renders=[])  # type: ignore[attr-defined] # pyright: ignore[reportAttributeAccessIssue]


def deprecated_converter(data: dict[str, object]) -> dict[str, object]:
    """inkit_async.converter still type-checks for its last release (it warns at run time)."""
    assert_type(inkit_async.converter, cattrs.Converter)
    batch = inkit_async.converter.structure(data, Batch)
    result: dict[str, object] = inkit_async.converter.unstructure(batch)
    return result


assert_type(inkit_async.__version__, str)
asyncio.run(lookup("rb_1"))


async def the_other_resources(client: AsyncInkit, blocking: BlockingInkit) -> None:
    """Renders, documents, templates, folders and flows: their records and listings."""
    created = await client.render.create(template_id="tmpl_1", merge_parameters={"a": 1})
    assert_type(created, CreatedRender)
    assert_type(created.document_id, str | None)
    render = await client.render.get(created.id)
    assert_type(render, Render)
    assert_type(render.is_completed, bool)
    assert_type(client.render.list(data_id=["rend_1"]), Listing[Render])
    async for page in client.render.list().pages():
        assert_type(page, Page[Render])
    assert_type(await client.render.delete("rend_1"), None)
    assert_type(await client.document.get("doc_1"), Document)
    async for document in client.document.list(data_id="rend_1"):
        assert_type(document.created_by, Creator | None)
    template = await client.template.create(name="T", source="html", file=b"<p/>")
    assert_type(template, Template)
    assert_type(template.width, float | str | None)
    async for folder in client.folder.list():
        assert_type(folder, Folder)
    assert_type(await client.flow.invoke(flow_id="f", merge_parameters={}), CreatedRender)
    async for invocation in client.flow.list_invocations():
        assert_type(invocation, FlowInvocation)
    assert_type(render.to_dict(), dict[str, Any])
    assert_type(to_dict(template), dict[str, Any])
    assert_type(blocking.render.get("rend_1"), Render)
    for each in blocking.template.list(source="pdf"):
        assert_type(each, Template)
    for listed in blocking.flow.list_invocations().pages():
        assert_type(listed, Page[FlowInvocation])

"""Hostile input, over real sockets: answers and arguments built to escape, loop or swell.

Each test plays the attacker once: JSON nested until Python's parser gives up, ids and
filters longer than a URL may be, a listing whose page never advances, negative
counters, a 5 MB error message, an answer for another batch, a client left unclosed.
Every one must end in a typed error (or a warning), never in ``RecursionError``,
``httpx.InvalidURL``, an endless loop or an unbounded message.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import warnings
from typing import Any

import httpx
import pytest

from inkit_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AsyncInkit,
    BadRequestError,
    RenderSpec,
    UnprocessableEntityError,
)
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.loopback import BATCH_JSON, Raw, Request, Respond, answer_bytes, echo, run_cli

CREATE: dict[str, Any] = {"template_id": "tmpl_1", "renders": [{"merge_parameters": {}}]}


def deep_array(depth: int) -> bytes:
    """``[[[...]]]``, *depth* levels deep: 2 bytes a level."""
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    """``{"a": {"a": ... 1}}``, *depth* levels deep."""
    return b'{"a":' * depth + b"1" + b"}" * depth


def json_answer(payload: bytes, status: int = 200) -> Respond:
    """An answer whose body is *payload* as it is, labelled JSON."""
    return Respond(status, payload, {"content-type": "application/json"})


def nested(depth: int) -> dict[str, Any]:
    """A mapping *depth* levels deep (``{}`` is 1)."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# -- JSON nested too deeply --------------------------------------------------------------

DEEP_BODIES = {
    "array-984": deep_array(984),
    "array-100000": deep_array(100_000),
    "object-984": deep_object(984),
    "object-100000": deep_object(100_000),
    "in-a-batch-100000": b'{"id": "rb_1", "x": ' + deep_array(100_000) + b"}",
}


@pytest.mark.parametrize("payload", list(DEEP_BODIES.values()), ids=list(DEEP_BODIES))
async def test_deeply_nested_json_in_a_2xx_answer_is_a_validation_error(server, payload):
    """get, list and create each raise APIResponseValidationError; the error pickles."""
    server.handler = lambda request: json_answer(payload, 201 if request.method == "POST" else 200)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(APIResponseValidationError) as got:
            await client.batch.get("rb_1")
        with pytest.raises(APIResponseValidationError):
            [batch async for batch in client.batch.list()]
        with pytest.raises(APIResponseValidationError):
            await client.batch.create(**CREATE)
    assert len(server.requests) == 3  # not retried
    error = got.value
    assert isinstance(error.body, str)
    assert len(error.body) == len(payload)
    assert pickle.loads(pickle.dumps(error)).body == error.body  # noqa: S301


async def test_one_deep_answer_does_not_abort_get_many(server):
    """get_many(return_exceptions=True): the hostile lookup's error in its place, the rest fine."""
    deep = deep_array(100_000)
    server.handler = lambda request: (
        json_answer(deep) if request.last_segment == "rb_deep" else echo(request)
    )
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        results = await client.batch.get_many(["rb_1", "rb_deep", "rb_2"], return_exceptions=True)
    assert [type(result).__name__ for result in results] == [
        "Batch",
        "APIResponseValidationError",
        "Batch",
    ]


@pytest.mark.parametrize("depth", [65, 984, 100_000])
async def test_a_deeply_nested_error_body_is_kept_as_its_text(server, depth):
    """Nested over 64 levels, an error body is .body as text; the message stays short."""
    server.handler = lambda request: json_answer(deep_array(depth), 400)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(BadRequestError) as info:
            await client.batch.get("rb_1")
    error = info.value
    assert error.body == deep_array(depth).decode()
    assert len(str(error)) < 600
    assert copy_of(error).body == error.body


async def test_an_error_body_at_the_depth_limit_is_kept_as_json(server):
    """64 levels is within the limit: .body is the decoded JSON."""
    server.handler = lambda request: json_answer(deep_array(64), 400)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(BadRequestError) as info:
            await client.batch.get("rb_1")
    body = info.value.body
    for _ in range(63):
        assert isinstance(body, list)
        body = body[0]
    assert body == []


def copy_of(error: BaseException) -> Any:
    """*error* after a pickle round trip."""
    return pickle.loads(pickle.dumps(error))  # noqa: S301


@pytest.mark.subprocess
async def test_the_cli_reports_a_deep_answer_in_one_line(server):
    """inkit-async batch get: exit 1, one line on stderr, no traceback."""
    server.handler = lambda request: json_answer(deep_array(100_000))
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKIT_")}
    env |= {"INKIT_API_TOKEN": TOKEN, "INKIT_BASE_URL": server.url}
    run = await run_cli("batch", "get", "rb_1", env=env)
    assert run.code == 1
    assert run.err == (
        "inkit-async: rb_1: GET /batch/rb_1 returned 200 with JSON nested too deeply to decode\n"
    )


@pytest.mark.parametrize("where", ["merge_parameters", "destinations", "render-spec", "list"])
async def test_create_refuses_merge_parameters_nested_over_64_levels(server, where):
    """65 levels (or 100,000) raise ValueError before anything is sent; 64 are sent."""

    def render(depth: int) -> Any:
        if where == "destinations":
            return {"merge_parameters": {}, "destinations": {"inkit_storage": nested(depth - 1)}}
        if where == "render-spec":
            return RenderSpec(merge_parameters=nested(depth))
        if where == "list":
            value: Any = []
            for _ in range(depth - 2):
                value = [value]
            return {"merge_parameters": {"items": value}}
        return {"merge_parameters": nested(depth)}

    server.handler = lambda request: Respond(201, {"id": "rb_new"})
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        for depth in (65, 100_000):
            with pytest.raises(ValueError, match="more than 64 levels deep"):
                await client.batch.create(template_id="tmpl_1", renders=[render(depth)])
        assert server.requests == []
        assert (
            await client.batch.create(template_id="tmpl_1", renders=[render(64)])
        ).id == "rb_new"
    assert len(server.requests) == 1


async def test_create_refuses_merge_parameters_that_contain_themselves(server):
    """A mapping that holds itself nests without end: ValueError, nothing sent."""
    loop: dict[str, Any] = {}
    loop["self"] = loop
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(ValueError, match="contains itself"):
            await client.batch.create(template_id="tmpl_1", renders=[{"merge_parameters": loop}])
    assert server.requests == []


# -- input too long for a URL --------------------------------------------------------------


@pytest.mark.parametrize("length", [1025, 65_505, 1_000_000])
async def test_an_over_long_id_is_refused_before_anything_is_sent(server, length):
    """get, get_many, iter_many, watch and wait refuse an id over 1,024 characters."""
    long_id = "x" * length
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        calls = [
            lambda: client.batch.get(long_id),
            lambda: client.batch.get_many(["rb_1", long_id], return_exceptions=True),
            lambda: client.flow_batch.get_many([long_id]),
            lambda: client.batch.wait(long_id),
        ]
        for call in calls:
            with pytest.raises(ValueError, match=f"at most 1,024 characters, got {length:,}"):
                await call()
        with pytest.raises(ValueError, match="at most 1,024"):
            client.batch.iter_many([long_id])
        with pytest.raises(ValueError, match="at most 1,024"):
            client.batch.watch(long_id)
    assert server.requests == []


async def test_an_id_at_the_limit_in_four_byte_characters_is_fetched(server):
    """1,024 emoji encode to a 12,288-character segment: sent, answered, checked."""
    emoji_id = "\U0001f600" * 1024
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        assert (await client.batch.get(emoji_id)).id == emoji_id
    assert len(server.requests[0].path) > 12_288


async def test_an_id_with_a_lone_surrogate_is_refused(server):
    """An id with no UTF-8 form is a ValueError naming the problem, not a codec error."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(ValueError, match="lone surrogate"):
            await client.batch.get("rb_\ud800")
        with pytest.raises(ValueError, match="lone surrogate"):
            client.batch.list(search="\udfff")
    assert server.requests == []


@pytest.mark.parametrize("name", ["search", "sort", "destination_name", "destination_status"])
async def test_an_over_long_filter_is_refused_when_list_is_called(server, name):
    """A filter over 1,024 characters (or 70,000) raises ValueError at list()."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        for length in (1025, 70_000):
            with pytest.raises(ValueError, match=f"{name} must be at most 1,024"):
                client.batch.list(**{name: "a" * length})
    assert server.requests == []


def listing(request: Request) -> Respond:
    """An empty one-page listing (for queries whose only interest is what was sent)."""
    pagination = {"current_page": 1, "page_count": 1, "total_count": 0}
    return Respond(body={"items": [], "metadata": {"pagination": pagination}})


async def test_the_longest_listing_url_is_sent(server):
    """Every filter at its limit in 4-byte characters, base_url at its: under httpx's limit."""
    server.handler = listing
    base_url = server.url + "/" + "p" * (2048 - len(server.url) - 1)
    wide = "\U0001f600" * 1024
    filters = {"search": wide, "destination_name": wide, "destination_status": wide}
    async with AsyncInkit(TOKEN, base_url=base_url) as client:
        found = [b async for b in client.batch.list(sort="a" * 1024, page_size=1000, **filters)]
    assert found == []
    url_length = len(server.url) - len("/v1") + len(server.requests[0].target)
    assert 38_000 < url_length < 65_536


# -- listings that never end ---------------------------------------------------------------


def stuck_at(page: int | None, *, metadata: bool = True) -> Any:
    """A listing handler whose answer always says *page* and holds the same batch."""

    def handler(request: Request) -> Respond:
        body: dict[str, Any] = {"items": [{**BATCH_JSON, "id": "rb_1"}]}
        if metadata:
            body["metadata"] = {"pagination": {"current_page": page, "page_count": 5}}
        return Respond(body=body)

    return handler


@pytest.mark.parametrize(("page", "requests"), [(1, 2), (0, 1), (-1, 1), (3, 1)])
async def test_a_page_that_does_not_advance_ends_the_listing(server, page, requests):
    """current_page stuck, 0, negative or ahead: APIResponseValidationError, no page asked twice."""
    server.handler = stuck_at(page)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(APIResponseValidationError, match=r"current_page"):
            [batch async for batch in client.batch.list()]
    pages = [request.query for request in server.requests]
    assert pages == [f"page={number}" for number in range(1, requests + 1)]


async def test_a_server_that_ignores_page_without_metadata_ends_the_listing(server):
    """No metadata and the same batches on every page: an error after the second page."""
    server.handler = stuck_at(None, metadata=False)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        pages = client.batch.list().pages()
        first = await anext(pages)
        with pytest.raises(APIResponseValidationError, match="same records as page 1"):
            await anext(pages)
    assert [batch.id for batch in first.items] == ["rb_1"]
    assert [request.query for request in server.requests] == ["page=1", "page=2"]


async def test_pages_that_do_advance_are_all_read(server):
    """A well-behaved listing of three pages: every batch, each page once."""

    def pages(request: Request) -> Respond:
        number = int(request.query.removeprefix("page="))
        items = [{**BATCH_JSON, "id": f"rb_{number}"}]
        pagination = {"current_page": number, "page_count": 3}
        return Respond(body={"items": items, "metadata": {"pagination": pagination}})

    server.handler = pages
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        assert [b.id async for b in client.batch.list()] == ["rb_1", "rb_2", "rb_3"]
    assert len(server.requests) == 3


# -- counters ---------------------------------------------------------------------------------

NEGATIVE = {
    "count": "$.destinations['inkit_storage'].count",
    "completed": "$.destinations['inkit_storage'].completed",
    "failed": "$.destinations['inkit_storage'].failed",
    "in_progress": "$.destinations['inkit_storage'].in_progress",
    "total": "$.total",
}


@pytest.mark.parametrize(("field", "path"), list(NEGATIVE.items()), ids=list(NEGATIVE))
async def test_a_negative_counter_is_a_validation_error_naming_its_path(server, field, path):
    """-1 anywhere a count belongs: APIResponseValidationError with the field path."""
    counters = {"count": 1, "completed": 1, "failed": 0, "in_progress": 0}
    body: dict[str, Any] = {**BATCH_JSON, "id": "rb_1", "status": "In Progress"}
    if field == "total":
        body["total"] = -1
    else:
        body["destinations"] = {"inkit_storage": {**counters, field: -1}}
    server.handler = lambda request: Respond(body=body)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(APIResponseValidationError, match=r">= 0, got -1\) @ ") as info:
            await client.batch.get("rb_1")
        with pytest.raises(APIResponseValidationError):
            await client.batch.wait("rb_1", poll_interval=0.01, timeout=5)
    assert str(info.value).endswith(path)


async def test_in_progress_below_zero_never_makes_a_batch_finished(server):
    """Counters of 2 completed of 1, in_progress -1, once looked finished: wait() raises."""
    counters = {"count": 1, "completed": 2, "failed": 0, "in_progress": -1}
    body = {**BATCH_JSON, "id": "rb_1", "status": "Mystery", "destinations": {"x": counters}}
    server.handler = lambda request: Respond(body=body)
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(APIResponseValidationError, match="in_progress"):
            await client.batch.wait("rb_1", poll_interval=0.01, timeout=5)


@pytest.mark.parametrize("field", ["page_count", "total_count"])
async def test_negative_pagination_numbers_are_validation_errors(server, field):
    """page_count or total_count of -1 in a listing: APIResponseValidationError naming it."""
    pagination = {"current_page": 1, "page_count": 1, "total_count": 0, field: -1}
    server.handler = lambda request: Respond(
        body={"items": [], "metadata": {"pagination": pagination}}
    )
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(APIResponseValidationError, match=field):
            [batch async for batch in client.batch.list()]


# -- swollen messages ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["json", "text"])
async def test_a_5_mb_error_message_is_cut_in_the_message_and_kept_in_the_body(server, kind):
    """str(error) is at most ~550 characters and ends with an ellipsis; .body is whole."""
    detail = "x" * 5_000_000
    body: Any = {"error": detail} if kind == "json" else detail
    server.script(Respond(422, body))
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(UnprocessableEntityError) as info:
            await client.batch.get("rb_1")
    message = str(info.value)
    prefix = "422 Unprocessable Entity from GET /batch/rb_1: "
    assert message == prefix + "x" * 499 + "\N{HORIZONTAL ELLIPSIS}"
    assert info.value.body == body


async def test_an_error_message_cannot_forge_lines_or_drive_a_terminal(server):
    """Line breaks collapse to spaces, control characters are escaped: one printable line."""
    server.script(Respond(422, {"error": "bad\n2024-01-01 ERROR forged\r\n\x1b[2Jgone\x00"}))
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(UnprocessableEntityError) as info:
            await client.batch.get("rb_1")
    assert str(info.value).endswith(": bad 2024-01-01 ERROR forged \\x1b[2Jgone\\x00")
    assert str(info.value).isprintable()


async def test_a_long_reason_phrase_is_cut_too(server):
    """A 5,000-character reason phrase: 100 characters of it in the message."""
    server.script(Raw(answer_bytes(418, b"", reason="R" * 5000)))
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(APIStatusError) as info:
            await client.batch.get("rb_1")
    assert type(info.value) is APIStatusError
    assert str(info.value) == "418 " + "R" * 99 + "\N{HORIZONTAL ELLIPSIS} from GET /batch/rb_1"


async def test_a_long_transport_failure_text_is_cut(server):
    """A malformed 6 KB header the parser quotes: 500 characters of its text, one line."""
    server.handler = lambda request: Raw(b"HTTP/1.1 200 OK\r\n" + b"Y" * 6000 + b"\r\n\r\n")
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    prefix = "GET /batch/rb_1 failed: "
    message = str(info.value)
    assert message.startswith(prefix)
    assert len(message) == len(prefix) + 500
    assert message.endswith("Y\N{HORIZONTAL ELLIPSIS}")
    assert message.isprintable()


# -- an answer for another batch ---------------------------------------------------------


async def test_an_answer_for_another_batch_is_a_validation_error(server):
    """get, get_many and wait refuse a record whose id is not the id asked for."""
    server.handler = lambda request: Respond(body={**BATCH_JSON, "id": "rb_other"})
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        with pytest.raises(APIResponseValidationError, match="'rb_other', not the one asked for"):
            await client.batch.get("rb_1")
        [result] = await client.batch.get_many(["rb_1"], return_exceptions=True)
        assert isinstance(result, APIResponseValidationError)
        with pytest.raises(APIResponseValidationError):
            await client.flow_batch.wait("fb_1", poll_interval=0.01, timeout=5)


@pytest.mark.parametrize(
    ("batch_id", "answered", "accepted"),
    [
        ("a b", "a b", True),
        ("a b", "a%20b", False),
        ("a/b?c=1", "a/b?c=1", True),
        ("a%2Fb", "a/b", False),
        ("a%2Fb", "a%2Fb", True),
        ("\u00e9", "\u00e9", True),
        ("\u00e9", "%C3%A9", False),
    ],
)
async def test_the_id_check_compares_with_the_id_as_given(server, batch_id, answered, accepted):
    """The answer's id must equal the id the caller gave, not its percent-encoded form."""
    server.handler = lambda request: Respond(body={**BATCH_JSON, "id": answered})
    async with AsyncInkit(TOKEN, base_url=server.url) as client:
        if accepted:
            assert (await client.batch.get(batch_id)).id == batch_id
        else:
            with pytest.raises(APIResponseValidationError, match="not the one asked for"):
                await client.batch.get(batch_id)


async def test_a_stray_answer_on_a_connection_never_passes_for_the_next_batch(server):
    """Answers nobody asked for, then gets at once: each returns its own batch or raises."""
    for round_number in range(10):
        stray = Respond(body={**BATCH_JSON, "id": "rb_stray"}).encode()
        first = Respond(body={**BATCH_JSON, "id": f"rb_first_{round_number}"}).encode()
        server.script(Raw(first + stray + stray, close=False))
        async with AsyncInkit(TOKEN, base_url=server.url, max_retries=0) as client:
            await client.batch.get(f"rb_first_{round_number}")
            for number in range(3):
                try:
                    batch = await client.batch.get(f"rb_{number}")
                except APIResponseValidationError:
                    continue
                assert batch.id == f"rb_{number}"


# -- a client left unclosed ------------------------------------------------------------------

UNCLOSED = (
    "An AsyncInkit client was garbage-collected without being closed, leaving its "
    "connections open: close it with `await client.aclose()`, or use "
    "`async with AsyncInkit(...) as client:`"
)


async def dropped(make: Any) -> list[tuple[type[Warning], str]]:
    """The warnings naming AsyncInkit when the client *make* returns is used and dropped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = await make()
        del client
        gc.collect()
        ours = [(w.category, str(w.message)) for w in caught if "AsyncInkit" in str(w.message)]
        # What the records kept alive (their `source`) goes now, still inside the block.
        caught.clear()
        gc.collect()
    return ours


async def test_a_client_dropped_unclosed_warns_once_naming_it_and_the_cure(server):
    """One ResourceWarning that names AsyncInkit and says how to close it; aiohttp's none."""

    async def used() -> AsyncInkit:
        client = AsyncInkit(TOKEN, base_url=server.url)
        await client.batch.get("rb_1")
        await client.with_options(timeout=5).batch.get("rb_2")
        return client

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert await dropped(used) == [(ResourceWarning, UNCLOSED)]
        await asyncio.sleep(0.05)  # aiohttp's timers would warn from the loop by now
        gc.collect()
    assert [str(w.message) for w in caught if "nclosed" in str(w.message)] == []


async def test_closed_unused_and_borrowing_clients_do_not_warn(server):
    """Closed, never used, or sending through the caller's http_client: no warning."""

    async def closed() -> AsyncInkit:
        async with AsyncInkit(TOKEN, base_url=server.url) as client:
            await client.batch.get("rb_1")
        return client

    async def unused() -> AsyncInkit:
        return AsyncInkit(TOKEN, base_url=server.url)

    async with httpx.AsyncClient() as http:

        async def borrowing() -> AsyncInkit:
            client = AsyncInkit(TOKEN, base_url=server.url, http_client=http)
            await client.batch.get("rb_1")
            return client

        for make in (closed, unused, borrowing):
            assert await dropped(make) == []


async def test_a_dropped_variant_does_not_warn_while_its_parent_lives(server):
    """Variants share the parent's pool: dropping one is not a leak."""
    async with AsyncInkit(TOKEN, base_url=server.url) as client:

        async def variant() -> AsyncInkit:
            child = client.with_options(max_retries=0)
            await child.batch.get("rb_1")
            return child

        assert await dropped(variant) == []
        assert (await client.batch.get("rb_2")).id == "rb_2"

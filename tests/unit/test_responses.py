"""response_of(record): the 2xx behind a record, for a client made with keep_responses=True.

In process: FakeInkit's client, or an httpx MockTransport through ``transport=`` (the
production path but the socket). Over a socket: tests/functional/test_responses.py.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import pickle
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import pytest

from inkit_async import (
    AsyncInkit,
    Batch,
    BatchCache,
    BlockingInkit,
    NotFoundError,
    RenderSpec,
    ResponseInfo,
    response_of,
)
from inkit_async._converter import structure
from inkit_async._exceptions import Secrets, request_id_of
from inkit_async._responses import _KEPT, keep
from inkit_async._wire import Reply
from inkit_async.testing import FakeInkit
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.loopback import BATCH_JSON


def batch_answer(request: httpx.Request, **headers: str) -> httpx.Response:
    """The batch the path names, with *headers* and the path's id as its request id."""
    batch_id = request.url.path.rsplit("/", 1)[-1]
    return httpx.Response(
        200,
        json={**BATCH_JSON, "id": batch_id},
        headers={"x-request-id": f"req-{batch_id}", **headers},
    )


def client_of(handler: Callable[[httpx.Request], Any], **options: Any) -> AsyncInkit:
    """A client over a MockTransport answering with *handler*; keeps responses by default."""
    options.setdefault("keep_responses", True)
    return AsyncInkit(TOKEN, transport=httpx.MockTransport(handler), backoff=NO_WAIT, **options)


# -- off, on --------------------------------------------------------------------------


async def test_off_by_default_no_record_has_a_response():
    """A client made without keep_responses keeps nothing: response_of says None."""
    fake = FakeInkit(seed=1)
    batch_id = fake.add_batch(name="a", destinations={"inkit_storage": 1})
    async with fake.client() as client:
        assert client.keep_responses is False
        batch = await client.batch.get(batch_id)
        pages = [page async for page in client.batch.list().pages()]
    assert response_of(batch) is None
    assert [response_of(page) for page in pages] == [None]


async def test_on_the_record_carries_status_headers_request_id_and_time():
    """Status, headers (any case), request id, attempts and a time of the attempt."""

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return batch_answer(request, **{"X-RateLimit-Remaining": "41"})

    async with client_of(slow) as client:
        assert client.keep_responses is True
        batch = await client.batch.get("rb_1")
    info = response_of(batch)
    assert isinstance(info, ResponseInfo)
    assert info.status == 200
    assert info.request_id == "req-rb_1"
    assert info.headers["x-ratelimit-remaining"] == "41"
    assert info.headers["X-RATELIMIT-REMAINING"] == "41"
    assert info.headers["Content-Type"] == "application/json"
    assert info.attempts == 1
    assert info.elapsed >= 0.04  # it slept 0.05 s inside the attempt: a lower bound only


async def test_the_headers_are_read_only_and_a_repeated_name_reads_joined():
    """A Mapping, not a dict: no item assignment; a repeated name reads as httpx reads it."""

    def handler(request: httpx.Request) -> httpx.Response:
        headers = [("x-request-id", "r"), ("Via", "a"), ("via", "b"), ("x-raw", b"caf\xe9")]
        headers.append(("x-utf8", "caf\xe9".encode()))
        return httpx.Response(200, json=BATCH_JSON, headers=headers)

    async with client_of(handler) as client:
        batch = await client.batch.get(BATCH_JSON["id"])
    info = response_of(batch)
    assert info is not None
    headers = info.headers
    assert headers["via"] == "a, b"
    assert headers["x-raw"] == "caf\xe9"  # not UTF-8 on the wire: read as Latin-1
    assert headers["x-utf8"] == "caf\xe9"  # UTF-8 on the wire: read as UTF-8
    assert headers.get(1) is None  # type: ignore[call-overload]  # not a name: not there
    assert "X-Request-Id" in headers
    assert set(headers) >= {"via", "x-request-id", "x-raw"}
    assert len(headers) == len(list(headers))
    with pytest.raises(TypeError):
        headers["via"] = "c"  # type: ignore[index]
    assert "'via': 'a, b'" in repr(headers)
    assert hash(info) == hash(response_of(batch))
    assert info == response_of(batch)


async def test_retries_count_as_attempts():
    """A 503 then a 200: the record comes from the second of two attempts."""
    statuses = iter([503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        if status != 200:
            return httpx.Response(status, json={"error": "busy"})
        return batch_answer(request)

    async with client_of(handler) as client:
        batch = await client.batch.get("rb_2")
    info = response_of(batch)
    assert info is not None
    assert (info.status, info.attempts) == (200, 2)


async def test_a_response_without_request_id_reads_none_and_request_id_is_a_fallback():
    """request-id when there is no x-request-id; neither gives None, as errors read them."""
    ids = iter([{"request-id": "req_9"}, {}])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=BATCH_JSON, headers=next(ids))

    async with client_of(handler, coalesce=False) as client:
        first = await client.batch.get(BATCH_JSON["id"])
        second = await client.batch.get(BATCH_JSON["id"])
    assert [response_of(first).request_id, response_of(second).request_id] == [  # type: ignore[union-attr]
        "req_9",
        None,
    ]


# -- what it never shows ----------------------------------------------------------------


async def test_credentials_echoed_in_headers_are_masked():
    """The token, a default header's value and a token a hook changed: all [redacted]."""
    gateway = "Bearer gw_S3cretGatewayValue"
    hooked = "tok_hooked_Other_Value_77"

    def handler(request: httpx.Request) -> httpx.Response:
        sent = request.headers["x-inkit-api-token"]
        return httpx.Response(
            200,
            json=BATCH_JSON,
            headers={
                "x-echo-token": f"token={sent}",
                "x-echo-auth": request.headers["authorization"],
                "x-request-id": sent,
                f"x-{TOKEN}": "named after the client's token",
            },
        )

    async def change_token(request: httpx.Request) -> None:
        request.headers["x-inkit-api-token"] = hooked

    for http_client, token in (
        (None, TOKEN),
        (httpx.AsyncClient(transport=httpx.MockTransport(handler)), hooked),
    ):
        if http_client is not None:
            http_client.event_hooks["request"] = [change_token]
        options: dict[str, Any] = {"default_headers": {"Authorization": gateway}}
        if http_client is None:
            options["transport"] = httpx.MockTransport(handler)
        else:
            options["http_client"] = http_client
        async with AsyncInkit(TOKEN, keep_responses=True, **options) as client:
            batch = await client.batch.get(BATCH_JSON["id"])
        if http_client is not None:
            await http_client.aclose()
        info = response_of(batch)
        assert info is not None
        shown = repr(info)
        assert token not in shown
        assert TOKEN not in shown
        assert "S3cretGatewayValue" not in shown
        assert info.headers["x-echo-token"] == "token=[redacted]"
        assert info.headers["x-echo-auth"] == "[redacted]"
        assert info.request_id == "[redacted]"
        assert info.headers["x-[redacted]"] == "named after the client's token"


async def test_a_proxy_password_echoed_in_a_header_is_masked(monkeypatch):
    """A caller's transport: the proxy variables' credentials are the client's secrets too."""
    password = "Pr0xyPassw0rd_xyz"
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:{password}@127.0.0.1:3128")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=BATCH_JSON, headers={"x-echo": f"proxy {password}"})

    async with client_of(handler) as client:
        batch = await client.batch.get(BATCH_JSON["id"])
    info = response_of(batch)
    assert info is not None
    assert info.headers["x-echo"] == "proxy [redacted]"


async def test_set_cookie_is_left_out():
    """A cookie the server sets is a credential of its own: never in the headers."""

    def handler(request: httpx.Request) -> httpx.Response:
        headers = [
            ("Set-Cookie", "session=abc123; HttpOnly"),
            ("set-cookie", "lb=node7"),
            ("Set-Cookie2", "old=1"),
            ("x-request-id", "r1"),
        ]
        return httpx.Response(200, json=BATCH_JSON, headers=headers)

    async with client_of(handler) as client:
        batch = await client.batch.get(BATCH_JSON["id"])
    info = response_of(batch)
    assert info is not None
    assert "set-cookie" not in info.headers
    assert "set-cookie2" not in info.headers
    assert "abc123" not in repr(info)
    assert info.request_id == "r1"


# -- whose answer -----------------------------------------------------------------------


async def test_equal_records_from_two_responses_keep_their_own():
    """Two fetches of one batch: equal records (by value), each with its own answer."""
    numbers = iter(range(1, 10))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=BATCH_JSON, headers={"x-request-id": f"r{next(numbers)}"})

    async with client_of(handler) as client:
        first = await client.batch.get(BATCH_JSON["id"])
        second = await client.batch.get(BATCH_JSON["id"])
    assert first == second
    assert hash(first) == hash(second)
    assert first is not second
    assert [response_of(first).request_id, response_of(second).request_id] == ["r1", "r2"]  # type: ignore[union-attr]


async def test_copies_and_hand_built_records_have_none():
    """The answer belongs to the object the client returned, not to equal ones."""
    async with client_of(batch_answer) as client:
        batch = await client.batch.get("rb_3")
    assert response_of(batch) is not None
    for other in (
        attrs.evolve(batch),
        copy.copy(batch),
        copy.deepcopy(batch),
        pickle.loads(pickle.dumps(batch)),  # noqa: S301 - our own bytes
        structure(batch.to_dict(), Batch),
        object(),
        None,
        "rb_3",
    ):
        assert response_of(other) is None


async def test_entries_go_when_the_records_are_collected():
    """Memory follows the records the application holds: none is kept for a dropped one."""
    gc.collect()
    before = len(_KEPT)
    async with client_of(batch_answer) as client:
        batches = await client.batch.get_many([f"rb_{n}" for n in range(50)])
        assert len(_KEPT) == before + 50
        kept = batches[7]
        del batches
        gc.collect()
        assert len(_KEPT) == before + 1
        assert response_of(kept).request_id == "req-rb_7"  # type: ignore[union-attr]
        del kept
        gc.collect()
    assert len(_KEPT) == before


def test_a_record_kept_twice_answers_with_the_last_and_is_forgotten_once():
    """A stale entry's callback never drops the entry that replaced it."""
    record = structure(BATCH_JSON, Batch)
    secrets = Secrets(TOKEN)
    before = len(_KEPT)
    keep(record, Reply(200, "OK", ((b"x-request-id", b"one"),), b"{}", elapsed=0.1), secrets)
    stale = _KEPT[id(record)]  # held, so its callback runs when the record goes
    keep(record, Reply(200, "OK", ((b"x-request-id", b"two"),), b"{}", elapsed=0.1), secrets)
    assert len(_KEPT) == before + 1
    assert _KEPT[id(record)] is not stale
    assert response_of(record).request_id == "two"  # type: ignore[union-attr]
    del record
    gc.collect()
    assert len(_KEPT) == before
    assert stale() is None


def test_a_result_that_cannot_be_weakly_referenced_is_not_kept():
    """None or a plain list (no record of the SDK is one): nothing kept, nothing raised."""
    before = len(_KEPT)
    reply = Reply(200, "OK", (), b"[]", elapsed=0.1)
    for result in (None, [1, 2], {"a": 1}, 5):
        keep(result, reply, Secrets(TOKEN))
        assert response_of(result) is None
    assert len(_KEPT) == before


async def test_coalesced_callers_get_one_record_and_one_answer():
    """Two lookups under way at once share the request, the record and what answered it."""
    arrived = asyncio.Event()
    release = asyncio.Event()
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        arrived.set()
        await release.wait()
        return batch_answer(request)

    async with client_of(handler) as client:
        first = asyncio.create_task(client.batch.get("rb_4"))
        await arrived.wait()
        second = asyncio.create_task(client.with_options(max_retries=2).batch.get("rb_4"))
        for _ in range(5):  # let the second caller join the lookup under way
            await asyncio.sleep(0)
        release.set()
        a, b = await asyncio.gather(first, second)
    assert calls == 1
    assert a is b
    assert response_of(a) == response_of(b)
    assert response_of(a).request_id == "req-rb_4"  # type: ignore[union-attr]


async def test_a_cached_record_keeps_the_answer_that_filled_the_cache():
    """A finished batch answered by the cache is the record (and answer) of its fetch."""
    numbers = iter(range(1, 10))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=BATCH_JSON, headers={"x-request-id": f"r{next(numbers)}"})

    async with client_of(handler, cache=BatchCache(ttl=60)) as client:
        fetched = await client.batch.get(BATCH_JSON["id"])
        cached = await client.batch.get(BATCH_JSON["id"])
        [from_many] = await client.batch.get_many([BATCH_JSON["id"]])
        fresh = await client.batch.get(BATCH_JSON["id"], use_cache=False)
    assert cached is fetched
    assert from_many is fetched
    assert response_of(cached).request_id == "r1"  # type: ignore[union-attr]
    assert response_of(fresh).request_id == "r2"  # type: ignore[union-attr]


async def test_fan_out_lookups_carry_their_own_answers():
    """get_many and iter_many go through the lookup queue: each record has its answer."""
    ids = [f"rb_{n}" for n in range(30)]
    async with client_of(batch_answer) as client:
        many = await client.batch.get_many(ids)
        iterated = {batch_id: result async for batch_id, result in client.batch.iter_many(ids)}
    assert [response_of(b).request_id for b in many] == [f"req-{i}" for i in ids]  # type: ignore[union-attr]
    for batch_id, result in iterated.items():
        assert isinstance(result, Batch)
        assert response_of(result).request_id == f"req-{batch_id}"  # type: ignore[union-attr]


async def test_each_page_of_a_listing_has_its_answer():
    """A listing's pages each carry the answer they came in; created records theirs."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"id": "rb_new"}, headers={"x-request-id": "made"})
        page = int(request.url.params["page"])
        body = {
            "items": [{**BATCH_JSON, "id": f"rb_p{page}"}],
            "metadata": {"pagination": {"current_page": page, "page_count": 3}},
        }
        return httpx.Response(200, json=body, headers={"x-request-id": f"page-{page}"})

    async with client_of(handler) as client:
        pages = [page async for page in client.batch.list().pages()]
        created = await client.batch.create(
            template_id="tmpl_1", renders=[RenderSpec(merge_parameters={"n": 1})]
        )
    assert [response_of(page).request_id for page in pages] == ["page-1", "page-2", "page-3"]  # type: ignore[union-attr]
    assert response_of(pages[0].items[0]) is None  # an item: ask its page
    info = response_of(created)
    assert info is not None
    assert (info.status, info.request_id) == (201, "made")


async def test_the_fake_client_forwards_the_option():
    """FakeInkit.client takes keep_responses as AsyncInkit does."""
    fake = FakeInkit(seed=2)
    batch_id = fake.add_batch(name="b", destinations={"inkit_storage": 1})
    async with fake.client(keep_responses=True) as client:
        batch = await client.batch.get(batch_id)
    info = response_of(batch)
    assert info is not None
    assert info.status == 200


async def test_variants_keep_as_their_client_and_with_options_refuses_it():
    """One switch for a client and its variants: a record's answer never depends on the variant."""
    async with client_of(batch_answer) as client:
        variant = client.with_options(timeout=5)
        assert variant.keep_responses is True
        assert response_of(await variant.batch.get("rb_5")) is not None
        with pytest.raises(TypeError):
            client.with_options(keep_responses=False)  # type: ignore[call-arg]


@pytest.mark.parametrize("value", [1, "yes", None])
def test_the_option_takes_a_bool_only(value):
    """Checked at construction, as every option."""
    with pytest.raises(TypeError, match="keep_responses"):
        AsyncInkit(TOKEN, keep_responses=value)


def test_the_blocking_client_keeps_too():
    """BlockingInkit takes AsyncInkit's arguments: its records have their answers."""
    with BlockingInkit(
        TOKEN, transport=httpx.MockTransport(batch_answer), keep_responses=True
    ) as client:
        batch = client.batch.get("rb_6")
    assert response_of(batch).request_id == "req-rb_6"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("req_123-abc", "req_123-abc"),
        ("", None),
        ("a" * 256, "a" * 256),
        ("a" * 257, None),  # longer than any real id: not kept
        ("req\x1b[2J", None),  # a terminal escape would reach a log line as is
        ("req 1", None),
        ("réq", None),
    ],
)
def test_a_hostile_request_id_is_not_kept(value, kept):
    """The one reader keeps visible ASCII up to 256 characters, for errors and successes."""
    assert request_id_of({"x-request-id": value}) == kept


async def test_the_fake_says_which_request_each_answer_was():
    """FakeInkit's answers carry x-request-id, on successes and errors alike."""
    fake = FakeInkit()
    batch_id = fake.add_batch()
    async with fake.client(keep_responses=True, max_retries=0) as client:
        batch = await client.batch.get(batch_id)
        with pytest.raises(NotFoundError) as missing:
            await client.batch.get("rb_missing")
    info = response_of(batch)
    assert info is not None
    assert info.request_id == "req_fake_1"
    assert missing.value.request_id == "req_fake_2"

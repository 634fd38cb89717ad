"""inkit_async.testing.FakeInkit: faithful to the documented API, in process and over a socket."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inkit_async import (
    APITimeoutError,
    AuthenticationError,
    Backoff,
    BadRequestError,
    Batch,
    BatchStatus,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    RenderSpec,
    UnprocessableEntityError,
)
from inkit_async._converter import structure
from inkit_async.testing import FakeInkit
from tests.support.fake_api import (
    HOSTILE_BODIES,
    ODD_NAMES,
    assert_refused,
    names_by_sort,
    nested,
    seed_odd_names,
)


async def raw(fake: FakeInkit, method: str, path: str, **kwargs) -> httpx.Response:
    """Send one raw HTTP request to the fake's ASGI app, with its token."""
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        headers = {"X-Inkit-API-Token": fake.token, **kwargs.pop("headers", {})}
        return await http.request(method, path, headers=headers, **kwargs)


async def test_get_returns_a_record_the_sdk_decodes(fake):
    """A seeded batch comes back through the SDK as a Batch with its destinations."""
    batch_id = fake.add_batch(name="invoices", destinations={"inkit_storage": 3, "docusign": 2})
    assert batch_id.startswith("rb_")
    assert len(batch_id) == 3 + 22
    async with fake.client() as client:
        batch = await client.batch.get(batch_id)
    assert batch.name == "invoices"
    assert batch.status is BatchStatus.IN_PROGRESS
    assert batch.destinations.inkit_storage is not None
    assert batch.destinations.inkit_storage.in_progress == 3
    assert batch.destinations.docusign is not None


async def test_every_fake_record_round_trips_through_the_converter(fake):
    """The fake's JSON is exactly the shape the converter structures and to_dict gives back."""
    for n in range(5):
        fake.add_batch(name=None if n % 2 else f"b{n}", destinations={"inkit_storage": n + 1})
    fake.add_batch(flow=True, destinations={"amazon_s3": 2, "box": 1})
    for batch_id in fake.batch_ids():
        data = fake.batch_json(batch_id)
        assert structure(data, Batch).to_dict() == data


async def test_counters_advance_as_the_batch_is_polled(fake):
    """Each GET completes docs_per_poll more documents; the status follows the counters."""
    batch_id = fake.add_batch(destinations={"inkit_storage": 2})
    async with fake.client() as client:
        seen = [(await client.batch.get(batch_id)).progress.completed for _ in range(4)]
        final = await client.batch.get(batch_id)
    assert seen == [0, 1, 2, 2]
    assert final.status == "Completed"
    assert final.is_finished


async def test_advance_complete_and_fail_are_under_the_tests_control():
    """With docs_per_poll=0 nothing moves until the test says so."""
    fake = FakeInkit(docs_per_poll=0)
    batch_id = fake.add_batch(destinations={"inkit_storage": 4})
    async with fake.client() as client:
        assert (await client.batch.get(batch_id)).progress.completed == 0
        fake.advance(batch_id, 2)
        assert (await client.batch.get(batch_id)).progress.completed == 2
        fake.fail(batch_id, 1)
        progress = (await client.batch.get(batch_id)).progress
        assert (progress.completed, progress.failed, progress.in_progress) == (2, 1, 1)
        fake.complete(batch_id)
        done = await client.batch.get(batch_id)
    assert done.is_finished
    assert done.status == "Completed"


async def test_a_batch_whose_documents_all_fail_is_failed():
    """Failing every document gives the status Failed."""
    fake = FakeInkit(docs_per_poll=0)
    batch_id = fake.add_batch(destinations={"inkit_storage": 2})
    fake.fail(batch_id)
    async with fake.client() as client:
        batch = await client.batch.get(batch_id)
    assert batch.status is BatchStatus.FAILED
    assert batch.is_finished


async def test_set_status_overrides_the_reported_status(fake):
    """A test can make the fake report any status string, known or not."""
    batch_id = fake.add_batch()
    fake.set_status(batch_id, "Queued")
    async with fake.client() as client:
        assert (await client.batch.get(batch_id)).status == "Queued"


async def test_wrong_or_missing_token_is_401(fake):
    """A client with the wrong token gets AuthenticationError; the fake logs it unauthorized."""
    batch_id = fake.add_batch()
    async with fake.client(api_token="wrong-token") as client:
        with pytest.raises(AuthenticationError, match="Invalid or missing API token"):
            await client.batch.get(batch_id)
    response = await raw(fake, "GET", f"/v1/batch/{batch_id}", headers={"X-Inkit-API-Token": ""})
    assert response.status_code == 401
    assert [r.authorized for r in fake.requests] == [False, False]
    assert "wrong-token" not in repr(fake.requests)


async def test_unknown_ids_and_paths_are_404(fake):
    """Unknown batch ids, a flow id on the document path, and other paths are 404."""
    flow_id = fake.add_batch(flow=True)
    async with fake.client() as client:
        with pytest.raises(NotFoundError, match="rb_nope not found"):
            await client.batch.get("rb_nope")
        with pytest.raises(NotFoundError):
            await client.batch.get(flow_id)
        assert (await client.flow_batch.get(flow_id)).id == flow_id
    assert (await raw(fake, "GET", "/v1/templates")).status_code == 404
    assert (await raw(fake, "GET", "/batch/x")).status_code == 404


async def test_other_methods_are_405(fake):
    """DELETE on a batch, or POST to a batch id or to flow batches, is 405."""
    batch_id = fake.add_batch()
    assert (await raw(fake, "DELETE", f"/v1/batch/{batch_id}")).status_code == 405
    assert (await raw(fake, "POST", f"/v1/batch/{batch_id}", json={})).status_code == 405
    assert (await raw(fake, "POST", "/v1/invoke/batch", json={})).status_code == 405


async def test_percent_encoded_ids_stay_one_segment(fake):
    """An id with a slash, a question mark or non-ASCII is found by the encoded request."""
    for odd in ("a/b", "x?y=1", "ünï", "100%"):
        fake.add_batch(batch_id=odd)
    async with fake.client() as client:
        batches = await client.batch.get_many(["a/b", "x?y=1", "ünï", "100%"])
    assert [b.id for b in batches] == ["a/b", "x?y=1", "ünï", "100%"]
    assert fake.requests[0].path == "/v1/batch/a%2Fb"


async def test_create_makes_a_batch_per_the_documented_body(fake):
    """POST /batch answers 201 with an id; the batch has one document per render."""
    async with fake.client() as client:
        created = await client.batch.create(
            template_id="tmpl_1",
            name="letters",
            renders=[
                RenderSpec(merge_parameters={"n": 1}),
                RenderSpec(merge_parameters={"n": 2}, destinations={"docusign": {}}),
            ],
        )
        batch = await client.batch.get(created.id)
    assert batch.name == "letters"
    assert batch.destinations.inkit_storage is not None
    assert batch.destinations.inkit_storage.count == 1
    assert batch.destinations.docusign is not None
    assert fake.requests[0].json["template_id"] == "tmpl_1"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"renders": [{"merge_parameters": {}}]}, 422),
        ({"template_id": "t", "renders": []}, 422),
        ({"template_id": "t", "renders": [{"name": "x"}]}, 422),
        ({"template_id": "t", "renders": "x"}, 422),
        ([1, 2], 422),
    ],
)
async def test_create_rejects_bad_bodies(fake, body, status):
    """A create body against the documented rules gets a 4xx with an error message."""
    response = await raw(fake, "POST", "/v1/batch", json=body)
    assert response.status_code == status
    assert "error" in response.json()


async def test_create_rejects_non_json(fake):
    """A body that is not JSON is a 400."""
    response = await raw(fake, "POST", "/v1/batch", content=b"{not json")
    assert response.status_code == 400


async def test_list_paginates_filters_and_sorts(fake):
    """The list envelope, page arithmetic, search, destination filters and sort order."""
    for n in range(7):
        fake.add_batch(
            name=f"invoice {n}" if n % 2 else f"letter {n}",
            destinations={"inkit_storage": 1} if n < 5 else {"docusign": 1},
        )
    response = await raw(fake, "GET", "/v1/batch", params={"page": 2, "page_size": 3})
    body = response.json()
    assert body["metadata"]["pagination"] == {
        "current_page": 2,
        "page_count": 3,
        "page_size": 3,
        "total_count": 7,
        "next_page": 3,
        "prev_page": 1,
    }
    async with fake.client() as client:
        newest_first = [b.name async for b in client.batch.list(page_size=2)]
        oldest_first = [b.name async for b in client.batch.list(sort="created_at")]
        invoices = [b.name async for b in client.batch.list(search="INVOICE")]
        docusign = [b.name async for b in client.batch.list(destination_name="docusign")]
        by_total = [b.total async for b in client.batch.list(sort="-total")]
    assert newest_first == [f"{'invoice' if n % 2 else 'letter'} {n}" for n in range(6, -1, -1)]
    assert oldest_first == list(reversed(newest_first))
    assert invoices == ["invoice 5", "invoice 3", "invoice 1"]
    assert docusign == ["letter 6", "invoice 5"]
    assert by_total == [1] * 7


async def test_destination_status_filter(fake):
    """destination_status keeps batches with documents in that state."""
    done = fake.add_batch(name="done", destinations={"inkit_storage": 1})
    fake.complete(done)
    broken = fake.add_batch(name="broken", destinations={"inkit_storage": 1})
    fake.fail(broken)
    fake.add_batch(name="busy", destinations={"inkit_storage": 1})
    async with fake.client() as client:
        names = {
            status: [b.name async for b in client.batch.list(destination_status=status)]
            for status in ("completed", "failed", "in_progress")
        }
    assert names == {"completed": ["done"], "failed": ["broken"], "in_progress": ["busy"]}


BAD_QUERIES: list[tuple[dict[str, str], str]] = [
    ({"page": "0"}, "page must be"),
    ({"page": "-1"}, "page must be"),
    ({"page": "x"}, "page must be"),
    ({"page": ""}, "page must be"),
    ({"page": "+1"}, "page must be"),
    ({"page": " 1"}, "page must be"),
    ({"page": "1.0"}, "page must be"),
    ({"page": "1_000"}, "page must be"),
    ({"page": "\u0663"}, "page must be"),  # an Arabic-Indic 3: int() takes it, the API not
    ({"page": "9" * 19}, "page must be"),
    ({"page": "9" * 5000}, "page must be"),
    ({"page_size": "0"}, "page_size must be"),
    ({"page_size": "1001"}, "page_size must be"),
    ({"page_size": "abc"}, "page_size must be"),
    ({"sort": "color"}, "Cannot sort by 'color'"),
    ({"sort": ""}, "Cannot sort by"),
    ({"sort": "-"}, "Cannot sort by"),
    ({"sort": "--name"}, "Cannot sort by"),
    ({"sort": "x" * 10_000}, "Cannot sort by"),
    ({"destination_status": "count"}, "destination_status must be one of"),
    ({"destination_status": "Completed"}, "destination_status must be one of"),
]


@pytest.mark.parametrize(("params", "fragment"), BAD_QUERIES)
@pytest.mark.parametrize("path", ["/v1/batch", "/v1/invoke/batch"])
async def test_list_rejects_bad_queries(fake, path, params, fragment):
    """Bad pages, page sizes, sorts and destination states are a 400 saying what is wrong."""
    fake.add_batch()
    assert_refused(await raw(fake, "GET", path, params=params), 400, fragment)


async def test_list_ignores_undocumented_parameters_and_blank_filters(fake):
    """limit=abc is not an Inkit parameter: ignored, as servers do; blank filters filter nothing."""
    fake.add_batch(name="only")
    params = {"limit": "abc", "search": "", "destination_name": "", "destination_status": ""}
    response = await raw(fake, "GET", "/v1/batch", params=params)
    assert response.status_code == 200
    assert [item["name"] for item in response.json()["items"]] == ["only"]


async def test_a_refused_query_reaches_the_sdk_as_bad_request(fake):
    """A destination state the API does not have is a BadRequestError with the fake's reason."""
    fake.add_batch()
    async with fake.client() as client:
        with pytest.raises(BadRequestError, match="destination_status must be one of"):
            [b async for b in client.batch.list(destination_status="count")]


async def test_flow_batches_are_listed_apart(fake):
    """/invoke/batch lists flow batches only, /batch document batches only."""
    fake.add_batch(name="doc")
    fake.add_batch(name="flow", flow=True)
    async with fake.client() as client:
        assert [b.name async for b in client.flow_batch.list()] == ["flow"]
        assert [b.name async for b in client.batch.list()] == ["doc"]


async def test_fake_client_retries_injected_faults_at_once_by_default(fake, events):
    """Two 503s then success: fake.client() retries with no backoff wait, as the log shows."""
    batch_id = fake.add_batch()
    fake.fail_next(2, 503)
    async with fake.client(on_event=events) as client:
        batch = await client.batch.get(batch_id)
    assert batch.id == batch_id
    assert len(fake.requests) == 3
    assert [(e.attempt, e.status_code, e.delay) for e in events.retries] == [
        (1, 503, 0.0),
        (2, 503, 0.0),
    ]


async def test_fake_client_forwards_the_clients_options(fake, events):
    """max_retries, backoff and on_event given to fake.client() reach the AsyncInkit."""
    fake.fail_next(2, 500)
    backoff = Backoff(initial=0.01, maximum=0.01, jitter=0)
    async with fake.client(max_retries=1, backoff=backoff, on_event=events) as client:
        assert (client.max_retries, client.backoff) == (1, backoff)
        with pytest.raises(InternalServerError):
            await client.batch.get("rb_any")
    assert len(fake.requests) == 2
    assert events.delays == [0.01]
    fake.fail_next(1, 503)
    async with fake.client(max_retries=0) as client:
        with pytest.raises(InternalServerError):
            await client.batch.get("rb_any")
    assert len(fake.requests) == 3


async def test_the_fake_client_makes_no_httpx_client_and_closes_what_it_made(fake, monkeypatch):
    """fake.client() sends through the in-process sender: no httpx client, no httpx objects."""
    made: list[object] = []
    for cls in (httpx.AsyncClient, httpx.Request, httpx.Response):
        original = cls.__init__

        def recording(self: object, *args: object, __original=original, **kwargs: object) -> None:
            __original(self, *args, **kwargs)  # type: ignore[operator]
            made.append(self)

        monkeypatch.setattr(cls, "__init__", recording)
    batch_id = fake.add_batch()
    async with fake.client() as client:
        assert (await client.batch.get(batch_id)).id == batch_id
        created = await client.batch.create(template_id="t", renders=[{"merge_parameters": {}}])
        assert [batch.id async for batch in client.batch.list()] != []
    assert created.id in fake.batch_ids()
    assert made == []
    assert client.is_closed


async def test_fail_next_with_retry_after_and_body(fake):
    """A 429 with Retry-After and a custom body reaches the caller when retries run out."""
    fake.fail_next(1, 429, retry_after=120, body={"message": "slow down"})
    async with fake.client() as client:
        with pytest.raises(RateLimitError) as info:
            await client.batch.get("rb_any")
    assert info.value.retry_after == 120
    assert "slow down" in str(info.value)


async def test_limit_rate_refuses_beyond_the_burst_per_token(fake):
    """limit_rate: a bucket per token; beyond it 429 with Retry-After, counted in refused."""
    batch_id = fake.add_batch()
    fake.limit_rate(0.5, burst=2, retry_after=3)
    first, second, third = [await raw(fake, "GET", f"/v1/batch/{batch_id}") for _ in range(3)]
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert third.headers["retry-after"] == "3"
    assert third.json() == {"error": "Too many requests"}
    other = await raw(fake, "GET", f"/v1/batch/{batch_id}", headers={"X-Inkit-API-Token": "x"})
    assert other.status_code == 401  # another token has a bucket of its own
    assert fake.refused == 1
    fake.limit_rate(None)
    assert (await raw(fake, "GET", f"/v1/batch/{batch_id}")).status_code == 200


async def test_limit_rate_without_retry_after_and_its_refill(fake):
    """Without retry_after a 429 has no Retry-After; the bucket refills at the rate."""
    batch_id = fake.add_batch()
    fake.limit_rate(50, burst=1)
    assert (await raw(fake, "GET", f"/v1/batch/{batch_id}")).status_code == 200
    refused = await raw(fake, "GET", f"/v1/batch/{batch_id}")
    assert refused.status_code == 429
    assert "retry-after" not in refused.headers
    await asyncio.sleep(0.05)  # 2.5 tokens' worth at 50/s; the bucket holds 1
    assert (await raw(fake, "GET", f"/v1/batch/{batch_id}")).status_code == 200


@pytest.mark.parametrize(
    ("rate", "burst", "error", "message"),
    [
        (0, 1, ValueError, "rate must be a finite number > 0, got 0"),
        (-1, 1, ValueError, "rate must be a finite number > 0, got -1"),
        (math.inf, 1, ValueError, "rate must be a finite number > 0, got inf"),
        (math.nan, 1, ValueError, "rate must be a finite number > 0, got nan"),
        ("10", 1, TypeError, "rate must be a number, got str"),
        (10, 0, ValueError, "burst must be >= 1, got 0"),
        (10, True, TypeError, "burst must be an int, got bool"),
        (10, 2.0, TypeError, "burst must be an int, got float"),
    ],
)
def test_limit_rate_refuses_impossible_values(fake, rate, burst, error, message):
    """A rate must be a finite number > 0 and a burst an int >= 1; the limit stays as it was."""
    fake.limit_rate(5, burst=2)
    before = fake._limit  # noqa: SLF001 - what is in force
    with pytest.raises(error) as info:
        fake.limit_rate(rate, burst=burst)
    assert str(info.value) == message
    assert fake._limit is before  # noqa: SLF001


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda f: f.limit_rate(5, retry_after=-1), ValueError, "retry_after must be a finite"),
        (lambda f: f.limit_rate(5, retry_after="1"), TypeError, "retry_after must be a number"),
        (lambda f: f.fail_next(-1, 500), ValueError, "count must be >= 0, got -1"),
        (lambda f: f.fail_next("2", 500), TypeError, "count must be an int, got str"),
        (lambda f: f.fail_next(1, 700), ValueError, "status must be between 100 and 599, got 700"),
        (lambda f: f.fail_next(1, 500.0), TypeError, "status must be an int, got float"),
        (lambda f: f.fail_next(1, 429, retry_after=math.nan), ValueError, "retry_after must be"),
        (lambda f: f.fail_next(1, 429, retry_after="2"), TypeError, "retry_after must be a number"),
        (lambda f: f.fail_next(1, 500, delay=-1), ValueError, "delay must be a finite number"),
        (lambda f: f.fail_next(1, 500, delay=math.inf), ValueError, "delay must be a finite"),
    ],
)
def test_fault_numbers_are_checked_when_given(fake, call, error, message):
    """fail_next and limit_rate check their numbers at once, not when a request comes."""
    with pytest.raises(error) as info:
        call(fake)
    assert str(info.value).startswith(message)
    assert fake._next == []  # noqa: SLF001 - nothing was queued


async def test_fail_next_delay_holds_the_answer(fake):
    """An injected delay longer than the client's timeout ends in a timeout."""
    fake.fail_next(1, 500, delay=5)
    async with fake.client(timeout=0.05, max_retries=0) as client:
        with pytest.raises(APITimeoutError, match="timed out"):
            await client.batch.get("rb_any")


async def test_fault_status_is_mapped(fake):
    """An injected 500 is an InternalServerError once retries run out."""
    fake.fail_next(3, 500)
    async with fake.client() as client:
        with pytest.raises(InternalServerError):
            await client.batch.get("rb_any")
    assert len(fake.requests) == 3


async def test_request_log_records_method_path_params_and_body(fake):
    """The log holds what a test needs to assert on, never the token."""
    async with fake.client() as client:
        [b async for b in client.batch.list(search="x", page_size=5)]
        await client.batch.create(template_id="t", renders=[{"merge_parameters": {"a": 1}}])
    listed, created = fake.requests
    assert (listed.method, listed.path, listed.params) == (
        "GET",
        "/v1/batch",
        {"page": "1", "page_size": "5", "search": "x"},
    )
    assert created.json == {"template_id": "t", "renders": [{"merge_parameters": {"a": 1}}]}
    assert fake.token not in repr(fake)


async def test_created_at_is_utc_with_z(fake):
    """Seeded creation times come back as UTC with a Z."""
    batch_id = fake.add_batch(created_at=datetime(2024, 5, 1, 12, tzinfo=UTC))
    assert fake.batch_json(batch_id)["created_at"] == "2024-05-01T12:00:00.000000Z"


# -- bad input gets an API's answer, never an exception ------------------------------------


async def test_sort_by_name_orders_empty_and_null_names_in_process(fake):
    """Row 11: names "", "zeta" and null sort by name: "" first, null last, no TypeError."""
    seed_odd_names(fake)
    async with fake.client() as client:
        seen = await names_by_sort(client)
    assert seen == {"name": ["", "alpha", "zeta", None], "-name": [None, "zeta", "alpha", ""]}


@pytest.mark.parametrize("field", ["created_at", "id", "name", "status", "total"])
async def test_every_sort_field_orders_every_batch_both_ways(fake, field):
    """Each sort field, with empty and null values around, lists every batch, one way reversed."""
    for n, name in enumerate(ODD_NAMES):
        batch_id = fake.add_batch(name=name, destinations={"inkit_storage": n + 1})
        fake.set_status(batch_id, ["", "Queued", None, "zzz"][n])
    async with fake.client() as client:
        up = [b.id async for b in client.batch.list(sort=field)]
        down = [b.id async for b in client.batch.list(sort=f"-{field}")]
    assert sorted(up) == sorted(fake.batch_ids())
    assert down == list(reversed(up))
    values = [fake.batch_json(batch_id)[field] for batch_id in up]
    present = [value for value in values if value is not None]
    assert present == sorted(present)
    assert values == present + [None] * (len(values) - len(present))


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [case[1:] for case in HOSTILE_BODIES],
    ids=[case[0] for case in HOSTILE_BODIES],
)
async def test_hostile_create_bodies_get_an_api_answer(fake, body, status, fragment):
    """Each bad create body is a 400 (not JSON) or 422 (against the rules), with a message."""
    response = await raw(fake, "POST", "/v1/batch", content=body)
    assert_refused(response, status, fragment)
    assert fake.batch_ids() == []


async def test_bad_destinations_through_the_sdk_are_unprocessable(fake):
    """fake.client(): destinations as a list or with an empty name is a 422 with its reason."""
    async with fake.client() as client:
        for destinations, reason in (
            (["inkit_storage"], "keyed by destination name"),
            ({"": {}}, "must not be empty"),
        ):
            render = {"merge_parameters": {}, "destinations": destinations}
            with pytest.raises(UnprocessableEntityError, match=reason):
                await client.batch.create(template_id="t", renders=[render])
    assert fake.batch_ids() == []


async def test_the_deepest_body_the_sdk_sends_is_accepted(fake):
    """merge_parameters at the SDK's limit (64 levels, numbers up to 1e308): a 201."""
    deepest = {"a": nested(63), "big": 10**308, "small": -(10**308)}  # 64 levels deep
    async with fake.client() as client:
        created = await client.batch.create(
            template_id="t", renders=[{"merge_parameters": deepest}]
        )
    assert fake.batch_ids() == [created.id]
    deeper = {"template_id": "t", "renders": [{"merge_parameters": {"a": nested(64)}}]}
    response = await raw(fake, "POST", "/v1/batch", json=deeper)
    assert_refused(response, 400, "67 levels")


# Any JSON value: scalars of every kind (huge integers, extreme floats, any text) nested
# at random, and bodies shaped like a create with a hostile value anywhere in them.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """*valid* nine times in ten, any JSON value otherwise: deep checks are reached."""
    return st.integers(0, 9).flatmap(lambda n: valid if n else json_values)


destination_maps = st.dictionaries(
    st.sampled_from(["", "inkit_storage", "docusign"]) | st.text(max_size=5),
    mostly(st.dictionaries(st.text(max_size=5), json_values, max_size=2)),
    max_size=3,
)
renders = st.lists(
    mostly(
        st.fixed_dictionaries(
            {"merge_parameters": mostly(st.dictionaries(st.text(max_size=5), json_values))},
            optional={
                "name": mostly(st.text(max_size=5)),
                "description": mostly(st.text(max_size=5)),
                "destinations": mostly(destination_maps)
                | st.lists(destination_maps | st.text(max_size=5), min_size=1, max_size=2),
            },
        )
    ),
    max_size=3,
)
create_bodies = st.fixed_dictionaries(
    {"template_id": mostly(st.just("tmpl_1")), "renders": mostly(renders)},
    optional={"name": mostly(st.text(max_size=5) | st.none())},
)
#: Deterministic, not timed: a loaded machine must not fail a property on slowness.
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


async def answer(fake: FakeInkit, method: str, path: str, body: bytes = b"", query: str = ""):
    """The fake's answer to one request through its ASGI app: (status, decoded JSON body)."""
    response = await raw(fake, method, path, content=body, params=httpx.QueryParams(query))
    return response.status_code, response.json() if response.content else None


def assert_api_answer(status: int, body: object) -> None:
    """A 2xx, or a 4xx whose JSON body says what is wrong; never a 5xx."""
    assert 200 <= status < 300 or 400 <= status < 500, (status, body)
    if status >= 400:
        assert isinstance(body, dict)
        assert isinstance(body["error"], str)
        assert body["error"]


@PROPERTY
@given(body=create_bodies | json_values)
async def test_any_json_body_gets_a_2xx_or_a_4xx(body):
    """Property: whatever JSON is posted to any route, the answer is a 2xx or a 4xx."""
    fake = FakeInkit(seed=1)
    batch_id = fake.add_batch()
    payload = json.dumps(body).encode()
    for method, path in (
        ("POST", "/v1/batch"),
        ("POST", "/v1/invoke/batch"),
        ("POST", f"/v1/batch/{batch_id}"),
        ("GET", f"/v1/batch/{batch_id}"),
        ("GET", "/v1/batch"),
    ):
        status, answered = await answer(fake, method, path, payload)
        assert_api_answer(status, answered)
        if method == "POST" and status == 201:
            assert isinstance(answered, dict)
            assert answered["id"] in fake.batch_ids()


@PROPERTY
@given(body=st.binary(max_size=64))
async def test_any_bytes_body_gets_a_2xx_or_a_4xx(body):
    """Property: any bytes as a create body are a 201 or a 4xx with a message."""
    status, answered = await answer(FakeInkit(), "POST", "/v1/batch", body)
    assert_api_answer(status, answered)


query_values = (
    st.text(max_size=8)
    | st.integers(min_value=-(10**20), max_value=10**20).map(str)
    | st.sampled_from(["name", "-name", "--total", "completed", "count", "1e3", "0x10"])
)


@PROPERTY
@given(
    params=st.dictionaries(
        st.sampled_from(
            ["page", "page_size", "sort", "search", "destination_name", "destination_status"]
        )
        | st.text(max_size=5),
        query_values,
        max_size=4,
    )
)
async def test_any_listing_query_gets_a_200_or_a_400(params):
    """Property: any query on either listing is a 200 or a 400 with a message."""
    fake = FakeInkit(seed=2)
    for name in ODD_NAMES:
        fake.add_batch(name=name, destinations={"inkit_storage": 2, "docusign": 1})
        fake.add_batch(name=name, flow=True)
    query = str(httpx.QueryParams(params))
    for path in ("/v1/batch", "/v1/invoke/batch"):
        status, answered = await answer(fake, "GET", path, query=query)
        assert status in {200, 400}, (status, answered)
        assert_api_answer(status, answered)


async def test_a_body_on_a_get_is_ignored(fake):
    """A GET carrying a body too deep to decode still gets its batch."""
    batch_id = fake.add_batch()
    status, answered = await answer(fake, "GET", f"/v1/batch/{batch_id}", b"[" * 100_000)
    assert status == 200
    assert answered["id"] == batch_id
    assert fake.requests[0].json is None


async def drive(fake: FakeInkit, scope: dict[str, Any], incoming: list[dict[str, Any]]):
    """Run the ASGI app on one scope as a server would; return what it sent."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await fake.app(scope, receive, send)
    return sent


async def test_the_asgi_app_refuses_a_websocket_and_ignores_other_scopes(fake):
    """A WebSocket is closed at its handshake; an unknown scope type gets nothing."""
    sent = await drive(
        fake, {"type": "websocket", "path": "/v1/batch"}, [{"type": "websocket.connect"}]
    )
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert await drive(fake, {"type": "telepathy"}, []) == []
    assert fake.requests == []


async def test_the_asgi_app_answers_no_one_after_a_disconnect(fake):
    """A client that leaves before its body arrived gets no answer and leaves no record."""
    scope = {"type": "http", "method": "POST", "path": "/v1/batch", "headers": []}
    incoming = [
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert await drive(fake, scope, incoming) == []
    assert fake.requests == []


# -- what a test sets up is checked where it is given --------------------------------------


async def test_a_chosen_id_is_a_flow_batch_when_asked(fake):
    """flow=True with a chosen id serves it under /invoke/batch, whatever its prefix."""
    flow_id = fake.add_batch(batch_id="rb_looks_like_a_document", flow=True)
    document_id = fake.add_batch(batch_id="fb_looks_like_a_flow")
    async with fake.client() as client:
        assert (await client.flow_batch.get(flow_id)).id == flow_id
        assert (await client.batch.get(document_id)).id == document_id
        assert [b.id async for b in client.flow_batch.list()] == [flow_id]
        with pytest.raises(NotFoundError):
            await client.batch.get(flow_id)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda f: f.add_batch(name=5), TypeError, "name must be a str"),
        (lambda f: f.add_batch(batch_id=5), TypeError, "batch_id must be a str"),
        (
            lambda f: f.add_batch(batch_id="rb_1") and f.add_batch(batch_id="rb_1"),
            ValueError,
            "exists already",
        ),
        (lambda f: f.add_batch(destinations={"": 1}), ValueError, "destination name"),
        (lambda f: f.add_batch(destinations={5: 1}), ValueError, "destination name"),
        (lambda f: f.add_batch(destinations={"x": -1}), ValueError, "must be >= 0"),
        (lambda f: f.add_batch(destinations={"x": "3"}), TypeError, "must be an int"),
        (lambda f: f.add_batch(destinations={"x": True}), TypeError, "must be an int"),
        (lambda f: f.add_batch(docs_per_poll=-1), ValueError, "docs_per_poll"),
        (lambda f: FakeInkit(docs_per_poll=1.5), TypeError, "docs_per_poll"),
        (lambda f: f.advance(f.add_batch(), -1), ValueError, "documents"),
        (lambda f: f.fail(f.add_batch(), -1), ValueError, "documents"),
        (lambda f: f.set_status(f.add_batch(), 3), TypeError, "status must be a str"),
        (lambda f: f.fail_next(1, 500, body=object()), TypeError, "not JSON serializable"),
    ],
)
def test_set_up_mistakes_fail_where_they_are_made(fake, call, error, match):
    """A test's bad set-up raises at the call, not later as a broken answer."""
    with pytest.raises(error, match=match):
        call(fake)

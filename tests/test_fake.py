"""inkit_async.testing.FakeInkit: faithful to the documented API, in process and over a socket."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from inkit_async import (
    APITimeoutError,
    AsyncInkit,
    AuthenticationError,
    Backoff,
    Batch,
    BatchStatus,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    RenderSpec,
    converter,
)
from inkit_async.testing import FakeInkit


@pytest.fixture
def fake() -> FakeInkit:
    """A fake with reproducible ids."""
    return FakeInkit(seed=7)


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
    """The fake's JSON is exactly the shape the converter structures and unstructures."""
    for n in range(5):
        fake.add_batch(name=None if n % 2 else f"b{n}", destinations={"inkit_storage": n + 1})
    fake.add_batch(flow=True, destinations={"amazon_s3": 2, "box": 1})
    for batch_id in fake.batch_ids():
        data = fake.batch_json(batch_id)
        assert converter.unstructure(converter.structure(data, Batch)) == data


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


@pytest.mark.parametrize(
    "params", [{"page": 0}, {"page_size": 0}, {"page_size": 1001}, {"page": "x"}, {"sort": "color"}]
)
async def test_list_rejects_bad_queries(fake, params):
    """Out-of-range pages, page sizes and unknown sort fields are 400."""
    assert (await raw(fake, "GET", "/v1/batch", params=params)).status_code == 400


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


async def test_closing_the_fake_client_closes_the_httpx_client_it_made(fake, monkeypatch):
    """fake.client() makes one httpx.AsyncClient; closing the SDK client closes it."""
    made: list[httpx.AsyncClient] = []
    original_init = httpx.AsyncClient.__init__

    def recording_init(self: httpx.AsyncClient, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(self)

    with monkeypatch.context() as patch:
        patch.setattr(httpx.AsyncClient, "__init__", recording_init)
        client = fake.client()
    batch_id = fake.add_batch()
    assert (await client.batch.get(batch_id)).id == batch_id
    [http] = made
    assert not http.is_closed
    await client.aclose()
    assert http.is_closed


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


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (10, 0)])
def test_limit_rate_refuses_impossible_values(fake, rate, burst):
    """A rate must be > 0 and a burst >= 1."""
    with pytest.raises(ValueError, match="rate"):
        fake.limit_rate(rate, burst=burst)


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


async def test_asgi_app_serves_the_fake_over_a_real_socket(fake, uvicorn_server):
    """Uvicorn serves fake.app on 127.0.0.1 and the SDK's default transport talks to it."""
    batch_id = fake.add_batch(destinations={"inkit_storage": 2})
    url = await uvicorn_server(fake.app)
    async with AsyncInkit(fake.token, base_url=url) as client:
        batch = await client.batch.wait(batch_id, poll_interval=0.01)
        created = await client.batch.create(template_id="t", renders=[{"merge_parameters": {}}])
    assert batch.is_finished
    assert batch.id == batch_id
    assert created.id in fake.batch_ids()
    assert fake.requests[-1].json == {"template_id": "t", "renders": [{"merge_parameters": {}}]}
    assert all(request.authorized for request in fake.requests)


# -- bad input gets an API's answer, never an exception ------------------------------------

#: Names a listing sorted by name must order without comparing kinds: "" is a string.
ODD_NAMES: list[str | None] = ["zeta", None, "", "alpha"]


def seed_odd_names(fake: FakeInkit) -> None:
    """Batches named as ODD_NAMES, in that order."""
    for name in ODD_NAMES:
        fake.add_batch(name=name)


async def names_by_sort(client: AsyncInkit) -> dict[str, list[str | None]]:
    """The names a listing sorted by name gives, both ways."""
    return {
        sort: [b.name async for b in client.batch.list(sort=sort, page_size=2)]
        for sort in ("name", "-name")
    }


async def test_sort_by_name_orders_empty_and_null_names_in_process(fake):
    """Row 11: names "", "zeta" and null sort by name: "" first, null last, no TypeError."""
    seed_odd_names(fake)
    async with fake.client() as client:
        seen = await names_by_sort(client)
    assert seen == {"name": ["", "alpha", "zeta", None], "-name": [None, "zeta", "alpha", ""]}


async def test_sort_by_name_orders_empty_and_null_names_over_a_socket(fake, uvicorn_server):
    """Row 11 over uvicorn on 127.0.0.1: the same order, and no 500 from the server."""
    seed_odd_names(fake)
    url = await uvicorn_server(fake.app)
    async with AsyncInkit(fake.token, base_url=url, max_retries=0) as client:
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

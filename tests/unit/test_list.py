"""client.batch.list: the query sent, pagination arithmetic and validation (respx)."""

from __future__ import annotations

import httpx
import pytest

from inkit_async import APIResponseValidationError, BatchList, Page
from tests.support.loopback import BATCH_JSON


def batch(n: int) -> dict[str, object]:
    """A batch JSON with id rb_<n>."""
    return {**BATCH_JSON, "id": f"rb_{n}"}


def envelope(items, *, page=None, page_count=None, total=None, metadata=True):
    """A list response; metadata=False leaves the pagination block out."""
    body: dict[str, object] = {"items": items}
    if metadata:
        body["metadata"] = {
            "pagination": {
                "current_page": page,
                "page_count": page_count,
                "page_size": 25,
                "total_count": total,
            },
            "sort": {"field": "created_at", "direction": "desc"},
        }
    return body


def paged(pages: list[list[dict[str, object]]], *, metadata: bool = True):
    """A respx side effect serving *pages* by the `page` query parameter."""

    def answer(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        items = pages[number - 1] if number <= len(pages) else []
        total = sum(len(p) for p in pages)
        return httpx.Response(
            200,
            json=envelope(
                items, page=number, page_count=len(pages), total=total, metadata=metadata
            ),
        )

    return answer


async def test_single_page_is_fetched_once(api, client):
    """One page with page_count 1: its batches, then no further request."""
    route = api.get("/batch").mock(side_effect=paged([[batch(1), batch(2)]]))
    ids = [b.id async for b in client.batch.list()]
    assert ids == ["rb_1", "rb_2"]
    assert route.call_count == 1
    assert dict(route.calls.last.request.url.params) == {"page": "1"}


async def test_many_pages_are_walked_in_order(api, client):
    """Three pages are fetched one after another, page=1,2,3, and no fourth."""
    pages = [[batch(n) for n in range(k * 3, k * 3 + 3)] for k in range(3)]
    route = api.get("/batch").mock(side_effect=paged(pages))
    ids = [b.id async for b in client.batch.list(page_size=3)]
    assert ids == [f"rb_{n}" for n in range(9)]
    assert [c.request.url.params["page"] for c in route.calls] == ["1", "2", "3"]
    assert all(c.request.url.params["page_size"] == "3" for c in route.calls)


async def test_pages_are_fetched_lazily(api, client):
    """Taking the first batch of a long listing costs one request."""
    pages = [[batch(n)] for n in range(50)]
    route = api.get("/batch").mock(side_effect=paged(pages))
    async for first in client.batch.list():
        assert first.id == "rb_0"
        break
    assert route.call_count == 1


async def test_missing_metadata_stops_at_the_first_empty_page(api, client):
    """Without pagination metadata, listing goes on until a page comes back empty."""
    route = api.get("/batch").mock(side_effect=paged([[batch(1)], [batch(2)]], metadata=False))
    ids = [b.id async for b in client.batch.list()]
    assert ids == ["rb_1", "rb_2"]
    assert route.call_count == 3


async def test_empty_listing(api, client):
    """No batches at all: nothing yielded, one request."""
    route = api.get("/batch").respond(json=envelope([], page=1, page_count=0, total=0))
    assert [b async for b in client.batch.list()] == []
    assert route.call_count == 1


async def test_pages_yields_page_records(api, client):
    """.pages() yields Page records with the pagination numbers."""
    api.get("/batch").mock(side_effect=paged([[batch(1), batch(2)], [batch(3)]]))
    pages = [page async for page in client.batch.list().pages()]
    assert [type(p) for p in pages] == [Page, Page]
    assert [(p.page, p.page_count, p.total_count) for p in pages] == [(1, 2, 3), (2, 2, 3)]
    assert [b.id for b in pages[1].items] == ["rb_3"]


async def test_only_the_filters_set_are_sent(api, client):
    """Each filter maps to its query parameter; unset ones are absent."""
    route = api.get("/batch").respond(json=envelope([], page=1, page_count=1))
    listing = client.batch.list(
        page_size=100,
        sort="-created_at",
        search="invoice",
        destination_name="inkit_storage",
        destination_status="failed",
    )
    assert isinstance(listing, BatchList)
    assert [b async for b in listing] == []
    assert dict(route.calls.last.request.url.params) == {
        "page": "1",
        "page_size": "100",
        "sort": "-created_at",
        "search": "invoice",
        "destination_name": "inkit_storage",
        "destination_status": "failed",
    }


async def test_each_iteration_starts_over(api, client):
    """Iterating the same listing twice fetches from the first page again."""
    route = api.get("/batch").mock(side_effect=paged([[batch(1)]]))
    listing = client.batch.list()
    assert [b.id async for b in listing] == ["rb_1"]
    assert [b.id async for b in listing] == ["rb_1"]
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"page_size": 0}, ValueError),
        ({"page_size": 1001}, ValueError),
        ({"page_size": "10"}, TypeError),
        ({"page_size": True}, TypeError),
        ({"sort": "created at"}, ValueError),
        ({"sort": "--created_at"}, ValueError),
        ({"sort": "name;drop"}, ValueError),
        ({"sort": ""}, ValueError),
        ({"search": 5}, TypeError),
        ({"destination_name": ""}, ValueError),
    ],
)
async def test_bad_filters_raise_at_the_call(api, client, options, error):
    """Bad filters fail when list() is called, before any request."""
    route = api.get("/batch").respond(json=envelope([]))
    with pytest.raises(error):
        client.batch.list(**options)
    assert not route.called


@pytest.mark.parametrize("size", [1, 1000])
async def test_page_size_bounds_are_accepted(api, client, size):
    """page_size 1 and 1000 are valid and sent as given."""
    route = api.get("/batch").respond(json=envelope([], page=1, page_count=1))
    assert [b async for b in client.batch.list(page_size=size)] == []
    assert route.calls.last.request.url.params["page_size"] == str(size)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"metadata": {}}, "$.items"),
        ({"items": [{**BATCH_JSON, "total": "x"}]}, "$.items[0].total"),
        ({"items": [], "metadata": {"pagination": {"page_count": "2"}}}, "page_count"),
        ([], "$"),
    ],
)
async def test_malformed_envelope_names_the_path(api, client, body, path):
    """A list response of the wrong shape raises APIResponseValidationError with the path."""
    api.get("/batch").respond(json=body)
    with pytest.raises(APIResponseValidationError) as info:
        [b async for b in client.batch.list()]
    assert path in str(info.value)

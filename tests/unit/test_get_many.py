"""client.batch.get_many: order, de-duplication, validation and failure handling (respx)."""

from __future__ import annotations

import httpx
import pytest

from inkit_async import Batch, NotFoundError
from tests.support.loopback import BATCH_JSON


def echo_batch(request: httpx.Request) -> httpx.Response:
    """Answer any batch path with a batch whose id is the requested one."""
    batch_id = request.url.path.rsplit("/", 1)[-1]
    if batch_id.startswith("missing"):
        return httpx.Response(404, json={"error": f"{batch_id} not found"})
    return httpx.Response(200, json={**BATCH_JSON, "id": batch_id})


async def test_results_come_back_in_input_order(api, client):
    """The list is in input order, whatever order the lookups finished in."""
    api.route().mock(side_effect=echo_batch)
    ids = [f"rb_{n}" for n in range(300)]
    batches = await client.batch.get_many(ids)
    assert [b.id for b in batches] == ids


async def test_identical_ids_are_fetched_once(api, client):
    """A repeated id costs one request and fills each of its positions."""
    route = api.route().mock(side_effect=echo_batch)
    batches = await client.batch.get_many(["a", "b", "a", "a", "c", "b"])
    assert [b.id for b in batches] == ["a", "b", "a", "a", "c", "b"]
    assert route.call_count == 3
    assert batches[0] is batches[2]


async def test_accepts_any_iterable_and_empty_input(api, client):
    """A generator works; no ids means no requests and an empty list."""
    route = api.route().mock(side_effect=echo_batch)
    assert await client.batch.get_many([]) == []
    assert not route.called
    batches = await client.batch.get_many(f"rb_{n}" for n in range(3))
    assert [b.id for b in batches] == ["rb_0", "rb_1", "rb_2"]


@pytest.mark.parametrize(
    ("ids", "error"),
    [
        ("rb_1", TypeError),
        (["rb_1", 2], TypeError),
        (["rb_1", ".."], ValueError),
        ([""], ValueError),
    ],
)
async def test_every_id_is_checked_before_anything_is_sent(api, client, ids, error):
    """A bad id anywhere in the input fails the call before the first request."""
    route = api.route().mock(side_effect=echo_batch)
    with pytest.raises(error):
        await client.batch.get_many(ids)
    assert not route.called


async def test_return_exceptions_puts_errors_in_place(api, client):
    """With return_exceptions=True, each failed lookup is its InkitError at its position."""
    api.route().mock(side_effect=echo_batch)
    ids = ["rb_1", "missing_1", "rb_2", "missing_2"]
    results = await client.batch.get_many(ids, return_exceptions=True)
    assert [type(result) for result in results] == [Batch, NotFoundError, Batch, NotFoundError]
    assert [getattr(result, "id", None) for result in results] == ["rb_1", None, "rb_2", None]
    assert str(results[1]).endswith("missing_1 not found")
    assert str(results[3]).endswith("missing_2 not found")


async def test_errors_other_than_inkit_errors_are_not_swallowed(api, client):
    """A non-Inkit failure propagates even with return_exceptions=True."""
    api.route().mock(side_effect=RuntimeError("bug in a hook"))
    with pytest.raises(RuntimeError, match="bug in a hook"):
        await client.batch.get_many(["a", "b"], return_exceptions=True)

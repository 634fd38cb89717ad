"""client.flow_batch: the same reads as client.batch, on /invoke/batch."""

from __future__ import annotations

import httpx

from inkit_async import BatchResource, BatchStatus, DestinationProgress, DocumentBatchResource
from tests.support.loopback import BATCH_JSON

FLOW_JSON = {
    **BATCH_JSON,
    "id": "fb_7XtDgF7RGqdS5Uzea9neZK",
    "status": "In Progress",
    "destinations": {
        "amazon_s3": {"count": 2, "completed": 1, "failed": 0, "in_progress": 1},
        "box": {"count": 2, "completed": 2, "failed": 0, "in_progress": 0},
    },
}


async def test_flow_batch_get_uses_invoke_path(api, client):
    """flow_batch.get requests /invoke/batch/<id> and decodes flow destinations."""
    route = api.get("/invoke/batch/fb_7XtDgF7RGqdS5Uzea9neZK").respond(json=FLOW_JSON)
    batch = await client.flow_batch.get("fb_7XtDgF7RGqdS5Uzea9neZK")
    assert route.call_count == 1
    assert batch.id == "fb_7XtDgF7RGqdS5Uzea9neZK"
    assert batch.status is BatchStatus.IN_PROGRESS
    assert batch.destinations.amazon_s3 == DestinationProgress(
        count=2, completed=1, failed=0, in_progress=1
    )
    assert batch.destinations.box == DestinationProgress(
        count=2, completed=2, failed=0, in_progress=0
    )
    assert batch.destinations.inkit_storage is None
    assert batch.progress == DestinationProgress(count=4, completed=3, failed=0, in_progress=1)
    assert not batch.is_finished  # one amazon_s3 document is still in progress


async def test_flow_batch_get_many_and_list(api, client):
    """get_many and list work on the flow path too; ids stay encoded."""
    api.get(url__regex=r"/invoke/batch/[^/]+$").mock(
        side_effect=lambda request: httpx.Response(
            200, json={**FLOW_JSON, "id": request.url.path.rsplit("/", 1)[-1]}
        )
    )
    listing = api.get("/invoke/batch").respond(
        json={
            "items": [FLOW_JSON],
            "metadata": {"pagination": {"current_page": 1, "page_count": 1}},
        }
    )
    batches = await client.flow_batch.get_many(["fb_1", "fb_2", "fb_1"])
    assert [b.id for b in batches] == ["fb_1", "fb_2", "fb_1"]
    listed = [b.id async for b in client.flow_batch.list(search="x")]
    assert listed == [FLOW_JSON["id"]]
    assert listing.calls.last.request.url.params["search"] == "x"


def test_resources_share_one_implementation(client):
    """Both resources are the same class family; only document batches can be created."""
    assert isinstance(client.flow_batch, BatchResource)
    assert isinstance(client.batch, DocumentBatchResource)
    assert not hasattr(client.flow_batch, "create")
    assert type(client.batch).get is BatchResource.get
    assert "invoke/batch" in repr(client.flow_batch)

"""Renders, documents, templates, folders and flows on the wire: respx sees each request.

Each method's exact method, path, query, headers and body, as the official SDKs' sources
show them (docs/resources.md); ids are one percent-encoded segment; the answers become
records that keep what they do not name.
"""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest

from inkit_async import (
    APIResponseValidationError,
    APIStatusError,
    CreatedRender,
    Document,
    FlowInvocation,
    Folder,
    NotFoundError,
    Render,
    Template,
)
from tests.support.constants import TOKEN

RENDER = {"id": "rend_1", "status": "In Progress", "width": 8.5, "pdf_url": "https://x/pdf"}
DOCUMENT = {"id": "doc_1", "render_id": "rend_1", "created_by": {"name": "key"}}
TEMPLATE = {"id": "tmpl_1", "name": "T", "source": "html", "width": "8.5", "version": 2}


def page(*items: dict[str, object], current: int = 1, count: int = 1) -> dict[str, object]:
    """A listing's answer, as the API's envelope holds it."""
    return {
        "items": list(items),
        "metadata": {"pagination": {"current_page": current, "page_count": count}},
    }


def sent_json(route) -> object:
    """The JSON body of the route's last request."""
    return json.loads(route.calls.last.request.content)


def assert_authenticated(request: httpx.Request) -> None:
    """The request carries the token and asks for JSON."""
    assert request.headers["X-Inkit-API-Token"] == TOKEN
    assert request.headers["Accept"] == "application/json"


async def test_render_create_posts_the_render_and_reads_the_ids(api, client):
    """POST /render: template_id, merge_parameters and only the fields set; not repeated."""
    route = api.post("/render").respond(
        201, json={"id": "rend_1", "document_id": "doc_1", "mail_piece_id": None, "new": 1}
    )
    created = await client.render.create(
        template_id="tmpl_1",
        merge_parameters={"Name": "John"},
        name="Invoice",
        destinations={"inkit_storage": {"name": "Invoice", "folder_id": "fold_1"}},
    )
    assert created == CreatedRender(id="rend_1", document_id="doc_1", extra={"new": 1})
    assert created.to_dict()["new"] == 1
    request = route.calls.last.request
    assert_authenticated(request)
    assert request.headers["Content-Type"] == "application/json"
    assert sent_json(route) == {
        "template_id": "tmpl_1",
        "merge_parameters": {"Name": "John"},
        "name": "Invoice",
        "destinations": {"inkit_storage": {"name": "Invoice", "folder_id": "fold_1"}},
    }


async def test_a_create_that_meets_a_5xx_is_not_sent_again(api, client):
    """render.create, template.create and flow.invoke may have been made: one attempt."""
    renders = api.post("/render").respond(503)
    templates = api.post("/template").respond(502)
    flows = api.post("/invoke").respond(500)
    with pytest.raises(APIStatusError):
        await client.render.create(template_id="t", merge_parameters={})
    with pytest.raises(APIStatusError):
        await client.template.create(name="n", source="html", file=b"<p/>")
    with pytest.raises(APIStatusError):
        await client.flow.invoke(flow_id="flow_1", merge_parameters={})
    assert (renders.call_count, templates.call_count, flows.call_count) == (1, 1, 1)


async def test_render_get_encodes_the_id_and_keeps_unknown_fields(api, client):
    """GET /render/{id}: one encoded segment; unknown fields land in extra."""
    route = api.get("/render/a%2F..%3Fx").respond(json={**RENDER, "id": "a/..?x", "pages": 2})
    render = await client.render.get("a/..?x")
    assert isinstance(render, Render)
    assert (render.id, render.status, render.is_completed) == ("a/..?x", "In Progress", False)
    assert render.extra == {"pages": 2}
    assert render.to_dict()["pages"] == 2
    assert route.calls.last.request.url.raw_path == b"/v1/render/a%2F..%3Fx"
    assert_authenticated(route.calls.last.request)


async def test_a_lookup_answered_for_another_record_fails(api, client):
    """The id checked: a stale answer for another render is APIResponseValidationError."""
    api.get("/render/rend_1").respond(json={**RENDER, "id": "rend_2"})
    api.get("/document/doc_1").respond(json={**DOCUMENT, "id": "doc_2"})
    api.get("/template/tmpl_1").respond(json={**TEMPLATE, "id": "tmpl_2"})
    with pytest.raises(APIResponseValidationError, match="render 'rend_2'"):
        await client.render.get("rend_1")
    with pytest.raises(APIResponseValidationError, match="document 'doc_2'"):
        await client.document.get("doc_1")
    with pytest.raises(APIResponseValidationError, match="template 'tmpl_2'"):
        await client.template.get("tmpl_1")


async def test_render_list_sends_the_filters_and_follows_pages(api, client):
    """GET /render: page, page_size, sort and the destination filters; data_id as data-id."""
    route = api.get("/render")
    route.side_effect = [
        httpx.Response(200, json=page(RENDER, current=1, count=2)),
        httpx.Response(200, json=page({"id": "rend_2"}, current=2, count=2)),
    ]
    listing = client.render.list(
        page_size=1,
        sort="-created_at",
        destination_name="salesforce",
        destination_status="completed",
        data_id=["rend_1", "rend_2"],
    )
    assert [render.id async for render in listing] == ["rend_1", "rend_2"]
    queries = [dict(call.request.url.params) for call in route.calls]
    assert queries[0] == {
        "page": "1",
        "page_size": "1",
        "sort": "-created_at",
        "destination_name": "salesforce",
        "destination_status": "completed",
        "data-id": "rend_1,rend_2",
    }
    assert queries[1]["page"] == "2"


async def test_render_delete_sends_delete_and_reads_no_body(api, client):
    """DELETE /render/{id}: a 204 with no body is success."""
    route = api.delete("/render/rend_1").respond(204)
    assert await client.render.delete("rend_1") is None
    assert route.call_count == 1
    assert_authenticated(route.calls.last.request)
    assert route.calls.last.request.content == b""


async def test_document_get_list_delete(api, client):
    """GET /document/{id}, GET /document (data-id, search), DELETE /document/{id}."""
    got = api.get("/document/doc_1").respond(json=DOCUMENT)
    listed = api.get("/document").respond(json=page(DOCUMENT))
    deleted = api.delete("/document/doc_1").respond(204)
    document = await client.document.get("doc_1")
    assert isinstance(document, Document)
    assert document.created_by is not None
    assert document.created_by.name == "key"
    found = [d async for d in client.document.list(data_id="rend_1", search="inv")]
    assert found == [document]
    await client.document.delete("doc_1")
    assert dict(listed.calls.last.request.url.params) == {
        "page": "1",
        "data-id": "rend_1",
        "search": "inv",
    }
    assert got.call_count == deleted.call_count == 1


async def test_a_deleted_record_that_is_gone_is_not_found(api, client):
    """A 404 to a delete is NotFoundError (a retry of one that went through may see it)."""
    api.delete("/document/doc_9").respond(404, json={"error": "Not found"})
    with pytest.raises(NotFoundError):
        await client.document.delete("doc_9")


@pytest.mark.parametrize("given", ["bytes", "path", "file"])
async def test_template_create_sends_the_file_base64_with_its_page_size(
    api, client, tmp_path, given
):
    """POST /template: name, source, file (base64), data: width, height, unit."""
    content = "<html>{{Name}} é</html>".encode()
    path = tmp_path / "t.html"
    path.write_bytes(content)
    file: object = {"bytes": content, "path": path, "file": io.BytesIO(content)}[given]
    route = api.post("/template").respond(201, json=TEMPLATE)
    template = await client.template.create(
        name="T",
        source="html",
        file=file,  # type: ignore[arg-type]
        description="d",
        width=8.5,
        height=11,
        unit="in",
        destinations=[{"id": "dest_1", "folder_id": "fold_1"}],
    )
    assert isinstance(template, Template)
    assert template.width == "8.5"
    assert sent_json(route) == {
        "name": "T",
        "source": "html",
        "description": "d",
        "data": {"width": 8.5, "height": 11, "unit": "in"},
        "destinations": [{"id": "dest_1", "folder_id": "fold_1"}],
        "file": base64.b64encode(content).decode(),
    }


async def test_a_docx_template_sends_its_file_name(api, client):
    """A DOCX template: data holds file_name (inkit-python's README), no page size."""
    route = api.post("/template").respond(201, json={"id": "tmpl_2", "source": "docx"})
    await client.template.create(name="D", source="docx", file=b"PK\x03\x04", file_name="a.docx")
    assert sent_json(route) == {
        "name": "D",
        "source": "docx",
        "data": {"file_name": "a.docx"},
        "file": base64.b64encode(b"PK\x03\x04").decode(),
    }


async def test_template_get_and_list(api, client):
    """GET /template/{id}; GET /template with source, search, sort."""
    api.get("/template/tmpl_1").respond(json=TEMPLATE)
    listed = api.get("/template").respond(json=page(TEMPLATE))
    assert (await client.template.get("tmpl_1")).version == 2
    assert [t.id async for t in client.template.list(source="docx", sort="name")] == ["tmpl_1"]
    assert dict(listed.calls.last.request.url.params) == {
        "page": "1",
        "sort": "name",
        "source": "docx",
    }


async def test_folder_list(api, client):
    """GET /folder: the private folders, page by page."""
    route = api.get("/folder").respond(json=page({"id": "fold_1", "name": "Invoices"}))
    folders = [folder async for folder in client.folder.list(search="Inv", page_size=10)]
    assert folders == [Folder(id="fold_1", name="Invoices")]
    assert dict(route.calls.last.request.url.params) == {
        "page": "1",
        "page_size": "10",
        "search": "Inv",
    }


async def test_flow_invoke_and_list_invocations(api, client):
    """POST /invoke (flow_id, name, merge_parameters); GET /invoke with its filters."""
    invoked = api.post("/invoke").respond(
        201, json={"id": "rend_9", "document_id": "doc_9", "box_piece_id": "box_1"}
    )
    listed = api.get("/invoke").respond(
        json=page({"id": "rend_9", "flow_id": "flow_1", "destinations": {"box": {"x": 1}}})
    )
    created = await client.flow.invoke(flow_id="flow_1", merge_parameters={"a": 1}, name="run")
    assert (created.id, created.box_piece_id) == ("rend_9", "box_1")
    assert sent_json(invoked) == {"flow_id": "flow_1", "merge_parameters": {"a": 1}, "name": "run"}
    invocations = [
        each
        async for each in client.flow.list_invocations(
            data_id="rend_9", destination_name="box", destination_status="completed"
        )
    ]
    assert invocations == [
        FlowInvocation(id="rend_9", flow_id="flow_1", destinations={"box": {"x": 1}})
    ]
    assert dict(listed.calls.last.request.url.params) == {
        "page": "1",
        "data-id": "rend_9",
        "destination_name": "box",
        "destination_status": "completed",
    }


async def test_an_answer_that_is_not_a_record_is_a_validation_error(api, client):
    """A count that is not a count, a time that is not a time: the field path is named."""
    api.get("/document/doc_1").respond(json={"id": "doc_1", "expire_views_left": -1})
    api.get("/render").respond(json=page({"id": "r", "created_at": "yesterday"}))
    with pytest.raises(APIResponseValidationError, match=r"\$\.expire_views_left"):
        await client.document.get("doc_1")
    with pytest.raises(APIResponseValidationError, match=r"\$\.items\[0\]\.created_at"):
        [render async for render in client.render.list()]

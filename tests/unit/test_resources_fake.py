"""FakeInkit serves renders, documents, templates, folders and flows; arguments are checked.

In process (``fake.client()``): the production path but the socket. Every argument the
SDK refuses is refused before anything is sent (``fake.requests`` stays empty).
"""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import pytest

from inkit_async import NotFoundError
from inkit_async.testing import FakeInkit
from tests.support.fake_api import assert_refused


async def raw(fake: FakeInkit, method: str, path: str, **kwargs) -> httpx.Response:
    """Send one raw HTTP request to the fake's ASGI app, with its token."""
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        headers = {"X-Inkit-API-Token": fake.token}
        return await http.request(method, path, headers=headers, **kwargs)


async def test_a_render_is_in_progress_until_its_delay_has_passed(fake):
    """render_delay keeps a render In Progress; complete_render (or the delay) completes it."""
    slow = FakeInkit(seed=1, render_delay=3600)
    async with slow.client() as client:
        created = await client.render.create(template_id="tmpl_1", merge_parameters={"a": 1})
        render = await client.render.get(created.id)
        assert (render.status, render.is_completed) == ("In Progress", False)
        assert created.document_id is not None
        document = await client.document.get(created.document_id)
        assert document.status == "In Progress"
        assert document.render_id == created.id
        slow.complete_render(created.id)
        assert (await client.render.get(created.id)).is_completed
        assert (await client.document.get(created.document_id)).status == "Completed"
    async with fake.client() as client:  # no delay: completed at once
        created = await client.render.create(template_id="tmpl_1", merge_parameters={})
        assert (await client.render.get(created.id)).status == "Completed"


async def test_a_render_goes_to_the_storage_folder_named(fake):
    """destinations.inkit_storage: the document's name and folder; the render's merge fields."""
    folder_id = fake.add_folder(name="Invoices")
    async with fake.client() as client:
        created = await client.render.create(
            template_id="tmpl_1",
            merge_parameters={"Name": "John"},
            name="r",
            destinations={"inkit_storage": {"name": "Invoice 1", "folder_id": folder_id}},
        )
        render = await client.render.get(created.id)
        document = await client.document.get(created.document_id or "")
    assert render.merge_parameters == {"Name": "John"}
    assert render.folder_id == document.folder_id == folder_id
    assert document.name == "Invoice 1"
    assert fake.document_ids(created.id) == [document.id]


async def test_a_render_without_inkit_storage_makes_no_document(fake):
    """Only a render bound for Inkit Storage has a document there."""
    async with fake.client() as client:
        created = await client.render.create(
            template_id="t", merge_parameters={}, destinations={"salesforce": {"record_id": "1"}}
        )
    assert created.document_id is None
    assert fake.document_ids() == []


async def test_lookups_under_way_share_one_request(fake):
    """render.get coalesces: five callers at once, one request."""
    render_id = fake.add_render(name="r")
    fake.set_latency(0.05)
    async with fake.client() as client:
        renders = await asyncio.gather(*(client.render.get(render_id) for _ in range(5)))
        documents = await asyncio.gather(
            *(client.document.get(fake.document_ids()[0]) for _ in range(3))
        )
    assert {render.id for render in renders} == {render_id}
    assert len({document.id for document in documents}) == 1
    assert len(fake.requests) == 2


async def test_listings_page_filter_and_sort(fake):
    """Five renders, two per page: three requests; data_id, search and sort apply."""
    ids = [fake.add_render(name=f"invoice {n}") for n in range(5)]
    async with fake.client() as client:
        listed = [render.id async for render in client.render.list(page_size=2, sort="created_at")]
        pages = [page async for page in client.render.list(page_size=2).pages()]
        chosen = [r.id async for r in client.render.list(data_id=[ids[1], ids[3]], sort="id")]
        searched = [r.name async for r in client.render.list(search="invoice 4")]
        documents = [d.render_id async for d in client.document.list(data_id=ids[2])]
    assert listed == ids
    assert [len(page.items) for page in pages] == [2, 2, 1]
    assert (pages[0].page_count, pages[0].total_count) == (3, 5)
    assert chosen == sorted([ids[1], ids[3]])
    assert searched == ["invoice 4"]
    assert documents == [ids[2]]


async def test_delete_removes_and_a_second_delete_is_not_found(fake):
    """DELETE /render/{id} and /document/{id}: 204, then 404."""
    render_id = fake.add_render()
    document_id = fake.document_ids(render_id)[0]
    async with fake.client() as client:
        await client.document.delete(document_id)
        await client.render.delete(render_id)
        with pytest.raises(NotFoundError):
            await client.render.get(render_id)
        with pytest.raises(NotFoundError):
            await client.document.delete(document_id)
    assert [request.method for request in fake.requests][:2] == ["DELETE", "DELETE"]


async def test_templates_are_created_got_and_listed(fake):
    """POST /template stores the template with its page size; GET and the source filter."""
    fake.add_template(name="old docx", source="docx")
    async with fake.client() as client:
        made = await client.template.create(
            name="Invoice",
            source="html",
            file=io.BytesIO(b"<html>{{Name}}</html>"),
            width=21,
            height=29.7,
            unit="cm",
        )
        got = await client.template.get(made.id)
        html = [t.name async for t in client.template.list(source="html")]
        every = [t.name async for t in client.template.list(sort="name")]
    assert got == made
    assert (got.width, got.height, got.unit, got.source) == (21, 29.7, "cm", "html")
    assert html == ["Invoice"]
    assert every == ["Invoice", "old docx"]
    sent = fake.requests[0].json
    assert isinstance(sent, dict)
    assert base64.b64decode(sent["file"]) == b"<html>{{Name}}</html>"


async def test_folders_are_listed(fake):
    """GET /folder: every folder the test added, searchable."""
    fake.add_folder(name="Invoices", description="2024")
    fake.add_folder(name="Letters")
    async with fake.client() as client:
        folders = [folder async for folder in client.folder.list(sort="name")]
        found = [folder.name async for folder in client.folder.list(search="lett")]
    assert [(f.name, f.description) for f in folders] == [("Invoices", "2024"), ("Letters", None)]
    assert folders[0].created_by is not None
    assert found == ["Letters"]


async def test_flows_are_invoked_and_their_invocations_listed(fake):
    """POST /invoke makes an invocation (a render id) that GET /invoke lists, filtered."""
    async with fake.client() as client:
        first = await client.flow.invoke(flow_id="flow_1", merge_parameters={"a": 1}, name="one")
        await client.flow.invoke(flow_id="flow_2", merge_parameters={})
        mine = [i async for i in client.flow.list_invocations(data_id=first.id)]
        done = [i async for i in client.flow.list_invocations(destination_status="completed")]
        none = [i async for i in client.flow.list_invocations(destination_name="box")]
        failed = [i async for i in client.flow.list_invocations(destination_status="failed")]
    assert first.id.startswith("rend_")
    assert first.document_id is not None
    assert [(i.id, i.flow_id, i.name, i.merge_parameters) for i in mine] == [
        (first.id, "flow_1", "one", {"a": 1})
    ]
    assert len(done) == 2
    assert none == failed == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [
        ("POST", "/v1/render", {"merge_parameters": {}}, 422, "template_id is required"),
        ("POST", "/v1/render", {"template_id": "t"}, 422, "merge_parameters is required"),
        (
            "POST",
            "/v1/render",
            {"template_id": "t", "merge_parameters": {}, "destinations": []},
            422,
            "destinations",
        ),
        ("POST", "/v1/render", [], 422, "JSON object"),
        ("POST", "/v1/invoke", {"merge_parameters": {}}, 422, "flow_id is required"),
        ("POST", "/v1/invoke", {"flow_id": "f", "merge_parameters": 1}, 422, "merge_parameters"),
        (
            "POST",
            "/v1/invoke",
            {"flow_id": "f", "merge_parameters": {}, "name": 1},
            422,
            "must be strings",
        ),
        (
            "POST",
            "/v1/template",
            {"name": "n", "source": "pdf", "file": "PHA+", "description": 1},
            422,
            "description must be",
        ),
        (
            "POST",
            "/v1/template",
            {"name": "n", "source": "pdf", "file": "PHA+", "data": []},
            422,
            "data must be an object",
        ),
        (
            "POST",
            "/v1/template",
            {"name": "n", "source": "pdf", "file": "PHA+", "destinations": "x"},
            422,
            "destinations must be a list",
        ),
        ("POST", "/v1/template", {"source": "html"}, 422, "name is required"),
        ("POST", "/v1/template", {"name": "n", "source": "txt"}, 422, "source must be"),
        ("POST", "/v1/template", {"name": "n", "source": "pdf"}, 422, "file is required"),
        (
            "POST",
            "/v1/template",
            {"name": "n", "source": "pdf", "file": "!!"},
            422,
            "not valid base64",
        ),
        (
            "POST",
            "/v1/template",
            {"name": "n", "source": "html", "file": "PHA+", "data": {"unit": "in"}},
            422,
            "numbers > 0",
        ),
        (
            "POST",
            "/v1/template",
            {"name": "n", "source": "html", "file": "PHA+", "data": {"width": 1, "height": 1}},
            422,
            "unit must be",
        ),
        ("POST", "/v1/folder", {}, 405, "not allowed"),
        ("PUT", "/v1/template/tmpl_x", None, 404, "not found"),
        ("GET", "/v1/render/rend_missing", None, 404, "not found"),
        ("GET", "/v1/nothing", None, 404, "Not found"),
        ("GET", "/v1/render?sort=color", None, 400, "Cannot sort by"),
    ],
)
async def test_the_fake_refuses_what_the_api_would(fake, method, path, body, status, fragment):
    """Bad requests to the new routes get a 4xx with a message, never a 500."""
    kwargs = {} if body is None else {"json": body}
    assert_refused(await raw(fake, method, path, **kwargs), status, fragment)


async def test_a_template_that_exists_answers_405_to_another_method(fake):
    """A known template id with PUT: 405 (the id exists, the method does not)."""
    template_id = fake.add_template()
    assert_refused(await raw(fake, "PUT", f"/v1/template/{template_id}"), 405, "not allowed")
    assert_refused(await raw(fake, "POST", "/v1/render", content=b"{"), 400, "not valid JSON")


# -- arguments refused before anything is sent ------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda c: c.render.get(""), ValueError, "render_id must be a non-empty"),
        (lambda c: c.render.get(7), TypeError, "render_id must be a str"),
        (lambda c: c.render.delete(".."), ValueError, "relative path segment"),
        (lambda c: c.document.get(" "), ValueError, "document_id"),
        (lambda c: c.document.delete(None), TypeError, "document_id"),
        (lambda c: c.template.get("x" * 1025), ValueError, "1,024"),
        (lambda c: c.render.get("r", deadline=-1), ValueError, "deadline"),
        (
            lambda c: c.render.create(template_id="", merge_parameters={}),
            ValueError,
            "template_id",
        ),
        (
            lambda c: c.render.create(template_id="t", merge_parameters=None),
            ValueError,
            "no merge_parameters",
        ),
        (
            lambda c: c.render.create(template_id="t", merge_parameters=[1]),
            TypeError,
            "merge_parameters must be a mapping",
        ),
        (
            lambda c: c.render.create(template_id="t", merge_parameters={}, name=1),
            TypeError,
            "name must be a str",
        ),
        (
            lambda c: c.render.create(template_id="t", merge_parameters={}, destinations=[]),
            TypeError,
            "destinations must be a mapping",
        ),
        (
            lambda c: c.flow.invoke(flow_id=3, merge_parameters={}),
            TypeError,
            "flow_id must be a str",
        ),
        (
            lambda c: c.flow.invoke(flow_id="f", merge_parameters={"a": _deep()}),
            ValueError,
            "nests",
        ),
        (
            lambda c: c.template.create(name="n", source="txt", file=b"x"),
            ValueError,
            "source must be one of html, docx, pdf",
        ),
        (
            lambda c: c.template.create(name="n", source=None, file=b"x"),
            TypeError,
            "source must be one of",
        ),
        (
            lambda c: c.template.create(name="", source="html", file=b"x"),
            ValueError,
            "name must be a non-empty",
        ),
        (
            lambda c: c.template.create(name="n", source="html", file="<html/>"),
            TypeError,
            "not a str",
        ),
        (
            lambda c: c.template.create(name="n", source="html", file=42),
            TypeError,
            "got int",
        ),
        (
            lambda c: c.template.create(name="n", source="html", file=b""),
            ValueError,
            "file is empty",
        ),
        (
            lambda c: c.template.create(name="n", source="html", file=io.StringIO("<p/>")),
            TypeError,
            "binary mode",
        ),
        (
            lambda c: c.template.create(
                name="n", source="html", file=b"x", width=-1, height=1, unit="in"
            ),
            ValueError,
            "width must be a finite number > 0",
        ),
        (
            lambda c: c.template.create(
                name="n", source="html", file=b"x", width=1, height=float("nan"), unit="in"
            ),
            ValueError,
            "height",
        ),
        (
            lambda c: c.template.create(
                name="n", source="html", file=b"x", width=1, height=1, unit="px"
            ),
            ValueError,
            "unit must be one of in, cm",
        ),
        (
            lambda c: c.template.create(name="n", source="html", file=b"x", width=1),
            ValueError,
            "go together",
        ),
        (
            lambda c: c.template.create(name="n", source="html", file=b"x", destinations="d"),
            TypeError,
            "destinations must be a list",
        ),
        (
            lambda c: c.template.create(name="n", source="docx", file=b"x", file_name=b"a"),
            TypeError,
            "file_name must be a str",
        ),
    ],
)
async def test_bad_arguments_are_refused_before_anything_is_sent(fake, call, error, fragment):
    """A typed error with a clear message, and no request."""
    async with fake.client() as client:
        with pytest.raises(error, match=fragment):
            await call(client)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("listing", "error", "fragment"),
    [
        (lambda c: c.render.list(data_id=["a,b"]), ValueError, "must not hold a comma"),
        (lambda c: c.render.list(data_id=[]), ValueError, "at least one id"),
        (lambda c: c.document.list(data_id=[1]), TypeError, r"data_id\[0\] must be a str"),
        (lambda c: c.document.list(data_id=[None]), TypeError, r"data_id\[0\] must be a str"),
        (lambda c: c.flow.list_invocations(data_id=5), TypeError, "iterable of str"),
        (lambda c: c.flow.list_invocations(data_id=""), ValueError, "must not be empty"),
        (lambda c: c.template.list(source="txt"), ValueError, "source must be one of"),
        (lambda c: c.folder.list(page_size=0), ValueError, "page_size"),
        (lambda c: c.folder.list(sort="a b"), ValueError, "sort"),
        (lambda c: c.render.list(destination_name=""), ValueError, "must not be empty"),
        (lambda c: c.render.list(deadline=0), ValueError, "deadline"),
    ],
)
async def test_bad_filters_are_refused_when_list_is_called(fake, listing, error, fragment):
    """A listing's filters are checked when list() is called, before any request."""
    async with fake.client() as client:
        with pytest.raises(error, match=fragment):
            listing(client)
    assert fake.requests == []


async def test_an_unreadable_template_path_is_refused_before_sending(fake, tmp_path):
    """A path that is missing, or a directory: the OSError, and nothing sent."""
    async with fake.client() as client:
        with pytest.raises(FileNotFoundError):
            await client.template.create(name="n", source="pdf", file=tmp_path / "missing.pdf")
        with pytest.raises(IsADirectoryError):
            await client.template.create(name="n", source="pdf", file=tmp_path)
    assert fake.requests == []


def _deep() -> object:
    value: object = 1
    for _ in range(70):
        value = [value]
    return value


def test_every_record_gives_back_the_json_it_was_made_from():
    """to_dict of each new record: the named fields, then what extra kept, as sent."""
    from inkit_async import (
        CreatedRender,
        Creator,
        Document,
        FlowInvocation,
        Folder,
        Render,
        Template,
        to_dict,
    )
    from inkit_async._converter import structure

    for cls in (Render, CreatedRender, Document, Template, Folder, FlowInvocation):
        data = {"id": "x_1", "surprise": {"nested": [1, None]}, "extra": "a field named so"}
        record = structure(data, cls)
        assert record.extra == {"surprise": {"nested": [1, None]}, "extra": "a field named so"}
        plain = record.to_dict()
        assert plain == to_dict(record)
        assert {key: plain[key] for key in data} == data
        assert structure(plain, cls) == record
    creator = Creator(name="key", extra={"email": "e"})
    assert creator.to_dict() == {"first_name": None, "last_name": None, "name": "key", "email": "e"}


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("width", float("inf"), "finite number"),
        ("width", True, "expected a number"),
        ("width", "8.5", "expected a number"),
        ("merge_parameters", [], "expected an object"),
        ("expire_after_n_views", -1, ">= 0"),
    ],
)
def test_a_render_field_of_the_wrong_kind_is_named(field, value, fragment):
    """Strict where the sources give a type: the field path is in the message."""
    from inkit_async import Render
    from inkit_async._converter import ShapeError, structure

    with pytest.raises(ShapeError, match=rf"{fragment}.*\$\.{field}"):
        structure({"id": "r", field: value}, Render)

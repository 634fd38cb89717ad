"""FakeInkit's renders, documents, templates, folders and flow invocations, in memory.

``FakeInkit`` (``testing.py``) hands these routes the request it has checked (token,
scripted faults, a body that is JSON) and turns what they give back into an answer: a
``(status, body)`` pair, or a ``Listed`` set of items that it pages, sorts and filters
by ``search`` as it pages batches. Bad input gets the answer an API gives: 422 for a
body against the rules the SDKs' sources show, 404 for an unknown id, 405 for another
method.

A render is ``In Progress`` until ``render_delay`` seconds after it was created, then
``Completed`` (the statuses inkit-go's README names); the document a render delivers to
Inkit Storage follows it. Their file (``GET render/{id}/pdf``, ``GET download/{id}``)
answers 404 until then, as a render's PDF does on the API, and then ``FAKE_PDF``: a
small valid PDF of one page. ``?page=N`` on a render's PDF gives that page (the same
bytes, for page 1); a page past the last is a 422 (the API's answer is not documented:
422 fails at once, where a 404 would be waited for as "not ready yet"); a ``page`` that
is not a whole number from 1 is a 400.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["FAKE_PDF", "FakeResources", "File", "Listed"]

_EPOCH: Final = datetime(2024, 1, 1, tzinfo=UTC)
_IN_PROGRESS: Final = "In Progress"
_COMPLETED: Final = "Completed"
_SOURCES: Final = ("html", "docx", "pdf")
_UNITS: Final = ("in", "cm")
#: The fields each listing sorts by.
_SORTS: Final = ("created_at", "id", "name")
_RENDER_SORTS: Final = ("created_at", "id", "name", "status")

Outcome = tuple[int, object]


def _one_page_pdf(text: str) -> bytes:
    """A valid PDF 1.4 of one Letter page saying *text*: its cross-reference table exact."""
    stream = f"BT /F1 24 Tf 72 700 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
        ),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    table = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % table
    return bytes(out)


#: What every render's PDF and every document's file is in the fake: one page.
FAKE_PDF: Final = _one_page_pdf("FakeInkit")
#: The pages of ``FAKE_PDF``.
FAKE_PDF_PAGES: Final = 1


@dataclass(frozen=True, slots=True)
class File:
    """A binary answer (a PDF): ``FakeInkit`` sends it as it is."""

    content: bytes
    content_type: str = "application/pdf"


@dataclass(frozen=True, slots=True)
class Listed:
    """Items for ``FakeInkit`` to page (and sort by one of *sort_fields*)."""

    items: list[dict[str, Any]]
    sort_fields: tuple[str, ...] = _SORTS


@dataclass(slots=True)
class _Render:
    fields: dict[str, Any]
    ready_at: float
    document_id: str | None = None


def _error(status: int, message: str) -> Outcome:
    return status, {"error": message}


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _object_or_none(body: dict[str, object], key: str) -> bool:
    return body.get(key) is None or isinstance(body.get(key), dict)


def _text_or_none(body: dict[str, object], key: str) -> bool:
    return body.get(key) is None or isinstance(body.get(key), str)


def _required_text(body: dict[str, object], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value.strip() else None


@dataclass(slots=True)
class FakeResources:
    """The state and routes of every resource but batches.

    Args:
        new_id: Makes an id with the prefix given (``rend_``).
        render_delay: Seconds a render stays ``In Progress``.
        clock: The monotonic clock the delay is measured on.
    """

    new_id: Callable[[str], str]
    render_delay: float = 0.0
    clock: Callable[[], float] = time.monotonic
    renders: dict[str, _Render] = field(default_factory=dict[str, _Render])
    documents: dict[str, dict[str, Any]] = field(default_factory=dict[str, dict[str, Any]])
    templates: dict[str, dict[str, Any]] = field(default_factory=dict[str, dict[str, Any]])
    folders: dict[str, dict[str, Any]] = field(default_factory=dict[str, dict[str, Any]])
    invocations: dict[str, dict[str, Any]] = field(default_factory=dict[str, dict[str, Any]])
    _made: int = 0

    # -- what a test sets up --------------------------------------------------------------

    def _created_at(self) -> str:
        self._made += 1
        return _time(_EPOCH + timedelta(seconds=self._made))

    def add_template(self, *, name: str, source: str = "html") -> str:
        """Add a template; return its id."""
        template_id = self.new_id("tmpl_")
        now = self._created_at()
        self.templates[template_id] = {
            "id": template_id,
            "name": name,
            "description": None,
            "source": source,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        return template_id

    def add_folder(self, *, name: str, description: str | None = None) -> str:
        """Add a folder; return its id."""
        folder_id = self.new_id("fold_")
        now = self._created_at()
        self.folders[folder_id] = {
            "id": folder_id,
            "name": name,
            "description": description,
            "created_by": {"first_name": None, "last_name": None, "name": "fake key"},
            "created_at": now,
            "updated_at": now,
        }
        return folder_id

    def add_render(
        self,
        *,
        template_id: str | None = None,
        merge_parameters: dict[str, Any] | None = None,
        name: str | None = None,
        destinations: dict[str, Any] | None = None,
    ) -> tuple[str, str | None]:
        """Add a render (and its Inkit Storage document): ``(render_id, document_id)``."""
        render_id = self.new_id("rend_")
        now = self._created_at()
        settings = destinations or {"inkit_storage": {}}
        storage: object = settings.get("inkit_storage")
        storing = cast("dict[str, object]", storage) if isinstance(storage, dict) else {}
        folder_id = storing.get("folder_id")
        render = _Render(
            fields={
                "id": render_id,
                "name": name,
                "template_id": template_id,
                "folder_id": folder_id,
                "merge_parameters": merge_parameters or {},
                "destinations": settings,
                "created_at": now,
                "updated_at": now,
            },
            ready_at=self.clock() + self.render_delay,
        )
        if storage is not None:
            document_id = self.new_id("doc_")
            render.document_id = document_id
            title = storing.get("name")
            self.documents[document_id] = {
                "id": document_id,
                "name": title or name,
                "description": None,
                "render_id": render_id,
                "folder_id": folder_id,
                "created_by": {"first_name": None, "last_name": None, "name": "fake key"},
                "created_at": now,
                "modified_at": now,
            }
        self.renders[render_id] = render
        return render_id, render.document_id

    def complete_render(self, render_id: str) -> None:
        """Make a render ``Completed`` now, whatever its delay."""
        self.renders[render_id].ready_at = -math.inf

    # -- what comes in --------------------------------------------------------------------

    def route(
        self, method: str, segments: list[str], params: dict[str, str], body: object
    ) -> Outcome | Listed | None:
        """The answer to *method* on ``/v1/<segments>``; ``None`` when no resource is there."""
        match segments:
            case ["render" | "document" | "template" | "folder" | "invoke" as name]:
                return self._collection(method, name, params, body)
            case ["render" | "document" | "template" as name, item_id]:
                return self._item(method, name, item_id)
            case ["render", render_id, "pdf"]:
                return self._file(method, self.renders.get(render_id), params.get("page"))
            case ["download", document_id]:
                document = self.documents.get(document_id)
                render = None if document is None else self.renders.get(document["render_id"])
                if document is not None and render is None:  # its render deleted: still there
                    render = _Render(fields={}, ready_at=-math.inf)
                return self._file(method, render, None)
            case _:
                return None

    def _file(self, method: str, render: _Render | None, page: str | None) -> Outcome:
        """A render's PDF (or its document's): 404 while it is rendering, then the bytes."""
        if method != "GET":
            return _error(405, f"Method {method} not allowed")
        if render is None or self.clock() < render.ready_at:
            return _error(404, "Not found")  # the API's answer to a render in progress too
        if page is not None:
            number = int(page) if page.isascii() and page.isdigit() and len(page) < 19 else 0
            if number < 1:
                return _error(400, "page must be a whole number, 1 or more")
            if number > FAKE_PDF_PAGES:
                return _error(422, f"page {number} is past the last page ({FAKE_PDF_PAGES})")
        return 200, File(FAKE_PDF)

    def _collection(
        self, method: str, name: str, params: dict[str, str], body: object
    ) -> Outcome | Listed:
        if method == "GET":
            return self._list(name, params)
        if method == "POST" and name in {"render", "template", "invoke"}:
            if not isinstance(body, dict):
                return _error(422, "Body must be a JSON object")
            fields = cast("dict[str, object]", body)
            if name == "render":
                return self._create_render(fields)
            if name == "template":
                return self._create_template(fields)
            return self._invoke(fields)
        return _error(405, f"Method {method} not allowed")

    def _item(self, method: str, name: str, item_id: str) -> Outcome:
        store: dict[str, object] = {
            "render": self.renders,
            "document": self.documents,
            "template": self.templates,
        }[name]  # type: ignore[assignment]  # each store maps ids to its items
        if item_id not in store:
            return _error(404, f"{name.capitalize()} {item_id[:100]} not found")
        if method == "GET":
            return 200, self._json(name, item_id)
        if method == "DELETE" and name in {"render", "document"}:
            del store[item_id]
            return 204, None
        return _error(405, f"Method {method} not allowed")

    def _json(self, name: str, item_id: str) -> dict[str, Any]:
        if name == "render":
            return self._render_json(self.renders[item_id])
        if name == "document":
            return self._document_json(self.documents[item_id])
        return dict(self.templates[item_id])

    def _render_json(self, render: _Render) -> dict[str, Any]:
        done = self.clock() >= render.ready_at
        return {**render.fields, "status": _COMPLETED if done else _IN_PROGRESS}

    def _document_json(self, document: dict[str, Any]) -> dict[str, Any]:
        render = self.renders.get(document["render_id"])
        status = _COMPLETED if render is None else self._render_json(render)["status"]
        return {**document, "status": status}

    def _list(self, name: str, params: dict[str, str]) -> Listed:
        ids = {each for each in params.get("data-id", "").split(",") if each}
        wanted_destination = params.get("destination_name")
        wanted_status = params.get("destination_status")
        sorts: tuple[str, ...] = _SORTS
        if name == "render":
            items = [self._render_json(render) for render in self.renders.values()]
            sorts = _RENDER_SORTS
        elif name == "document":
            items = [self._document_json(document) for document in self.documents.values()]
        else:
            store = {"template": self.templates, "folder": self.folders}.get(name)
            items = [dict(item) for item in (store or self.invocations).values()]
        kept: list[dict[str, Any]] = []
        for item in items:
            if ids and (item.get("render_id") if name == "document" else item["id"]) not in ids:
                continue
            if wanted_destination and wanted_destination not in (item.get("destinations") or {}):
                continue
            if name == "invoke" and wanted_status and item["destination_status"] != wanted_status:
                continue
            if params.get("source") and item.get("source") != params["source"]:
                continue
            kept.append(item)
        return Listed(kept, sorts)

    def _create_render(self, body: dict[str, object]) -> Outcome:
        template_id = _required_text(body, "template_id")
        if template_id is None:
            return _error(422, "template_id is required: a non-empty string")
        problem = _render_problem(body)
        if problem is not None:
            return _error(422, problem)
        render_id, document_id = self.add_render(
            template_id=template_id,
            merge_parameters=cast("dict[str, Any]", body["merge_parameters"]),
            name=cast("str | None", body.get("name")),
            destinations=cast("dict[str, Any] | None", body.get("destinations")),
        )
        answer: dict[str, Any] = {"id": render_id}
        if document_id is not None:
            answer["document_id"] = document_id
        return 201, answer

    def _invoke(self, body: dict[str, object]) -> Outcome:
        flow_id = _required_text(body, "flow_id")
        if flow_id is None:
            return _error(422, "flow_id is required: a non-empty string")
        problem = _render_problem(body)
        if problem is not None:
            return _error(422, problem)
        invocation_id = self.new_id("rend_")
        document_id = self.new_id("doc_")
        self.invocations[invocation_id] = {
            "id": invocation_id,
            "name": body.get("name"),
            "description": None,
            "status": _COMPLETED,
            "destination_status": "completed",
            "destinations": {"inkit_storage": {"document_id": document_id}},
            "flow_id": flow_id,
            "flow_name": None,
            "flows_batch_id": None,
            "merge_parameters": body["merge_parameters"],
            "created_at": self._created_at(),
        }
        return 201, {"id": invocation_id, "document_id": document_id}

    def _create_template(self, body: dict[str, object]) -> Outcome:
        problem = _template_problem(body)
        if problem is not None:
            return _error(422, problem)
        template_id = self.add_template(
            name=cast("str", body["name"]), source=cast("str", body["source"])
        )
        template = self.templates[template_id]
        data = cast("dict[str, Any]", body.get("data") or {})
        template.update(
            description=body.get("description"),
            destinations=body.get("destinations"),
            merge_variables={},
            **{key: data[key] for key in ("width", "height", "unit", "file_name") if key in data},
        )
        return 201, dict(template)


def _render_problem(body: dict[str, object]) -> str | None:
    """What is wrong with a render's fields (``render.create``'s, ``invoke``'s), if anything."""
    if not isinstance(body.get("merge_parameters"), dict):
        return "merge_parameters is required: an object"
    if not (_text_or_none(body, "name") and _text_or_none(body, "description")):
        return "name and description must be strings"
    if not _object_or_none(body, "destinations"):
        return "destinations must be an object keyed by destination name"
    return None


def _template_problem(body: dict[str, object]) -> str | None:  # noqa: PLR0911 - one per rule
    """What is wrong with a template's fields, if anything (the SDKs' and pages' rules)."""
    if _required_text(body, "name") is None:
        return "name is required: a non-empty string"
    if body.get("source") not in _SOURCES:
        return "source must be one of html, docx, pdf"
    file = body.get("file")
    if not isinstance(file, str) or not file:
        return "file is required: the template, base64-encoded"
    try:
        base64.b64decode(file, validate=True)
    except (binascii.Error, ValueError):
        return "file is not valid base64"
    if not _text_or_none(body, "description"):
        return "description must be a string"
    if not _object_or_none(body, "data"):
        return "data must be an object"
    data = cast("dict[str, object]", body.get("data") or {})
    if any(key in data for key in ("width", "height", "unit")):
        sizes = [data.get("width"), data.get("height")]
        if not all(type(size) in {int, float} and size > 0 for size in sizes):  # type: ignore[operator]
            return "data.width and data.height must be numbers > 0"
        if data.get("unit") not in _UNITS:
            return "data.unit must be in or cm"
    destinations = body.get("destinations")
    if destinations is not None and not isinstance(destinations, list | dict):
        return "destinations must be a list of objects"
    return None

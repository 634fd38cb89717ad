"""client.batch.get: id validation and encoding, decoding, and status -> exception mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from inkit_async import (
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    Batch,
    BatchStatus,
    ConflictError,
    InkitError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from tests.support.constants import TOKEN
from tests.support.loopback import BATCH_JSON

# -- ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch_id", "raw_path"),
    [
        ("rb_6WtDgF7RGqdS5Uzea9neZJ", "/v1/batch/rb_6WtDgF7RGqdS5Uzea9neZJ"),
        ("a/b", "/v1/batch/a%2Fb"),
        ("../template/x", "/v1/batch/..%2Ftemplate%2Fx"),
        ("a/../../template/t", "/v1/batch/a%2F..%2F..%2Ftemplate%2Ft"),
        ("x?y=1", "/v1/batch/x%3Fy%3D1"),
        ("x#y", "/v1/batch/x%23y"),
        ("with space", "/v1/batch/with%20space"),
        ("100%", "/v1/batch/100%25"),
        ("%2F", "/v1/batch/%252F"),
        ("ünï/çødé", "/v1/batch/%C3%BCn%C3%AF%2F%C3%A7%C3%B8d%C3%A9"),
        ("...", "/v1/batch/..."),
    ],
)
async def test_ids_are_encoded_as_exactly_one_segment(api, client, batch_id, raw_path):
    """Hostile ids stay one path segment: no traversal, no query, no fragment."""
    route = api.route().respond(json={**BATCH_JSON, "id": batch_id})
    await client.batch.get(batch_id)
    request = route.calls.last.request
    assert request.url.raw_path.decode() == raw_path
    assert request.url.query == b""
    assert request.url.fragment == ""


@pytest.mark.parametrize(
    ("batch_id", "error"),
    [("", ValueError), ("   ", ValueError), (".", ValueError), ("..", ValueError)],
)
async def test_bad_ids_raise_value_error_before_any_request(api, client, batch_id, error):
    """Empty, blank, '.' and '..' ids raise ValueError and send nothing."""
    route = api.route().respond(json=BATCH_JSON)
    with pytest.raises(error, match="batch_id"):
        await client.batch.get(batch_id)
    assert not route.called


@pytest.mark.parametrize("batch_id", [None, 42, b"rb_1", ["rb_1"]])
async def test_non_string_ids_raise_type_error_before_any_request(api, client, batch_id):
    """A non-str id raises TypeError and sends nothing."""
    route = api.route().respond(json=BATCH_JSON)
    with pytest.raises(TypeError, match="batch_id must be a str"):
        await client.batch.get(batch_id)
    assert not route.called


# -- decoding -------------------------------------------------------------------------


async def test_documented_response_decodes(api, client):
    """The documented example response becomes the Batch it describes."""
    api.get("/batch/rb_6WtDgF7RGqdS5Uzea9neZJ").respond(json=BATCH_JSON)
    batch = await client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")
    assert isinstance(batch, Batch)
    assert batch.id == "rb_6WtDgF7RGqdS5Uzea9neZJ"
    assert batch.name == "test"
    assert batch.status is BatchStatus.COMPLETED
    assert batch.total == 1
    assert batch.created_at == datetime(2023, 8, 14, 14, 32, 48, 872931, tzinfo=UTC)
    assert batch.destinations.inkit_storage is not None
    assert batch.destinations.inkit_storage.completed == 1
    assert batch.is_finished


async def test_unknown_fields_and_destinations_are_tolerated(api, client):
    """Unknown top-level fields are ignored; unknown destination names are kept."""
    body = {
        **BATCH_JSON,
        "id": "rb_1",
        "status": "Queued",
        "brand_new_field": {"nested": True},
        "destinations": {"teleport": {"count": 2, "completed": 0, "failed": 0, "in_progress": 2}},
    }
    api.get("/batch/rb_1").respond(json=body)
    batch = await client.batch.get("rb_1")
    assert batch.status == "Queued"
    assert not isinstance(batch.status, BatchStatus)
    assert batch.destinations["teleport"].in_progress == 2
    assert batch.destinations.inkit_storage is None
    assert not batch.is_finished


@pytest.mark.parametrize(
    "changes",
    [{"name": None}, {"destinations": None}, {"name": ""}],
)
async def test_optional_fields_may_be_null(api, client, changes):
    """Name and destinations may be null; they decode to None and an empty mapping."""
    api.get("/batch/rb_1").respond(json={**BATCH_JSON, "id": "rb_1", **changes})
    batch = await client.batch.get("rb_1")
    assert batch.name == changes.get("name", "test")
    if "destinations" in changes:
        assert dict(batch.destinations) == {}


async def test_optional_fields_may_be_missing(api, client):
    """A body without name and destinations still decodes."""
    body = {k: v for k, v in BATCH_JSON.items() if k not in {"name", "destinations"}}
    api.get("/batch/rb_1").respond(json={**body, "id": "rb_1"})
    batch = await client.batch.get("rb_1")
    assert batch.name is None
    assert len(batch.destinations) == 0


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({k: v for k, v in BATCH_JSON.items() if k != "id"}, "$.id"),
        ({**BATCH_JSON, "id": 7}, "$.id"),
        ({k: v for k, v in BATCH_JSON.items() if k != "status"}, "$.status"),
        ({**BATCH_JSON, "status": None}, "$.status"),
        ({**BATCH_JSON, "total": "1"}, "$.total"),
        ({**BATCH_JSON, "total": True}, "$.total"),
        ({**BATCH_JSON, "total": 1.5}, "$.total"),
        ({k: v for k, v in BATCH_JSON.items() if k != "created_at"}, "$.created_at"),
        ({**BATCH_JSON, "created_at": "yesterday"}, "$.created_at"),
        ({**BATCH_JSON, "created_at": 1692023568}, "$.created_at"),
        ({**BATCH_JSON, "destinations": [1, 2]}, "$.destinations"),
        ({**BATCH_JSON, "destinations": {"inkit_storage": 3}}, "$.destinations['inkit_storage']"),
        (
            {**BATCH_JSON, "destinations": {"inkit_storage": {"count": 1}}},
            "$.destinations['inkit_storage'].completed",
        ),
        ([BATCH_JSON], "$"),
        ("a string", "$"),
        (None, "$"),
    ],
)
async def test_wrong_shapes_raise_validation_error_naming_the_path(api, client, body, path):
    """A body of the wrong shape raises APIResponseValidationError naming the field path."""
    api.get("/batch/rb_1").respond(content=json.dumps(body).encode())
    with pytest.raises(APIResponseValidationError) as info:
        await client.batch.get("rb_1")
    error = info.value
    assert path in str(error)
    assert error.body == body
    assert error.status_code == 200
    assert error.__cause__ is None
    assert error.__suppress_context__


@pytest.mark.parametrize("content", [b"", b"not json", b'{"id": "rb_1", "sta', b"\xff\xfe"])
async def test_non_json_success_body_raises_validation_error(api, client, content):
    """A 2xx body that is not JSON raises APIResponseValidationError, and is not retried."""
    route = api.get("/batch/rb_1").respond(200, content=content)
    with pytest.raises(APIResponseValidationError, match="not JSON") as info:
        await client.batch.get("rb_1")
    assert isinstance(info.value.body, str)
    assert route.call_count == 1


async def test_created_at_is_utc_whatever_the_offset(api, client):
    """An offset timestamp is converted to UTC; a naive one is read as UTC."""
    offset = {**BATCH_JSON, "id": "a", "created_at": "2024-01-01T02:00:00+02:00"}
    api.get("/batch/a").respond(json=offset)
    api.get("/batch/b").respond(json={**BATCH_JSON, "id": "b", "created_at": "2024-01-01T00:00:00"})
    first = await client.batch.get("a")
    second = await client.batch.get("b")
    assert first.created_at == second.created_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert first.created_at.tzinfo is UTC
    assert second.created_at.tzinfo is UTC


# -- status errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "requests"),
    [
        (400, BadRequestError, 1),
        (401, AuthenticationError, 1),
        (403, PermissionDeniedError, 1),
        (404, NotFoundError, 1),
        (405, APIStatusError, 1),
        (409, ConflictError, 1),
        (410, APIStatusError, 1),
        (422, UnprocessableEntityError, 1),
        (418, APIStatusError, 1),
        (501, InternalServerError, 1),
        (599, InternalServerError, 1),
        (408, APIStatusError, 3),
        (429, RateLimitError, 3),
        (500, InternalServerError, 3),
        (502, InternalServerError, 3),
        (503, InternalServerError, 3),
        (504, InternalServerError, 3),
    ],
)
async def test_each_status_raises_its_class(api, client, status, cls, requests):
    """Each non-2xx status raises its class: at once, or after the retries for 408/429/5xx."""
    route = api.get("/batch/rb_1").respond(status, json={"error": "nope"})
    with pytest.raises(APIStatusError) as info:
        await client.batch.get("rb_1")
    assert type(info.value) is cls
    assert info.value.status_code == status
    assert route.call_count == requests


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": "Batch not found"}, "Batch not found"),
        ({"message": "No such batch"}, "No such batch"),
        ({"error": {"message": "Nested reason", "code": 7}}, "Nested reason"),
        ({"detail": "Detail text"}, "Detail text"),
    ],
)
async def test_status_error_carries_the_api_message(api, client, body, expected):
    """The API's own error text is in str(error) and .message; .body is the parsed JSON."""
    api.get("/batch/rb_1").respond(404, json=body)
    with pytest.raises(NotFoundError) as info:
        await client.batch.get("rb_1")
    error = info.value
    assert expected in str(error)
    assert error.message == str(error)
    assert error.body == body
    assert str(error).startswith("404 Not Found from GET /batch/rb_1")


async def test_status_error_keeps_plain_text_and_request_id(api, client):
    """A text body is kept as text and in the message; x-request-id becomes .request_id."""
    api.get("/batch/rb_1").respond(403, text="role missing\n", headers={"x-request-id": "req_123"})
    with pytest.raises(PermissionDeniedError) as info:
        await client.batch.get("rb_1")
    assert info.value.body == "role missing\n"
    assert info.value.request_id == "req_123"
    assert "role missing" in str(info.value)


async def test_request_id_falls_back_to_request_id_header(api, client):
    """request-id is read when x-request-id is absent; neither gives None."""
    api.get("/batch/a").respond(400, json={}, headers={"request-id": "req_9"})
    api.get("/batch/b").respond(400, json={})
    with pytest.raises(BadRequestError) as first:
        await client.batch.get("a")
    with pytest.raises(BadRequestError) as second:
        await client.batch.get("b")
    assert first.value.request_id == "req_9"
    assert second.value.request_id is None


async def test_html_error_page_is_body_not_message(api, client):
    """An HTML proxy page is kept as .body text but kept out of the one-line message."""
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    api.get("/batch/rb_1").respond(502, html=page)
    with pytest.raises(InternalServerError) as info:
        await client.batch.get("rb_1")
    assert info.value.body == page
    assert str(info.value) == "502 Bad Gateway from GET /batch/rb_1"


async def test_empty_error_body_is_none(api, client):
    """An error with no body has .body None and a message of status and path."""
    api.get("/batch/rb_1").respond(401)
    with pytest.raises(AuthenticationError) as info:
        await client.batch.get("rb_1")
    assert info.value.body is None
    assert str(info.value) == "401 Unauthorized from GET /batch/rb_1"


async def test_errors_never_carry_the_token(api, client):
    """Neither the text nor the attached request of any error holds the token."""
    api.get("/batch/a").respond(401, json={"error": "bad token"})
    api.get("/batch/b").mock(side_effect=httpx.ConnectError("refused"))
    api.get("/batch/c").respond(200, content=b"nope")
    errors: list[InkitError] = []
    for batch_id in ("a", "b", "c"):
        with pytest.raises(InkitError) as info:
            await client.batch.get(batch_id)
        errors.append(info.value)
    for error in errors:
        attached = getattr(error, "response", None)
        request = attached.request if attached is not None else getattr(error, "request", None)
        assert request is not None
        assert TOKEN not in str(error)
        assert TOKEN not in repr(error)
        assert request.headers["X-Inkit-API-Token"] == "[redacted]"
        assert TOKEN not in repr(request.headers)


async def test_error_response_is_readable(api, client):
    """The .response on a status error is a complete httpx.Response: status, headers, json()."""
    api.get("/batch/rb_1").respond(422, json={"error": "bad"}, headers={"x-extra": "1"})
    with pytest.raises(UnprocessableEntityError) as info:
        await client.batch.get("rb_1")
    response = info.value.response
    assert response.status_code == 422
    assert response.headers["x-extra"] == "1"
    assert response.json() == {"error": "bad"}
    assert json.loads(response.content) == {"error": "bad"}


async def test_gzip_error_body_is_decoded_once(api, client):
    """A compressed error body is decoded for .body and .response alike."""
    import gzip

    payload = gzip.compress(b'{"error": "zipped"}')
    api.get("/batch/rb_1").respond(
        404,
        content=payload,
        headers={"content-encoding": "gzip", "content-type": "application/json"},
    )
    with pytest.raises(NotFoundError) as info:
        await client.batch.get("rb_1")
    assert info.value.body == {"error": "zipped"}
    assert info.value.response.json() == {"error": "zipped"}


async def test_name_of_the_wrong_type_is_rejected(api, client):
    """A name that is neither a string nor null is a shape error at $.name."""
    api.get("/batch/rb_1").respond(json={**BATCH_JSON, "name": 5})
    with pytest.raises(APIResponseValidationError, match=r"string or null, got int\) @ \$\.name"):
        await client.batch.get("rb_1")

"""Records to plain data: ``to_dict`` and the records' own method; the deprecated converter.

The round trip is the contract: ``to_dict(record)`` holds only JSON types, survives
``json.dumps`` and ``json.loads``, and the client's own converter structures it back into
an equal record, for any record hypothesis builds (unknown statuses and destination
names included).
"""

from __future__ import annotations

import json
import time
import types
import typing
import warnings
from datetime import UTC, datetime, timedelta, timezone

import attrs
import cattrs
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import inkit_async
from inkit_async import (
    AsyncInkit,
    Batch,
    BatchDestinations,
    BatchStatus,
    CacheStats,
    CreatedBatch,
    DestinationProgress,
    Page,
    PauseEvent,
    RateEvent,
    RenderSpec,
    RetryEvent,
    ThrottleState,
    to_dict,
)
from inkit_async._converter import _RECORDS, ShapeError, structure
from inkit_async.testing import FakeInkit
from tests.support.loopback import BATCH_JSON

counts = st.integers(min_value=0, max_value=2**63)
numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**31), 2**31)
texts = st.text(max_size=20)
#: A strategy per field type; a union draws from each of its members.
LEAVES = {str: texts, int: counts, float: numbers, bool: st.booleans(), type(None): st.none()}


def values_of(annotation: object) -> st.SearchStrategy:
    """Any value of a record field's type (a leaf type or a union of them)."""
    if isinstance(annotation, types.UnionType):
        return st.one_of(*map(values_of, typing.get_args(annotation)))
    return LEAVES[annotation]


def records(cls: type, **chosen: st.SearchStrategy) -> st.SearchStrategy:
    """Records of *cls* with every field drawn: from *chosen*, else by its type.

    The field types are resolved: the package resolves its exported records' annotations.
    """
    return st.builds(
        cls,
        **{
            f.name: chosen[f.name] if f.name in chosen else values_of(f.type)
            for f in attrs.fields(cls)
        },
    )


progresses = records(DestinationProgress)
destination_maps = st.builds(
    BatchDestinations,
    st.dictionaries(st.sampled_from(BatchDestinations.KNOWN) | texts, progresses, max_size=4),
)
# Known statuses as the enum (what the client makes of them) and anything else as text.
statuses = st.sampled_from(BatchStatus) | texts.filter(lambda s: s not in set(BatchStatus))
batches = records(
    Batch,
    status=statuses,
    created_at=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    destinations=destination_maps,
)
pages = records(Page, items=st.lists(batches, max_size=3).map(tuple))
api_records = batches | pages | progresses | destination_maps | records(CreatedBatch)
events = records(RetryEvent) | records(PauseEvent) | records(RateEvent)
snapshots = records(CacheStats) | records(ThrottleState)


def assert_plain(value: object) -> None:
    """*value* is made of JSON's types alone: no tuple, enum, datetime or subclass."""
    if isinstance(value, dict):
        assert type(value) is dict
        for key, item in value.items():
            assert type(key) is str
            assert_plain(item)
    elif isinstance(value, list):
        assert type(value) is list
        for item in value:
            assert_plain(item)
    else:
        assert value is None or type(value) in {str, int, float, bool}, repr(value)


def assert_round_trips(record: object) -> dict[str, object]:
    """to_dict(record) is plain, JSON-safe and structures back into an equal record."""
    data = to_dict(record)  # type: ignore[arg-type]
    assert_plain(data)
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert structure(json.loads(text), type(record)) == record
    return data


@given(api_records)
def test_every_api_record_round_trips_and_its_method_agrees(record):
    """Batches, pages, destinations, counters and created ids: plain data and back."""
    data = assert_round_trips(record)
    assert record.to_dict() == data


@given(events | snapshots)
def test_events_and_snapshots_round_trip(record):
    """The client's events, CacheStats and ThrottleState go to plain data and back too."""
    assert_round_trips(record)


@pytest.mark.parametrize("outage", [1, "true", None])
def test_a_bool_field_reads_only_a_bool(outage):
    """The converter reads a bool field strictly, as it reads counts: 1 is not True."""
    data = to_dict(PauseEvent(method="GET", path="/batch/x", seconds=1.0, reason="429"))
    with pytest.raises(ShapeError, match=r"expected a boolean, got \w+\) @ \$\.outage"):
        structure({**data, "outage": outage}, PauseEvent)


def test_a_batch_is_written_as_the_api_sent_it():
    """The documented answer comes back key for key, a known status as its plain string."""
    batch = structure(BATCH_JSON, Batch)
    assert batch.status is BatchStatus.COMPLETED
    data = batch.to_dict()
    assert data == BATCH_JSON
    assert type(data["status"]) is str
    assert list(data) == ["id", "name", "status", "total", "created_at", "destinations"]


def test_unknown_statuses_and_destinations_are_kept_and_none_is_written():
    """An open-set value the SDK does not know is written as it came; a None name stays."""
    data = {
        **BATCH_JSON,
        "name": None,
        "status": "Queued",
        "destinations": {
            "new_destination": {"count": 2, "completed": 0, "failed": 1, "in_progress": 1}
        },
    }
    batch = structure(data, Batch)
    assert batch.to_dict() == data
    assert batch.destinations.to_dict() == data["destinations"]
    assert (
        batch.destinations["new_destination"].to_dict() == data["destinations"]["new_destination"]
    )


@pytest.mark.parametrize(
    ("created_at", "written"),
    [
        (datetime(2024, 5, 6, 7, 30, tzinfo=UTC), "2024-05-06T07:30:00.000000Z"),
        (
            datetime(2024, 5, 6, 9, 30, 0, 5, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-06T07:30:00.000005Z",
        ),
        # A naive time (only a record made by hand has one) is UTC, as when reading.
        (datetime(2024, 5, 6, 7, 30), "2024-05-06T07:30:00.000000Z"),
    ],
)
def test_times_are_iso_8601_in_utc(created_at, written, monkeypatch):
    """created_at is ISO 8601 in UTC with a Z, whatever the record held and the local zone."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        data = Batch(id="rb_1", status="Completed", total=0, created_at=created_at).to_dict()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert data["created_at"] == written
    assert datetime.fromisoformat(written) == created_at.replace(tzinfo=created_at.tzinfo or UTC)


def test_a_page_holds_a_list_of_batch_dicts():
    """A page's items are a list (not a tuple) of what each batch's to_dict gives."""
    batch = structure(BATCH_JSON, Batch)
    page = Page(items=(batch, batch), page=2, page_count=None, total_count=7)
    data = page.to_dict()
    assert data == {
        "items": [BATCH_JSON, BATCH_JSON],
        "page": 2,
        "page_count": None,
        "total_count": 7,
    }
    assert type(data["items"]) is list
    assert CreatedBatch(id="rb_1").to_dict() == {"id": "rb_1"}


def test_each_call_returns_a_new_dict_that_is_the_callers():
    """Changing what to_dict returned changes neither the record nor the next result."""
    batch = structure(BATCH_JSON, Batch)
    first = batch.to_dict()
    first["destinations"]["inkit_storage"]["count"] = 99
    first["name"] = "changed"
    assert batch.to_dict() == BATCH_JSON
    assert batch.destinations.inkit_storage == DestinationProgress(
        count=1, completed=1, failed=0, in_progress=0
    )


@pytest.mark.parametrize(
    "value",
    [
        {"id": "rb_1"},
        [DestinationProgress(count=1, completed=1, failed=0, in_progress=0)],
        RenderSpec(merge_parameters={}),
        None,
        "rb_1",
    ],
    ids=["dict", "list", "RenderSpec", "None", "str"],
)
def test_anything_but_a_record_is_refused(value):
    """to_dict takes the SDK's records only; a list or a dict is a TypeError, not passed on."""
    with pytest.raises(TypeError, match="to_dict takes a record"):
        to_dict(value)


def test_the_signature_names_exactly_the_records_taken():
    """What type checkers are told to_dict takes is what it takes at run time."""
    annotation = typing.get_type_hints(to_dict)["record"]
    # A page is generic: Page[Any] in the signature, the class Page at run time.
    named = {typing.get_origin(each) or each for each in typing.get_args(annotation)}
    assert named == set(_RECORDS)


async def test_records_from_the_client_serialize():
    """What get, list and the throttle return goes through json.dumps as is."""
    fake = FakeInkit(seed=3)
    batch_id = fake.add_batch(
        name=None, destinations={"inkit_storage": 2, "custom_sink": 1}, docs_per_poll=0
    )
    async with fake.client() as client:
        batch = await client.batch.get(batch_id)
        page = await anext(client.batch.list().pages())
        state = client.throttle.state if client.throttle is not None else None
    assert json.loads(json.dumps(batch.to_dict())) == fake.batch_json(batch_id)
    assert json.loads(json.dumps(page.to_dict()))["items"] == [fake.batch_json(batch_id)]
    assert state is not None
    assert_round_trips(state)


def record_app(client: AsyncInkit) -> Starlette:
    """A Starlette app whose route returns a batch as its plain data."""

    async def batch_record(request) -> JSONResponse:
        batch = await client.batch.get(request.path_params["batch_id"])
        return JSONResponse(batch.to_dict())

    return Starlette(routes=[Route("/batches/{batch_id}", batch_record)])


async def test_a_web_route_returns_a_batch_that_reads_back_equal():
    """JSONResponse(batch.to_dict()) answers the API's shape; it structures back equal."""
    fake = FakeInkit(seed=5)
    batch_id = fake.add_batch(name="invoices", destinations={"docusign": 3}, docs_per_poll=0)
    async with fake.client() as client:
        transport = httpx.ASGITransport(app=record_app(client))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            answer = await http.get(f"/batches/{batch_id}")
        batch = await client.batch.get(batch_id)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert structure(answer.json(), Batch) == batch


# The deprecated converter: reachable for one release, with a warning naming to_dict.


def test_the_converter_is_deprecated_in_favour_of_to_dict():
    """inkit_async.converter still works, warns, and is neither in __all__ nor in dir()."""
    with pytest.warns(DeprecationWarning, match=r"inkit_async\.to_dict") as caught:
        converter = inkit_async.converter
    assert caught[0].filename == __file__  # the warning points at the caller's line
    assert isinstance(converter, cattrs.Converter)
    assert converter.unstructure(converter.structure(BATCH_JSON, Batch)) == BATCH_JSON
    with pytest.warns(DeprecationWarning, match="deprecated"):
        from inkit_async import converter as imported
    assert imported is converter  # one instance: hooks registered on it stay
    assert "converter" not in inkit_async.__all__
    assert "converter" not in dir(inkit_async)
    assert converter is not cattrs.global_converter
    namespace: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec("from inkit_async import *", namespace)  # noqa: S102 - a fixed statement
    assert "converter" not in namespace
    assert "to_dict" in namespace


def test_other_missing_names_are_still_attribute_errors():
    """The module's __getattr__ serves only the deprecated name."""
    with pytest.raises(AttributeError, match="has no attribute 'convertor'"):
        _ = inkit_async.convertor
    assert not hasattr(inkit_async, "structure")


@pytest.fixture
def shouting_converter():
    """inkit_async.converter with a str hook that upper-cases, for one test."""
    with pytest.warns(DeprecationWarning, match="to_dict"):
        converter = inkit_async.converter
    original = converter.get_structure_hook(str)
    converter.register_structure_hook(str, lambda value, _: value.upper())
    yield converter
    converter.register_structure_hook(str, original)
    assert converter.structure(BATCH_JSON, Batch).id == BATCH_JSON["id"]


async def test_hooks_on_the_deprecated_converter_change_neither_the_client_nor_to_dict(
    api, client, shouting_converter
):
    """A str hook registered on inkit_async.converter applies to it, never to batch.get."""
    api.get("/batch/rb_MixedCase").respond(json={**BATCH_JSON, "id": "rb_MixedCase"})
    assert shouting_converter.structure(BATCH_JSON, Batch).id == BATCH_JSON["id"].upper()
    batch = await client.batch.get("rb_MixedCase")
    assert batch.id == "rb_MixedCase"
    assert batch.name == "test"
    assert batch.to_dict() == {**BATCH_JSON, "id": "rb_MixedCase"}

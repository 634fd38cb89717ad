"""The records: statuses, destinations, progress, is_finished, and the converter round trip.

``to_dict`` itself, and the deprecated ``inkit_async.converter``, are in test_to_dict.py.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inkit_async import Batch, BatchDestinations, BatchStatus, DestinationProgress
from inkit_async._converter import structure
from tests.support.loopback import BATCH_JSON


def progress(count=1, completed=0, failed=0, in_progress=0):
    """Shorthand for a DestinationProgress."""
    return DestinationProgress(
        count=count, completed=completed, failed=failed, in_progress=in_progress
    )


def batch(status="In Progress", **destinations):
    """A Batch with the given status and destinations."""
    return Batch(
        id="rb_1",
        status=status,
        total=1,
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        destinations=BatchDestinations(destinations),
    )


def test_records_are_frozen_slotted_and_keyword_only():
    """Batch and DestinationProgress refuse assignment, have slots and take keywords only."""
    record = batch()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.total = 2  # type: ignore[misc]
    assert "__dict__" not in dir(record)
    assert not hasattr(
        DestinationProgress(count=1, completed=1, failed=0, in_progress=0), "__dict__"
    )
    with pytest.raises(TypeError):
        DestinationProgress(1, 1, 0, 0)  # type: ignore[misc]


def test_status_compares_to_plain_strings():
    """Known statuses are BatchStatus members equal to their strings."""
    assert BatchStatus.COMPLETED == "Completed"
    assert BatchStatus("In Progress") is BatchStatus.IN_PROGRESS
    assert f"{BatchStatus.FAILED}" == "Failed"
    assert {s.value for s in BatchStatus} == {"Completed", "In Progress", "Failed"}


def test_destinations_is_a_read_only_mapping_with_named_attributes():
    """BatchDestinations maps names to progress and exposes documented names as attributes."""
    destinations = BatchDestinations(
        {"inkit_storage": progress(count=2), "mystery": progress(count=3)}
    )
    assert len(destinations) == 2
    assert list(destinations) == ["inkit_storage", "mystery"]
    assert destinations["mystery"].count == 3
    assert destinations.inkit_storage == progress(count=2)
    for name in BatchDestinations.KNOWN:
        if name != "inkit_storage":
            assert getattr(destinations, name) is None
    with pytest.raises(KeyError):
        destinations["salesforce"]
    with pytest.raises(TypeError):
        destinations["x"] = progress()  # type: ignore[index]
    assert destinations == {"inkit_storage": progress(count=2), "mystery": progress(count=3)}
    assert destinations != {"inkit_storage": progress(count=2)}
    assert destinations != 5
    assert "mystery" in repr(destinations)


def test_every_known_destination_has_an_attribute():
    """Each documented destination name reads back through its attribute."""
    for name in BatchDestinations.KNOWN:
        destinations = BatchDestinations({name: progress(count=7)})
        assert getattr(destinations, name) == progress(count=7)


def test_destinations_copy_their_input():
    """Changing the dict a BatchDestinations was built from does not change it."""
    source = {"inkit_storage": progress()}
    destinations = BatchDestinations(source)
    source["salesforce"] = progress()
    assert list(destinations) == ["inkit_storage"]


def test_batches_are_hashable_and_comparable():
    """Equal batches hash equal, so they can be set members and dict keys."""
    first, second = batch(inkit_storage=progress()), batch(inkit_storage=progress())
    assert first == second
    assert len({first, second}) == 1


def test_progress_sums_every_destination():
    """Batch.progress adds up the counters of all destinations."""
    record = batch(
        inkit_storage=progress(count=4, completed=2, failed=1, in_progress=1),
        docusign=progress(count=3, completed=1, failed=0, in_progress=2),
    )
    assert record.progress == progress(count=7, completed=3, failed=1, in_progress=3)
    assert batch().progress == progress(count=0)


@pytest.mark.parametrize(
    ("record", "finished"),
    [
        (batch(inkit_storage=progress(count=2, completed=1, failed=1)), True),
        (batch(inkit_storage=progress(count=2, completed=1, in_progress=1)), False),
        (batch(inkit_storage=progress(count=2, completed=1)), False),  # one unaccounted for
        (batch(a=progress(count=1, completed=1), b=progress(count=1, in_progress=1)), False),
        (batch(), False),  # no destinations and not a terminal status
        (batch(status="Completed"), True),
        (batch(status=BatchStatus.FAILED, x=progress(count=1, in_progress=1)), True),
        (batch(status="Queued"), False),
    ],
)
def test_is_finished(record, finished):
    """Finished: every destination settled (and at least one), or a terminal status."""
    record = structure(record.to_dict(), Batch)
    assert record.is_finished is finished


def test_documented_response_round_trips():
    """Structure then to_dict gives the documented JSON back, unchanged."""
    original = copy.deepcopy(BATCH_JSON)
    record = structure(original, Batch)
    assert record.to_dict() == BATCH_JSON
    assert original == BATCH_JSON


def test_to_dict_writes_utc_with_z_and_microseconds():
    """created_at is written in UTC with a Z and six fractional digits."""
    record = attrs.evolve(
        batch(),
        created_at=datetime(2024, 5, 6, 9, 30, tzinfo=timezone(timedelta(hours=2))),
    )
    assert record.to_dict()["created_at"] == "2024-05-06T07:30:00.000000Z"


counters = st.integers(min_value=0, max_value=2**31)
progress_json = st.fixed_dictionaries(
    {"count": counters, "completed": counters, "failed": counters, "in_progress": counters}
)
batch_json = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1),
        "name": st.none() | st.text(),
        "status": st.sampled_from(["Completed", "In Progress", "Failed"]) | st.text(),
        "total": counters,
        "created_at": st.datetimes(
            timezones=st.just(UTC), min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1)
        ).map(lambda d: d.isoformat(timespec="microseconds").replace("+00:00", "Z")),
        "destinations": st.dictionaries(
            st.sampled_from(BatchDestinations.KNOWN) | st.text(min_size=1), progress_json
        ),
    }
)


@given(batch_json)
def test_any_well_formed_batch_round_trips(data):
    """Every API-shaped batch survives structure -> to_dict unchanged."""
    record = structure(data, Batch)
    unstructured = record.to_dict()
    assert unstructured == data
    assert type(unstructured["status"]) is str
    assert structure(record.to_dict(), Batch) == record
    if data["status"] in {"Completed", "In Progress", "Failed"}:
        assert isinstance(record.status, BatchStatus)
    else:
        assert type(record.status) is str

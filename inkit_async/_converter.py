"""The package's own cattrs converter, configured in one place, and ``to_dict``.

``_make_converter`` is the one configuration. The client structures with a private
instance of it, never handed out, and ``to_dict`` (the public way to plain data)
unstructures with the same instance. ``inkit_async.converter``, deprecated, is a second
instance made on first use, so a hook a user registers there changes only what that user
structures, never what ``client.batch.get`` or ``to_dict`` return. The global cattrs
converter is never touched, so applications that configure theirs are unaffected.

Structuring is strict where the API's documented types are: a string field that
holds a number, or an integer field that holds ``"5"`` or ``true``, is an error, not a
silent coercion. Every integer the API sends is a count (``total``, a destination's
``count``, ``completed``, ``failed``, ``in_progress``) or a page number, so a negative
one is an error too: ``in_progress: -1`` would make a batch look finished. Unknown
fields are ignored; unknown status values and destination names are kept.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.errors import BaseValidationError

from ._cache import CacheStats
from ._events import PauseEvent, RateEvent, RetryEvent
from ._models import Batch, BatchDestinations, BatchStatus, CreatedBatch, DestinationProgress, Page
from ._records import (
    KEEPING_EXTRA,
    CreatedRender,
    Creator,
    Document,
    FlowInvocation,
    Folder,
    Render,
    Template,
)
from ._throttle import ThrottleState

__all__ = [
    "ShapeError",
    "deprecated_converter",
    "plain",
    "structure",
    "to_dict",
]

T = TypeVar("T")

_KNOWN_STATUSES: Final = {status.value: status for status in BatchStatus}


class ShapeError(Exception):
    """A JSON value does not fit a record; the message names the field path.

    Private: the client turns it into ``APIResponseValidationError``.
    """


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _structure_str(value: object, _: object) -> str:
    if type(value) is str:
        return value
    raise TypeError(f"expected a string, got {_type_name(value)}")


def _structure_int(value: object, _: object) -> int:
    # bool is an int subclass, but `true` is not a count; nor is -1.
    if type(value) is int:
        if value >= 0:
            return value
        raise ValueError(f"expected an integer >= 0, got {value}")
    raise TypeError(f"expected an integer, got {_type_name(value)}")


def _structure_bool(value: object, _: object) -> bool:
    # Registered beside the int hook, which bool (an int subclass) would reach otherwise.
    if type(value) is bool:
        return value
    raise TypeError(f"expected a boolean, got {_type_name(value)}")


def _structure_optional_str(value: object, _: object) -> str | None:
    # One hook for `str | None` rather than cattrs' union dispatch plus the str hook.
    if value is None or type(value) is str:
        return value
    raise TypeError(f"expected a string or null, got {_type_name(value)}")


def _structure_float(value: object, _: object) -> float:
    # A JSON number (an int is one too), finite; never `true` or a numeric string.
    if type(value) is float or type(value) is int:
        number = float(value)
        if math.isfinite(number):
            return value
        raise ValueError(f"expected a finite number, got {value}")
    raise TypeError(f"expected a number, got {_type_name(value)}")


def _structure_number_or_text(value: object, _: object) -> float | str | None:
    # Inkit's pages document a template's width as a number in one place, a string in
    # another: either is kept as it came.
    if value is None or type(value) is str:
        return value
    return _structure_float(value, None)


def _structure_object(value: object, _: object) -> dict[str, Any]:
    # A JSON object the SDK does not model: a copy of it, as sent.
    return dict(_require_object(value))


def _structure_optional_object(value: object, _: object) -> dict[str, Any] | None:
    return None if value is None else _structure_object(value, None)


def _structure_status(value: object, _: object) -> BatchStatus | str:
    if type(value) is str:
        return _KNOWN_STATUSES.get(value, value)
    raise TypeError(f"expected a string, got {_type_name(value)}")


def _require_object(value: object) -> dict[str, Any]:
    if isinstance(value, dict):
        return value  # pyright: ignore[reportUnknownVariableType]
    raise TypeError(f"expected an object, got {_type_name(value)}")


def _describe(exc: BaseException, _: object) -> str:
    """Word one structuring failure for ``transform_error`` (the path is added after)."""
    if isinstance(exc, KeyError):
        return "required field missing"
    return f"invalid value ({exc})"


def _structure_datetime(value: object, _: object) -> datetime:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {_type_name(value)}")
    parsed = datetime.fromisoformat(value)
    tzinfo = parsed.tzinfo
    if tzinfo is UTC:  # what the API sends: a `Z`
        return parsed
    # A naive timestamp is read as UTC; an offset is converted to UTC.
    if tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _unstructure_datetime(value: datetime) -> str:
    # A naive datetime (only a record built by hand holds one) is UTC, as when structuring.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_structure_hook_func(lambda t: t == float | str | None, _structure_number_or_text)
    conv.register_structure_hook_func(lambda t: t == Mapping[str, Any], _structure_object)
    conv.register_structure_hook_func(
        lambda t: t == Mapping[str, Any] | None, _structure_optional_object
    )
    conv.register_unstructure_hook(datetime, _unstructure_datetime)
    conv.register_structure_hook_func(lambda t: t == str | None, _structure_optional_str)
    conv.register_structure_hook_func(lambda t: t == BatchStatus | str, _structure_status)
    # Plain `str`, not the enum member: the API's JSON shape, whatever the serialiser.
    conv.register_unstructure_hook_func(lambda t: t in (BatchStatus, BatchStatus | str), str)

    structure_progress_fields = conv.get_structure_hook(DestinationProgress)

    def structure_progress(value: object, _: object) -> DestinationProgress:
        return structure_progress_fields(_require_object(value), DestinationProgress)  # type: ignore[no-any-return]

    conv.register_structure_hook(DestinationProgress, structure_progress)
    structure_destination_dict = conv.get_structure_hook(dict[str, DestinationProgress])

    def structure_destinations(value: object, _: object) -> BatchDestinations:
        if value is None:
            return BatchDestinations()
        mapping = _require_object(value)
        try:
            # The hot path: JSON keys are always strings, so only the values need
            # structuring; this skips cattrs' per-key hook and mapping machinery.
            return BatchDestinations(
                {
                    name: structure_progress(item, DestinationProgress)
                    for name, item in mapping.items()
                }
            )
        except Exception:  # noqa: BLE001
            # Redo it the detailed way: slower, but its error names the field path.
            return BatchDestinations(
                structure_destination_dict(mapping, dict[str, DestinationProgress])
            )

    def unstructure_destinations(value: BatchDestinations) -> dict[str, Any]:
        return {name: conv.unstructure(progress) for name, progress in value.items()}

    conv.register_structure_hook(BatchDestinations, structure_destinations)
    conv.register_unstructure_hook(BatchDestinations, unstructure_destinations)
    for record in KEEPING_EXTRA:  # Creator first: the others hold one
        _keep_extra(conv, record)
    # A page named without what it holds is a page of batches, as before pages were generic.
    structure_batch_page = conv.get_structure_hook(Page[Batch])
    conv.register_structure_hook(Page, lambda value, _: structure_batch_page(value, Page[Batch]))
    # Build the record hooks now, not on the first response.
    conv.get_structure_hook(Batch)
    return conv


def _keep_extra(conv: cattrs.Converter, cls: type[Any]) -> None:
    """Structure *cls* keeping the fields it does not name in ``extra``; unstructure them back.

    ``to_dict`` then gives the JSON the API sent: the named fields (checked), and every
    other field as it came. A named field wins over an ``extra`` key of the same name
    (only a record built by hand can hold both).
    """
    names = frozenset(field.name for field in attrs.fields(cls)) - {"extra"}
    structure_fields = conv.get_structure_hook(cls)
    unstructure_fields = conv.get_unstructure_hook(cls)

    def structure_record(value: object, _: object) -> object:
        data = _require_object(value)
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, item in data.items():
            (known if key in names else extra)[key] = item
        known["extra"] = extra
        return structure_fields(known, cls)

    def unstructure_record(record: object) -> dict[str, Any]:
        data: dict[str, Any] = unstructure_fields(record)
        extra: dict[str, Any] = data.pop("extra")
        data.update((key, item) for key, item in extra.items() if key not in data)
        return data

    conv.register_structure_hook(cls, structure_record)
    conv.register_unstructure_hook(cls, unstructure_record)


_CONVERTER: Final = _make_converter()

#: What ``to_dict`` takes: the records the SDK returns or reports (its signature says
#: the same, for readers and type checkers).
_RECORDS: Final = (
    Batch,
    BatchDestinations,
    DestinationProgress,
    Page,
    CreatedBatch,
    Render,
    CreatedRender,
    Document,
    Template,
    Folder,
    FlowInvocation,
    Creator,
    RetryEvent,
    PauseEvent,
    RateEvent,
    CacheStats,
    ThrottleState,
)


def to_dict(
    record: Batch
    | BatchDestinations
    | DestinationProgress
    | Page[Any]
    | CreatedBatch
    | Render
    | CreatedRender
    | Document
    | Template
    | Folder
    | FlowInvocation
    | Creator
    | RetryEvent
    | PauseEvent
    | RateEvent
    | CacheStats
    | ThrottleState,
) -> dict[str, Any]:
    """Return *record* as plain data, ready for ``json.dumps`` or a web framework.

    The result holds only ``dict`` (with ``str`` keys), ``list``, ``str``, ``int``,
    ``float``, ``bool`` and ``None``, and is a new object each call, yours to change.
    Keys are the record's attribute names, which for the API's records are the API's
    own field names; every field is present, ``None`` ones included. Times are ISO 8601
    strings in UTC with a ``Z`` and six fractional digits, as the API writes them
    (``"2024-05-06T07:30:00.000000Z"``); a status is its string as the API sent it, known
    or not (``"Completed"``, ``"Queued"``); destinations are an object of name to counters,
    every name the API sent included; a page's ``items`` are a list of batches in this
    same shape. Computed properties (``progress``, ``is_finished``) are not included.

    The records of the API (``Batch``, ``BatchDestinations``, ``DestinationProgress``,
    ``Page``, ``CreatedBatch``, ``Render``, ``CreatedRender``, ``Document``,
    ``Template``, ``Folder``, ``FlowInvocation``, ``Creator``) also have it as a method:
    ``batch.to_dict()``. The records of the other resources give back the fields they
    keep in ``extra`` where the API sent them, so their dict is the API's JSON. This
    function takes those and also the client's events (``RetryEvent``, ``PauseEvent``,
    ``RateEvent``), ``CacheStats`` and ``ThrottleState``, for logs and metrics.

    To return a record from a web route, return its dict: with FastAPI, annotate the
    route ``-> dict[str, Any]`` and ``return batch.to_dict()`` (an annotation of
    ``-> Batch`` fails, as the records are not pydantic models); with Starlette,
    ``return JSONResponse(batch.to_dict())``.

    Args:
        record: A record the SDK returned or reported.

    Returns:
        A JSON-ready ``dict``.

    Raises:
        TypeError: *record* is not one of the records above (a ``list`` of batches is
            not: convert each, ``[batch.to_dict() for batch in batches]``).
    """
    if not isinstance(record, _RECORDS):
        raise TypeError(
            f"to_dict takes a record of inkit_async (a Batch, a Page, an event, ...), "
            f"got {type(record).__name__}"
        )
    return plain(record)


def plain(record: object) -> dict[str, Any]:
    """``to_dict`` without the check: what the records' own ``to_dict`` methods call."""
    result: dict[str, Any] = _CONVERTER.unstructure(record)
    return result


@functools.cache
def deprecated_converter() -> cattrs.Converter:
    """The deprecated ``inkit_async.converter``: made on first use, then the same one.

    Configured as the client's own, but a separate instance: hooks registered on it
    never change what the client or ``to_dict`` return.
    """
    return _make_converter()


def structure(data: object, cls: type[T]) -> T:
    """Structure *data* into *cls*, raising ``ShapeError`` with field paths on failure."""
    if not isinstance(data, dict):
        raise ShapeError(f"expected a JSON object at $, got {_type_name(data)}")
    try:
        return _CONVERTER.structure(data, cls)
    except BaseValidationError as exc:
        messages = cattrs.transform_error(exc, path="$", format_exception=_describe)
        raise ShapeError("; ".join(messages)) from exc
    except (TypeError, ValueError, KeyError) as exc:  # pragma: no cover - detailed mode wraps these
        raise ShapeError(f"invalid value at $: {exc}") from exc

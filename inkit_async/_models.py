"""The records the API returns: frozen, slotted, keyword-only attrs classes.

Attribute names equal the API's field names, so the converter needs few hooks. Open
sets (status values, destination names) keep values the SDK does not know. Each record's
``to_dict`` is the converter's unstructuring (``_converter.plain``), the one way to
plain data.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from datetime import datetime  # noqa: TC003 - cattrs resolves the annotations at run time
from typing import Any, ClassVar, Final, Generic, TypeVar

import attrs

__all__ = [
    "Batch",
    "BatchDestinations",
    "BatchStatus",
    "CreatedBatch",
    "DestinationProgress",
    "Page",
    "RenderSpec",
]


class BatchStatus(enum.StrEnum):
    """The batch statuses the SDK knows.

    Inkit documents ``status`` only as "the batch creation status"; ``Completed`` is
    seen in its examples, ``In Progress`` and ``Failed`` in its dashboards. The set is
    open: a status the SDK does not know is kept as the plain string the API sent.
    Members are ``str``, so ``batch.status == "Completed"`` holds either way.
    """

    COMPLETED = "Completed"
    """Every document was generated (terminal)."""
    IN_PROGRESS = "In Progress"
    """Documents are still being generated."""
    FAILED = "Failed"
    """The batch failed as a whole (terminal)."""

    @property
    def is_terminal(self) -> bool:
        """Whether a batch in this status will not change any more."""
        return self is not BatchStatus.IN_PROGRESS


#: What a page holds: batches, renders, documents, ...
T = TypeVar("T")


def _plain(record: object) -> dict[str, Any]:
    # Imported here: _converter imports this module for the records it converts.
    from ._converter import plain  # noqa: PLC0415

    return plain(record)


@attrs.frozen(kw_only=True)
class DestinationProgress:
    """The document counters of one destination (or of a whole batch, summed)."""

    count: int
    """Documents bound for the destination."""
    completed: int
    """Documents delivered."""
    failed: int
    """Documents that failed."""
    in_progress: int
    """Documents still on their way."""

    @property
    def is_settled(self) -> bool:
        """Whether no document is in progress and every one has completed or failed."""
        return self.in_progress == 0 and self.completed + self.failed == self.count

    def to_dict(self) -> dict[str, Any]:
        """The counters as plain data, a new ``dict``.

        ``{"count": 3, "completed": 1, "failed": 0, "in_progress": 2}``. See
        ``inkit_async.to_dict``.
        """
        return _plain(self)


class BatchDestinations(Mapping[str, DestinationProgress]):
    """A read-only mapping of destination name to its progress.

    It holds exactly the destinations the API sent, names the SDK does not know
    included: ``batch.destinations["new_destination"]`` works. Each documented
    destination also has an attribute that is its progress, or ``None`` when the API
    did not send it: ``batch.destinations.inkit_storage``.
    """

    __slots__ = ("_data",)

    #: The destination names Inkit documents (document batches, then flow batches).
    KNOWN: ClassVar[tuple[str, ...]] = (
        "inkit_storage",
        "salesforce",
        "sepire",
        "docusign",
        "magic_link",
        "amazon_s3",
        "google_drive",
        "dropbox",
        "box",
    )

    _data: dict[str, DestinationProgress]

    def __init__(self, destinations: Mapping[str, DestinationProgress] | None = None) -> None:
        """Hold a copy of *destinations*, so later changes to the argument do not show."""
        self._data = dict(destinations) if destinations else {}

    def __getitem__(self, name: str) -> DestinationProgress:
        """Return the progress of destination *name*; ``KeyError`` when absent."""
        return self._data[name]

    def __iter__(self) -> Iterator[str]:
        """Iterate over destination names in the order the API sent them."""
        return iter(self._data)

    def __len__(self) -> int:
        """Return the number of destinations."""
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        """Compare equal to any mapping with the same items."""
        if isinstance(other, BatchDestinations):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)  # pyright: ignore[reportUnknownArgumentType]
        return NotImplemented

    def __hash__(self) -> int:
        """Hash by content, so ``Batch`` records stay hashable."""
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        """Show the destinations like a dict."""
        return f"BatchDestinations({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        """The destinations as plain data: a new ``dict`` of name to counters.

        ``{"inkit_storage": {"count": 3, "completed": 1, "failed": 0, "in_progress": 2}}``,
        every name the API sent included. See ``inkit_async.to_dict``.
        """
        return _plain(self)

    @property
    def inkit_storage(self) -> DestinationProgress | None:
        """Progress of Inkit's own storage, or ``None``."""
        return self._data.get("inkit_storage")

    @property
    def salesforce(self) -> DestinationProgress | None:
        """Progress of the Salesforce destination, or ``None``."""
        return self._data.get("salesforce")

    @property
    def sepire(self) -> DestinationProgress | None:
        """Progress of the Sepire destination, or ``None``."""
        return self._data.get("sepire")

    @property
    def docusign(self) -> DestinationProgress | None:
        """Progress of the DocuSign destination, or ``None``."""
        return self._data.get("docusign")

    @property
    def magic_link(self) -> DestinationProgress | None:
        """Progress of the magic-link destination, or ``None``."""
        return self._data.get("magic_link")

    @property
    def amazon_s3(self) -> DestinationProgress | None:
        """Progress of the Amazon S3 destination (flow batches), or ``None``."""
        return self._data.get("amazon_s3")

    @property
    def google_drive(self) -> DestinationProgress | None:
        """Progress of the Google Drive destination (flow batches), or ``None``."""
        return self._data.get("google_drive")

    @property
    def dropbox(self) -> DestinationProgress | None:
        """Progress of the Dropbox destination (flow batches), or ``None``."""
        return self._data.get("dropbox")

    @property
    def box(self) -> DestinationProgress | None:
        """Progress of the Box destination (flow batches), or ``None``."""
        return self._data.get("box")


_NO_DESTINATIONS: Final = BatchDestinations()


@attrs.frozen(kw_only=True)
class Batch:
    """A document batch (or a flow batch): what ``client.batch.get`` returns.

    ``batch.to_dict()`` gives it as plain data in the API's JSON shape, for
    ``json.dumps``, a web route or a queue: with FastAPI, annotate the route
    ``-> dict[str, Any]`` and ``return batch.to_dict()``.
    """

    id: str
    """The batch id, e.g. ``rb_6WtDgF7RGqdS5Uzea9neZJ`` (flow batches: ``fb_...``)."""
    name: str | None = None
    """The batch's name; ``None`` when the API sent none."""
    status: BatchStatus | str
    """A ``BatchStatus`` when known, else the string the API sent."""
    total: int
    """Number of documents in the batch."""
    created_at: datetime
    """When the batch was created: timezone-aware, in UTC."""
    destinations: BatchDestinations = _NO_DESTINATIONS
    """Per-destination progress; empty when the API sent none."""

    @property
    def progress(self) -> DestinationProgress:
        """The counters of every destination, summed."""
        count = completed = failed = in_progress = 0
        for destination in self.destinations.values():
            count += destination.count
            completed += destination.completed
            failed += destination.failed
            in_progress += destination.in_progress
        return DestinationProgress(
            count=count, completed=completed, failed=failed, in_progress=in_progress
        )

    @property
    def is_finished(self) -> bool:
        """Whether the batch's work is settled and will not change any more.

        True when the status is a known terminal one (``Completed``, ``Failed``), or
        when there is at least one destination and every destination is settled
        (nothing in progress, ``completed + failed == count``). Inkit says the counters
        are the reliable signal; the status alone is not.
        """
        if isinstance(self.status, BatchStatus) and self.status.is_terminal:
            return True
        return bool(self.destinations) and all(
            destination.is_settled for destination in self.destinations.values()
        )

    def to_dict(self) -> dict[str, Any]:
        """The batch as plain data, in the API's JSON shape, ready for ``json.dumps``.

        ```json
        {"id": "rb_6WtDgF7RGqdS5Uzea9neZJ", "name": "test", "status": "Completed",
         "total": 1, "created_at": "2024-05-06T07:30:00.000000Z",
         "destinations": {"inkit_storage": {"count": 1, "completed": 1,
                                            "failed": 0, "in_progress": 0}}}
        ```

        Every field is present (``"name": None`` included); the status is the string
        the API sent, known or not; ``created_at`` is UTC with a ``Z``. ``progress``
        and ``is_finished`` are not included. A new ``dict`` each call, yours to
        change. To return a batch from a web route: FastAPI, ``-> dict[str, Any]``
        and ``return batch.to_dict()``; Starlette,
        ``return JSONResponse(batch.to_dict())``. See ``inkit_async.to_dict``.
        """
        return _plain(self)


@attrs.frozen(kw_only=True)
class Page(Generic[T]):
    """One page of a listing, as ``client.batch.list(...).pages()`` yields it.

    Generic in what it holds: ``Page[Batch]`` for batches, ``Page[Render]`` for
    renders, and so on. ``page.to_dict()`` gives it as plain data.
    """

    items: tuple[T, ...]
    """The records on this page, in the order the API sent them."""
    page: int
    """This page's number, counting from 1."""
    page_count: int | None = None
    """How many pages there are, when the API said so."""
    total_count: int | None = None
    """How many records match across all pages, when the API said so."""

    def to_dict(self) -> dict[str, Any]:
        """The page as plain data: its fields, with ``items`` a list of record dicts.

        ``{"items": [...], "page": 1, "page_count": 3, "total_count": 250}``, each item
        as its record's ``to_dict`` gives it. See ``inkit_async.to_dict``.
        """
        return _plain(self)


@attrs.frozen(kw_only=True)
class CreatedBatch:
    """What ``client.batch.create(...)`` returns: the new batch's id.

    Pass the id to ``client.batch.get`` or ``client.batch.wait`` to follow its progress.
    """

    id: str
    """The new batch's id (``rb_...``)."""

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data: ``{"id": "rb_..."}``. See ``inkit_async.to_dict``."""
        return _plain(self)


@attrs.frozen(kw_only=True)
class RenderSpec:
    """One document to render in ``client.batch.create(renders=[...])``.

    A plain ``dict`` with the API's keys works too; this record only adds names and types.
    Fields left as ``None`` are not sent.
    """

    merge_parameters: Mapping[str, Any]
    """The template's merge fields and their values (required, may be empty)."""
    name: str | None = None
    """A name for the rendered document."""
    description: str | None = None
    """A description of the rendered document."""
    destinations: Mapping[str, Mapping[str, Any]] | None = None
    """Where to deliver it and with which settings, e.g. ``{"inkit_storage": {"name": "x"}}``."""

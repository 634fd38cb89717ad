"""Listing with automatic pagination: pages are fetched lazily, one at a time.

One generic ``Listing[T]`` serves every resource (``BatchList`` is ``Listing[Batch]``);
``parse_page`` reads any resource's envelope, ``{"items": [...], "metadata":
{"pagination": {...}}}``, casting each item to the resource's record.

A listing always ends, whatever the server answers. Pages are asked for in order, 1, 2,
3, ..., each once per iteration. An answer for another page than the one asked for
(its ``current_page``: 0, negative, or not advancing because the server ignores
``page``) raises ``APIResponseValidationError`` naming ``$.metadata.pagination.current_page``;
so does an answer without ``current_page`` that holds exactly the records of the page
before it (a server that ignores ``page`` and sends no metadata). Iteration stops at
the last page (``current_page >= page_count``) or at an empty page.

Each filter is a string of at most ``MAX_FILTER_LENGTH`` (1,024) characters, so no
listing URL can exceed httpx's limit; a longer one raises ``ValueError`` when ``list()``
is called.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, Generic, Protocol, TypeVar, cast

import attrs

from ._constants import MAX_FILTER_LENGTH
from ._converter import ShapeError, structure
from ._models import Batch, Page
from ._validate import check_optional_int

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = ["BatchList", "ListFilters", "Listing", "parse_page"]


class _Identified(Protocol):
    """A record with an id: what a listing holds."""

    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=_Identified)
#: The query names the API takes for a filter whose Python name differs: the official
#: SDKs (inkit-python's ``build_request_data``, inkit-nodejs's ``buildRequest``) send
#: every ``data_`` filter of a GET with its first ``_`` as ``-``.
_WIRE_NAMES: Final = {"data_id": "data-id"}
#: The sources a template is made from.
TEMPLATE_SOURCES: Final = ("html", "docx", "pdf")

#: A field name, optionally prefixed with ``-`` for descending order.
_SORT: Final = re.compile(r"-?[A-Za-z_][A-Za-z0-9_.]*")
MAX_PAGE_SIZE: Final = 1000


@attrs.frozen(kw_only=True)
class _Pagination:
    current_page: int | None = None
    page_count: int | None = None
    total_count: int | None = None


@attrs.frozen(kw_only=True)
class _Metadata:
    pagination: _Pagination | None = None


@attrs.frozen(kw_only=True)
class _Envelope(Generic[R]):
    """The list response: ``{"items": [...], "metadata": {"pagination": {...}}}``."""

    items: list[R]
    metadata: _Metadata | None = None


def parse_page(
    data: object,
    requested: int,
    previous: Page[R] | None = None,
    item: type[R] = Batch,  # type: ignore[assignment]  # the default is for batches
) -> Page[R]:
    """Build a ``Page`` of *item* records from a list response to page *requested*.

    *previous* is the page before it in the same iteration, if any.

    Raises:
        ShapeError: The JSON is not a listing, or an item is not an *item* record; its
            ``current_page`` is not *requested*; or it has no ``current_page`` and holds
            the same records as *previous*.
    """
    envelope = cast("_Envelope[R]", structure(data, _Envelope[item]))  # type: ignore[valid-type]
    pagination = envelope.metadata.pagination if envelope.metadata else None
    if pagination is None:
        pagination = _Pagination()
    current = pagination.current_page
    items = tuple(envelope.items)
    if current is not None and current != requested:
        raise ShapeError(
            f"page {requested} was asked for, but the answer is page {current} "
            "@ $.metadata.pagination.current_page"
        )
    if (
        current is None
        and previous is not None
        and items
        and [record.id for record in items] == [record.id for record in previous.items]
    ):
        raise ShapeError(
            f"page {requested} holds the same records as page {previous.page} and says "
            "no current_page: the server ignores `page` @ $.items"
        )
    return Page(
        items=items,
        page=requested,
        page_count=pagination.page_count,
        total_count=pagination.total_count,
    )


def _optional_str(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > MAX_FILTER_LENGTH:
        # Not echoed: the point is that it is too long to show.
        raise ValueError(
            f"{name} must be at most {MAX_FILTER_LENGTH:,} characters, got {len(value):,}"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid Unicode: it holds a lone surrogate") from None
    return value


def _data_id(value: object) -> str | None:
    """A ``data_id`` filter: one id, or ids (any iterable of ``str``), comma-joined."""
    if value is None or isinstance(value, str):
        return _optional_str("data_id", value)
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise TypeError(f"data_id must be a str or an iterable of str, got {type(value).__name__}")
    ids: list[str] = []
    for index, each in enumerate(cast("Iterable[object]", value)):
        one = _optional_str(f"data_id[{index}]", each)
        if one is None:
            raise TypeError(f"data_id[{index}] must be a str, got NoneType")
        if "," in one:
            raise ValueError(f"data_id[{index}] must not hold a comma (the ids' separator)")
        ids.append(one)
    if not ids:
        raise ValueError("data_id must hold at least one id")
    return _optional_str("data_id", ",".join(ids))


def _page_size(value: int | None) -> int | None:
    """A page size of 1 to ``MAX_PAGE_SIZE``, as a plain ``int``; ``None``: the API's default."""
    return check_optional_int("page_size", value, minimum=1, maximum=MAX_PAGE_SIZE)


@attrs.frozen(kw_only=True)
class ListFilters:
    """The query of a listing, checked when it is built (before any request)."""

    page_size: int | None = attrs.field(default=None, converter=_page_size)
    sort: str | None = None
    search: str | None = None
    destination_name: str | None = None
    destination_status: str | None = None
    data_id: str | None = attrs.field(default=None, converter=_data_id)
    source: str | None = None

    def __attrs_post_init__(self) -> None:
        """Refuse a bad sort or filter (the page size and ids are checked by converters).

        A sort a field name with an optional leading ``-``; every filter a string of 1
        to 1,024 characters with a UTF-8 form; a source one of ``html``, ``docx``, ``pdf``.
        """
        sort = _optional_str("sort", self.sort)
        if sort is not None and not _SORT.fullmatch(sort):
            raise ValueError(
                f"sort must be a field name with an optional leading '-', got {sort!r}"
            )
        for name in ("search", "destination_name", "destination_status"):
            _optional_str(name, getattr(self, name))
        source = _optional_str("source", self.source)
        if source is not None and source not in TEMPLATE_SOURCES:
            raise ValueError(f"source must be one of html, docx, pdf, got {source[:100]!r}")

    def params(self, page: int) -> dict[str, str | int]:
        """The query string for *page*: the page number and only the filters set."""
        params: dict[str, str | int] = {"page": page}
        for name in (
            "page_size",
            "sort",
            "search",
            "destination_name",
            "destination_status",
            "data_id",
            "source",
        ):
            value = getattr(self, name)
            if value is not None:
                params[_WIRE_NAMES.get(name, name)] = value
        return params


class Listing(Generic[R]):
    """Every record of a listing: ``async for render in client.render.list(...)``.

    Pages are fetched lazily, one at a time, as the iteration reaches them; iteration
    stops after the last page (``current_page >= page_count``), or at an empty page
    when the API sends no pagination metadata. Each ``async for`` starts again from the
    first page. ``.pages()`` iterates over whole ``Page`` records instead.

    Each page is asked for once, in order; an answer for another page than the one asked
    for raises ``APIResponseValidationError``, so a server that ignores ``page`` ends
    the listing instead of repeating it forever.
    """

    __slots__ = ("_fetch",)

    def __init__(self, fetch: Callable[[int, Page[R] | None], Awaitable[Page[R]]]) -> None:
        """Iterate with *fetch*, which returns page number *n* (counting from 1).

        It also gets the page before (``None`` for the first), to refuse a repeat.
        """
        self._fetch = fetch

    def __aiter__(self) -> AsyncIterator[R]:
        """Iterate over every record across all pages."""
        return self._records()

    async def _records(self) -> AsyncIterator[R]:
        async for page in self.pages():
            for record in page.items:
                yield record

    async def pages(self) -> AsyncIterator[Page[R]]:
        """Iterate over the pages, each one fetched when the previous one is consumed."""
        number = 1
        previous: Page[R] | None = None
        while True:
            page = await self._fetch(number, previous)
            yield page
            if not page.items:
                return
            if page.page_count is not None and page.page >= page.page_count:
                return
            # The next page is the one after the page asked for, never the server's word
            # for it: a page is never asked for twice.
            number += 1
            previous = page


class BatchList(Listing[Batch]):
    """Every batch of a listing: ``async for batch in client.batch.list(...)``.

    A ``Listing`` of ``Batch`` records (see ``Listing``); ``.pages()`` gives the
    ``Page`` records.
    """

    __slots__ = ()

"""Listing with automatic pagination: pages are fetched lazily, one at a time.

A listing always ends, whatever the server answers. Pages are asked for in order, 1, 2,
3, ..., each once per iteration. An answer for another page than the one asked for
(its ``current_page``: 0, negative, or not advancing because the server ignores
``page``) raises ``APIResponseValidationError`` naming ``$.metadata.pagination.current_page``;
so does an answer without ``current_page`` that holds exactly the batches of the page
before it (a server that ignores ``page`` and sends no metadata). Iteration stops at
the last page (``current_page >= page_count``) or at an empty page.

Each filter is a string of at most ``MAX_FILTER_LENGTH`` (1,024) characters, so no
listing URL can exceed httpx's limit; a longer one raises ``ValueError`` when ``list()``
is called.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

import attrs

from ._constants import MAX_FILTER_LENGTH
from ._converter import ShapeError, structure
from ._models import Batch, Page
from ._validate import check_optional_int

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = ["BatchList", "ListFilters", "parse_page"]

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
class _Envelope:
    """The list response: ``{"items": [...], "metadata": {"pagination": {...}}}``."""

    items: list[Batch]
    metadata: _Metadata | None = None


def parse_page(data: object, requested: int, previous: Page | None = None) -> Page:
    """Build a ``Page`` from a list response to page *requested*.

    *previous* is the page before it in the same iteration, if any.

    Raises:
        ShapeError: The JSON is not a listing; its ``current_page`` is not *requested*;
            or it has no ``current_page`` and holds the same batches as *previous*.
    """
    envelope = structure(data, _Envelope)
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
        and [batch.id for batch in items] == [batch.id for batch in previous.items]
    ):
        raise ShapeError(
            f"page {requested} holds the same batches as page {previous.page} and says "
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

    def __attrs_post_init__(self) -> None:
        """Refuse a bad sort or filter (the page size is checked by its converter).

        A sort a field name with an optional leading ``-``;
        every filter a string of 1 to 1,024 characters with a UTF-8 form.
        """
        sort = _optional_str("sort", self.sort)
        if sort is not None and not _SORT.fullmatch(sort):
            raise ValueError(
                f"sort must be a field name with an optional leading '-', got {sort!r}"
            )
        for name in ("search", "destination_name", "destination_status"):
            _optional_str(name, getattr(self, name))

    def params(self, page: int) -> dict[str, str | int]:
        """The query string for *page*: the page number and only the filters set."""
        params: dict[str, str | int] = {"page": page}
        for name in ("page_size", "sort", "search", "destination_name", "destination_status"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        return params


class BatchList:
    """Every batch of a listing: ``async for batch in client.batch.list(...)``.

    Pages are fetched lazily, one at a time, as the iteration reaches them; iteration
    stops after the last page (``current_page >= page_count``), or at an empty page
    when the API sends no pagination metadata. Each ``async for`` starts again from the
    first page. ``.pages()`` iterates over whole ``Page`` records instead.

    Each page is asked for once, in order; an answer for another page than the one asked
    for raises ``APIResponseValidationError``, so a server that ignores ``page`` ends
    the listing instead of repeating it forever.
    """

    __slots__ = ("_fetch",)

    def __init__(self, fetch: Callable[[int, Page | None], Awaitable[Page]]) -> None:
        """Iterate with *fetch*, which returns page number *n* (counting from 1).

        It also gets the page before (``None`` for the first), to refuse a repeat.
        """
        self._fetch = fetch

    def __aiter__(self) -> AsyncIterator[Batch]:
        """Iterate over every batch across all pages."""
        return self._batches()

    async def _batches(self) -> AsyncIterator[Batch]:
        async for page in self.pages():
            for batch in page.items:
                yield batch

    async def pages(self) -> AsyncIterator[Page]:
        """Iterate over the pages, each one fetched when the previous one is consumed."""
        number = 1
        previous: Page | None = None
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

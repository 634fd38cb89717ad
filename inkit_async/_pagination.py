"""Listing with automatic pagination: pages are fetched lazily, one at a time."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

import attrs

from ._converter import structure
from ._models import Batch, Page

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


def parse_page(data: object, requested: int) -> Page:
    """Build a ``Page`` from a list response; *requested* is the page number asked for."""
    envelope = structure(data, _Envelope)
    pagination = envelope.metadata.pagination if envelope.metadata else None
    if pagination is None:
        pagination = _Pagination()
    return Page(
        items=tuple(envelope.items),
        page=pagination.current_page or requested,
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
    return value


@attrs.frozen(kw_only=True)
class ListFilters:
    """The query of a listing, checked when it is built (before any request)."""

    page_size: int | None = None
    sort: str | None = None
    search: str | None = None
    destination_name: str | None = None
    destination_status: str | None = None

    def __attrs_post_init__(self) -> None:
        """Refuse a page size outside 1..1000, a malformed sort or non-string filters."""
        size = self.page_size
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int):
                raise TypeError(f"page_size must be an int, got {type(size).__name__}")
            if not 1 <= size <= MAX_PAGE_SIZE:
                raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {size}")
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
    """

    __slots__ = ("_fetch",)

    def __init__(self, fetch: Callable[[int], Awaitable[Page]]) -> None:
        """Iterate with *fetch*, which returns page number *n* (counting from 1)."""
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
        while True:
            page = await self._fetch(number)
            yield page
            if not page.items:
                return
            if page.page_count is not None and page.page >= page.page_count:
                return
            number = page.page + 1

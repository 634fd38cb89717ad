"""The base of every API resource, and the calls every resource is made of.

A resource checks its arguments, builds the path and parameters, and hands the call to
its engine through one of these: ``_lookup`` (a GET by id: coalesced, and checked to be
the record asked for), ``_listing`` (an auto-paginated list), ``_delete`` and
``_create`` (a POST that must not repeat). What differs between resources is only the
path, the record and the arguments; how a call is made is written here, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from .._body import nests_deeper_than
from .._constants import MAX_JSON_DEPTH
from .._converter import ShapeError, structure
from .._outcomes import no_content
from .._pagination import ListFilters, Listing, parse_page
from .._validate import check_optional_seconds

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._engine import Engine
    from .._models import Page
    from .._pagination import R

__all__ = [
    "APIResource",
    "checked_deadline",
    "checked_json",
    "checked_text",
    "optional_text",
    "record_parser",
    "render_body",
]

T = TypeVar("T")


def checked_deadline(deadline: object) -> float | None:
    """A call's ``deadline=``: ``None`` (the client's), or a finite number of seconds > 0."""
    seconds = check_optional_seconds("deadline", deadline, above=True)
    return None if seconds is None else float(seconds)


def checked_text(name: str, value: object) -> str:
    """*value* when it is a ``str`` with something in it (an id, a name), else raise.

    Raises:
        TypeError: *value* is not a ``str``.
        ValueError: *value* is empty or blank.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value


def optional_text(name: str, value: object) -> str | None:
    """*value* when it is ``None`` or a ``str`` (a name, a description), else ``TypeError``."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {type(value).__name__}")
    return value


def checked_json(name: str, value: object) -> None:
    """Refuse a value of a request body that nests more than ``MAX_JSON_DEPTH`` levels.

    No template needs that depth, and Python's JSON encoder fails at about 1,000 levels
    (or on a value that contains itself).

    Raises:
        ValueError: It nests too deeply, or contains itself.
    """
    if nests_deeper_than(value, MAX_JSON_DEPTH):
        raise ValueError(
            f"{name} nests objects and lists more than {MAX_JSON_DEPTH} levels deep "
            "(or contains itself)"
        )


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def render_body(render: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The JSON of one render (a batch's item, or ``render.create``'s): checked, a copy.

    *where* names it in messages (``renders[3]``; ``""`` for a call's own arguments).

    Raises:
        ValueError: It has no ``merge_parameters``, or a value nests too deeply.
        TypeError: ``merge_parameters`` is not a mapping.
    """
    body = dict(render)
    parameters = body.get("merge_parameters")
    if parameters is None:
        raise ValueError(f"{where or 'the render'} has no merge_parameters")
    if not isinstance(parameters, Mapping):
        raise TypeError(f"{_at(where, 'merge_parameters')} must be a mapping")
    for key, value in body.items():
        checked_json(_at(where, key), value)
    return body


def record_parser(segment: str, cls: type[T], kind: str) -> Callable[[object], T]:
    """The cast for a lookup of the id that *segment* encodes: the *kind*, if it is that one.

    A stale answer, such as one a connection carried over from an earlier request,
    fails the call (``APIResponseValidationError``) instead of passing for another record.
    """
    # `quote` only ever adds `%`: without one, the segment is the id as given.
    expected = unquote(segment) if "%" in segment else segment

    def parse(data: object) -> T:
        record = structure(data, cls)
        found: str = record.id  # type: ignore[attr-defined]  # every record has one
        if found != expected:
            raise ShapeError(
                f"the answer is for {kind} {found[:100]!r}, not the one asked for @ $.id"
            )
        return record

    return parse


class APIResource:
    """A group of API calls (``client.batch``), bound to one client's engine.

    A resource checks its arguments, builds the path and parameters, and hands the call
    to ``self._engine.request``; it holds no other state.
    """

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        """Send every call through *engine*."""
        self._engine = engine

    async def _lookup(
        self,
        path: str,
        segment: str,
        cls: type[T],
        *,
        kind: str,
        operation: str,
        end: float | None,
    ) -> T:
        """``GET path`` (a lookup by the id *segment* encodes): coalesced, and checked.

        *kind* names the record in the error of a stale answer (``render``); *operation*
        names the call in traces (``render.get``), whose span says ``inkit.<kind>.id``.
        """
        return await self._engine.request(
            "GET",
            path,
            record_parser(segment, cls, kind),
            shared=True,
            operation=operation,
            attributes={f"inkit.{kind}.id": segment},
            end=end,
        )

    def _listing(
        self, path: str, cls: type[R], filters: ListFilters, *, name: str, deadline: float | None
    ) -> Listing[R]:
        """Every *cls* of ``GET path`` with *filters*, page by page (*deadline*: per page)."""
        return Listing(self._pages(path, cls, filters, name=name, deadline=deadline))

    def _pages(
        self, path: str, cls: type[R], filters: ListFilters, *, name: str, deadline: float | None
    ) -> Callable[[int, Page[R] | None], Awaitable[Page[R]]]:
        """The fetch of one page of ``GET path``: what a ``Listing`` iterates with."""

        async def fetch(page: int, previous: Page[R] | None) -> Page[R]:
            return await self._engine.request(
                "GET",
                path,
                lambda data: parse_page(data, page, previous, cls),
                params=filters.params(page),
                operation=f"{name}.list",
                attributes={"inkit.page": page},
                end=self._engine.end_of(deadline),
            )

        return fetch

    async def _delete(self, path: str, segment: str, *, name: str, end: float | None) -> None:
        """``DELETE path``: any 2xx is success, whatever its body (the API answers 204).

        A delete may repeat (it is idempotent): a retry of one that reached the server
        may meet a 404, the record being gone already.
        """
        await self._engine.request(
            "DELETE",
            path,
            no_content,
            operation=f"{name}.delete",
            attributes={f"inkit.{name}.id": segment},
            end=end,
        )

    async def _create(
        self,
        path: str,
        body: dict[str, Any],
        cast: Callable[[object], T],
        *,
        operation: str,
        attributes: Mapping[str, str | int],
        end: float | None,
    ) -> T:
        """``POST path``, which must not repeat: the API has no idempotency key.

        Retried only when it certainly did not reach the server (a refused connection)
        or was refused with 429; never after a timeout, a drop or a 5xx.
        """
        return await self._engine.request(
            "POST",
            path,
            cast,
            body=body,
            may_repeat=False,
            operation=operation,
            attributes=attributes,
            end=end,
        )

"""Templates (``/template``): create one from a file, get and list them.

Paths and fields from the official SDKs: inkit-python's and inkit-nodejs's routing maps
(``POST template``, ``GET template``, ``GET template/{id}``) and their READMEs, which
send the file base64-encoded (``file``) with its ``source`` and, for HTML, the page
size under ``data``; Inkit's pages on templates list no REST path ("N/A").
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final, Literal, cast

from .._converter import structure
from .._pagination import TEMPLATE_SOURCES, ListFilters, Listing
from .._paths import encode_segment
from .._records import Template
from .._validate import check_number
from ._base import APIResource, checked_deadline, checked_json, checked_text, optional_text

__all__ = ["TemplateFile", "TemplateResource"]

_PATH = "/template"
_UNITS: Final = ("in", "cm")

#: What a template's file may be given as: its path, its bytes, or a binary file object.
TemplateFile = os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


def _parse_template(data: object) -> Template:
    return structure(data, Template)


def _checked_file(file: object) -> bytes | os.PathLike[str] | IO[bytes]:
    """*file* when it is a path, bytes or a readable object; ``str`` is refused as ambiguous."""
    if isinstance(file, str):
        raise TypeError(
            "file must be a path (pathlib.Path), bytes or a binary file object, not a "
            "str: pass Path(name) for a file, or text.encode() for HTML"
        )
    if isinstance(file, bytes | bytearray | memoryview):
        return bytes(cast("bytes", file))
    if isinstance(file, os.PathLike) or callable(getattr(file, "read", None)):
        return file  # type: ignore[return-value]  # a path, or something to read
    raise TypeError(
        f"file must be a path, bytes or a binary file object, got {type(file).__name__}"
    )


def _read(file: bytes | os.PathLike[str] | IO[bytes]) -> bytes:
    """The bytes of *file* (in a worker thread: reading may block)."""
    if isinstance(file, bytes):
        return file
    if isinstance(file, os.PathLike):
        return Path(file).read_bytes()
    data: object = file.read()
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(
            f"file's read() returned {type(data).__name__}, not bytes: open it in binary mode"
        )
    return bytes(data)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Refuse *value* unless it is one of *choices* (``ValueError``; ``TypeError`` if no str)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {', '.join(choices)}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value[:100]!r}")


def _checked_destinations(destinations: object) -> object:
    """*destinations* when it is a list of objects (or one object), not nested too deeply."""
    if isinstance(destinations, str | bytes) or not isinstance(destinations, Sequence | Mapping):
        raise TypeError(
            "destinations must be a list of settings objects (or one object), "
            f"got {type(destinations).__name__}"
        )
    checked_json("destinations", cast("object", destinations))
    return cast("object", destinations)


def _page_size(width: object, height: object, unit: object) -> dict[str, Any]:
    """``data``'s page size: all three of width, height and unit, or none."""
    given = [value is not None for value in (width, height, unit)]
    if not any(given):
        return {}
    if not all(given):
        raise ValueError("width, height and unit go together: give all three, or none")
    _check_choice("unit", unit, _UNITS)
    return {
        "width": check_number("width", width, above=True),
        "height": check_number("height", height, above=True),
        "unit": unit,
    }


class TemplateResource(APIResource):
    """Templates, ``client.template``: create, get, list."""

    __slots__ = ()

    def __repr__(self) -> str:
        """Name the resource's path."""
        return f"<{type(self).__name__} {_PATH}>"

    async def create(
        self,
        *,
        name: str,
        source: Literal["html", "docx", "pdf"],
        file: TemplateFile,
        description: str | None = None,
        width: float | None = None,
        height: float | None = None,
        unit: Literal["in", "cm"] | None = None,
        file_name: str | None = None,
        destinations: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
        deadline: float | None = None,
    ) -> Template:
        """Create a template from an HTML, DOCX or PDF file (``POST /template``).

        The file is read whole (a path or a file object, in a worker thread, so the
        event loop is not blocked) and sent base64-encoded, as the official SDKs send
        it. Every argument is checked, and the file read, before anything is sent.

        Not idempotent: retried only when it certainly did not reach the server or was
        refused with 429, as ``render.create``.

        Args:
            name: The template's name.
            source: What *file* is: ``html``, ``docx`` or ``pdf``.
            file: The file: a path (``pathlib.Path``), its bytes, or a binary file
                object (``open(name, "rb")``, ``io.BytesIO``). A ``str`` is refused:
                ``Path(text)`` for a path, ``text.encode()`` for HTML.
            description: A description of it.
            width: The page width of an HTML template, > 0, in *unit*.
            height: The page height, > 0, in *unit*.
            unit: ``in`` or ``cm``. *width*, *height* and *unit* go together.
            file_name: A DOCX or PDF template's file name, as the SDKs send it.
            destinations: Where documents made from it go, as the SDKs send them: a
                list of settings objects (``[{"id": "dest_1", "folder_id": "fold_1"}]``).
            deadline: Seconds the call may take in all (``None``: the client's).

        Raises:
            TypeError: An argument has the wrong type, or the file object's ``read()``
                did not return bytes (nothing is sent).
            ValueError: *name* is empty; *source* is not html, docx or pdf; *unit* is
                not in or cm; a size is not a finite number > 0; only some of width,
                height and unit are given; the file is empty; or *destinations* nests
                too deeply (nothing is sent).
            OSError: The file at the path could not be read (``FileNotFoundError``,
                ``PermissionError``, ...); nothing is sent.
            DeadlineExceededError: The deadline ran out, or could not be met.
        """
        checked_text("name", name)
        _check_choice("source", source, TEMPLATE_SOURCES)
        payload_file = _checked_file(file)
        data = _page_size(width, height, unit)
        if optional_text("file_name", file_name) is not None:
            data["file_name"] = file_name
        body: dict[str, Any] = {"name": name, "source": source}
        if optional_text("description", description) is not None:
            body["description"] = description
        if data:
            body["data"] = data
        if destinations is not None:
            body["destinations"] = _checked_destinations(destinations)
        seconds = checked_deadline(deadline)
        content = await asyncio.to_thread(_read, payload_file)
        if not content:
            raise ValueError("file is empty")
        body["file"] = base64.b64encode(content).decode("ascii")
        return await self._create(
            _PATH,
            body,
            _parse_template,
            operation="template.create",
            attributes={"inkit.template.source": source},
            end=self._engine.end_of(seconds),
        )

    async def get(self, template_id: str, *, deadline: float | None = None) -> Template:
        """Fetch one template by id (``GET /template/{id}``).

        The id is percent-encoded as exactly one path segment. Lookups of the same id
        under way at the same moment share one request (``AsyncInkit(coalesce=...)``).

        Raises:
            TypeError: *template_id* is not a ``str`` (nothing is sent).
            ValueError: *template_id* is empty, blank, ``.``, ``..``, longer than 1,024
                characters or not valid Unicode (nothing is sent).
            NotFoundError: No template with this id is visible to the token.
            APIResponseValidationError: The body is not a template, or is another one.
            DeadlineExceededError: The deadline ran out, or could not be met.
        """
        segment = encode_segment(template_id, "template_id")
        end = self._engine.end_of(checked_deadline(deadline))
        return await self._lookup(
            f"{_PATH}/{segment}",
            segment,
            Template,
            kind="template",
            operation="template.get",
            end=end,
        )

    def list(
        self,
        *,
        page_size: int | None = None,
        sort: str | None = None,
        search: str | None = None,
        source: Literal["html", "docx", "pdf"] | None = None,
        deadline: float | None = None,
    ) -> Listing[Template]:
        """List templates, all pages: ``async for template in client.template.list()``.

        Nothing is sent until iteration starts; pages are fetched one at a time. Only
        the filters you set are sent.

        Args:
            page_size: Templates per request, 1 to 1000 (the API's default is 25).
            sort: A field name, with a leading ``-`` for descending (``created_at``).
            search: Only templates matching this text.
            source: Only templates made from ``html``, ``docx`` or ``pdf``.
            deadline: Seconds each page's fetch may take (``None``: the client's).

        Raises:
            ValueError, TypeError: A filter is invalid (raised here, before any request).
        """
        filters = ListFilters(page_size=page_size, sort=sort, search=search, source=source)
        return self._listing(
            _PATH, Template, filters, name="template", deadline=checked_deadline(deadline)
        )

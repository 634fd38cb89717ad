"""Turning ids into URL path segments that cannot escape their place."""

from __future__ import annotations

from urllib.parse import quote

from ._constants import MAX_ID_LENGTH

__all__ = ["encode_segment"]


def encode_segment(value: object, name: str) -> str:
    """Check an id and percent-encode it as exactly one path segment.

    Everything but unreserved characters is encoded (``/``, ``?``, ``#``, ``%``, spaces,
    non-ASCII as UTF-8), so an id can never reach another path or add a query. An id
    is 1 to ``MAX_ID_LENGTH`` (1,024) characters long: encoded, that is at most 12,288
    characters, so no id can make a URL longer than httpx accepts.

    Raises:
        TypeError: *value* is not a ``str``.
        ValueError: *value* is empty, blank, ``.`` or ``..``, longer than 1,024
            characters, or holds a lone surrogate (it has no UTF-8 form). The message
            names the length, not the id.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value or value.isspace():
        raise ValueError(f"{name} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{name} must be at most {MAX_ID_LENGTH:,} characters, got {len(value):,}")
    if value in {".", ".."}:
        raise ValueError(f"{name} must not be {value!r} (a relative path segment)")
    try:
        return quote(value, safe="")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid Unicode: it holds a lone surrogate") from None

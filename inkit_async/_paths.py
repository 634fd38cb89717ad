"""Turning ids into URL path segments that cannot escape their place."""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["encode_segment"]


def encode_segment(value: object, name: str) -> str:
    """Check an id and percent-encode it as exactly one path segment.

    Everything but unreserved characters is encoded (``/``, ``?``, ``#``, ``%``, spaces,
    non-ASCII as UTF-8), so an id can never reach another path or add a query.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value or value.isspace():
        raise ValueError(f"{name} must be a non-empty string")
    if value in {".", ".."}:
        raise ValueError(f"{name} must not be {value!r} (a relative path segment)")
    return quote(value, safe="")

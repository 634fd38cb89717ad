"""The base of every API resource: it holds the engine its calls go through."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._engine import Engine

__all__ = ["APIResource"]


class APIResource:
    """A group of API calls (``client.batch``), bound to one client's engine.

    A resource checks its arguments, builds the path and parameters, and hands the call
    to ``self._engine.request``; it holds no other state.
    """

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        """Send every call through *engine*."""
        self._engine = engine

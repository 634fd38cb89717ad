"""``async with`` for what has an ``aclose``: the client, and the Redis throttle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Self

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["AsyncClosing"]


class _Closable(Protocol):
    async def aclose(self) -> None: ...


class AsyncClosing:
    """A mixin: ``async with`` gives the object itself, and closes it on the way out."""

    __slots__ = ()

    async def __aenter__(self) -> Self:
        """Return the object itself."""
        return self

    async def __aexit__(
        self: _Closable,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close it (see ``aclose``)."""
        await self.aclose()

"""Document batches (``/batch``); the same class serves flow batches (``/invoke/batch``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, overload

from .._converter import structure
from .._fanout import run_bounded
from .._models import Batch
from .._paths import encode_segment

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .._client import AsyncInkit
    from .._exceptions import InkitError

__all__ = ["BatchResource"]


def _parse_batch(data: object) -> Batch:
    return structure(data, Batch)


class BatchResource:
    """Batch lookups, reached as ``client.batch``.

    One class serves every batch-shaped resource; it is parameterised by its path.
    """

    __slots__ = ("_client", "_path")

    def __init__(self, client: AsyncInkit, path: str) -> None:
        """Bind the resource to *client* and to the collection at *path* (no slashes)."""
        self._client = client
        self._path = "/" + path

    def __repr__(self) -> str:
        """Name the resource's path."""
        return f"<BatchResource {self._path}>"

    async def get(self, batch_id: str) -> Batch:
        """Fetch one batch by id.

        The id is percent-encoded as exactly one path segment, so ``a/b``, ``x?y=1`` or
        ``../template/x`` can never reach another resource or add a query.

        Raises:
            TypeError: *batch_id* is not a ``str`` (nothing is sent).
            ValueError: *batch_id* is empty, blank, ``.`` or ``..`` (nothing is sent).
            NotFoundError: No batch with this id is visible to the token.
            APIStatusError: Any other non-2xx answer (see the exception tree).
            APIConnectionError: No response after the retries.
            APIResponseValidationError: The body is not a batch record.
        """
        return await self._fetch(encode_segment(batch_id, "batch_id"))

    @overload
    async def get_many(
        self, batch_ids: Iterable[str], *, return_exceptions: Literal[False] = False
    ) -> list[Batch]: ...

    @overload
    async def get_many(
        self, batch_ids: Iterable[str], *, return_exceptions: Literal[True]
    ) -> list[Batch | InkitError]: ...

    async def get_many(
        self, batch_ids: Iterable[str], *, return_exceptions: bool = False
    ) -> list[Batch] | list[Batch | InkitError]:
        """Fetch many batches concurrently; the results come back in input order.

        Identical ids are fetched once (and appear at each of their positions). Every id
        is checked before anything is sent. The lookups run on as many worker tasks as
        the client has concurrency slots, not one task per id, so a list of 10,000 ids
        costs 64 tasks (by default) and leaves the event loop responsive.

        Args:
            batch_ids: The ids, any iterable of ``str`` (a lone ``str`` is refused).
            return_exceptions: When true, a lookup that failed with an ``InkitError``
                puts that error in its place and the others still complete. When false
                (the default), the first failure is raised and the lookups still
                running are cancelled cleanly.

        Raises:
            TypeError: *batch_ids* is a ``str``, or holds a non-``str`` id.
            ValueError: An id is empty, blank, ``.`` or ``..``.
            InkitError: The first failed lookup, when *return_exceptions* is false.
        """
        if isinstance(batch_ids, str | bytes):
            raise TypeError("batch_ids must be an iterable of ids, not a single string")
        ids = list(batch_ids)
        segments = {batch_id: encode_segment(batch_id, "batch_id") for batch_id in ids}
        results = await run_bounded(
            segments.values(),
            self._fetch,
            workers=min(self._client.max_concurrency, len(segments)),
            return_exceptions=return_exceptions,
        )
        return [results[segments[batch_id]] for batch_id in ids]

    async def _fetch(self, segment: str) -> Batch:
        return await self._client._request("GET", f"{self._path}/{segment}", _parse_batch)  # noqa: SLF001  # pyright: ignore[reportPrivateUsage]

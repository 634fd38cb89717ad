"""Document batches (``/batch``); the same class serves flow batches (``/invoke/batch``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._converter import structure
from .._models import Batch
from .._paths import encode_segment

if TYPE_CHECKING:
    from .._client import AsyncInkit

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
        segment = encode_segment(batch_id, "batch_id")
        return await self._client._request("GET", f"{self._path}/{segment}", _parse_batch)  # noqa: SLF001  # pyright: ignore[reportPrivateUsage]

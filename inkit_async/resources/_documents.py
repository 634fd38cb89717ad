"""Documents in Inkit Storage (``/document``): get, list and delete them.

Paths from the official SDKs' routing maps (inkit-python, inkit-nodejs) and Inkit's
pages on listing, retrieving and deleting documents; the file from ``GET download/{id}``
(inkit-python, inkit-nodejs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._pagination import ListFilters, Listing
from .._paths import encode_segment
from .._records import Document
from ._base import checked_deadline
from ._downloading import DownloadingResource

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable
    from pathlib import Path

    from .._download import DownloadStream
    from .._engine import Engine

__all__ = ["DocumentResource"]

_PATH = "/document"


def _file_path(segment: str) -> str:
    return f"/download/{segment}"


class DocumentResource(DownloadingResource):
    """Documents in Inkit Storage, ``client.document``: get, list, delete; their files.

    ``download``, ``stream`` and ``download_many`` fetch a document's file.

    Every method takes ``deadline=`` (seconds, or ``None`` for the client's own): the
    time the call may take in all; for ``list``, each page's fetch.
    """

    __slots__ = ()

    def __init__(self, engine: Engine) -> None:
        """Send every call through *engine*."""
        super().__init__(engine, name="document", path=_file_path)

    def __repr__(self) -> str:
        """Name the resource's path."""
        return f"<{type(self).__name__} {_PATH}>"

    async def get(self, document_id: str, *, deadline: float | None = None) -> Document:
        """Fetch one document by id (``GET /document/{id}``).

        The id is percent-encoded as exactly one path segment. Lookups of the same id
        under way at the same moment share one request (``AsyncInkit(coalesce=...)``).

        Raises:
            TypeError: *document_id* is not a ``str`` (nothing is sent).
            ValueError: *document_id* is empty, blank, ``.``, ``..``, longer than 1,024
                characters or not valid Unicode (nothing is sent).
            NotFoundError: No document with this id is visible to the token.
            APIResponseValidationError: The body is not a document, or is another one.
            DeadlineExceededError: The deadline ran out, or could not be met.
        """
        segment = encode_segment(document_id, "document_id")
        end = self._engine.end_of(checked_deadline(deadline))
        return await self._lookup(
            f"{_PATH}/{segment}",
            segment,
            Document,
            kind="document",
            operation="document.get",
            end=end,
        )

    def list(
        self,
        *,
        page_size: int | None = None,
        sort: str | None = None,
        search: str | None = None,
        data_id: str | Iterable[str] | None = None,
        destination_name: str | None = None,
        destination_status: str | None = None,
        deadline: float | None = None,
    ) -> Listing[Document]:
        """List documents, all pages: ``async for document in client.document.list(...)``.

        Nothing is sent until iteration starts; pages are fetched one at a time. Only
        the filters you set are sent.

        Args:
            page_size: Documents per request, 1 to 1000 (the API's default is 25).
            sort: A field name, with a leading ``-`` for descending (``-created_at``).
            search: Only documents matching this text.
            data_id: Only the documents of these renders: one render id, or ids (sent
                comma-separated, as ``data-id``).
            destination_name: Only documents with this destination.
            destination_status: Only documents whose destination is in this state.
            deadline: Seconds each page's fetch may take (``None``: the client's).

        Raises:
            ValueError, TypeError: A filter is invalid (raised here, before any request).
        """
        filters = ListFilters(
            page_size=page_size,
            sort=sort,
            search=search,
            data_id=data_id,
            destination_name=destination_name,
            destination_status=destination_status,
        )
        return self._listing(
            _PATH, Document, filters, name="document", deadline=checked_deadline(deadline)
        )

    async def delete(self, document_id: str, *, deadline: float | None = None) -> None:
        """Delete a document (``DELETE /document/{id}``; the API answers 204).

        A delete is idempotent and retried as a lookup is; a retry of one that had
        reached the server may answer 404 (``NotFoundError``): the document is gone
        either way.

        Raises:
            TypeError, ValueError: *document_id* is invalid (nothing is sent).
            NotFoundError: No document with this id is visible to the token.
            DeadlineExceededError: The deadline ran out, or could not be met.
        """
        segment = encode_segment(document_id, "document_id")
        end = self._engine.end_of(checked_deadline(deadline))
        await self._delete(f"{_PATH}/{segment}", segment, name="document", end=end)

    async def download(
        self,
        document_id: str,
        path: str | os.PathLike[str],
        *,
        max_size: int = 4_294_967_296,
        deadline: float | None = None,
    ) -> Path:
        """Download the document's file (``GET /download/{id}``) to *path*, atomically.

        The bytes go to a temporary file beside *path*, renamed over it once whole: on
        any failure or cancellation nothing is left at *path* (a file there before
        stays as it was). Memory does not grow with the file.

        A document whose render is still in progress answers 404, as the render's PDF
        does: the download asks again every 2 s for up to 30 s after the first 404
        (each ask a ``RetryEvent``, not counted against ``max_retries``), then raises
        ``NotFoundError``; *deadline* ends the wait sooner (``DeadlineExceededError``).
        So an id that does not exist fails after 30 s, not at once.

        Args:
            document_id: The document (``doc_...``), sent as one encoded path segment.
            path: Where the file goes (``str`` or ``os.PathLike``); its directory must
                exist.
            max_size: Most bytes the file may have (default 4 GiB): a larger one fails
                with ``APIResponseValidationError``.
            deadline: Seconds the whole download may take, the wait included (``None``:
                no bound but the client's per-attempt ``timeout``).

        Returns:
            *path*, as a ``Path``.

        Raises:
            TypeError, ValueError: An argument is invalid (nothing is sent).
            IsADirectoryError: *path* is a directory (nothing is sent).
            OSError: The temporary file cannot be made or written (nothing is left).
            NotFoundError: No such document, or its file was not ready within the wait.
            InkitError: Any other error of the exception tree (nothing is left at *path*).
        """
        return await self._downloads.to_path(
            document_id, path, max_size=max_size, deadline=deadline
        )

    def stream(
        self,
        document_id: str,
        *,
        max_size: int = 4_294_967_296,
        deadline: float | None = None,
    ) -> DownloadStream:
        """The document's file as it arrives: ``async with client.document.stream(id) as s:``.

        Nothing is sent until the stream is entered; then ``async for chunk in stream``
        hands over the bytes (at most 256 KiB a chunk). It waits for a file not ready
        yet as ``download`` does. The stream holds a concurrency slot until it is left.
        *deadline* bounds the whole stream, the time your loop takes included.

        Raises:
            TypeError, ValueError: An argument is invalid (raised here, nothing is sent).
        """
        return self._downloads.stream(document_id, max_size=max_size, deadline=deadline)

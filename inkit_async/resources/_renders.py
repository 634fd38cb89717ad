"""Renders (``/render``): create one document from a template, read, list and delete them.

Paths from the official SDKs: inkit-python's routing map and inkit-nodejs's (``POST
render``, ``GET render``, ``GET render/{id}``, ``GET render/{id}/pdf``), inkit-python
1.0.2's and Inkit's page on deleting a PDF (``DELETE render/{id}``); ``?page=N`` from
Inkit's page on streaming a document. Inkit's page on generating a document names
``POST /generate`` for the same call; ``docs/renders.md`` says why this SDK sends
``POST /render``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._converter import structure
from .._pagination import ListFilters, Listing
from .._paths import encode_segment
from .._records import CreatedRender, Render
from ._base import checked_deadline, checked_text, optional_text, render_body
from ._downloading import DownloadingResource, page_params

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from .._download import DownloadStream
    from .._engine import Engine

__all__ = ["RenderResource", "parse_created_render"]

_PATH = "/render"


def parse_created_render(data: object) -> CreatedRender:
    """The answer of a call that made a render (``render.create``, ``flow.invoke``)."""
    return structure(data, CreatedRender)


def _pdf_path(segment: str) -> str:
    return f"{_PATH}/{segment}/pdf"


class RenderResource(DownloadingResource):
    """Renders, ``client.render``: create, get, list, delete; download, stream, download_many.

    Every method takes ``deadline=`` (seconds, or ``None`` for the client's own): the
    time the call may take in all; for ``list``, each page's fetch.
    """

    __slots__ = ()

    def __init__(self, engine: Engine) -> None:
        """Send every call through *engine*."""
        super().__init__(engine, name="render", path=_pdf_path)

    def __repr__(self) -> str:
        """Name the resource's path."""
        return f"<{type(self).__name__} {_PATH}>"

    async def create(
        self,
        *,
        template_id: str,
        merge_parameters: Mapping[str, Any],
        name: str | None = None,
        description: str | None = None,
        destinations: Mapping[str, Mapping[str, Any]] | None = None,
        deadline: float | None = None,
    ) -> CreatedRender:
        """Render one document from *template_id* with *merge_parameters*.

        The answer names the new render (``rend_...``) and, for each destination it
        goes to, the document delivered there (``document_id`` for Inkit Storage). The
        render is made in the background: ``client.render.get(created.id)`` says when
        it is ``Completed``.

        Not idempotent: the API has no idempotency key, so the create is retried only
        when it certainly did not reach the server (a refused connection) or was
        refused with 429; never after a timeout, a dropped connection or a 5xx.

        Args:
            template_id: The template (``tmpl_...``).
            merge_parameters: The template's merge fields and their values (may be empty).
            name: A name for the document.
            description: A description of it.
            destinations: Where to deliver it, keyed by destination name, each with its
                settings: ``{"inkit_storage": {"name": "Invoice", "folder_id": "fold_1"}}``.
                Without them the API's default applies.
            deadline: Seconds the call may take in all (``None``: the client's).

        Raises:
            TypeError: An argument has the wrong type (nothing is sent).
            ValueError: *template_id* is empty, or a value nests more than 64 levels
                deep or contains itself (nothing is sent).
            DeadlineExceededError: The deadline ran out, or could not be met.
        """
        checked_text("template_id", template_id)
        fields: dict[str, Any] = {"merge_parameters": merge_parameters}
        named = {"name": optional_text("name", name)}
        named["description"] = optional_text("description", description)
        fields.update((key, value) for key, value in named.items() if value is not None)
        if destinations is not None:
            if not isinstance(destinations, Mapping):
                raise TypeError(
                    "destinations must be a mapping of destination name to settings, "
                    f"got {type(destinations).__name__}"
                )
            fields["destinations"] = destinations
        body = {"template_id": template_id, **render_body(fields, "")}
        seconds = checked_deadline(deadline)
        return await self._create(
            _PATH,
            body,
            parse_created_render,
            operation="render.create",
            attributes={"inkit.template.id": template_id},
            end=self._engine.end_of(seconds),
        )

    async def get(self, render_id: str, *, deadline: float | None = None) -> Render:
        """Fetch one render by id (``GET /render/{id}``).

        The id is percent-encoded as exactly one path segment. Lookups of the same id
        under way at the same moment share one request (``AsyncInkit(coalesce=...)``).

        Raises:
            TypeError: *render_id* is not a ``str`` (nothing is sent).
            ValueError: *render_id* is empty, blank, ``.``, ``..``, longer than 1,024
                characters or not valid Unicode (nothing is sent).
            NotFoundError: No render with this id is visible to the token.
            APIResponseValidationError: The body is not a render, or is another render.
            DeadlineExceededError: The deadline ran out, or could not be met.
        """
        segment = encode_segment(render_id, "render_id")
        end = self._engine.end_of(checked_deadline(deadline))
        return await self._lookup(
            f"{_PATH}/{segment}", segment, Render, kind="render", operation="render.get", end=end
        )

    def list(
        self,
        *,
        page_size: int | None = None,
        sort: str | None = None,
        search: str | None = None,
        destination_name: str | None = None,
        destination_status: str | None = None,
        data_id: str | Iterable[str] | None = None,
        deadline: float | None = None,
    ) -> Listing[Render]:
        """List renders, all pages: ``async for render in client.render.list(...)``.

        Nothing is sent until iteration starts; pages are fetched one at a time. Only
        the filters you set are sent.

        Args:
            page_size: Renders per request, 1 to 1000 (the API's default is 25).
            sort: A field name, with a leading ``-`` for descending (``-created_at``).
            search: Only renders matching this text.
            destination_name: Only renders with this destination (``salesforce``).
            destination_status: Only renders whose destination is in this state
                (``completed``).
            data_id: Only these renders: one id, or ids (sent comma-separated, as
                ``data-id``).
            deadline: Seconds each page's fetch may take (``None``: the client's).

        Raises:
            ValueError, TypeError: A filter is invalid (raised here, before any request).
        """
        filters = ListFilters(
            page_size=page_size,
            sort=sort,
            search=search,
            destination_name=destination_name,
            destination_status=destination_status,
            data_id=data_id,
        )
        return self._listing(
            _PATH, Render, filters, name="render", deadline=checked_deadline(deadline)
        )

    async def delete(self, render_id: str, *, deadline: float | None = None) -> None:
        """Delete a render for good (``DELETE /render/{id}``): it cannot be recovered.

        A delete is idempotent and retried as a lookup is; a retry of one that had
        reached the server may answer 404 (``NotFoundError``): the render is gone
        either way.

        Raises:
            TypeError, ValueError: *render_id* is invalid (nothing is sent).
            NotFoundError: No render with this id is visible to the token.
            DeadlineExceededError: The deadline ran out, or could not be met.
        """
        segment = encode_segment(render_id, "render_id")
        end = self._engine.end_of(checked_deadline(deadline))
        await self._delete(f"{_PATH}/{segment}", segment, name="render", end=end)

    async def download(
        self,
        render_id: str,
        path: str | os.PathLike[str],
        *,
        page: int | None = None,
        max_size: int = 4_294_967_296,
        deadline: float | None = None,
    ) -> Path:
        """Download the render's PDF (``GET /render/{id}/pdf``) to *path*, atomically.

        The bytes go to a temporary file beside *path*, renamed over it once whole: on
        any failure or cancellation nothing is left at *path* (a file there before
        stays as it was). Memory does not grow with the file.

        A render still in progress answers 404: the download asks again every 2 s for
        up to 30 s after the first 404 (each ask a ``RetryEvent``, not counted against
        ``max_retries``), then raises ``NotFoundError``; *deadline* ends the wait
        sooner (``DeadlineExceededError``). So an id that does not exist fails after
        30 s, not at once.

        Args:
            render_id: The render (``rend_...``), sent as one encoded path segment.
            path: Where the file goes (``str`` or ``os.PathLike``); its directory must
                exist.
            page: Only this page (``?page=N``, from 1); ``None``: the whole PDF.
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
            NotFoundError: No such render, or it was not ready within the wait.
            InkitError: Any other error of the exception tree (nothing is left at *path*).
        """
        return await self._downloads.to_path(
            render_id, path, params=page_params(page), max_size=max_size, deadline=deadline
        )

    def stream(
        self,
        render_id: str,
        *,
        page: int | None = None,
        max_size: int = 4_294_967_296,
        deadline: float | None = None,
    ) -> DownloadStream:
        """The render's PDF as it arrives: ``async with client.render.stream(id) as stream:``.

        Nothing is sent until the stream is entered; then ``async for chunk in stream``
        hands over the bytes (at most 256 KiB a chunk). It waits for a render in
        progress as ``download`` does. The stream holds a concurrency slot until it is
        left. *deadline* bounds the whole stream, the time your loop takes included.

        Raises:
            TypeError, ValueError: An argument is invalid (raised here, nothing is sent).
        """
        return self._downloads.stream(
            render_id, params=page_params(page), max_size=max_size, deadline=deadline
        )
